//! Integration tests: the real simulator on port 0, a tiny axum receiver for its reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use smsfleet_simulator::{SimulatorConfig, SimulatorError, serve};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

struct Simulator {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), SimulatorError>>,
}

impl Simulator {
    async fn start(config: SimulatorConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(config, listener, async {
            let _ = stopped.await;
        }));
        Self { base, stop: Some(stop), task }
    }

    async fn shutdown(mut self) -> Result<(), SimulatorError> {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap()
    }
}

#[derive(Default)]
struct Receiver {
    reports: Mutex<Vec<Value>>,
    posts: AtomicUsize,
    fail_first: AtomicUsize,
}

impl Receiver {
    async fn start(fail_first: usize) -> (String, Arc<Self>) {
        let receiver = Arc::new(Self::default());
        receiver.fail_first.store(fail_first, Ordering::SeqCst);
        let app = axum::Router::new().route("/dlr", axum::routing::post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/dlr", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, receiver)
    }

    fn reports(&self) -> Vec<Value> {
        self.reports.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reports = self.reports();
            if reports.len() >= n || Instant::now() > deadline {
                return reports;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn receive(State(receiver): State<Arc<Receiver>>, Json(body): Json<Value>) -> StatusCode {
    receiver.posts.fetch_add(1, Ordering::SeqCst);
    let should_fail =
        receiver.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if should_fail {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let reports = body["reports"].as_array().unwrap().clone();
    receiver.reports.lock().unwrap().extend(reports);
    StatusCode::OK
}

fn msg(reference: &str, to: &str, text: &str) -> Value {
    json!({"ref": reference, "from": "SENDER", "to": to, "text": text, "encoding": "gsm7"})
}

async fn submit(client: &reqwest::Client, base: &str, messages: Vec<Value>) -> Value {
    let response = client.post(format!("{base}/submit")).json(&json!({ "messages": messages })).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn get_json(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn stats(client: &reqwest::Client, base: &str) -> Value {
    get_json(client, format!("{base}/stats")).await.1
}

#[tokio::test]
async fn submit_reports_and_idempotency() {
    let (dlr_url, receiver) = Receiver::start(0).await;
    let sim = Simulator::start(SimulatorConfig {
        fail_prefixes: vec!["62899".into()],
        reject_prefixes: vec!["+62877".into()],
        ..SimulatorConfig::default()
    })
    .await;
    let client = reqwest::Client::new();

    let mut first = msg("r1", "628111000001", "hello");
    first["dlr_url"] = json!(dlr_url);
    first["flash"] = json!(true);
    let mut second = msg("r2", "+628990000001", "will fail");
    second["dlr_url"] = json!(dlr_url);
    second["encoding"] = json!("ucs2");
    let mut third = msg("r3", "628770000001", "rejected");
    third["dlr_url"] = json!(dlr_url);

    let response = submit(&client, &sim.base, vec![first.clone(), second, third]).await;
    let results = response["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["ref"], "r1");
    assert_eq!(results[0]["status"], "accepted");
    assert_eq!(results[1]["ref"], "r2");
    assert_eq!(results[1]["status"], "accepted");
    assert_eq!(results[2]["ref"], "r3");
    assert_eq!(results[2]["status"], "rejected");
    assert_eq!(results[2]["id"], Value::Null);
    assert!(results[2]["error"].is_string());
    let id1 = results[0]["id"].as_str().unwrap().to_owned();
    let id2 = results[1]["id"].as_str().unwrap().to_owned();
    assert_ne!(id1, id2);

    let reports = receiver.wait_for(2).await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    let by_ref = |r: &str| reports.iter().find(|x| x["ref"] == r).unwrap().clone();
    let r1 = by_ref("r1");
    assert_eq!(r1["id"], id1.as_str());
    assert_eq!(r1["status"], "delivered");
    assert_eq!(r1["error_code"], "000");
    let done_at = r1["done_at"].as_str().unwrap();
    assert!(done_at.ends_with('Z') && done_at.len() == 20, "{done_at}");
    let r2 = by_ref("r2");
    assert_eq!(r2["id"], id2.as_str());
    assert_eq!(r2["status"], "failed");
    assert_eq!(r2["error_code"], "001");

    let (status, stored) = get_json(&client, format!("{}/messages/r1", sim.base)).await;
    assert_eq!(status, 200);
    assert_eq!(stored["id"], id1.as_str());
    assert_eq!(stored["text"], "hello");
    assert_eq!(stored["to"], "628111000001");
    assert_eq!(stored["from"], "SENDER");
    assert_eq!(stored["encoding"], "gsm7");
    assert_eq!(stored["flash"], true);
    assert_eq!(stored["submits"], 1);
    let (_, stored2) = get_json(&client, format!("{}/messages/r2", sim.base)).await;
    assert_eq!(stored2["encoding"], "ucs2");
    let (status, _) = get_json(&client, format!("{}/messages/r3", sim.base)).await;
    assert_eq!(status, 404);

    // Duplicate submit: same id, no second report.
    let again = submit(&client, &sim.base, vec![first]).await;
    assert_eq!(again["results"][0]["id"], id1.as_str());
    assert_eq!(again["results"][0]["status"], "accepted");
    // Its report would be queued by the submit itself: once nothing is
    // pending, every report there will ever be has been posted.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = stats(&client, &sim.base).await;
        if s["duplicate_submits"] == 1 && s["pending_reports"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the duplicate submit left reports pending: {s}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(receiver.reports().len(), 2);
    let (_, stored) = get_json(&client, format!("{}/messages/r1", sim.base)).await;
    assert_eq!(stored["submits"], 2);

    let s = stats(&client, &sim.base).await;
    assert_eq!(s["submits"], 4);
    assert_eq!(s["accepted"], 2);
    assert_eq!(s["rejected"], 1);
    assert_eq!(s["duplicate_submits"], 1);
    assert_eq!(s["delivered_reports"], 1);
    assert_eq!(s["failed_reports"], 1);
    assert_eq!(s["report_post_failures"], 0);
    assert_eq!(s["pending_reports"], 0);

    // Malformed bodies are 400, whether bad syntax or bad shape.
    for body in ["{not json", r#"{"messages":[{"ref":"x"}]}"#] {
        let response = client
            .post(format!("{}/submit", sim.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    let health = client.get(format!("{}/healthz", sim.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    // Reset forgets counters and refs.
    let response = client.post(format!("{}/stats/reset", sim.base)).send().await.unwrap();
    assert!(response.status().is_success());
    let s = stats(&client, &sim.base).await;
    assert_eq!(s["submits"], 0);
    assert_eq!(s["duplicate_submits"], 0);
    let (status, _) = get_json(&client, format!("{}/messages/r1", sim.base)).await;
    assert_eq!(status, 404);

    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn failed_report_posts_are_retried() {
    let (dlr_url, receiver) = Receiver::start(2).await;
    let sim = Simulator::start(SimulatorConfig {
        dlr_url: Some(dlr_url),
        dlr_latency: Duration::from_millis(10),
        ..SimulatorConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    let response = submit(&client, &sim.base, vec![msg("a", "628111", "x")]).await;
    let id = response["results"][0]["id"].as_str().unwrap().to_owned();

    let reports = receiver.wait_for(1).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["id"], id.as_str());
    assert_eq!(receiver.posts.load(Ordering::SeqCst), 3);
    let s = stats(&client, &sim.base).await;
    assert_eq!(s["report_posts"], 3);
    assert_eq!(s["report_post_failures"], 2);
    assert_eq!(s["delivered_reports"], 1);
    assert_eq!(s["pending_reports"], 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn per_connection_limit_delays_instead_of_rejecting() {
    let sim = Simulator::start(SimulatorConfig { per_connection_mps: Some(50), ..SimulatorConfig::default() }).await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    for i in 0..100 {
        let response = submit(&client, &sim.base, vec![msg(&format!("m{i}"), "628111", "x")]).await;
        assert_eq!(response["results"][0]["status"], "accepted");
    }
    let elapsed = started.elapsed();
    assert!(elapsed > Duration::from_secs(1), "{elapsed:?}");
    let s = stats(&client, &sim.base).await;
    assert_eq!(s["accepted"], 100);
    assert_eq!(s["rejected"], 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn batch_is_processed_in_order_with_unique_ids() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let client = reqwest::Client::new();
    let messages = (0..2000).map(|i| msg(&format!("b{i}"), "628111", &format!("text {i}"))).collect();
    let response = submit(&client, &sim.base, messages).await;
    let results = response["results"].as_array().unwrap();
    assert_eq!(results.len(), 2000);
    let mut ids = std::collections::HashSet::new();
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["ref"], format!("b{i}"));
        assert!(ids.insert(result["id"].as_str().unwrap().to_owned()));
    }
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_drains_pending_reports() {
    let (dlr_url, receiver) = Receiver::start(0).await;
    let sim = Simulator::start(SimulatorConfig {
        dlr_url: Some(dlr_url),
        dlr_latency: Duration::from_millis(300),
        dlr_batch_linger: Duration::from_millis(200),
        ..SimulatorConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    let messages = (0..50).map(|i| msg(&format!("d{i}"), "628111", "x")).collect();
    submit(&client, &sim.base, messages).await;
    // The keep-alive connection stays open: graceful shutdown must close it, not wait on it.
    assert!(receiver.reports().is_empty());

    let started = Instant::now();
    sim.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(receiver.reports().len(), 50);
}

#[tokio::test]
async fn drain_gives_up_after_the_deadline() {
    let (dlr_url, receiver) = Receiver::start(usize::MAX).await;
    let sim = Simulator::start(SimulatorConfig {
        dlr_url: Some(dlr_url),
        dlr_latency: Duration::from_millis(1),
        ..SimulatorConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    submit(&client, &sim.base, vec![msg("z", "628111", "x")]).await;
    drop(client);
    let started = Instant::now();
    sim.shutdown().await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(7), "{elapsed:?}");
    assert!(receiver.reports().is_empty());
    assert!(receiver.posts.load(Ordering::SeqCst) >= 2);
}

/// Rough throughput probe: `cargo test -p smsfleet-simulator -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn throughput() {
    let (dlr_url, receiver) = Receiver::start(0).await;
    let sim = Simulator::start(SimulatorConfig { dlr_url: Some(dlr_url), ..SimulatorConfig::default() }).await;
    let client = reqwest::Client::new();
    let total = 200_000usize;
    let batch = 500usize;
    let concurrency = 8usize;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, base) = (client.clone(), sim.base.clone());
        tasks.push(tokio::spawn(async move {
            for b in (worker..total / batch).step_by(concurrency) {
                let messages =
                    (0..batch).map(|i| msg(&format!("t{}", b * batch + i), "628111000001", "benchmark text")).collect();
                submit(&client, &base, messages).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let submit_elapsed = started.elapsed();
    let reports = receiver.wait_for(total).await.len();
    println!(
        "submitted {total} in {submit_elapsed:?} ({:.0} msg/s); {reports} reports after {:?}",
        total as f64 / submit_elapsed.as_secs_f64(),
        started.elapsed()
    );
    sim.shutdown().await.unwrap();
}
