//! Incoming messages through the whole fleet: an upstream's MO callback
//! and an admin's `inject` routed by keyword into `in` (the owner) or `sx`
//! (the sandbox), and `pv` to `@user` landing in that user's `ix`.

use std::time::Duration;

use serde_json::Value;
use smsfleet_testkit::eventually;

use crate::fleet::Fleet;

const WAIT: Duration = Duration::from_secs(20);

/// The raw body, to check key order and the XML form.
async fn raw(f: &Fleet, query: &[(&str, &str)]) -> String {
    let url = format!("{}/index.php?app=ws", f.ingress);
    let resp = reqwest::Client::new().get(url).query(query).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// Waits until the list op answers exactly `n` items and returns them.
async fn items(f: &Fleet, query: &[(&str, &str)], n: usize) -> Vec<Value> {
    let found = eventually(WAIT, || async {
        let r = f.ws(query).await;
        r["data"].as_array().filter(|d| d.len() == n).cloned()
    })
    .await;
    match found {
        Some(items) => items,
        None => panic!("{query:?} never gave {n} items; last: {}", f.ws(query).await),
    }
}

async fn mo(f: &Fleet, form: &[(&str, &str)]) -> reqwest::StatusCode {
    reqwest::Client::new().post(format!("{}/mo/sim", f.dlr)).form(form).send().await.unwrap().status()
}

fn is_utc_datetime(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 19
            && time::PrimitiveDateTime::parse(
                s,
                time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
            )
            .is_ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mo_inject_and_inbox_messages_reach_in_ix_and_sx() {
    let f = Fleet::start(&[]).await;
    let out = f.cli(&["account", "create", "--username", "boss", "--password", "bosspass1", "--role", "admin"]).await;
    let admin = out.split("token=").nth(1).unwrap().trim().to_owned();
    let alice = f.user("alice").await;
    let bob = f.user("bob").await;
    let ready = eventually(WAIT, || async {
        let mut ok = true;
        for (u, h) in [("boss", &admin), ("alice", &alice), ("bob", &bob)] {
            ok &= f.ws(&[("u", u), ("h", h), ("op", "cr")]).await["status"] == "OK";
        }
        ok.then_some(())
    })
    .await;
    assert!(ready.is_some(), "accounts not visible to the ingress");
    let out = f.cli(&["keyword", "add", "idol", "--user", "alice"]).await;
    assert!(out.contains("keyword=IDOL username=alice"), "{out}");
    assert!(f.cli(&["keyword", "list"]).await.contains("keyword=IDOL username=alice"));

    // An upstream reports two MOs; the first one twice (a retry).
    let vote = [("from", "+628999000001"), ("to", "1234"), ("text", "IDOL I vote for #3"), ("id", "up-1")];
    assert_eq!(mo(&f, &vote).await, 200);
    assert_eq!(mo(&f, &vote).await, 200);
    let stray = reqwest::get(format!("{}/mo/sim?from=628999000003&to=5678&text=random+text+no+keyword&id=up-2", f.dlr))
        .await
        .unwrap();
    assert_eq!(stray.status(), 200);
    assert_eq!(mo(&f, &[("from", "628999000004"), ("text", "no id")]).await, 400);
    // A route name with CR/LF (it would land in a NATS header) is refused
    // with 400; it used to panic the handler and close the connection.
    let hostile = reqwest::get(format!("{}/mo/a%0D%0AX:1?from=1&id=x", f.dlr)).await.unwrap();
    assert_eq!(hostile.status(), 400);
    assert_eq!(reqwest::get(format!("{}/mo/a%20b?from=1&id=x", f.dlr)).await.unwrap().status(), 400);

    // The keyword's owner sees it in `in`, after the keyword, once.
    let alice_in = [("u", "alice"), ("h", alice.as_str()), ("op", "in")];
    let got = items(&f, &alice_in, 1).await;
    assert_eq!((got[0]["kwd"].as_str(), got[0]["msg"].as_str()), (Some("IDOL"), Some("I vote for #3")));
    assert_eq!(
        (got[0]["src"].as_str(), got[0]["dst"].as_str(), got[0]["status"].as_i64()),
        (Some("+628999000001"), Some("1234"), Some(1))
    );
    assert!(got[0]["id"].is_i64() && is_utc_datetime(&got[0]["dt"]), "{}", got[0]);
    let body = raw(&f, &alice_in).await;
    assert!(
        body.contains(r#","src":"+628999000001","dst":"1234","kwd":"IDOL","msg":"I vote for #3","dt":""#)
            && body.contains(r#","status":1}],"error_string":null,"timestamp":"#)
            && body.starts_with(r#"{"data":[{"id":"#),
        "{body}"
    );
    // Keywords match regardless of case (issue 12.13).
    let r = f.ws(&[("u", "alice"), ("h", &alice), ("op", "in"), ("kwd", "idol")]).await;
    assert_eq!(r["data"][0]["kwd"], "IDOL", "{r}");
    let r = f.ws(&[("u", "alice"), ("h", &alice), ("op", "in"), ("kwd", "NOPE")]).await;
    assert_eq!((r["status"].as_str(), r["error"].as_str()), (Some("ERR"), Some("501")));
    let r = f.ws(&[("u", "alice"), ("h", "wrongtoken"), ("op", "in")]).await;
    assert_eq!(r["error"], "100");

    // The unknown keyword is in the admins' sandbox; not for others.
    let boss_sx = [("u", "boss"), ("h", admin.as_str()), ("op", "sx")];
    let got = items(&f, &boss_sx, 1).await;
    assert_eq!((got[0]["src"].as_str(), got[0]["dst"].as_str()), (Some("628999000003"), Some("5678")));
    assert_eq!(got[0]["msg"], "random text no keyword");
    assert!(got[0].get("kwd").is_none() && got[0].get("status").is_none());
    let xml = raw(&f, &[("u", "boss"), ("h", &admin), ("op", "sx"), ("format", "xml")]).await;
    let expected_start = format!(
        "<?xml version=\"1.0\"?>\n<response><data><item><id>{}</id><src>628999000003</src><dst>5678</dst><msg>random text no keyword</msg><dt>{}</dt></item></data><error_string/><timestamp>",
        got[0]["id"],
        got[0]["dt"].as_str().unwrap()
    );
    assert!(xml.starts_with(&expected_start), "{xml}");
    let r = f.ws(&[("u", "alice"), ("h", &alice), ("op", "sx")]).await;
    assert_eq!(r["error"], "501");
    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "in")]).await;
    assert_eq!(r["error"], "501", "unhandled messages are not in");

    // pv to @alice: an inbox message with no smslog_id.
    let r =
        f.ws(&[("u", "boss"), ("h", &admin), ("op", "pv"), ("to", "@alice"), ("msg", "hi \"alice\" from admin")]).await;
    let sent = r["data"].as_array().unwrap();
    assert_eq!(sent.len(), 1, "{r}");
    assert_eq!((sent[0]["status"].as_str(), sent[0]["to"].as_str()), (Some("OK"), Some("@alice")));
    assert!(sent[0]["smslog_id"].is_null() && sent[0]["queue"].as_str().is_some_and(|q| q.len() == 32));
    let alice_ix = [("u", "alice"), ("h", alice.as_str()), ("op", "ix")];
    let got = items(&f, &alice_ix, 1).await;
    assert_eq!((got[0]["src"].as_str(), got[0]["dst"].as_str()), (Some("@boss"), Some("")));
    assert_eq!(got[0]["msg"], "hi 'alice' from admin");
    let xml = raw(&f, &[("u", "alice"), ("h", &alice), ("op", "ix"), ("format", "xml")]).await;
    assert!(xml.contains("<src>@boss</src><dst/><msg>hi 'alice' from admin</msg><dt>"), "{xml}");
    let r = f.ws(&[("u", "bob"), ("h", &bob), ("op", "ix")]).await;
    assert_eq!(r["error"], "501");

    // Mixed: an IM and a number in one request, in the request's order;
    // yourself and unknown users are dropped.
    let r = f
        .ws(&[
            ("u", "alice"),
            ("h", &alice),
            ("op", "pv"),
            ("to", "@bob,628111000007,@alice,@nobody"),
            ("msg", "mixed"),
        ])
        .await;
    let sent = r["data"].as_array().unwrap();
    assert_eq!(sent.len(), 2, "{r}");
    assert_eq!((sent[0]["to"].as_str(), sent[1]["to"].as_str()), (Some("@bob"), Some("628111000007")));
    assert!(sent[0]["smslog_id"].is_null() && sent[1]["smslog_id"].is_i64());
    assert_eq!(sent[0]["queue"], sent[1]["queue"]);
    let got = items(&f, &[("u", "bob"), ("h", &bob), ("op", "ix")], 1).await;
    assert_eq!((got[0]["src"].as_str(), got[0]["msg"].as_str()), (Some("@alice"), Some("mixed")));
    let ds = items(&f, &[("u", "alice"), ("h", &alice), ("op", "ds")], 1).await;
    assert_eq!(ds[0]["dst"], "628111000007", "an IM is not an outgoing SMS");
    let r = f.ws(&[("u", "alice"), ("h", &alice), ("op", "pv"), ("to", "@alice"), ("msg", "me")]).await;
    assert_eq!(r["data"][0]["error"], "200", "only yourself: nothing to send");

    // inject: admins only, from and msg required, routed like an MO.
    let r =
        f.ws(&[("u", "alice"), ("h", &alice), ("op", "inject"), ("from", "628999000001"), ("msg", "IDOL hi")]).await;
    assert_eq!(r["error"], "600");
    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "inject"), ("msg", "x")]).await;
    assert_eq!((r["error"].as_str(), r["error_string"].as_str()), (Some("602"), Some("sender id or message is empty")));
    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "inject"), ("from", "628999000001")]).await;
    assert_eq!(r["error"], "602");
    let body = raw(
        &f,
        &[
            ("u", "boss"),
            ("h", &admin),
            ("op", "inject"),
            ("from", "08999000002"),
            ("msg", "idol lowercase keyword"),
            ("recvnum", "1234"),
        ],
    )
    .await;
    assert!(body.starts_with(r#"{"status":"OK","error":"0","error_string":null,"timestamp":"#), "{body}");
    let r = f
        .ws(&[("u", "boss"), ("h", &admin), ("op", "inject"), ("from", "628999000005"), ("msg", "another stray")])
        .await;
    assert_eq!(r["status"], "OK");
    let got = items(&f, &alice_in, 2).await;
    assert!(got.iter().any(|i| i["msg"] == "lowercase keyword" && i["src"] == "08999000002" && i["kwd"] == "IDOL"));
    let got = items(&f, &[("u", "alice"), ("h", &alice), ("op", "in"), ("src", "08999000002")], 1).await;
    assert_eq!(got[0]["msg"], "lowercase keyword");
    items(&f, &boss_sx, 2).await;

    // Removing the keyword sends the next message to the sandbox.
    f.cli(&["keyword", "remove", "IDOL"]).await;
    assert_eq!(mo(&f, &[("from", "628999000006"), ("text", "IDOL late"), ("id", "up-3")]).await, 200);
    items(&f, &boss_sx, 3).await;
    assert_eq!(items(&f, &alice_in, 2).await.len(), 2);
}
