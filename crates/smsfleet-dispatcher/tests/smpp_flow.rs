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
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(WAIT, lines.next_line()).await.unwrap().unwrap().expect("fake-smsc output");
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
        let file = format!(
            "[[route]]\nname = \"smpp\"\nprotocol = \"smpp\"\n[route.smpp]\nhost = \"127.0.0.1\"\nport = {port}\n\
             system_id = \"smsfleet\"\npassword = \"secret\"\n{extra}\n"
        );
        let routes = smsfleet_dispatcher::parse_routes_file(&file, &|_| None).unwrap();
        let config =
            DispatcherConfig { routes, request_timeout: Duration::from_secs(5), ..DispatcherConfig::default() };
        let dispatcher = tokio::spawn(smsfleet_dispatcher::run(env.context("dispatcher", &shutdown), config));
        tokio::spawn(async move {
            let result = dispatcher.await;
            eprintln!("dispatcher ended: {result:?}");
        });
        Harness { env, events, shutdown }
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
