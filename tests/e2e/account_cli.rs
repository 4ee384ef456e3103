//! `smsfleet account set`: operator changes the playSMS API cannot make,
//! seen by the running ingress at once.

use std::time::Duration;

use smsfleet_testkit::eventually;

use crate::fleet::Fleet;

async fn until(f: &Fleet, query: &[(&str, &str)], key: &str, want: &str) -> serde_json::Value {
    let got = eventually(Duration::from_secs(5), || async {
        let r = f.ws(query).await;
        (r[key] == want).then_some(r)
    })
    .await;
    match got {
        Some(r) => r,
        None => panic!("{query:?}: {key} never became {want}: {}", f.ws(query).await),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_set_changes_token_webservices_password_and_contact() {
    let f = Fleet::start(&[]).await;
    let old = f.user("ivy").await;
    until(&f, &[("u", "ivy"), ("h", &old), ("op", "cr")], "status", "OK").await;

    let new = "0123456789abcdef0123456789abcdef";
    let out = f
        .cli(&[
            "account",
            "set",
            "ivy",
            "--token",
            new,
            "--email",
            "ivy@example.com",
            "--name",
            "Ivy I",
            "--mobile",
            "+628111000099",
        ])
        .await;
    assert!(out.contains("username=ivy"), "{out}");
    until(&f, &[("u", "ivy"), ("h", new), ("op", "cr")], "status", "OK").await;
    let r = f.ws(&[("u", "ivy"), ("h", &old), ("op", "cr")]).await;
    assert_eq!(r["error"], "100", "the old token is gone");
    until(&f, &[("u", "ivy@example.com"), ("h", new), ("op", "cr")], "status", "OK").await;
    let row = smsfleet_store::accounts::by_username(&f.env.pool, "ivy").await.unwrap().unwrap();
    assert_eq!((row.name.as_str(), row.mobile.as_str()), ("Ivy I", "+628111000099"));

    // get_token's codes follow each setting: 105 off, 106 other IP, 104 no token.
    let get = [("u", "ivy"), ("p", "secretpass1"), ("op", "get_token")];
    f.cli(&["account", "set", "ivy", "--webservices", "off"]).await;
    until(&f, &get, "error", "105").await;
    until(&f, &[("u", "ivy"), ("h", new), ("op", "cr")], "error", "100").await;
    f.cli(&["account", "set", "ivy", "--webservices", "on", "--webservices-ip", "10.1.2.3"]).await;
    until(&f, &get, "error", "106").await;
    f.cli(&["account", "set", "ivy", "--webservices-ip", "127.0.0.1, 10.0.0.0/8", "--token", ""]).await;
    until(&f, &get, "error", "104").await;
    f.cli(&["account", "set", "ivy", "--token", new, "--password", "otherpass2"]).await;
    let r = until(&f, &[("u", "ivy"), ("p", "otherpass2"), ("op", "get_token")], "status", "OK").await;
    assert_eq!(r["token"], new);
    assert_eq!(f.ws(&get).await["error"], "100", "the old password is gone");

    // Refused: a token that is not alphanumeric, a bad IP list, an unknown account.
    assert!(f.try_cli(&["account", "set", "ivy", "--token", "not-alnum"]).await.is_err());
    assert!(f.try_cli(&["account", "set", "ivy", "--webservices-ip", "nonsense"]).await.is_err());
    assert!(f.try_cli(&["account", "set", "nobody", "--name", "X"]).await.is_err());
}
