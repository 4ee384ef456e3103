//! The SMPP upstream end to end: real NATS and Postgres, the dispatcher and
//! the dlr role, and node-smpp (a third-party SMPP implementation, npm
//! `smpp` 0.5.1) as the fake SMSC (`tests/e2e/node/fake-smsc.js`). Needs
//! `npm ci --prefix tests/e2e/node`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use futures_util::StreamExt;
use serde_json::{Value, json};
use smsfleet_contract::{
    DeliveryStatus, Destination, DispatchChunk, Encoding, SCHEMA_VERSION, StatusBatch, StatusEvent, StreamKind,
};
use smsfleet_dispatcher::DispatcherConfig;
use smsfleet_dlr::DlrConfig;
use smsfleet_domain::clock::now_ms;
use smsfleet_testkit::{CancellationToken, TestEnv, eventually};
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(30);

/// The fake SMSC process and the JSON events it printed.
struct FakeSmsc {
    port: u16,
    events: Arc<Mutex<Vec<Value>>>,
    _child: tokio::process::Child,
}

impl FakeSmsc {
    async fn start(config: Value) -> FakeSmsc {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/node");
        let mut child = tokio::process::Command::new("node")
            .arg("fake-smsc.js")
            .current_dir(dir)
            .env("FAKE_SMSC", config.to_string())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run node (is node installed, and npm ci done in tests/e2e/node?)");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        FakeSmsc::follow(child, lines).await
    }

    /// PyPI smpp34 as the SMSC (`tests/e2e/python/fake_smsc.py`), from the
    /// Python peers' venv `scripts/test.sh` makes (`target/python-peers`,
    /// or `SMSFLEET_PYTHON_PEERS`).
    async fn start_smpp34(mut config: Value) -> FakeSmsc {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let python = std::env::var("SMSFLEET_PYTHON_PEERS")
            .unwrap_or_else(|_| format!("{root}/target/python-peers/bin/python3"));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        config["port"] = json!(port);
        let mut child = tokio::process::Command::new(&python)
            .arg(format!("{root}/tests/e2e/python/fake_smsc.py"))
            .env("FAKE_SMSC", config.to_string())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("run {python} ({e}); scripts/test.sh installs smpp34 into target/python-peers"));
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        FakeSmsc::follow(child, lines).await
    }

    async fn follow(
        child: tokio::process::Child,
        mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    ) -> FakeSmsc {
        let first = tokio::time::timeout(WAIT, lines.next_line()).await.unwrap().unwrap().expect("fake SMSC output");
        let port = serde_json::from_str::<Value>(&first).unwrap()["listening"].as_u64().expect("listening") as u16;
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        FakeSmsc { port, events, _child: child }
    }

    fn events(&self, key: &str) -> Vec<Value> {
        self.events.lock().unwrap().iter().filter(|e| e.get(key).is_some()).cloned().collect()
    }
}

struct Harness {
    env: TestEnv,
    events: Arc<Mutex<Vec<StatusEvent>>>,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Harness {
    /// One SMPP route `smpp` to `port`; `extra` is added to its `[route.smpp]`.
    async fn start(port: u16, extra: &str) -> Harness {
        let env = TestEnv::start().await;
        let shutdown = CancellationToken::new();
        let events = observe(&env).await;
        let dlr_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(smsfleet_dlr::run(
            env.context("dlr", &shutdown).with_listener(dlr_listener),
            DlrConfig::default(),
        ));
        let h = Harness { env, events, shutdown };
        h.spawn_dispatcher(port, extra, &h.shutdown);
        h
    }

    /// One more dispatcher replica on the same bus and database.
    fn spawn_dispatcher(&self, port: u16, extra: &str, shutdown: &CancellationToken) {
        let file = format!(
            "[[route]]\nname = \"smpp\"\nprotocol = \"smpp\"\n[route.smpp]\nhost = \"127.0.0.1\"\nport = {port}\n\
             system_id = \"smsfleet\"\npassword = \"secret\"\n{extra}\n"
        );
        let routes = smsfleet_dispatcher::parse_routes_file(&file, &|_| None).unwrap();
        let config =
            DispatcherConfig { routes, request_timeout: Duration::from_secs(5), ..DispatcherConfig::default() };
        tokio::spawn(smsfleet_dispatcher::run(self.env.context("dispatcher", shutdown), config));
    }

    async fn publish(&self, chunk: &DispatchChunk) {
        let subject = self.env.ns.subject(StreamKind::Dispatch);
        self.env.bus.publish(subject, &chunk.chunk_id, chunk).await.unwrap();
    }

    fn with_status(&self, status: DeliveryStatus) -> HashMap<i64, StatusEvent> {
        self.events.lock().unwrap().iter().filter(|e| e.status == status).map(|e| (e.smslog_id, e.clone())).collect()
    }

    async fn wait_all(&self, ids: &[i64], status: DeliveryStatus) {
        eventually(WAIT, || async {
            let got = self.with_status(status);
            ids.iter().all(|id| got.contains_key(id)).then_some(())
        })
        .await
        .unwrap_or_else(|| {
            let got = self.with_status(status);
            let missing: Vec<_> = ids.iter().filter(|id| !got.contains_key(id)).take(10).collect();
            let all = self.events.lock().unwrap().clone();
            let sent = all.iter().filter(|e| e.status == DeliveryStatus::Sent).count();
            let failed: Vec<_> = all.iter().filter(|e| e.status == DeliveryStatus::Failed).take(3).collect();
            panic!("not all {} {status:?}, e.g. {missing:?}; {sent} sent, failed e.g. {failed:?}", ids.len())
        });
    }
}

async fn observe(env: &TestEnv) -> Arc<Mutex<Vec<StatusEvent>>> {
    let stream = env.bus.jetstream().get_stream(env.ns.stream_name(StreamKind::Status)).await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("test-observer".into()),
            filter_subject: env.ns.subject(StreamKind::Status),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = messages.next().await {
            let batch: StatusBatch = serde_json::from_slice(&m.payload).unwrap();
            sink.lock().unwrap().extend(batch.events);
            let _ = m.ack().await;
        }
    });
    events
}

fn chunk(chunk_id: &str, ids: std::ops::Range<i64>, body: &str, encoding: Encoding) -> DispatchChunk {
    DispatchChunk {
        v: SCHEMA_VERSION,
        chunk_id: chunk_id.to_owned(),
        queue: chunk_id.split('.').next().unwrap().to_owned(),
        uid: 42,
        sender: "SMSFLEET".to_owned(),
        body: body.to_owned(),
        encoding,
        flash: false,
        segments: smsfleet_domain::text::count_segments(body, encoding).segments,
        validity_until_ms: now_ms() + 600_000,
        release_at_ms: None,
        destinations: ids.map(|id| Destination { smslog_id: id, to: format!("+62812{id:07}") }).collect(),
        traceparent: None,
    }
}

/// Destinations the SMSC accepted more than once, and the number accepted.
fn accepted_per_destination(smsc: &FakeSmsc) -> (usize, Vec<String>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in smsc.events("submit") {
        if e["status"] == "ok" {
            *seen.entry(e["to"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    let twice = seen.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k.clone()).collect();
    (seen.len(), twice)
}

#[tokio::test]
async fn sends_within_the_window_and_matches_every_receipt() {
    let smsc = FakeSmsc::start(json!({ "latency_ms": 30 })).await;
    let h = Harness::start(smsc.port, "window = 4").await;
    for c in 0..3 {
        h.publish(&chunk(&format!("q{c}.0"), c * 100..c * 100 + 40, "hello over smpp", Encoding::Gsm7)).await;
    }
    let ids: Vec<i64> = (0..3).flat_map(|c| c * 100..c * 100 + 40).collect();
    h.wait_all(&ids, DeliveryStatus::Delivered).await;
    let submits = smsc.events("submit");
    assert_eq!(submits.len(), 120);
    let peak = submits.iter().map(|e| e["inflight"].as_u64().unwrap()).max().unwrap();
    assert!(peak <= 4, "{peak} outstanding with window 4");
    assert!(submits.iter().all(|e| e["text"] == "hello over smpp" && e["from"] == "SMSFLEET" && e["esm"] == 0));
    assert!(submits.iter().all(|e| e["to"].as_str().unwrap().starts_with("62812")));
    assert_eq!(accepted_per_destination(&smsc).1, Vec::<String>::new());
}

#[tokio::test]
async fn a_thousand_receipts_before_their_responses_all_match() {
    let smsc = FakeSmsc::start(json!({ "latency_ms": 1, "receipts": "before" })).await;
    let h = Harness::start(smsc.port, "window = 64").await;
    for c in 0..10 {
        h.publish(&chunk(&format!("q{c}.0"), c * 100..c * 100 + 100, "early receipt", Encoding::Gsm7)).await;
    }
    let ids: Vec<i64> = (0..1000).collect();
    h.wait_all(&ids, DeliveryStatus::Delivered).await;
    let acked = smsc.events("receipt_resp");
    assert_eq!(acked.len(), 1000);
    assert!(acked.iter().all(|e| e["receipt_resp"] == 0));
}

#[tokio::test]
async fn hex_ids_in_responses_match_decimal_receipts() {
    let smsc = FakeSmsc::start(json!({ "id_format": "hex0", "receipt_id_format": "dec", "receipt_tlvs": false })).await;
    let h = Harness::start(smsc.port, "id_match = \"hex-to-dec\"").await;
    h.publish(&chunk("q.0", 0..20, "hex ids", Encoding::Gsm7)).await;
    let ids: Vec<i64> = (0..20).collect();
    h.wait_all(&ids, DeliveryStatus::Delivered).await;
}

#[tokio::test]
async fn throttling_pauses_and_retries_with_nothing_lost_or_doubled() {
    let smsc = FakeSmsc::start(json!({ "throttle_every": 5 })).await;
    let h = Harness::start(smsc.port, "window = 8\nthrottle_pause_ms = 50").await;
    for c in 0..2 {
        h.publish(&chunk(&format!("q{c}.0"), c * 100..c * 100 + 100, "throttled", Encoding::Gsm7)).await;
    }
    let ids: Vec<i64> = (0..2).flat_map(|c| c * 100..c * 100 + 100).collect();
    h.wait_all(&ids, DeliveryStatus::Delivered).await;
    let (accepted, twice) = accepted_per_destination(&smsc);
    assert_eq!(accepted, 200);
    assert_eq!(twice, Vec::<String>::new());
    assert!(smsc.events("submit").iter().filter(|e| e["status"] == "throttled").count() >= 40);
}

#[tokio::test]
async fn long_gsm7_and_ucs2_go_as_udh_parts_the_peer_reassembles() {
    let smsc = FakeSmsc::start(json!({})).await;
    let h = Harness::start(smsc.port, "").await;
    let gsm = format!("{}€{}", "a".repeat(152), "b".repeat(200));
    let ucs = "Привет, мир! ".repeat(12);
    h.publish(&chunk("g.0", 0..1, &gsm, Encoding::Gsm7)).await;
    h.publish(&chunk("u.0", 1..2, &ucs, Encoding::Ucs2)).await;
    h.wait_all(&[0, 1], DeliveryStatus::Sent).await;
    let submits = smsc.events("submit");
    for (to, text, dcs, parts) in [("628120000000", &gsm, 0, 3), ("628120000001", &ucs, 8, 3)] {
        let mut mine: Vec<&Value> = submits.iter().filter(|e| e["to"] == to).collect();
        assert_eq!(mine.len(), parts, "{to}");
        mine.sort_by_key(|e| e["udh"][0].as_str().unwrap()[8..10].to_owned());
        assert!(mine.iter().all(|e| e["dcs"] == dcs && e["esm"].as_u64().unwrap() & 0x40 != 0));
        let whole: String = mine.iter().map(|e| e["text"].as_str().unwrap()).collect();
        assert_eq!(&whole, text);
    }
}

#[tokio::test]
async fn permanent_errors_fail_with_the_status_name() {
    let smsc = FakeSmsc::start(json!({ "reject_to": "628120000003" })).await;
    let h = Harness::start(smsc.port, "").await;
    h.publish(&chunk("q.0", 0..5, "some refused", Encoding::Gsm7)).await;
    h.wait_all(&[0, 1, 2, 4], DeliveryStatus::Delivered).await;
    h.wait_all(&[3], DeliveryStatus::Failed).await;
    let failed = h.with_status(DeliveryStatus::Failed);
    assert_eq!(failed[&3].reason.as_deref(), Some("ESME_RINVDSTADR"));
}

#[tokio::test]
async fn a_bad_pdu_from_the_smsc_gets_generic_nack_and_sending_goes_on() {
    let smsc = FakeSmsc::start(json!({ "garbage_after": 3 })).await;
    let h = Harness::start(smsc.port, "window = 1").await;
    h.publish(&chunk("q.0", 0..10, "after garbage", Encoding::Gsm7)).await;
    let ids: Vec<i64> = (0..10).collect();
    h.wait_all(&ids, DeliveryStatus::Delivered).await;
    let nacks = smsc.events("generic_nack");
    assert_eq!(nacks.len(), 1, "{nacks:?}");
    assert_eq!(nacks[0]["generic_nack"], 3, "ESME_RINVCMDID");
    assert_eq!(smsc.events("bound").len(), 1, "the bind survived");
}

#[tokio::test]
async fn a_dead_link_is_detected_and_the_bind_comes_back() {
    let smsc = FakeSmsc::start(json!({ "ignore_enquire": true })).await;
    let _h = Harness::start(
        smsc.port,
        "enquire_link_secs = 1\nresponse_timeout_secs = 1\nreconnect_min_secs = 1\nreconnect_max_secs = 2",
    )
    .await;
    eventually(WAIT, || async { (smsc.events("bound").len() >= 2).then_some(()) })
        .await
        .expect("no rebind after a dead link");
}

#[tokio::test]
async fn a_dropped_connection_leaves_unconfirmed_parts_failed_once_and_the_rest_sent() {
    let smsc = FakeSmsc::start(json!({ "drop_after": 5, "latency_ms": 20 })).await;
    let h = Harness::start(smsc.port, "window = 4\nreconnect_min_secs = 1").await;
    h.publish(&chunk("q.0", 0..20, "dropped link", Encoding::Gsm7)).await;
    let ids: Vec<i64> = (0..20).collect();
    eventually(WAIT, || async {
        let done: Vec<i64> = h
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.status == DeliveryStatus::Sent || e.status == DeliveryStatus::Failed)
            .map(|e| e.smslog_id)
            .collect();
        ids.iter().all(|id| done.contains(id)).then_some(())
    })
    .await
    .expect("every message settled");
    let (_, twice) = accepted_per_destination(&smsc);
    assert_eq!(twice, Vec::<String>::new(), "resend = false: nothing goes twice");
    assert!(smsc.events("bound").len() >= 2);
}

/// Our own simulator as the fake SMSC: receipts before responses, 20 %
/// throttling, a failing prefix; every message settles once.
#[tokio::test]
async fn the_simulator_smsc_throttles_and_reports_before_responses() {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let smsc = smsfleet_simulator::SmscConfig {
        receipts_before_response: true,
        throttle_ratio: 0.2,
        fail_prefixes: vec!["628120000001".into()],
        ..Default::default()
    };
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stats = format!("http://{}/stats", http.local_addr().unwrap());
    let config = smsfleet_simulator::SimulatorConfig {
        smpp: Some(smsfleet_simulator::SmppListener::new(smsc, std_listener)),
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let s = stop.clone();
    let sim_ctx = smsfleet_runtime::RoleContext::new("simulator", Default::default(), s).with_listener(http);
    tokio::spawn(smsfleet_simulator::run(sim_ctx, config));
    let h = Harness::start(port, "binds = 2\nwindow = 16\nthrottle_pause_ms = 20").await;
    h.publish(&chunk("q.0", 0..100, "via the simulator", Encoding::Gsm7)).await;
    let delivered: Vec<i64> = (0..100).filter(|id| *id != 1).collect();
    h.wait_all(&delivered, DeliveryStatus::Delivered).await;
    h.wait_all(&[1], DeliveryStatus::Failed).await;
    let counts: Value = reqwest::get(&stats).await.unwrap().json().await.unwrap();
    assert_eq!(counts["accepted"], 100, "{counts}");
    assert!(counts["submits"].as_u64().unwrap() > 100, "throttled submits were retried: {counts}");
    stop.cancel();
}

/// The per-bind pace, counted at the SMSC over 10 s (the 5 %).
#[tokio::test]
async fn the_per_bind_rate_holds_within_five_percent_over_ten_seconds() {
    let smsc = FakeSmsc::start(json!({ "latency_ms": 1, "receipts": "none" })).await;
    let h = Harness::start(smsc.port, "window = 16\nparts_per_second_per_bind = 50.0").await;
    for c in 0..7 {
        h.publish(&chunk(&format!("q{c}.0"), c * 100..c * 100 + 100, "paced", Encoding::Gsm7)).await;
    }
    eventually(Duration::from_secs(40), || async { (smsc.events("submit").len() >= 650).then_some(()) })
        .await
        .expect("submits kept coming");
    let mut at: Vec<i64> = smsc.events("submit").iter().map(|e| e["at_ms"].as_i64().unwrap()).collect();
    at.sort_unstable();
    // A 10 s window starting after the first second (start-up excluded).
    let start = at[0] + 1000;
    let in_window = at.iter().filter(|t| **t >= start && **t < start + 10_000).count();
    assert!((475..=525).contains(&in_window), "{in_window} submits in 10 s at 50/s");
}

/// PyPI smpp34 as a second, independent SMSC: every receipt before its
/// response, 20 % throttled, and the SMSC ending the bind mid-flight.
/// Nothing is accepted twice (resend = false); what was in flight when the
/// bind ended is failed once as unknown, everything else delivered.
#[tokio::test]
async fn smpp34_receipts_first_throttling_and_a_dropped_bind() {
    let smsc =
        FakeSmsc::start_smpp34(json!({ "receipts_before": true, "throttle_every": 5, "unbind_after": 30 })).await;
    let h = Harness::start(smsc.port, "window = 8\nthrottle_pause_ms = 20\nreconnect_min_secs = 1").await;
    h.publish(&chunk("q.0", 0..100, "via smpp34", Encoding::Gsm7)).await;
    let ids: Vec<i64> = (0..100).collect();
    eventually(WAIT, || async {
        let delivered = h.with_status(DeliveryStatus::Delivered);
        let failed = h.with_status(DeliveryStatus::Failed);
        ids.iter().all(|id| delivered.contains_key(id) || failed.contains_key(id)).then_some(())
    })
    .await
    .unwrap_or_else(|| {
        let ev = smsc.events.lock().unwrap().clone();
        let tail: Vec<_> = ev.iter().rev().take(12).collect();
        panic!(
            "not settled: {} delivered, {} failed, {} SMSC events, last {tail:?}",
            h.with_status(DeliveryStatus::Delivered).len(),
            h.with_status(DeliveryStatus::Failed).len(),
            ev.len()
        )
    });
    let (accepted, twice) = accepted_per_destination(&smsc);
    assert_eq!(twice, Vec::<String>::new(), "nothing accepted twice");
    let (delivered, failed) = (h.with_status(DeliveryStatus::Delivered), h.with_status(DeliveryStatus::Failed));
    assert!(failed.keys().all(|id| !delivered.contains_key(id)));
    assert_eq!(delivered.len() + failed.len(), 100);
    assert!(failed.len() <= 8, "at most a window's worth in flight at the unbind: {}", failed.len());
    assert!(accepted >= delivered.len());
    assert!(smsc.events("bound").len() >= 2, "bound again after the SMSC unbound");
    assert!(smsc.events("submit").iter().any(|e| e["status"] == "throttled"));
}

/// Three dispatcher replicas, a route of 2 binds: the SMSC never sees more
/// than 2 at once (slots leased on NATS), and a replica stopping gives its
/// slot to another, with a clean unbind.
#[tokio::test]
async fn binds_are_limited_across_replicas() {
    let smsc = FakeSmsc::start(json!({})).await;
    let h = Harness::start(smsc.port, "binds = 2").await;
    let second = CancellationToken::new();
    h.spawn_dispatcher(smsc.port, "binds = 2", &second);
    h.spawn_dispatcher(smsc.port, "binds = 2", &h.shutdown);
    eventually(WAIT, || async { (smsc.events("bound").len() >= 2).then_some(()) }).await.expect("2 binds");
    // Give the other replicas time to try (they retry every few seconds).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let open = |smsc: &FakeSmsc| smsc.events("bound").len() - smsc.events("closed").len();
    assert_eq!(open(&smsc), 2, "binds across the fleet");
    second.cancel();
    h.publish(&chunk("q.0", 0..20, "after a replica left", Encoding::Gsm7)).await;
    h.wait_all(&(0..20).collect::<Vec<_>>(), DeliveryStatus::Delivered).await;
    assert!(open(&smsc) <= 2);
}

/// A CA and a server certificate for `name` signed by it (openssl):
/// (server key, server cert, CA cert).
fn certificate(dir: &std::path::Path, name: &str) -> (String, String, String) {
    let p = |f: &str| dir.join(f).display().to_string();
    let run = |args: &[&str]| {
        let ok = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        "key.pem",
        "-out",
        "req.csr",
    ]);
    std::fs::write(dir.join("ext.cnf"), format!("subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n")).unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "req.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (p("key.pem"), p("cert.pem"), p("ca.pem"))
}

/// TLS to node-smpp's TLS server: the CA and the server name are checked.
#[tokio::test]
async fn tls_binds_check_the_ca_and_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert, ca) = certificate(dir.path(), "smsc.test");
    let smsc = FakeSmsc::start(json!({ "tls_key": key, "tls_cert": cert })).await;
    let tls = format!("[route.smpp.tls]\nca_file = \"{ca}\"\nserver_name = \"smsc.test\"");
    let h = Harness::start(smsc.port, &tls).await;
    h.publish(&chunk("q.0", 0..5, "over tls", Encoding::Gsm7)).await;
    h.wait_all(&(0..5).collect::<Vec<_>>(), DeliveryStatus::Delivered).await;
    // The wrong name: no bind is ever made, nothing is sent.
    let other = FakeSmsc::start(json!({ "tls_key": key, "tls_cert": cert })).await;
    let wrong = format!("[route.smpp.tls]\nca_file = \"{ca}\"\nserver_name = \"other.test\"");
    let h2 = Harness::start(other.port, &wrong).await;
    h2.publish(&chunk("q.0", 0..1, "must not go", Encoding::Gsm7)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(other.events("bound").is_empty());
    assert!(other.events("submit").is_empty());
}
