//! An OK means what it means in playSMS for the reads right after it
//! (issue 12 items 5 and 6): playSMS writes before it answers, so a client
//! may read at once. Every read here is sent the moment the OK arrives, with
//! no retry and no pause.

use std::time::Duration;

use serde_json::Value;
use smsfleet_testkit::eventually;

use crate::fleet::Fleet;

const WAIT: Duration = Duration::from_secs(20);
const TRIES: usize = 30;

/// Waits until the ingress knows every account (and a balance), so the
/// first send is not refused for a cache that is still filling.
async fn visible(f: &Fleet, accounts: &[(&str, &str)]) {
    let ready = eventually(WAIT, || async {
        let mut ok = true;
        for (u, h) in accounts {
            let r = f.ws(&[("u", u), ("h", h), ("op", "cr")]).await;
            ok &= r["status"] == "OK" && r["credit"].as_f64().is_some_and(|c| c >= 100.0);
        }
        ok.then_some(())
    })
    .await;
    assert!(ready.is_some(), "accounts or credit not visible to the ingress");
}

/// A `ds` answer right after an OK lists the message (any status), or
/// says the queue is still pending (401); never "processed" (402) or
/// "nothing" (400).
fn lists_or_pending(r: &Value, smslog_id: i64) -> bool {
    let listed = r["data"].as_array().is_some_and(|d| d.iter().any(|i| i["smslog_id"].as_i64() == Some(smslog_id)));
    listed || r["error"] == "401"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_right_after_pv_lists_the_message_never_402_or_400() {
    let f = Fleet::start(&[]).await;
    let token = f.user("alice").await;
    f.cli(&["account", "credit", "--username", "alice", "--amount", "1000"]).await;
    visible(&f, &[("alice", &token)]).await;

    let mut wrong = Vec::new();
    for i in 0..TRIES {
        let to = format!("6281110{i:05}");
        let r = f.ws(&[("u", "alice"), ("h", &token), ("op", "pv"), ("to", &to), ("msg", "right after")]).await;
        let item = &r["data"][0];
        assert_eq!(item["status"], "OK", "{r}");
        let (queue, id) = (item["queue"].as_str().unwrap().to_owned(), item["smslog_id"].as_i64().unwrap());
        let by_queue = f.ws(&[("u", "alice"), ("h", &token), ("op", "ds"), ("queue", &queue)]).await;
        if !lists_or_pending(&by_queue, id) {
            wrong.push(format!("try {i}: ds queue={queue}: {by_queue}"));
        }
        let by_id = f.ws(&[("u", "alice"), ("h", &token), ("op", "ds"), ("smslog_id", &id.to_string())]).await;
        if !lists_or_pending(&by_id, id) {
            wrong.push(format!("try {i}: ds smslog_id={id}: {by_id}"));
        }
    }
    assert!(wrong.is_empty(), "{} of {} immediate reads were wrong:\n{}", wrong.len(), 2 * TRIES, wrong.join("\n"));
}

/// Whether a list op's answer has exactly `n` items, one of them `msg`.
fn complete(r: &Value, n: usize, msg: &str) -> bool {
    r["data"].as_array().is_some_and(|d| d.len() == n && d.iter().any(|i| i["msg"] == msg))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ix_after_pv_to_a_user_and_sx_after_inject_are_complete_at_once() {
    let f = Fleet::start(&[]).await;
    let out = f.cli(&["account", "create", "--username", "boss", "--password", "bosspass1", "--role", "admin"]).await;
    let admin = out.split("token=").nth(1).unwrap().trim().to_owned();
    let alice = f.user("alice").await;
    for user in ["boss", "alice"] {
        f.cli(&["account", "credit", "--username", user, "--amount", "1000"]).await;
    }
    visible(&f, &[("boss", &admin), ("alice", &alice)]).await;

    let mut wrong = Vec::new();
    for i in 1..=TRIES {
        let text = format!("im {i}");
        let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "pv"), ("to", "@alice"), ("msg", &text)]).await;
        assert_eq!(r["data"][0]["status"], "OK", "{r}");
        let ix = f.ws(&[("u", "alice"), ("h", &alice), ("op", "ix")]).await;
        if !complete(&ix, i, &text) {
            wrong.push(format!("try {i}: ix: {ix}"));
        }

        let text = format!("stray {i}");
        let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "inject"), ("from", "628999000001"), ("msg", &text)]).await;
        assert_eq!(r["status"], "OK", "{r}");
        let sx = f.ws(&[("u", "boss"), ("h", &admin), ("op", "sx")]).await;
        if !complete(&sx, i, &text) {
            wrong.push(format!("try {i}: sx: {sx}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} immediate reads were incomplete:\n{}",
        wrong.len(),
        2 * TRIES,
        wrong.join("\n")
    );
}
