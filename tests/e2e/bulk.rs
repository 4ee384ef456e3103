//! The bulk HTTP API end to end: every reply code with the request that
//! provokes it, a scheduled message released at its UTC instant, and the
//! `routesms` npm client sending through the fleet.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use smsfleet_contract::StreamKind;
use smsfleet_testkit::eventually;

use crate::fleet::Fleet;

const BULK: &str = "/bulksms/bulksms";
const SCHED: &str = "/bulksms/schedulemsg";
const PASSWORD: &str = "secretpass1";

static TEXT: AtomicUsize = AtomicUsize::new(0);

/// A text no other request of the run used, so the duplicate check stays out of the way.
fn fresh_text() -> String {
    format!("hello {}", TEXT.fetch_add(1, Ordering::Relaxed))
}

/// Creates an account (password `secretpass1`) with extra `account create` flags; returns its token.
async fn account(f: &Fleet, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["account", "create", "--username", name, "--password", PASSWORD, "--role", "user"];
    args.extend_from_slice(extra);
    let out = f.cli(&args).await;
    out.split("token=").nth(1).expect("token printed").trim().to_owned()
}

fn base<'a>(user: &'a str, dest: &'a str, text: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("username", user),
        ("password", PASSWORD),
        ("type", "0"),
        ("dlr", "0"),
        ("destination", dest),
        ("source", "ACME"),
        ("message", text),
    ]
}

fn set<'a>(mut q: Vec<(&'a str, &'a str)>, key: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
    q.retain(|(k, _)| *k != key);
    q.push((key, value));
    q
}

fn without<'a>(mut q: Vec<(&'a str, &'a str)>, key: &str) -> Vec<(&'a str, &'a str)> {
    q.retain(|(k, _)| *k != key);
    q
}

/// `1701|<dest>|<id>` → id.
fn submitted_id(line: &str, dest: &str) -> i64 {
    let parts: Vec<&str> = line.split('|').collect();
    assert_eq!(parts.len(), 3, "{line}");
    assert_eq!((parts[0], parts[1]), ("1701", dest), "{line}");
    parts[2].parse().unwrap_or_else(|_| panic!("numeric id in {line}"))
}

async fn ds_rows(f: &Fleet, user: &str, token: &str, extra: &[(&str, &str)]) -> Vec<Value> {
    let mut q = vec![("u", user), ("h", token), ("op", "ds"), ("c", "1000")];
    q.extend_from_slice(extra);
    f.ws(&q).await["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reply_code_with_the_request_that_provokes_it() {
    let mut f = Fleet::prepare(&[]).await;
    smsfleet_store::rates::set_default(&f.env.pool, "1".parse().unwrap()).await.unwrap();
    f.ingress_env = vec![
        ("SMSFLEET_BULK_SPAM_PATTERNS".into(), "free money|win a prize".into()),
        ("SMSFLEET_BULK_DUPLICATE_WINDOW_SECS".into(), "60".into()),
    ];
    f.start_roles().await;
    let token = account(&f, "bob", &[]).await;
    f.cli(&["account", "credit", "--username", "bob", "--amount", "100"]).await;
    account(&f, "walled", &["--ip", "10.0.0.1"]).await;
    account(&f, "tpl", &["--template", "Your OTP is {#var#}"]).await;
    f.cli(&["account", "credit", "--username", "tpl", "--amount", "100"]).await;
    account(&f, "poor", &[]).await;
    f.cli(&["account", "credit", "--username", "poor", "--amount", "1"]).await;
    account(&f, "off", &[]).await;
    // No CLI for this yet: switch webservices off in Postgres and republish.
    let off = smsfleet_store::accounts::by_username(&f.env.pool, "off").await.unwrap().unwrap();
    smsfleet_store::accounts::set_webservices_enabled(&f.env.pool, off.uid, false).await.unwrap();
    smsfleet_accounts::publish_all(&f.env.bus, &f.env.pool).await.unwrap();

    // 1701, once the credit is visible to the ingress.
    let text = fresh_text();
    let one = eventually(Duration::from_secs(10), || async {
        let r = f.bulk(BULK, &base("bob", "919800000001", &fresh_text())).await;
        r.starts_with("1701|").then_some(r)
    })
    .await
    .expect("bob can send");
    let first = submitted_id(&one, "919800000001");
    // A list, `+` encoded, comma encoded (reqwest encodes the query).
    let r = f.bulk(BULK, &base("bob", "+919800000002,919800000003", &text)).await;
    let lines: Vec<&str> = r.split(',').collect();
    assert_eq!(lines.len(), 2, "{r}");
    let a = submitted_id(lines[0], "+919800000002");
    let b = submitted_id(lines[1], "919800000003");
    assert!(first != a && a != b);
    // A raw comma and a raw `+` (which form decoding turns into a space).
    let raw = format!(
        "{}{BULK}?username=bob&password={PASSWORD}&type=0&dlr=0&source=ACME&message={}&destination=+919800000004,919800000005",
        f.ingress,
        fresh_text().replace(' ', "%20")
    );
    let r = reqwest::get(raw).await.unwrap().text().await.unwrap();
    let lines: Vec<&str> = r.split(',').collect();
    submitted_id(lines[0], "919800000004");
    submitted_id(lines[1], "919800000005");
    // The ids are the smslog_ids that ds shows.
    let seen = eventually(Duration::from_secs(20), || async {
        let rows = ds_rows(&f, "bob", &token, &[]).await;
        let ids: Vec<i64> = rows.iter().filter_map(|r| r["smslog_id"].as_i64()).collect();
        [first, a, b].iter().all(|i| ids.contains(i)).then_some(rows)
    })
    .await;
    assert!(seen.is_some(), "bulk ids not in ds");
    // A long message: 161 GSM-7 characters is two parts, charged as two.
    let long = "a".repeat(161);
    let r = f.bulk(BULK, &base("bob", "919800000006", &long)).await;
    submitted_id(&r, "919800000006");

    // Per destination inside a list: 1706 next to a 1701.
    let t = fresh_text();
    let r = f.bulk(BULK, &base("bob", "919800000007,abc", &t)).await;
    let lines: Vec<&str> = r.split(',').collect();
    submitted_id(lines[0], "919800000007");
    assert_eq!(lines[1], "1706|abc");

    // 1702: a parameter missing or blank.
    let t = fresh_text();
    assert_eq!(f.bulk(BULK, &without(base("bob", "919800000008", &t), "source")).await, "1702");
    assert_eq!(f.bulk(BULK, &set(base("bob", "919800000008", &t), "message", "  ")).await, "1702");
    assert_eq!(f.bulk(SCHED, &base("bob", "919800000008", &t)).await, "1702", "schedulemsg without date");
    // 1703: unknown user, wrong password.
    assert_eq!(f.bulk(BULK, &base("nobody", "919800000008", &t)).await, "1703");
    assert_eq!(f.bulk(BULK, &set(base("bob", "919800000008", &t), "password", "wrongpass1")).await, "1703");
    // 1704: reserved, WAP push, unknown.
    for ty in ["3", "4", "9", "x"] {
        assert_eq!(f.bulk(BULK, &set(base("bob", "919800000008", &t), "type", ty)).await, "1704", "type {ty}");
    }
    // 1705: not GSM-7 for type 0; longer than 10 parts.
    assert_eq!(f.bulk(BULK, &base("bob", "919800000008", "Привет")).await, "1705");
    assert_eq!(f.bulk(BULK, &base("bob", "919800000008", &"a".repeat(1531))).await, "1705");
    // 1706: no valid destination at all.
    assert_eq!(f.bulk(BULK, &base("bob", "12,abc", &t)).await, "1706");
    // 1707: alphanumeric over 11, numeric over 18.
    assert_eq!(f.bulk(BULK, &set(base("bob", "919800000008", &t), "source", "ABCDEFGHIJKL")).await, "1707");
    assert_eq!(f.bulk(BULK, &set(base("bob", "919800000008", &t), "source", "1234567890123456789")).await, "1707");
    // 1708
    assert_eq!(f.bulk(BULK, &set(base("bob", "919800000008", &t), "dlr", "2")).await, "1708");
    // 1709: webservices off.
    eventually(Duration::from_secs(10), || async {
        (f.bulk(BULK, &base("off", "919800000008", &t)).await == "1709").then_some(())
    })
    .await
    .expect("1709 for a disabled account");
    // 18: client IP not on the account's allow-list.
    assert_eq!(f.bulk(BULK, &base("walled", "919800000008", &t)).await, "18");
    // 1725: two parts' worth of credit needed, one available.
    let r = eventually(Duration::from_secs(10), || async {
        let r = f.bulk(BULK, &base("poor", "919800000008,919800000009", &fresh_text())).await;
        (r == "1725").then_some(r)
    })
    .await;
    assert!(r.is_some(), "1725 expected");
    // 1028: spam (case-insensitive substring).
    assert_eq!(f.bulk(BULK, &base("bob", "919800000008", "You WIN A PRIZE today")).await, "1028");
    // 1033: template mismatch; a matching text is sent.
    assert_eq!(f.bulk(BULK, &base("tpl", "919800000008", "Your code is 1234")).await, "1033");
    let ok = eventually(Duration::from_secs(10), || async {
        let r = f.bulk(BULK, &base("tpl", "919800000008", &format!("Your OTP is {}", fresh_text()))).await;
        r.starts_with("1701|").then_some(r)
    })
    .await;
    assert!(ok.is_some(), "template match accepted");
    // 1041: the same account, destination and text within the window.
    let t = fresh_text();
    submitted_id(&f.bulk(BULK, &base("bob", "919800000010", &t)).await, "919800000010");
    let r = f.bulk(BULK, &base("bob", "919800000010,919800000011", &t)).await;
    let lines: Vec<&str> = r.split(',').collect();
    assert_eq!(lines[0], "1041|919800000010");
    submitted_id(lines[1], "919800000011");
    // 1042: the global stop list; 1732: bob's do-not-disturb list.
    f.cli(&["stoplist", "add", "--number", "+919811111111"]).await;
    f.cli(&["dnd", "add", "--username", "bob", "--number", "919822222222"]).await;
    let r = eventually(Duration::from_secs(10), || async {
        let r = f.bulk(BULK, &base("bob", "919811111111,919822222222,919800000012", &fresh_text())).await;
        r.starts_with("1042|").then_some(r)
    })
    .await
    .expect("stop list visible");
    let lines: Vec<&str> = r.split(',').collect();
    assert_eq!(lines[0], "1042|919811111111");
    assert_eq!(lines[1], "1732|919822222222");
    submitted_id(lines[2], "919800000012");
    // POST form works too; the body overrides the query.
    let form = base("bob", "919800000013", "posted");
    let r = reqwest::Client::new()
        .post(format!("{}{BULK}?password=wrongpass1", f.ingress))
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    submitted_id(&r, "919800000013");
    // 16: a replica that blacklists the client's IP.
    let black = f.spawn_ingress_replica_with(&[("SMSFLEET_BULK_IP_BLACKLIST", "127.0.0.0/8")]).await;
    assert_eq!(f.bulk_at(&black, BULK, &base("bob", "919800000008", &fresh_text())).await, "16");
    // 1710: the submission cannot be stored (its stream is gone) within the
    // store deadline, here shorter than the 5 s after which a slow store is
    // answered 1715 (issue 14.4: a store is retried until its deadline).
    let short = f.spawn_ingress_replica_with(&[("SMSFLEET_STORE_DEADLINE_SECS", "1")]).await;
    let stream = f.env.ns.stream_name(smsfleet_contract::StreamKind::Submit);
    f.env.bus.jetstream().delete_stream(&stream).await.unwrap();
    assert_eq!(f.bulk_at(&short, BULK, &base("bob", "919800000008", &fresh_text())).await, "1710");
}

/// `gmt=+05:30`: the message is released at the UTC instant the local
/// date and time stand for, and `ds` shows that instant as `dt`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedulemsg_with_a_gmt_offset_is_released_at_the_utc_instant() {
    let f = Fleet::start(&[]).await;
    let token = account(&f, "later", &[]).await;
    // The API has minute resolution: the next minute boundary at least 5 s away.
    let soon = time::OffsetDateTime::now_utc() + Duration::from_secs(5);
    let at = soon.replace_second(0).unwrap().replace_nanosecond(0).unwrap() + Duration::from_secs(60);
    let offset = time::UtcOffset::from_hms(5, 30, 0).unwrap();
    let local = at.to_offset(offset);
    let date = format!("{:02}/{:02}/{:04}", u8::from(local.month()), local.day(), local.year());
    let (h12, meridiem) = match local.hour() {
        0 => (12, "am"),
        h @ 1..=11 => (h, "am"),
        12 => (12, "pm"),
        h => (h - 12, "pm"),
    };
    let clock = format!("{h12:02}:{:02} {meridiem}", local.minute());
    let mut q = base("later", "919800000020", "scheduled hello");
    q.extend([("date", date.as_str()), ("time", clock.as_str()), ("gmt", "GMT +05:30")]);
    let r = f.bulk(SCHED, &q).await;
    let id = submitted_id(&r, "919800000020");
    let id_s = id.to_string();
    // Before its instant it is not in ds, once the ledger, the scheduler
    // and the projection have done all they do with it.
    f.wait_consumer_idle(StreamKind::Submit, "ledger").await;
    f.wait_consumer_idle(StreamKind::Schedule, "scheduler").await;
    f.wait_consumer_idle(StreamKind::Submit, "projection").await;
    assert!(time::OffsetDateTime::now_utc() < at);
    assert!(ds_rows(&f, "later", &token, &[("smslog_id", &id_s)]).await.is_empty(), "visible before release");
    let rows = eventually(Duration::from_secs(90), || async {
        let rows = ds_rows(&f, "later", &token, &[("smslog_id", &id_s)]).await;
        (!rows.is_empty()).then_some(rows)
    })
    .await
    .expect("released");
    let visible_at = time::OffsetDateTime::now_utc();
    assert!(visible_at >= at, "released early: visible at {visible_at}, due {at}");
    assert!(visible_at - at < time::Duration::seconds(10), "released late: {visible_at} vs {at}");
    assert_eq!(rows[0]["dt"], Value::String(smsfleet_domain::schedule::format_playsms(at)));
    assert_eq!(rows[0]["msg"], "scheduled hello");
}

/// The `routesms` npm package (not ours) sends through smsfleet; the ids it
/// parses are the ids `ds` reports. Needs `npm ci --prefix tests/e2e/node`
/// (scripts/test.sh does it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routesms_npm_client_ids_match_ds() {
    let f = Fleet::start(&[]).await;
    let token = account(&f, "nodeuser", &[]).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/node");
    let dests = ["919800000030", "919800000031", "919800000032"];
    let out = tokio::process::Command::new("node")
        .arg("send.js")
        .args(dests)
        .current_dir(dir)
        .env("SMSFLEET_HOST", "127.0.0.1")
        .env("SMSFLEET_PORT", f.ingress_port().to_string())
        .env("SMSFLEET_USER", "nodeuser")
        .env("SMSFLEET_PASSWORD", PASSWORD)
        .output()
        .await
        .expect("run node (is node installed, and npm ci done in tests/e2e/node?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "node failed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    let parsed: Vec<Value> = serde_json::from_str(stdout.trim()).expect("json from send.js");
    assert_eq!(parsed.len(), 3, "{stdout}");
    let mut ids = Vec::new();
    for (p, d) in parsed.iter().zip(dests) {
        assert_eq!(p["status"], 1, "{p}");
        assert_eq!(p["destination"], d);
        ids.push(p["message_id"].as_str().unwrap().parse::<i64>().unwrap());
    }
    let rows = eventually(Duration::from_secs(20), || async {
        let rows = ds_rows(&f, "nodeuser", &token, &[]).await;
        (rows.len() == 3 && rows.iter().all(|r| r["status"] == 3)).then_some(rows)
    })
    .await
    .expect("three delivered in ds");
    for (id, d) in ids.iter().zip(dests) {
        let row = rows.iter().find(|r| r["smslog_id"] == *id).unwrap_or_else(|| panic!("id {id} not in ds"));
        assert_eq!(row["dst"], d);
        assert!(row["msg"].as_str().unwrap().starts_with("hello from routesms"));
    }
}

/// A `dlr=1` message's delivery report reaches the account's callback URL;
/// the receiver answers 500 first, and the report is retried until it gets 200.
/// A `dlr=0` message of the same account is not reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlr_callback_is_pushed_and_retried_after_a_500() {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    type Seen = Arc<Mutex<Vec<(Instant, Value)>>>;
    let seen: Seen = Arc::default();
    async fn receive(
        axum::extract::State(seen): axum::extract::State<Seen>,
        body: axum::Json<Value>,
    ) -> axum::http::StatusCode {
        let mut s = seen.lock().unwrap();
        s.push((Instant::now(), body.0));
        if s.len() == 1 { axum::http::StatusCode::INTERNAL_SERVER_ERROR } else { axum::http::StatusCode::OK }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/dlr", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/dlr", axum::routing::post(receive)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let f = Fleet::start(&[]).await;
    let token = account(&f, "hooked", &["--dlr-callback-url", &url]).await;
    let quiet = f.bulk(BULK, &base("hooked", "919800000041", "no report wanted")).await;
    let quiet_id = submitted_id(&quiet, "919800000041");
    let r = f.bulk(BULK, &set(base("hooked", "919800000040", "report please"), "dlr", "1")).await;
    let id = submitted_id(&r, "919800000040");

    let got = eventually(Duration::from_secs(30), || async {
        let s = seen.lock().unwrap().clone();
        (s.len() >= 2).then_some(s)
    })
    .await
    .expect("callback delivered after a retry");
    assert_eq!(got[0].1, got[1].1, "the retry carries the same report");
    let body = &got[1].1;
    assert_eq!(body["message_id"], id.to_string());
    assert_eq!(body["destination"], "919800000040");
    assert_eq!(body["status"], "delivered");
    let done_at =
        time::OffsetDateTime::parse(body["done_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339 done_at");
    assert_eq!(done_at.offset(), time::UtcOffset::UTC);
    assert!(got[1].0 - got[0].0 >= Duration::from_millis(900), "retried after the backoff");
    // The status is queryable through ds as well.
    let rows = ds_rows(&f, "hooked", &token, &[("smslog_id", &id.to_string())]).await;
    assert_eq!(rows[0]["status"], 3);
    // Done: nothing left to send, and nothing sent for the dlr=0 message.
    let drained = eventually(Duration::from_secs(10), || async {
        let pending = smsfleet_store::callbacks::pending(&f.env.pool).await.ok()?;
        pending.iter().all(|(i, _)| *i != id).then_some(())
    })
    .await;
    assert!(drained.is_some(), "outbox row not removed after the 200");
    // The callbacks role has handled every submission and status, and the
    // dlr=0 message got no target: nothing can ever be pushed for it.
    f.wait_consumer_idle(StreamKind::Submit, "callbacks").await;
    f.wait_consumer_idle(StreamKind::Status, "callbacks").await;
    let target = smsfleet_store::callbacks::has_target(&f.env.pool, quiet_id).await.unwrap();
    assert!(!target, "a push target recorded for the dlr=0 message");
    let s = seen.lock().unwrap();
    assert_eq!(s.len(), 2);
    let quiet_id = quiet_id.to_string();
    assert!(s.iter().all(|(_, b)| b["message_id"] != quiet_id.as_str()));
}

/// 1715: JetStream does not answer in time. The fleet runs on a private
/// nats-server that the test freezes (SIGSTOP), so no other test is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_timeout_is_1715_when_the_store_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let nats = smsfleet_localinfra::NatsServer::start(&dir.path().join("nats")).await.unwrap();
    let mut f = Fleet::prepare(&[]).await;
    f.env.nats_url = nats.url();
    f.spawn("accounts").await;
    f.spawn("ingress").await;
    account(&f, "frozen", &[]).await;
    let pid = nats.pid().unwrap().to_string();
    let signal = |sig: &'static str| {
        let pid = pid.clone();
        async move {
            let ok = tokio::process::Command::new("kill").args([sig, &pid]).status().await.unwrap().success();
            assert!(ok, "kill {sig} {pid}");
        }
    };
    // Authenticated from the cache, validated, then the publish hangs.
    let ok_before = eventually(Duration::from_secs(10), || async {
        let text = fresh_text();
        let r = reqwest::Client::new()
            .get(format!("{}{BULK}", f.ingress))
            .query(&base("frozen", "919999999999", &text))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        r.starts_with("1701|").then_some(r)
    })
    .await;
    assert!(ok_before.is_some(), "the account never became usable");
    signal("-STOP").await;
    let text = fresh_text();
    let reply = reqwest::Client::new()
        .get(format!("{}{BULK}", f.ingress))
        .query(&base("frozen", "919999999998", &text))
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    signal("-CONT").await;
    let reply = reply.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().await.unwrap(), "1715");
    drop(f);
    nats.stop().await.unwrap();
}
