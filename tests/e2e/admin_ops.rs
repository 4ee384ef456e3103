//! The admin ops beyond bans (accountadd, accountremove, parentset/get,
//! accountpref/conf, credit ops, loginkeyset + ws_login), `query`,
//! `stoplist`, and the brute-force block, through a fleet of processes.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use smsfleet_testkit::eventually;

use crate::fleet::Fleet;

async fn admin(f: &Fleet) -> String {
    let out = f.cli(&["account", "create", "--username", "boss", "--password", "bosspass1", "--role", "admin"]).await;
    out.split("token=").nth(1).unwrap().trim().to_owned()
}

fn op<'a>(admin: &'a str, op: &'a str, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut q = vec![("u", "boss"), ("h", admin), ("op", op)];
    q.extend_from_slice(more);
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ops_manage_accounts_and_credit() {
    let f = Fleet::start(&[]).await;
    let h = admin(&f).await;
    let ready = eventually(Duration::from_secs(5), || async {
        (f.ws(&op(&h, "cr", &[])).await["status"] == "OK").then_some(())
    })
    .await;
    assert!(ready.is_some());

    // accountadd: 603 missing data, 600 for a non-admin, OK, 604 duplicate.
    let r = f.ws(&op(&h, "accountadd", &[("data_username", "alice"), ("data_password", "alicepass1")])).await;
    assert_eq!(r["error"], "603");
    let alice_fields = [
        ("data_status", "3"),
        ("data_username", "alice"),
        ("data_password", "alicepass1"),
        ("data_name", "Alice A"),
        ("data_email", "alice@example.com"),
        ("data_mobile", "+628111000001"),
    ];
    let r = f.ws(&op(&h, "accountadd", &alice_fields)).await;
    assert_eq!(r["status"], "OK", "{r}");
    assert_eq!(r["info"], "Account has been added but failed to send email (username: alice)");
    let raw = reqwest::Client::new()
        .get(format!("{}/index.php?app=ws", f.ingress))
        .query(&op(&h, "accountadd", &[("data_username", "x")]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.starts_with(r#"{"status":"ERR","error":"603","error_string":"account addition"#), "{raw}");
    let mut dup = alice_fields;
    dup[4] = ("data_email", "alice2@example.com");
    let r = f.ws(&op(&h, "accountadd", &dup)).await;
    assert_eq!(r["error"], "604");
    assert_eq!(r["info"], "Account already exists (username: alice)");
    assert_eq!(r["error_string"], "fail to add account");
    // playSMS's words for a taken email and a short password (issue 12.16).
    let mut dup_email = alice_fields;
    dup_email[1] = ("data_username", "alice2");
    dup_email[5] = ("data_mobile", "");
    let r = f.ws(&op(&h, "accountadd", &dup_email)).await;
    assert_eq!(
        (r["error"].as_str(), r["info"].as_str()),
        (Some("604"), Some("Account with this email already exists (email: alice@example.com)")),
        "{r}"
    );
    let mut short = dup_email;
    short[2] = ("data_password", "abc");
    let r = f.ws(&op(&h, "accountadd", &short)).await;
    assert_eq!(
        (r["error"].as_str(), r["info"].as_str()),
        (Some("604"), Some("Password should be at least 4 characters")),
        "{r}"
    );

    // A playSMS-style account has webservices off: get_token says 104 (no token yet).
    let r = f.ws(&[("u", "alice"), ("p", "alicepass1"), ("op", "get_token")]).await;
    assert_eq!(r["error"], "104", "{r}");

    // The extension: webservices on, an allow-list and a generated token, usable at once.
    let r = f
        .ws(&op(
            &h,
            "accountadd",
            &[
                ("data_status", "3"),
                ("data_username", "carol"),
                ("data_password", "carolpass1"),
                ("data_name", "Carol C"),
                ("data_email", "carol@example.com"),
                ("data_enable_webservices", "1"),
                ("data_webservices_ip", "127.0.0.1, 10.0.0.0/8"),
                ("data_token", "auto"),
            ],
        ))
        .await;
    assert_eq!(r["status"], "OK", "{r}");
    let carol = r["token"].as_str().unwrap().to_owned();
    assert_eq!(carol.len(), 32);
    let r = f.ws(&[("u", "carol"), ("h", &carol), ("op", "cr")]).await;
    assert_eq!(r["credit"], "0", "the adding replica knows the account at once: {r}");

    // A subuser of carol, and parentset/parentget.
    let r = f
        .ws(&op(
            &h,
            "accountadd",
            &[
                ("data_status", "4"),
                ("data_parent", "carol"),
                ("data_username", "bob"),
                ("data_password", "bobpass12"),
                ("data_name", "Bob B"),
                ("data_email", "bob@example.com"),
            ],
        ))
        .await;
    assert_eq!(r["status"], "OK", "{r}");
    let r = f.ws(&op(&h, "parentget", &[("data_username", "bob")])).await;
    assert_eq!((r["parent_uid"].as_i64().is_some(), &r["parent"]), (true, &serde_json::json!("carol")), "{r}");
    let r = f.ws(&op(&h, "parentget", &[("data_username", "alice")])).await;
    assert_eq!(r["error"], "610");
    let r = f.ws(&op(&h, "parentget", &[("data_username", "nobody")])).await;
    assert_eq!(r["error"], "609");
    let r = f.ws(&op(&h, "parentset", &[("data_username", "bob"), ("data_parent", "nobody")])).await;
    assert_eq!(r["error"], "607");
    let r = f.ws(&op(&h, "parentset", &[("data_username", "bob"), ("data_parent", "alice")])).await;
    assert_eq!(r["status"], "OK");
    let r = f.ws(&op(&h, "parentget", &[("data_username", "bob")])).await;
    assert_eq!(r["parent"], "alice");
    // Only a user can be a parent: an admin is ERR 608 and changes nothing (issue 12.10).
    let r = f.ws(&op(&h, "parentset", &[("data_username", "bob"), ("data_parent", "boss")])).await;
    assert_eq!((r["status"].as_str(), r["error"].as_str()), (Some("ERR"), Some("608")), "{r}");
    let r = f.ws(&op(&h, "parentget", &[("data_username", "bob")])).await;
    assert_eq!(r["parent"], "alice");

    // accountremove: 605 unknown, 606 for the first admin and for a parent with subusers.
    let r = f.ws(&op(&h, "accountremove", &[("data_username", "nobody")])).await;
    assert_eq!(r["error"], "605");
    let r = f.ws(&op(&h, "accountremove", &[("data_username", "boss")])).await;
    assert_eq!(
        (r["error"].as_str(), r["info"].as_str()),
        (Some("606"), Some("User is immune to deletion (username: boss)"))
    );
    let r = f.ws(&op(&h, "accountremove", &[("data_username", "alice")])).await;
    assert_eq!(r["error"], "606", "alice has bob: {r}");

    // accountpref: 615, 616 with info, OK with a new password that get_token accepts.
    let r = f.ws(&op(&h, "accountpref", &[("data_username", "carol")])).await;
    assert_eq!(r["error"], "615");
    let r = f.ws(&op(&h, "accountpref", &[("data_username", "carol"), ("data_email", "not-an-email")])).await;
    assert_eq!(
        (r["error"].as_str(), r["info"].as_str()),
        (Some("616"), Some("Your email format is invalid (not-an-email)"))
    );
    // playSMS's rule for a new password: at least 4 characters (issue 12.16).
    let r = f.ws(&op(&h, "accountpref", &[("data_username", "carol"), ("data_password", "abc")])).await;
    assert_eq!(
        (r["error"].as_str(), r["info"].as_str()),
        (Some("616"), Some("Password should be at least 4 characters")),
        "a password under 4 characters: {r}"
    );
    let r = f.ws(&op(&h, "accountpref", &[("data_username", "carol"), ("data_password", "newcarolpass")])).await;
    assert_eq!(r["info"], "Preferences have been saved and password updated");
    let r = f.ws(&[("u", "carol"), ("p", "newcarolpass"), ("op", "get_token")]).await;
    assert_eq!(r["token"], carol.as_str(), "{r}");

    // accountconf: 617, 618 for a sender nobody approved, OK once approved.
    let r = f.ws(&op(&h, "accountconf", &[("data_username", "nobody"), ("data_footer", "x")])).await;
    assert_eq!(r["error"], "617");
    let r = f.ws(&op(&h, "accountconf", &[("data_username", "carol"), ("data_sender", "CAROLCO")])).await;
    assert_eq!((r["error"].as_str(), r["info"].as_str()), (Some("618"), Some("Invalid sender ID")));
    let r = f.ws(&op(&h, "accountconf", &[("data_username", "carol"), ("data_datetime_timezone", "Mars")])).await;
    assert_eq!((r["error"].as_str(), r["info"].as_str()), (Some("618"), Some("Invalid timezone")));
    f.cli(&["sender", "add", "--username", "carol", "--sender", "CAROLCO"]).await;
    let r = f.ws(&op(&h, "accountconf", &[("data_username", "carol"), ("data_sender", "CAROLCO")])).await;
    assert_eq!(r["info"], "User configuration has been saved", "{r}");

    // Credit through the ledger: exact at once.
    let r = f.ws(&op(&h, "creditview", &[("data_username", "carol")])).await;
    assert_eq!(r["error"], "620", "zero credit");
    let r = f.ws(&op(&h, "creditadd", &[("data_username", "carol"), ("data_amount", "100")])).await;
    assert_eq!((r["amount"].as_f64(), r["balance"].as_f64()), (Some(100.0), Some(100.0)), "{r}");
    let r = f.ws(&op(&h, "creditdeduct", &[("data_username", "carol"), ("data_amount", "-2.5")])).await;
    assert_eq!((r["amount"].as_f64(), r["balance"].as_f64()), (Some(-2.5), Some(97.5)), "{r}");
    // creditadd adds the amount as given: a negative one deducts; amounts
    // keep three decimals (issue 12.9).
    let r = f.ws(&op(&h, "creditadd", &[("data_username", "carol"), ("data_amount", "-7.25")])).await;
    assert_eq!((r["amount"].as_f64(), r["balance"].as_f64()), (Some(-7.25), Some(90.25)), "{r}");
    let r = f.ws(&op(&h, "creditadd", &[("data_username", "carol"), ("data_amount", "7.2504")])).await;
    assert_eq!((r["amount"].as_f64(), r["balance"].as_f64()), (Some(7.2504), Some(97.5)), "{r}");
    for (amount, code) in [("0", "622"), ("abc", "622")] {
        let r = f.ws(&op(&h, "creditadd", &[("data_username", "carol"), ("data_amount", amount)])).await;
        assert_eq!(r["error"], code);
    }
    let r = f.ws(&op(&h, "creditadd", &[("data_username", "nobody"), ("data_amount", "5")])).await;
    assert_eq!(r["error"], "622");
    let r = f.ws(&op(&h, "creditadd", &[("data_amount", "5")])).await;
    assert_eq!(r["error"], "621");
    let r = f.ws(&op(&h, "creditdeduct", &[("data_amount", "5")])).await;
    assert_eq!(r["error"], "623");
    let r = f.ws(&op(&h, "creditdeduct", &[("data_username", "carol"), ("data_amount", "0")])).await;
    assert_eq!(r["error"], "624");
    let r = f.ws(&op(&h, "creditview", &[])).await;
    assert_eq!(r["error"], "619");
    let r = f.ws(&op(&h, "creditview", &[("data_username", "carol")])).await;
    assert_eq!(r["balance"].as_f64(), Some(97.5));
    let r = f.ws(&[("u", "carol"), ("h", &carol), ("op", "cr")]).await;
    assert_eq!(r["credit"].as_f64(), Some(97.5));

    // query: the caller's own data, credit by the cr rule, ids as numbers.
    let r = f.ws(&[("u", "carol"), ("h", &carol), ("op", "query")]).await;
    assert_eq!(r["data"]["user"]["username"], "carol");
    assert_eq!(r["data"]["user"]["status"], 3);
    assert_eq!(r["data"]["user"]["credit"].as_f64(), Some(97.5));
    assert_eq!(r["data"]["last_id"]["user_outgoing"], 0);

    // loginkeyset + ws_login: always 302 to the web root; the key works once.
    let r = f.ws(&op(&h, "loginkeyset", &[])).await;
    assert_eq!(r["error"], "625");
    let r = f.ws(&op(&h, "loginkeyset", &[("data_username", "nobody")])).await;
    assert_eq!(r["error"], "626");
    let r = f.ws(&op(&h, "loginkeyset", &[("data_username", "carol")])).await;
    let key = r["login_key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 32);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for _ in 0..2 {
        let resp = client
            .get(format!("{}/index.php?app=ws&u=carol&op=ws_login&login_key={key}", f.ingress))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        assert_eq!(resp.headers()["location"], "index.php");
    }
    let stored = smsfleet_store::accounts::by_username(&f.env.pool, "carol").await.unwrap().unwrap();
    let left = smsfleet_store::accounts::take_login_key(&f.env.pool, stored.uid).await.unwrap();
    assert!(left.is_none(), "the key is single use");

    // stoplist: any user may add; 627 for a duplicate (with or without +); pv to it fails.
    let r = f.ws(&[("u", "carol"), ("h", &carol), ("op", "stoplist"), ("from", "+628777000001")]).await;
    assert_eq!(r["status"], "OK", "{r}");
    let r = f.ws(&op(&h, "stoplist", &[("from", "628777000001")])).await;
    assert_eq!((r["error"].as_str(), r["error_string"].is_null()), (Some("627"), true));
    let r = f.ws(&op(&h, "stoplist", &[("from", "not a number")])).await;
    assert_eq!(r["error"], "102", "no digits to list: {r}");
    let r = f.ws(&op(&h, "stoplist", &[])).await;
    assert_eq!(r.as_object().unwrap().len(), 2, "bare envelope: {r}");
    let r = f.ws(&[("u", "carol"), ("h", "wrong"), ("op", "stoplist"), ("from", "628777000009")]).await;
    assert_eq!(r["error"], "100");
    let r = f.ws(&[("u", "carol"), ("h", &carol), ("op", "pv"), ("to", "628777000001"), ("msg", "hi")]).await;
    assert_eq!(r["data"][0]["error"], "200", "{r}");

    // accountremove: bob first, then alice; the removed account cannot log in.
    let r = f.ws(&op(&h, "accountremove", &[("data_username", "bob")])).await;
    assert_eq!(r["info"], "Account has been removed (username: bob)");
    let r = f.ws(&op(&h, "accountremove", &[("data_username", "alice")])).await;
    assert_eq!(r["status"], "OK", "{r}");
    let r = f.ws(&op(&h, "accountremove", &[("data_username", "carol")])).await;
    assert_eq!(r["status"], "OK");
    let r = f.ws(&[("u", "carol"), ("h", &carol), ("op", "cr")]).await;
    assert_eq!(r["error"], "100");
    // Its username is free again.
    let r = f.ws(&op(&h, "accountadd", &alice_fields)).await;
    assert_eq!(r["status"], "OK", "{r}");
}

async fn ws_from(f: &Fleet, base: &str, from: IpAddr, query: &[(&str, &str)]) -> serde_json::Value {
    let client = reqwest::Client::builder().local_address(from).build().unwrap();
    let resp = client.get(format!("{base}/index.php?app=ws")).query(query).send().await.unwrap();
    let _ = f;
    resp.json().await.unwrap()
}

/// Guessing tokens from one IP gets that IP blocked (even with the right
/// token afterwards) on every replica; other IPs are unaffected; the CLI
/// lifts the block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guessing_is_blocked_per_client_ip() {
    let mut f = Fleet::start(&[]).await;
    let other = f.spawn_ingress_replica().await;
    let out =
        f.cli(&["account", "create", "--username", "erin", "--password", "erinpass1", "--ip", "127.0.0.0/8"]).await;
    let token = out.split("token=").nth(1).unwrap().trim().to_owned();
    let guesser: IpAddr = "127.0.0.3".parse().unwrap();
    let honest: IpAddr = "127.0.0.4".parse().unwrap();
    let ok = eventually(Duration::from_secs(5), || async {
        let a = ws_from(&f, &f.ingress, guesser, &[("u", "erin"), ("h", &token), ("op", "cr")]).await;
        let b = ws_from(&f, &other, guesser, &[("u", "erin"), ("h", &token), ("op", "cr")]).await;
        (a["status"] == "OK" && b["status"] == "OK").then_some(())
    })
    .await;
    assert!(ok.is_some());

    // The default limit is 10 failures; the 11th blocks.
    for i in 0..11 {
        let guess = format!("{i:032x}");
        let r = ws_from(&f, &f.ingress, guesser, &[("u", "erin"), ("h", &guess), ("op", "cr")]).await;
        assert_eq!(r["error"], "100");
    }
    let blocked_at = Instant::now();
    let r = ws_from(&f, &f.ingress, guesser, &[("u", "erin"), ("h", &token), ("op", "cr")]).await;
    assert_eq!(r["error"], "100", "blocked even with the right token");
    let r = ws_from(&f, &f.ingress, guesser, &[("u", "erin"), ("p", "erinpass1"), ("op", "get_token")]).await;
    assert_eq!(r["error"], "100", "and with the right password");
    let elsewhere = eventually(Duration::from_secs(5), || async {
        let r = ws_from(&f, &other, guesser, &[("u", "erin"), ("h", &token), ("op", "cr")]).await;
        (r["error"] == "100").then_some(())
    })
    .await;
    assert!(elsewhere.is_some(), "the block reaches the other replica");
    assert!(blocked_at.elapsed() < Duration::from_secs(1), "took {:?}", blocked_at.elapsed());
    for base in [&f.ingress, &other] {
        let r = ws_from(&f, base, honest, &[("u", "erin"), ("h", &token), ("op", "cr")]).await;
        assert_eq!(r["status"], "OK", "another IP is unaffected: {r}");
    }

    f.cli(&["unblock", "127.0.0.3"]).await;
    let lifted = eventually(Duration::from_secs(5), || async {
        let a = ws_from(&f, &f.ingress, guesser, &[("u", "erin"), ("h", &token), ("op", "cr")]).await;
        let b = ws_from(&f, &other, guesser, &[("u", "erin"), ("h", &token), ("op", "cr")]).await;
        (a["status"] == "OK" && b["status"] == "OK").then_some(())
    })
    .await;
    assert!(lifted.is_some());
}
