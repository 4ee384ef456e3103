//! The callback endpoint on a `127.0.0.1:0` listener against the testkit's
//! nats-server: what an upstream posts is stored whole or refused with a
//! code that tells it whether to retry (issue 14, items 9 and 13).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use smsfleet_contract::{DlrBatch, StreamKind};
use smsfleet_testkit::{CancellationToken, TestEnv};

struct Dlr {
    env: TestEnv,
    base: String,
    shutdown: CancellationToken,
}

impl Drop for Dlr {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Dlr {
    async fn start() -> Dlr {
        let env = TestEnv::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let router = smsfleet_dlr::router(env.bus.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await }).await
        });
        Dlr { env, base, shutdown }
    }

    /// Behind the callback guard, served as the role serves it (the guard
    /// needs the peer address).
    async fn start_guarded(auth: smsfleet_dlr::CallbackAuth) -> Dlr {
        let env = TestEnv::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let router = smsfleet_dlr::guard(smsfleet_dlr::router(env.bus.clone()), auth);
        tokio::spawn(smsfleet_telemetry::serve(listener, router, Default::default(), shutdown.clone()));
        Dlr { env, base, shutdown }
    }

    /// Messages on a stream.
    async fn count(&self, kind: StreamKind) -> u64 {
        let mut stream = self.env.bus.jetstream().get_stream(self.env.ns.stream_name(kind)).await.unwrap();
        stream.info().await.unwrap().state.messages
    }

    /// Every DlrBatch on the stream, in order.
    async fn stored(&self) -> Vec<DlrBatch> {
        let mut stream = self.env.bus.jetstream().get_stream(self.env.ns.stream_name(StreamKind::Dlr)).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            let m = stream.get_raw_message(seq).await.unwrap();
            out.push(serde_json::from_slice(&m.payload).unwrap());
        }
        out
    }
}

#[tokio::test]
async fn a_report_post_larger_than_one_message_is_stored_whole() {
    let dlr = Dlr::start().await;
    let reports: Vec<serde_json::Value> =
        (0..30_000).map(|i| serde_json::json!({ "id": format!("up-{i}"), "status": "delivered" })).collect();
    let body = serde_json::json!({ "reports": reports });
    let r = reqwest::Client::new().post(format!("{}/dlr/sim", dlr.base)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let stored = dlr.stored().await;
    assert!(stored.len() > 1, "one message cannot hold 30,000 reports");
    let ids: Vec<String> = stored.iter().flat_map(|b| b.reports.iter().map(|r| r.upstream_id.clone())).collect();
    assert_eq!(ids, (0..30_000).map(|i| format!("up-{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_mo_too_large_to_store_is_413_not_retry() {
    let dlr = Dlr::start().await;
    let text = "a".repeat(1_500_000);
    let form = [("from", "628999000001"), ("to", "1234"), ("id", "big-1"), ("text", text.as_str())];
    let r = reqwest::Client::new().post(format!("{}/mo/sim", dlr.base)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn a_nul_in_an_mo_or_a_report_is_400() {
    let dlr = Dlr::start().await;
    let http = reqwest::Client::new();
    let r = http.get(format!("{}/mo/sim?from=628999000001&to=1234&id=n-1&text=a%00b", dlr.base)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http.get(format!("{}/dlr/sim?id=a%00b&status=delivered", dlr.base)).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

fn rules(secret: Option<&str>, allow: &str) -> smsfleet_dlr::RouteCallbacks {
    smsfleet_dlr::RouteCallbacks { secret: secret.map(str::to_owned), allow: allow.to_owned() }
}

#[tokio::test]
async fn callbacks_need_the_routes_secret_and_a_known_route() {
    let auth = smsfleet_dlr::CallbackAuth::new([
        ("sim".to_owned(), rules(Some("s3cret"), "")),
        ("fenced".to_owned(), rules(None, "10.0.0.0/8")),
    ]);
    let dlr = Dlr::start_guarded(auth).await;
    let http = reqwest::Client::new();
    let report = serde_json::json!({ "reports": [{ "id": "up-1", "status": "delivered" }] });
    let post = |path: &str| http.post(format!("{}{path}", dlr.base)).json(&report);
    let mo = |route: &str, secret: &str| {
        http.get(format!("{}/mo/{route}?from=628999000001&to=1234&id=m-1&text=hi{secret}", dlr.base))
    };

    // Refused: no secret, a wrong one, an unknown route, a peer off the list.
    assert_eq!(post("/dlr/sim").send().await.unwrap().status(), 401);
    assert_eq!(post("/dlr/sim").header("x-smsfleet-callback-secret", "guess").send().await.unwrap().status(), 401);
    assert_eq!(post("/dlr/sim?callback_secret=s3cre").send().await.unwrap().status(), 401);
    assert_eq!(mo("sim", "").send().await.unwrap().status(), 401);
    assert_eq!(post("/dlr/other?callback_secret=s3cret").send().await.unwrap().status(), 404);
    assert_eq!(mo("other", "&callback_secret=s3cret").send().await.unwrap().status(), 404);
    assert_eq!(post("/dlr/fenced").send().await.unwrap().status(), 403);
    assert_eq!(mo("fenced", "").send().await.unwrap().status(), 403);
    assert_eq!((dlr.count(StreamKind::Dlr).await, dlr.count(StreamKind::Incoming).await), (0, 0));

    // Taken: the secret in the header or in the URL.
    assert_eq!(post("/dlr/sim").header("x-smsfleet-callback-secret", "s3cret").send().await.unwrap().status(), 200);
    assert_eq!(post("/dlr/sim?callback_secret=s3cret").send().await.unwrap().status(), 200);
    assert_eq!(mo("sim", "&callback_secret=s3cret").send().await.unwrap().status(), 200);
    assert_eq!((dlr.count(StreamKind::Dlr).await, dlr.count(StreamKind::Incoming).await), (2, 1));
    // Not a callback: no secret needed.
    assert_eq!(http.get(format!("{}/healthz", dlr.base)).send().await.unwrap().status(), 200);
}
