//! The spine: send with `op=pv`, see it delivered with `op=ds`, charged
//! exactly once, even when roles are killed mid-flight.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::Value;
use smsfleet_testkit::eventually;

use crate::fleet::Fleet;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn credit(f: &Fleet, user: &str, token: &str) -> Value {
    f.ws(&[("u", user), ("h", token), ("op", "cr")]).await["credit"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pv_to_several_numbers_is_delivered_and_charged() {
    let mut f = Fleet::prepare(&[]).await;
    smsfleet_store::rates::set_default(&f.env.pool, dec("0.5")).await.unwrap();
    smsfleet_store::rates::set_prefix(&f.env.pool, "44", dec("1.25")).await.unwrap();
    f.start_roles().await;
    let token = f.user("alice").await;
    f.cli(&["account", "credit", "--username", "alice", "--amount", "10"]).await;
    let before = eventually(Duration::from_secs(10), || async {
        let c = credit(&f, "alice", &token).await;
        (c.as_f64() == Some(10.0)).then_some(c)
    })
    .await;
    assert!(before.is_some(), "credit not visible");

    // get_token returns the same token.
    let got = f.ws(&[("u", "alice"), ("p", "secretpass1"), ("op", "get_token")]).await;
    assert_eq!(got["token"], Value::String(token.clone()));

    let sent = f
        .ws(&[
            ("u", "alice"),
            ("h", &token),
            ("op", "pv"),
            ("to", "628111000001,628111000002, 447700900003"),
            ("msg", "hello world"),
        ])
        .await;
    let items = sent["data"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let ids: HashSet<i64> = items.iter().map(|i| i["smslog_id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    // Issue 12.4: JSON-safe, so JavaScript's JSON.parse keeps them exact.
    assert!(ids.iter().all(|id| (1..=(1i64 << 53) - 1).contains(id)), "{ids:?}");
    assert!(items.iter().all(|i| i["status"] == "OK" && i["error"] == "0"));

    let delivered = eventually(Duration::from_secs(20), || async {
        let ds = f.ws(&[("u", "alice"), ("h", &token), ("op", "ds")]).await;
        let rows = ds["data"].as_array()?.clone();
        (rows.len() == 3 && rows.iter().all(|r| r["status"] == 3)).then_some(rows)
    })
    .await
    .expect("all three delivered");
    assert!(delivered.iter().all(|r| r["msg"] == "hello world"));
    // 1 part each: 0.5 + 0.5 + 1.25 = 2.25 charged.
    let after = eventually(Duration::from_secs(10), || async {
        let c = credit(&f, "alice", &token).await;
        (c.as_f64() == Some(7.75)).then_some(c)
    })
    .await;
    assert!(after.is_some(), "credit should be 7.75, is {}", credit(&f, "alice", &token).await);
    let (charged, messages) = smsfleet_store::ledger::charged_total(&f.env.pool, 1).await.unwrap();
    assert_eq!((charged, messages), (dec("2.25"), 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_pv_is_released_on_time() {
    let f = Fleet::start(&[]).await;
    let token = f.user("sched").await;
    // The schedule has whole seconds; compare against what was asked for.
    let at = (time::OffsetDateTime::now_utc() + Duration::from_secs(5)).replace_nanosecond(0).unwrap();
    let schedule = smsfleet_domain::schedule::format_playsms(at);
    let sent = f
        .ws(&[
            ("u", "sched"),
            ("h", &token),
            ("op", "pv"),
            ("to", "628111000016"),
            ("msg", "later"),
            ("schedule", &schedule),
        ])
        .await;
    let queue = sent["data"][0]["queue"].as_str().unwrap().to_owned();
    let early = f.ws(&[("u", "sched"), ("h", &token), ("op", "ds"), ("queue", &queue)]).await;
    assert_eq!(early["error"], "401", "still queued before its time: {early}");
    let started = Instant::now();
    let rows = eventually(Duration::from_secs(30), || async {
        let ds = f.ws(&[("u", "sched"), ("h", &token), ("op", "ds"), ("queue", &queue)]).await;
        let rows = ds["data"].as_array()?.clone();
        (rows.first()?["status"] == 3).then_some(rows)
    })
    .await
    .expect("released and delivered");
    assert_eq!(rows[0]["dt"], Value::String(schedule));
    // Not released before its instant (we polled from at-5 s).
    assert!(time::OffsetDateTime::now_utc() >= at, "delivered before the schedule");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_credit_and_wrong_token() {
    let mut f = Fleet::prepare(&[]).await;
    smsfleet_store::rates::set_default(&f.env.pool, dec("1")).await.unwrap();
    f.start_roles().await;
    let token = f.user("poor").await;
    f.cli(&["account", "credit", "--username", "poor", "--amount", "1"]).await;
    eventually(Duration::from_secs(10), || async {
        (credit(&f, "poor", &token).await.as_f64() == Some(1.0)).then_some(())
    })
    .await
    .expect("credit visible");
    let refused =
        f.ws(&[("u", "poor"), ("h", &token), ("op", "pv"), ("to", "628111000001,628111000002"), ("msg", "x")]).await;
    assert_eq!(refused["data"][0]["status"], "ERR");
    assert_eq!(refused["data"][0]["error"], "200");
    let ok = f.ws(&[("u", "poor"), ("h", &token), ("op", "pv"), ("to", "628111000001"), ("msg", "x")]).await;
    assert_eq!(ok["data"][0]["status"], "OK");
    eventually(Duration::from_secs(10), || async { (credit(&f, "poor", &token).await == "0").then_some(()) })
        .await
        .expect("credit spent exactly");

    let bad = f.ws(&[("u", "poor"), ("h", "wrongtoken"), ("op", "pv"), ("to", "628111000001"), ("msg", "x")]).await;
    assert_eq!(
        bad,
        serde_json::json!({"status":"ERR","error":"100","error_string":"authentication failed","timestamp": bad["timestamp"]})
    );
    let resp = reqwest::get(format!("{}/index.php?app=ws&u=poor&h=nope&op=cr&format=xml", f.ingress)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.starts_with("<?xml version=\"1.0\"?>\n<response><status>ERR</status><error>100</error>"), "{body}");
}

/// Issue 12.8, reseller billing as in playSMS: a subuser's send spends its
/// parent's credit too, and is refused when the parent's balance cannot
/// cover it even though the subuser's could.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subusers_send_spends_its_parents_credit_too() {
    let mut f = Fleet::prepare(&[]).await;
    smsfleet_store::rates::set_default(&f.env.pool, dec("1")).await.unwrap();
    f.start_roles().await;
    let carol = f.user("carol").await;
    let out = f.cli(&["account", "create", "--username", "boss", "--password", "bosspass1", "--role", "admin"]).await;
    let boss = out.split("token=").nth(1).unwrap().trim().to_owned();
    let r = f
        .ws(&[
            ("u", "boss"),
            ("h", &boss),
            ("op", "accountadd"),
            ("data_status", "4"),
            ("data_parent", "carol"),
            ("data_username", "bob"),
            ("data_password", "bobpass12"),
            ("data_name", "Bob B"),
            ("data_email", "bob@example.com"),
            ("data_enable_webservices", "1"),
            ("data_webservices_ip", "127.0.0.1"),
            ("data_token", "auto"),
        ])
        .await;
    assert_eq!(r["status"], "OK", "{r}");
    let bob = r["token"].as_str().unwrap().to_owned();
    f.cli(&["account", "credit", "--username", "carol", "--amount", "3"]).await;
    f.cli(&["account", "credit", "--username", "bob", "--amount", "100"]).await;
    let balances = || async { (credit(&f, "bob", &bob).await.as_f64(), credit(&f, "carol", &carol).await.as_f64()) };
    eventually(Duration::from_secs(10), || async { (balances().await == (Some(100.0), Some(3.0))).then_some(()) })
        .await
        .expect("credit visible");

    let to = [("u", "bob"), ("h", bob.as_str()), ("op", "pv"), ("to", "628111000001,628111000002"), ("msg", "x")];
    let ok = f.ws(&to).await;
    assert_eq!((&ok["data"][0]["status"], &ok["data"][1]["status"]), (&"OK".into(), &"OK".into()), "{ok}");
    eventually(Duration::from_secs(10), || async { (balances().await == (Some(98.0), Some(1.0))).then_some(()) })
        .await
        .expect("both balances charged once");
    let refused = f.ws(&to).await;
    assert_eq!(
        (&refused["data"][0]["status"], &refused["data"][0]["error"]),
        (&"ERR".into(), &"200".into()),
        "{refused}"
    );
}

/// 2,000 messages; the ledger and then the dispatcher are killed with
/// SIGKILL mid-flight and restarted. Nothing may be lost, sent twice or
/// charged twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_dispatcher_and_ledger_loses_nothing_and_duplicates_nothing() {
    // The simulator accepts 400 msg/s, so dispatch takes ~5 s: long enough
    // to kill the dispatcher in the middle.
    let mut f = Fleet::prepare(&[("SMSFLEET_SIM_MAX_MPS", "400")]).await;
    smsfleet_store::rates::set_default(&f.env.pool, dec("0.1")).await.unwrap();
    f.start_roles().await;
    let token = f.user("bulk").await;
    f.cli(&["account", "credit", "--username", "bulk", "--amount", "1000"]).await;
    eventually(Duration::from_secs(10), || async {
        (credit(&f, "bulk", &token).await.as_f64() == Some(1000.0)).then_some(())
    })
    .await
    .expect("credit visible");

    let mut all_ids = HashSet::new();
    let send = |batch: usize| {
        let numbers: Vec<String> = (0..100).map(|i| format!("62811{:03}{:04}", batch, i)).collect();
        numbers.join(",")
    };
    for batch in 0..10 {
        let r = f.ws(&[("u", "bulk"), ("h", &token), ("op", "pv"), ("to", &send(batch)), ("msg", "campaign")]).await;
        for item in r["data"].as_array().unwrap() {
            assert_eq!(item["status"], "OK");
            all_ids.insert(item["smslog_id"].as_i64().unwrap());
        }
        if batch == 2 {
            f.kill9("ledger").await;
        }
    }
    // The ledger is down: the other 700 wait durably in JetStream.
    tokio::time::sleep(Duration::from_millis(500)).await;
    f.spawn("ledger").await;
    for batch in 10..20 {
        let r = f.ws(&[("u", "bulk"), ("h", &token), ("op", "pv"), ("to", &send(batch)), ("msg", "campaign")]).await;
        for item in r["data"].as_array().unwrap() {
            all_ids.insert(item["smslog_id"].as_i64().unwrap());
        }
    }
    assert_eq!(all_ids.len(), 2_000);
    // Kill the dispatcher once some, but not all, messages have gone out.
    let accepted = eventually(Duration::from_secs(30), || async {
        let a = f.sim_stats().await["accepted"].as_u64()?;
        (a >= 400).then_some(a)
    })
    .await
    .expect("dispatch started");
    assert!(accepted < 2_000, "dispatch finished before the kill ({accepted})");
    f.kill9("dispatcher").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    f.spawn("dispatcher").await;

    let counts = eventually(Duration::from_secs(120), || async {
        let counts = smsfleet_store::projection::status_counts(&f.env.pool, None).await.ok()?;
        (counts == vec![(3, 2_000)]).then_some(counts)
    })
    .await;
    let stats = f.sim_stats().await;
    assert!(
        counts.is_some(),
        "not all delivered: {:?}, simulator {stats}",
        smsfleet_store::projection::status_counts(&f.env.pool, None).await.unwrap()
    );
    // Sent once: the upstream accepted each message exactly once and sent
    // one report each. (A resend after the crash carries the same ref and
    // is answered idempotently; it is counted, never delivered again.)
    assert_eq!(stats["accepted"], 2_000, "{stats}");
    assert_eq!(stats["delivered_reports"], 2_000, "{stats}");
    eprintln!("simulator after kill -9 test: {stats}");
    // Charged once: 2,000 messages × 1 part × 0.1.
    let uid: (i64,) = sqlx_uid(&f).await;
    let (charged, messages) = smsfleet_store::ledger::charged_total(&f.env.pool, uid.0).await.unwrap();
    assert_eq!((charged, messages), (dec("200"), 2_000));
    let balance = smsfleet_store::ledger::balance(&f.env.pool, uid.0).await.unwrap().unwrap().0;
    assert_eq!(balance, dec("800"));
    // Every smslog_id the client got back is in the projection, once.
    let ds = f.ws(&[("u", "bulk"), ("h", &token), ("op", "ds"), ("c", "5000")]).await;
    let seen: HashSet<i64> = ds["data"].as_array().unwrap().iter().map(|r| r["smslog_id"].as_i64().unwrap()).collect();
    assert_eq!(seen, all_ids);
}

async fn sqlx_uid(f: &Fleet) -> (i64,) {
    let row = smsfleet_store::accounts::by_username(&f.env.pool, "bulk").await.unwrap().unwrap();
    (row.uid,)
}

/// A token change made through one ingress replica reaches another within
/// a second: the old token fails there, the new one works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_token_reaches_every_ingress_replica_within_a_second() {
    let mut f = Fleet::start(&[]).await;
    let other = f.spawn_ingress_replica().await;
    let old = f.user("carol").await;
    let ok_at_other = eventually(Duration::from_secs(5), || async {
        let r = f.ws_at(&other, &[("u", "carol"), ("h", &old), ("op", "cr")]).await;
        (r["status"] == "OK").then_some(())
    })
    .await;
    assert!(ok_at_other.is_some(), "new account not visible on the second replica");
    let renewed = f.ws(&[("u", "carol"), ("h", &old), ("op", "set_token")]).await;
    let new = renewed["token"].as_str().expect("token").to_owned();
    assert_ne!(new, old);
    assert_eq!(new.len(), 32);
    let changed = Instant::now();
    // On the replica that made the change, at once.
    assert_eq!(f.ws(&[("u", "carol"), ("h", &old), ("op", "cr")]).await["error"], "100");
    let both = eventually(Duration::from_secs(5), || async {
        let old_r = f.ws_at(&other, &[("u", "carol"), ("h", &old), ("op", "cr")]).await;
        let new_r = f.ws_at(&other, &[("u", "carol"), ("h", &new), ("op", "cr")]).await;
        (old_r["error"] == "100" && new_r["status"] == "OK").then_some(())
    })
    .await;
    assert!(both.is_some());
    assert!(changed.elapsed() < Duration::from_secs(1), "took {:?}", changed.elapsed());
    // get_token returns the current token.
    let got = f.ws_at(&other, &[("u", "carol"), ("p", "secretpass1"), ("op", "get_token")]).await;
    assert_eq!(got["token"], Value::String(new));
}
