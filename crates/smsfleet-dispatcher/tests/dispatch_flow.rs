//! End to end through real NATS, Postgres, the SMSC simulator and the DLR
//! role: chunk → dispatcher → simulator → report → DLR → status events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsfleet_domain::clock::now_ms;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use futures_util::StreamExt;
use serde_json::{Value, json};
use smsfleet_contract::{
    DeliveryStatus, Destination, DispatchChunk, Encoding, SCHEMA_VERSION, StatusBatch, StatusEvent, StreamKind,
};
use smsfleet_dispatcher::{DispatcherConfig, Route};
use smsfleet_dlr::DlrConfig;
use smsfleet_simulator::SimulatorConfig;
use smsfleet_testkit::{CancellationToken, TestEnv, eventually};

const WAIT: Duration = Duration::from_secs(15);

struct Harness {
    env: TestEnv,
    sim: String,
    dlr: String,
    events: Arc<Mutex<Vec<StatusEvent>>>,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn listener() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    (l, base)
}

impl Harness {
    /// `routes` get `{sim}` and `{dlr}` replaced by the base URLs.
    async fn start(sim_config: SimulatorConfig, routes: &[&str]) -> Harness {
        let routes: Vec<String> = routes.iter().map(|r| (*r).to_owned()).collect();
        Harness::start_with(sim_config, move |sim, dlr| {
            routes.iter().map(|r| Route::parse(&r.replace("{sim}", sim).replace("{dlr}", dlr)).unwrap()).collect()
        })
        .await
    }

    /// Routes from a routes file; `[SIM]` and `[DLR]` are replaced by the
    /// base URLs (braces are the file's own template syntax).
    async fn start_file(sim_config: SimulatorConfig, file: &str) -> Harness {
        let file = file.to_owned();
        Harness::start_with(sim_config, move |sim, dlr| {
            let text = file.replace("[SIM]", sim).replace("[DLR]", dlr);
            smsfleet_dispatcher::parse_routes_file(&text, &|_| None).unwrap()
        })
        .await
    }

    async fn start_with(sim_config: SimulatorConfig, routes: impl FnOnce(&str, &str) -> Vec<Route>) -> Harness {
        let env = TestEnv::start().await;
        let shutdown = CancellationToken::new();
        let events = observe(&env).await;

        let (sim_listener, sim) = listener().await;
        let stop = shutdown.clone();
        tokio::spawn(smsfleet_simulator::serve(sim_config, sim_listener, async move { stop.cancelled().await }));

        let (dlr_listener, dlr) = listener().await;
        tokio::spawn(smsfleet_dlr::run(
            env.context("dlr", &shutdown).with_listener(dlr_listener),
            DlrConfig::default(),
        ));

        let routes = routes(&sim, &dlr);
        let config =
            DispatcherConfig { routes, request_timeout: Duration::from_secs(3), ..DispatcherConfig::default() };
        tokio::spawn(smsfleet_dispatcher::run(env.context("dispatcher", &shutdown), config));
        Harness { env, sim, dlr, events, http: reqwest::Client::new(), shutdown }
    }

    async fn publish(&self, msg_id: &str, chunk: &DispatchChunk) {
        let subject = self.env.ns.subject(StreamKind::Dispatch);
        self.env.bus.publish(subject, msg_id, chunk).await.unwrap();
    }

    fn statuses(&self, id: i64) -> Vec<StatusEvent> {
        self.events.lock().unwrap().iter().filter(|e| e.smslog_id == id).cloned().collect()
    }

    async fn wait_status(&self, id: i64, status: DeliveryStatus) -> StatusEvent {
        eventually(WAIT, || async { self.statuses(id).into_iter().find(|e| e.status == status) })
            .await
            .unwrap_or_else(|| panic!("no {status:?} for {id}; saw {:?}", self.statuses(id)))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.sim)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The Status stream's last sequence: unchanged means nothing was stored
    /// on it (a duplicate batch id is dropped before it gets one).
    async fn status_last_seq(&self) -> u64 {
        let name = self.env.ns.stream_name(StreamKind::Status);
        let mut stream = self.env.bus.jetstream().get_stream(name).await.unwrap();
        stream.info().await.unwrap().state.last_sequence
    }

    /// Waits until `durable` on `kind` has been handed at least `n`
    /// deliveries (redeliveries count): a message delivered twice was
    /// handled once to the end and sent back for a retry.
    async fn wait_deliveries(&self, kind: StreamKind, durable: &str, n: u64) {
        let name = self.env.ns.stream_name(kind);
        let js = self.env.bus.jetstream().clone();
        eventually(WAIT, || {
            let (js, name) = (js.clone(), name.clone());
            async move {
                let stream = js.get_stream(name).await.ok()?;
                let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                    stream.get_consumer(durable).await.ok()?;
                (consumer.info().await.ok()?.delivered.consumer_sequence >= n).then_some(())
            }
        })
        .await
        .unwrap_or_else(|| panic!("{durable} never got {n} deliveries"));
    }

    /// Waits until the dispatcher has acked everything (the Dispatch stream
    /// is a work queue, so acked chunks disappear).
    async fn wait_dispatch_drained(&self) {
        let name = self.env.ns.stream_name(StreamKind::Dispatch);
        let js = self.env.bus.jetstream().clone();
        eventually(WAIT, || {
            let js = js.clone();
            let name = name.clone();
            async move {
                let mut stream = js.get_stream(name).await.ok()?;
                (stream.info().await.ok()?.state.messages == 0).then_some(())
            }
        })
        .await
        .expect("dispatch stream not drained");
    }
}

/// A durable consumer of our own on the Status stream (interest retention:
/// it gets every batch alongside the projection's consumer).
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

fn chunk(chunk_id: &str, destinations: &[(i64, &str)], validity_until_ms: i64) -> DispatchChunk {
    DispatchChunk {
        v: SCHEMA_VERSION,
        chunk_id: chunk_id.to_owned(),
        queue: chunk_id.split('.').next().unwrap().to_owned(),
        uid: 42,
        sender: "SMSFLEET".to_owned(),
        body: "hello from the dispatcher".to_owned(),
        encoding: Encoding::Gsm7,
        flash: false,
        segments: 1,
        validity_until_ms,
        release_at_ms: None,
        destinations: destinations
            .iter()
            .map(|(id, to)| Destination { smslog_id: *id, to: (*to).to_owned() })
            .collect(),
        traceparent: None,
    }
}

const SIM_ROUTE: &str = "name=sim,url={sim}/submit,dlr={dlr}/dlr/sim,batch=2";

#[tokio::test]
async fn sends_once_then_matches_reports_and_survives_redelivery() {
    let h = Harness::start(SimulatorConfig { fail_prefixes: vec!["62899".into()], ..Default::default() }, &[SIM_ROUTE])
        .await;
    let dests =
        [(1001, "+6281100001"), (1002, "6281100002"), (1003, "6281100003"), (1004, "6289900004"), (1005, "6281100005")];
    let c = chunk("q1.0", &dests, now_ms() + 60_000);
    h.publish(&c.chunk_id, &c).await;

    for (id, to) in dests {
        let sent = h.wait_status(id, DeliveryStatus::Sent).await;
        let upstream_id = sent.upstream_id.clone().expect("upstream id");
        let last = if to.starts_with("62899") { DeliveryStatus::Failed } else { DeliveryStatus::Delivered };
        let report = h.wait_status(id, last).await;
        assert_eq!(report.upstream_id.as_deref(), Some(upstream_id.as_str()));
        assert_eq!(report.uid, 42);
        let (code, msg) = h.get(&format!("/messages/{id}")).await;
        assert_eq!(code, 200);
        assert_eq!(msg["submits"], 1, "{msg}");
        assert_eq!(msg["from"], "SMSFLEET");
        assert_eq!(msg["encoding"], "gsm7");
    }
    let (_, stats) = h.get("/stats").await;
    assert_eq!(stats["accepted"], 5, "{stats}");
    h.wait_dispatch_drained().await;

    // The same chunk again under another message id, as after a lost ack:
    // the dispatch log says Sent, so the upstream sees nothing new.
    let status_seq = h.status_last_seq().await;
    h.publish("q1.0.again", &c).await;
    h.wait_dispatch_drained().await;
    let (_, stats) = h.get("/stats").await;
    assert_eq!(stats["accepted"], 5, "{stats}");
    assert_eq!(stats["duplicate_submits"], 0, "{stats}");
    assert_eq!(stats["submits"], 5, "{stats}");
    // The re-emitted Sent batch (published before the ack the drain waited
    // for) has the same outcome hash, so JetStream dropped it.
    assert_eq!(h.status_last_seq().await, status_seq);
}

#[tokio::test]
async fn early_report_is_matched_once_the_upstream_id_is_recorded() {
    let h = Harness::start(SimulatorConfig::default(), &[SIM_ROUTE]).await;
    let url = format!("{}/dlr/sim", h.dlr);
    let report = json!({"reports":[{"id":"up-early-1","ref":"9001","status":"delivered","error_code":"","done_at":"2030-01-01T00:00:00Z"}]});
    let r = h.http.post(&url).json(&report).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ok": true}));

    // Malformed input is refused, not stored.
    let r = h.http.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = h.http.get(format!("{url}?id=x&status=bogus")).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // The matcher has tried the report and sent it back unmatched, and
    // published nothing.
    h.wait_deliveries(StreamKind::Dlr, "dlr", 2).await;
    assert_eq!(h.status_last_seq().await, 0);
    assert!(h.statuses(9001).is_empty());
    let pool = &h.env.pool;
    smsfleet_store::dispatch::claim(pool, "sim", &[(9001, 7), (9002, 7)]).await.unwrap();
    let sent = [(9001, vec!["up-early-1".to_owned()]), (9002, vec!["up-early-2".to_owned()])];
    smsfleet_store::dispatch::record_sent(pool, &sent).await.unwrap();
    let e = h.wait_status(9001, DeliveryStatus::Delivered).await;
    assert_eq!((e.uid, e.upstream_id.as_deref()), (7, Some("up-early-1")));
    assert_eq!(e.at_ms, 1_893_456_000_000);

    // Kannel-style single report.
    let r = h.http.get(format!("{url}?id=up-early-2&status=2&error_code=34")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let e = h.wait_status(9002, DeliveryStatus::Failed).await;
    assert_eq!(e.reason.as_deref(), Some("34"));

    // A message sent in two parts is found by the id of either.
    smsfleet_store::dispatch::claim(pool, "sim", &[(9003, 7)]).await.unwrap();
    let parts = [(9003, vec!["up-multi-0".to_owned(), "up-multi-1".to_owned()])];
    smsfleet_store::dispatch::record_sent(pool, &parts).await.unwrap();
    let r = h.http.get(format!("{url}?id=up-multi-1&status=1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let e = h.wait_status(9003, DeliveryStatus::Delivered).await;
    assert_eq!(e.upstream_id.as_deref(), Some("up-multi-1"));
    // A redelivered chunk finds it sent, with its ids in part order.
    let priors = smsfleet_store::dispatch::claim(pool, "sim", &[(9003, 7)]).await.unwrap();
    let expected = smsfleet_store::dispatch::Prior::Sent { upstream_ids: parts[0].1.clone() };
    assert_eq!(priors.get(&9003), Some(&expected));
}

#[tokio::test]
async fn unconfirmed_claims_follow_the_route_policy_and_expiry_fails() {
    // Two routes on one simulator: "strict" (prefix 44) may not resend.
    let h = Harness::start(
        SimulatorConfig::default(),
        &[SIM_ROUTE, "name=strict,url={sim}/submit,dlr={dlr}/dlr/strict,prefixes=44,resend=false"],
    )
    .await;
    // Claims left by a "crashed" earlier attempt.
    let pool = &h.env.pool;
    smsfleet_store::dispatch::claim(pool, "sim", &[(2001, 42)]).await.unwrap();
    smsfleet_store::dispatch::claim(pool, "strict", &[(2002, 42)]).await.unwrap();
    let c = chunk("q2.0", &[(2001, "6281100001"), (2002, "447700900001"), (2003, "447700900002")], now_ms() + 60_000);
    h.publish(&c.chunk_id, &c).await;

    h.wait_status(2001, DeliveryStatus::Delivered).await;
    let failed = h.wait_status(2002, DeliveryStatus::Failed).await;
    assert_eq!(failed.reason.as_deref(), Some("outcome unknown after an interrupted attempt"));
    h.wait_status(2003, DeliveryStatus::Delivered).await;
    let (_, stats) = h.get("/stats").await;
    assert_eq!(stats["accepted"], 2, "{stats}");
    let (code, _) = h.get("/messages/2002").await;
    assert_eq!(code, 404);

    // A chunk past its validity is failed without reaching the upstream.
    let c = chunk("q3.0", &[(3001, "6281100001")], now_ms() - 1);
    h.publish(&c.chunk_id, &c).await;
    let failed = h.wait_status(3001, DeliveryStatus::Failed).await;
    assert_eq!(failed.reason.as_deref(), Some("expired"));
    let (_, stats) = h.get("/stats").await;
    assert_eq!(stats["accepted"], 2, "{stats}");
}

#[tokio::test]
async fn unreachable_upstream_drops_claims_and_is_sent_once_it_is_back() {
    // A port nobody listens on yet.
    let (l, dead) = listener().await;
    let addr = l.local_addr().unwrap();
    drop(l);
    let h = Harness::start(SimulatorConfig::default(), &[&format!("name=late,url={dead}/submit,dlr={{dlr}}/dlr/late")])
        .await;
    let c = chunk("q4.0", &[(4001, "6281100001")], now_ms() + 60_000);
    h.publish(&c.chunk_id, &c).await;
    // Three connect failures (about 0.6 s), then the claim is released and
    // the chunk NAKed for a later redelivery: no status, and at some point
    // after that first attempt no row left behind.
    h.wait_deliveries(StreamKind::Dispatch, "dispatcher", 2).await;
    let released = eventually(WAIT, || async {
        let states = smsfleet_store::dispatch::states(&h.env.pool, &[4001]).await.unwrap();
        states.is_empty().then_some(())
    })
    .await;
    assert!(released.is_some());
    assert_eq!(h.status_last_seq().await, 0);
    assert!(h.statuses(4001).is_empty());

    // The upstream comes up: the redelivered chunk gets through, once.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let stop = h.shutdown.clone();
    tokio::spawn(smsfleet_simulator::serve(
        SimulatorConfig::default(),
        listener,
        async move { stop.cancelled().await },
    ));
    h.wait_status(4001, DeliveryStatus::Delivered).await;
    let r = h.http.get(format!("{dead}/messages/4001")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["submits"], 1);
    let states = smsfleet_store::dispatch::states(&h.env.pool, &[4001]).await.unwrap();
    assert_eq!(states.get(&4001), Some(&smsfleet_store::dispatch::SENT));
}

/// A port nobody listens on: connections to it are refused.
async fn dead_port() -> String {
    let (l, dead) = listener().await;
    drop(l);
    dead
}

#[tokio::test]
async fn a_route_that_is_down_fails_over_to_the_next_with_the_same_reference() {
    let dead = dead_port().await;
    let file = format!(
        r#"
dlr_base_url = "[DLR]"
[[route]]
name = "primary"
protocol = "http"
failover = ["backup"]
[route.http]
method = "post-json"
url = "{dead}/submit"
body = '{{{{"messages":[]}}}}'
[[route]]
name = "backup"
protocol = "sim"
prefixes = ["999"]
[route.sim]
url = "[SIM]/submit"
"#
    );
    let h = Harness::start_file(SimulatorConfig::default(), &file).await;
    let c = chunk("q10.0", &[(10_001, "6281100001"), (10_002, "6281100002")], now_ms() + 60_000);
    h.publish(&c.chunk_id, &c).await;
    for id in [10_001, 10_002] {
        // Delivered means the backup's report was matched: the dispatch
        // log names the route that took the message.
        h.wait_status(id, DeliveryStatus::Delivered).await;
        let (_, msg) = h.get(&format!("/messages/{id}")).await;
        assert_eq!(msg["submits"], 1, "{msg}");
        assert_eq!(msg["ref"], id.to_string(), "{msg}");
    }
    let (_, stats) = h.get("/stats").await;
    assert_eq!(stats["accepted"], 2, "{stats}");
}

/// The issue's duplicate-send case: a gateway whose answer the route cannot
/// read (here the simulator's JSON, which a RouteSMS-style rule does not
/// match) took the message; the dispatcher must not send it again, neither
/// in its own retries nor on a redelivery, and must say why it failed.
#[tokio::test]
async fn an_answer_the_route_cannot_classify_is_failed_once_and_never_resent() {
    let file = r#"
[[route]]
name = "gw"
protocol = "http"
[route.http]
method = "post-json"
url = "[SIM]/submit"
body = '{{"messages":[{{"ref":"{ref}","from":"{from}","to":"{to}","text":"{text}","encoding":"gsm7","flash":false}}]}}'
success_regex = '^1701\|'
resend = false
"#;
    let h = Harness::start_file(SimulatorConfig::default(), file).await;
    let c = chunk("q11.0", &[(11_001, "6281100001")], now_ms() + 60_000);
    h.publish(&c.chunk_id, &c).await;
    let failed = h.wait_status(11_001, DeliveryStatus::Failed).await;
    let reason = failed.reason.unwrap_or_default();
    assert!(reason.starts_with("outcome unknown: unclassifiable answer: HTTP 200"), "{reason}");
    h.wait_dispatch_drained().await;
    let (_, msg) = h.get("/messages/11001").await;
    assert_eq!(msg["submits"], 1, "{msg}");

    // Redelivered (a lost ack): the log says failed, nothing is sent.
    h.publish("q11.0.again", &c).await;
    h.wait_dispatch_drained().await;
    let (_, stats) = h.get("/stats").await;
    assert_eq!((stats["submits"].as_u64(), stats["accepted"].as_u64()), (Some(1), Some(1)), "{stats}");
    let states = smsfleet_store::dispatch::states(&h.env.pool, &[11_001]).await.unwrap();
    assert_eq!(states.get(&11_001), Some(&smsfleet_store::dispatch::FAILED));
}
