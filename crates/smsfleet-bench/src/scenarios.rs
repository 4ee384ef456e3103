//! The scenarios of the benchmark (see docs/benchmark.md). Each returns its
//! figures; only functional failures (lost or duplicated messages, failed
//! requests, a crashed process) are errors. Timings are never asserted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use smsfleet_loadgen::{
    CheckResponse, MakeRequest, Method, Outcome, Pace, Plan, RequestSpec, RunReport, Worker, connect_many, run,
};

use crate::fleet::{Fleet, FleetSpec, Infra};
use crate::procs::{self, Usage};

pub const ALL: [&str; 7] =
    ["ceiling-jetstream", "ceiling-http", "ingress-pv", "bulk-pv", "end-to-end", "campaign", "scale-out"];

/// Counts for one run: the full benchmark or the CI smoke.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sizes {
    pub connections: usize,
    pub single_requests: u64,
    pub open_rate: f64,
    pub open_secs: f64,
    pub bulk_requests: u64,
    pub bulk_recipients: usize,
    pub e2e_messages: u64,
    pub campaign_recipients: u64,
    pub scale_messages: u64,
    pub scale_per_connection_mps: u32,
    pub deliver_timeout_secs: u64,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            connections: 64,
            single_requests: 200_000,
            open_rate: 30_000.0,
            open_secs: 5.0,
            bulk_requests: 200,
            bulk_recipients: 1_000,
            e2e_messages: 100_000,
            campaign_recipients: 1_000_000,
            scale_messages: 10_000,
            scale_per_connection_mps: 500,
            deliver_timeout_secs: 600,
        }
    }

    pub fn smoke() -> Sizes {
        Sizes {
            connections: 8,
            single_requests: 2_000,
            open_rate: 500.0,
            open_secs: 1.0,
            bulk_requests: 5,
            bulk_recipients: 1_000,
            e2e_messages: 1_000,
            campaign_recipients: 5_000,
            scale_messages: 400,
            scale_per_connection_mps: 200,
            deliver_timeout_secs: 120,
        }
    }
}

/// One goal of the issue, checked against a measured value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Goal {
    pub what: String,
    pub value: f64,
    pub met: bool,
}

fn at_least(what: &str, value: f64, target: f64) -> Goal {
    Goal { what: format!("{what} ≥ {target}"), value, met: value >= target }
}

fn below(what: &str, value: f64, target: f64) -> Goal {
    Goal { what: format!("{what} < {target}"), value, met: value < target }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScenarioResult {
    pub name: String,
    /// Headline figures, e.g. `requests_per_s`, `ratio_to_ceiling_jetstream`.
    pub metrics: BTreeMap<String, f64>,
    /// Load-generator runs, each with its per-second series (for the chart).
    pub runs: BTreeMap<String, RunReport>,
    pub usage: Vec<Usage>,
    pub goals: Vec<Goal>,
    pub error: Option<String>,
}

/// What scenarios measured earlier in the same run (the ceilings).
#[derive(Default)]
pub struct Ceilings {
    pub jetstream: Option<f64>,
    pub http: Option<f64>,
}

/// Roughly the size of a single-recipient `pv` submission as the ingress
/// publishes it (a `SubmitBatch` of one, JSON, plus headers); an estimate
/// from the contract's fields, not measured per run. The JetStream ceiling
/// publishes this many bytes.
pub const SUBMISSION_BYTES: usize = 560;

fn pv_query(token: &str, to: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("app", "ws")
        .append_pair("u", "bench")
        .append_pair("h", token)
        .append_pair("op", "pv")
        .append_pair("msg", "bench message");
    if !to.is_empty() {
        q.append_pair("to", to);
    }
    q.finish()
}

fn single_pv(token: &str) -> MakeRequest {
    let token = token.to_owned();
    Arc::new(move |i| RequestSpec {
        method: Method::Get,
        path_and_query: format!("/index.php?{}", pv_query(&token, &format!("628{i:09}"))),
        body: Bytes::new(),
        content_type: None,
    })
}

/// `pv` with `recipients` destinations in a form body; request `i` sends to
/// numbers no other request uses.
fn multi_pv(token: &str, recipients: usize) -> MakeRequest {
    let path = format!("/index.php?{}", pv_query(token, ""));
    Arc::new(move |i| {
        let first = i * recipients as u64;
        let to: Vec<String> = (0..recipients as u64).map(|k| format!("62{:010}", first + k)).collect();
        let body = form_urlencoded::Serializer::new(String::new()).append_pair("to", &to.join(",")).finish();
        RequestSpec {
            method: Method::Post,
            path_and_query: path.clone(),
            body: Bytes::from(body),
            content_type: Some("application/x-www-form-urlencoded"),
        }
    })
}

/// pv answers 200 with one `"status":"OK"` entry per destination.
fn pv_ok() -> CheckResponse {
    Arc::new(|status, body| {
        status == 200 && {
            let text = String::from_utf8_lossy(body);
            text.contains("\"OK\"") && !text.contains("\"ERR\"")
        }
    })
}

fn ensure_no_failures(label: &str, r: &RunReport) -> anyhow::Result<()> {
    ensure!(r.failed == 0, "{label}: {} of {} requests failed", r.failed, r.failed + r.ok);
    Ok(())
}

/// Runs one scenario by name with resource accounting around it.
pub async fn run_scenario(name: &str, infra: &mut Infra, sizes: &Sizes, ceilings: &mut Ceilings) -> ScenarioResult {
    let mut result = ScenarioResult { name: name.to_owned(), ..Default::default() };
    let outcome = match name {
        "ceiling-jetstream" => ceiling_jetstream(infra, sizes, &mut result).await,
        "ceiling-http" => ceiling_http(infra, sizes, &mut result).await,
        _ if ALL.contains(&name) => fleet_scenario(name, infra, sizes, ceilings, &mut result).await,
        other => Err(anyhow::anyhow!("unknown scenario {other:?}; known: {}", ALL.join(", "))),
    };
    if name == "ceiling-jetstream" {
        ceilings.jetstream = result.metrics.get("requests_per_s").copied();
    }
    if name == "ceiling-http" {
        ceilings.http = result.metrics.get("requests_per_s").copied();
    }
    if let Err(e) = outcome {
        result.error = Some(format!("{e:#}"));
    }
    result
}

/// Starts a fresh fleet, runs the scenario on it, stops it.
async fn fleet_scenario(
    name: &str,
    infra: &mut Infra,
    sizes: &Sizes,
    ceilings: &Ceilings,
    result: &mut ScenarioResult,
) -> anyhow::Result<()> {
    let spec = if name == "scale-out" {
        FleetSpec {
            sim_env: vec![
                ("SMSFLEET_SIM_DLR_LATENCY_MS", "10".into()),
                ("SMSFLEET_SIM_PER_CONNECTION_MPS", sizes.scale_per_connection_mps.to_string()),
            ],
            route_params: "inflight=2,batch=50".into(),
            dispatchers: 1,
            ingress_only: false,
        }
    } else if name == "ingress-pv" || name == "bulk-pv" {
        FleetSpec { ingress_only: true, ..FleetSpec::default() }
    } else {
        FleetSpec::default()
    };
    let mut fleet = Fleet::start(infra, &spec).await?;
    let mut watched = infra.watched();
    watched.extend(fleet.watched());
    let baseline = procs::start(&watched);
    let mut outcome = match name {
        "ingress-pv" => ingress_pv(&mut fleet, sizes, ceilings, result).await,
        "bulk-pv" => bulk_pv(&mut fleet, sizes, result).await,
        "end-to-end" => end_to_end(&mut fleet, sizes, result).await,
        "campaign" => campaign(&mut fleet, sizes, result).await,
        _ => scale_out(&mut fleet, sizes, result).await,
    };
    // A dispatcher started during the scenario is accounted from its start.
    let mut watched = infra.watched();
    watched.extend(fleet.watched());
    result.usage = procs::finish(&watched, &baseline);
    let infra_names: Vec<String> = infra.watched().into_iter().map(|w| w.name).collect();
    let largest_role = result
        .usage
        .iter()
        // The simulator stands in for the operator's SMSC, not a gateway
        // role; it remembers up to two million message refs on purpose, to
        // catch a message sent twice. Its memory is still in the report.
        .filter(|u| !infra_names.contains(&u.name) && u.name != "simulator")
        .max_by(|a, b| a.peak_rss_mb.total_cmp(&b.peak_rss_mb));
    if let Some(u) = largest_role {
        result.goals.push(below(
            &format!("peak RSS MB of every gateway role (largest: {})", u.name),
            u.peak_rss_mb,
            150.0,
        ));
    }
    if outcome.is_ok() {
        outcome = fleet.check_alive();
    }
    fleet.stop().await;
    outcome
}

struct JetStreamWorker {
    js: async_nats::jetstream::Context,
    subject: String,
    payload: Bytes,
}

impl Worker for JetStreamWorker {
    async fn call(&mut self, index: u64) -> Outcome {
        let msg = async_nats::jetstream::message::PublishMessage::build()
            .payload(self.payload.clone())
            .message_id(format!("c{index}"));
        match self.js.send_publish(self.subject.clone(), msg).await {
            Ok(ack) => match ack.await {
                Ok(_) => Outcome::Ok,
                Err(_) => Outcome::Failed,
            },
            Err(_) => Outcome::Failed,
        }
    }
}

/// Raw JetStream publishes with acks: a file-stored stream like the
/// submit stream, one message (with a Nats-Msg-Id) per request, the same
/// concurrency as ingress-pv, on one connection as the ingress has.
async fn ceiling_jetstream(infra: &mut Infra, sizes: &Sizes, result: &mut ScenarioResult) -> anyhow::Result<()> {
    let client = async_nats::connect(infra.nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let stream = "BENCH_CEILING";
    let _ = js.delete_stream(stream).await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream.into(),
        subjects: vec!["benchceiling.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("creating the ceiling stream: {e}"))?;
    let payload = Bytes::from(vec![b'x'; SUBMISSION_BYTES]);
    let workers: Vec<JetStreamWorker> = (0..sizes.connections)
        .map(|_| JetStreamWorker { js: js.clone(), subject: "benchceiling.submit".into(), payload: payload.clone() })
        .collect();
    let watched = infra.watched();
    let baseline = procs::start(&watched);
    let report = run(workers, Plan { total: sizes.single_requests, pace: Pace::Closed }).await;
    result.usage = procs::finish(&watched, &baseline);
    let _ = js.delete_stream(stream).await;
    ensure_no_failures("ceiling-jetstream", &report)?;
    result.metrics.insert("requests_per_s".into(), report.per_second);
    result.runs.insert("closed".into(), report);
    Ok(())
}

/// The same HTTP stack as the ingress (axum on hyper, multi-threaded tokio)
/// in its own process, answering every request with a fixed pv-like body.
async fn ceiling_http(infra: &mut Infra, sizes: &Sizes, result: &mut ScenarioResult) -> anyhow::Result<()> {
    let port = smsfleet_localinfra::free_port()?;
    let mut server = tokio::process::Command::new(std::env::current_exe()?)
        .args(["serve-fixed", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the fixed-body server")?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            bail!("fixed-body server did not listen");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut watched = infra.watched();
    if let Some(pid) = server.id() {
        watched.push(procs::Watched { name: "fixed-body-server".into(), pid, with_children: false });
    }
    let workers = connect_many(&base, sizes.connections, single_pv("0123456789abcdef"), pv_ok()).await?;
    let baseline = procs::start(&watched);
    let report = run(workers, Plan { total: sizes.single_requests, pace: Pace::Closed }).await;
    result.usage = procs::finish(&watched, &baseline);
    let _ = server.start_kill();
    let _ = server.wait().await;
    ensure_no_failures("ceiling-http", &report)?;
    result.metrics.insert("requests_per_s".into(), report.per_second);
    result.runs.insert("closed".into(), report);
    Ok(())
}

/// The fixed body: the shape of a one-destination pv answer.
pub const FIXED_BODY: &str = r#"{"data":[{"status":"OK","error":"0","smslog_id":"1","queue":"0123456789abcdef0123456789abcdef","to":"628000000000"}],"error_string":null,"timestamp":1700000000}"#;

/// Serves FIXED_BODY on every path until killed (ceiling-http's server).
pub async fn serve_fixed(listen: &str) -> anyhow::Result<()> {
    let app = axum::Router::new()
        .fallback(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json; charset=utf-8")], FIXED_BODY) });
    // Set up as the ingress sets up its listener.
    let listener = axum::serve::ListenerExt::tap_io(tokio::net::TcpListener::bind(listen).await?, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

fn ratio(value: f64, ceiling: Option<f64>) -> Option<f64> {
    ceiling.filter(|c| *c > 0.0).map(|c| value / c)
}

async fn ingress_pv(
    fleet: &mut Fleet,
    sizes: &Sizes,
    ceilings: &Ceilings,
    result: &mut ScenarioResult,
) -> anyhow::Result<()> {
    let workers = connect_many(&fleet.ingress, sizes.connections, single_pv(&fleet.token), pv_ok()).await?;
    let closed = run(workers, Plan { total: sizes.single_requests, pace: Pace::Closed }).await;
    ensure_no_failures("ingress-pv closed loop", &closed)?;
    let rps = closed.per_second;
    result.metrics.insert("requests_per_s".into(), rps);
    result.metrics.insert("closed_p99_ms".into(), closed.latency.p99_ms);
    let vs_js = ratio(rps, ceilings.jetstream);
    let vs_http = ratio(rps, ceilings.http);
    if let Some(r) = vs_js {
        result.metrics.insert("ratio_to_ceiling_jetstream".into(), r);
    }
    if let Some(r) = vs_http {
        result.metrics.insert("ratio_to_ceiling_http".into(), r);
    }
    // Open loop at the goal rate: latency as a client at that rate sees it.
    let offset = sizes.single_requests;
    let make = single_pv(&fleet.token);
    let shifted: MakeRequest = Arc::new(move |i| make(offset + i));
    let workers = connect_many(&fleet.ingress, sizes.connections, shifted, pv_ok()).await?;
    let total = (sizes.open_rate * sizes.open_secs) as u64;
    let open = run(workers, Plan { total, pace: Pace::Open { per_second: sizes.open_rate } }).await;
    ensure_no_failures("ingress-pv open loop", &open)?;
    result.metrics.insert("open_rate_per_s".into(), sizes.open_rate);
    result.metrics.insert("open_p99_ms".into(), open.latency.p99_ms);
    result.goals.push(at_least("requests/s", rps, 30_000.0));
    result.goals.push(below(&format!("p99 ms at {} req/s open loop", sizes.open_rate), open.latency.p99_ms, 10.0));
    if let Some(r) = vs_js {
        result.goals.push(at_least("ratio to ceiling-jetstream", r, 0.35));
    }
    result.runs.insert("closed".into(), closed);
    result.runs.insert("open".into(), open);
    Ok(())
}

async fn bulk_pv(fleet: &mut Fleet, sizes: &Sizes, result: &mut ScenarioResult) -> anyhow::Result<()> {
    let connections = sizes.connections.min(16);
    let workers =
        connect_many(&fleet.ingress, connections, multi_pv(&fleet.token, sizes.bulk_recipients), pv_ok()).await?;
    let report = run(workers, Plan { total: sizes.bulk_requests, pace: Pace::Closed }).await;
    ensure_no_failures("bulk-pv", &report)?;
    result.metrics.insert("requests_per_s".into(), report.per_second);
    result.metrics.insert("recipients_per_s".into(), report.per_second * sizes.bulk_recipients as f64);
    result.metrics.insert("connections".into(), connections as f64);
    result.runs.insert("closed".into(), report);
    Ok(())
}

/// Sends `messages` in pv calls of `per_request` destinations over
/// `connections`; counts accepted destinations into `accepted`.
async fn send_messages(
    fleet: &Fleet,
    messages: u64,
    per_request: usize,
    connections: usize,
    first_request: u64,
    accepted: Arc<AtomicU64>,
) -> anyhow::Result<RunReport> {
    let make = multi_pv(&fleet.token, per_request);
    let shifted: MakeRequest = Arc::new(move |i| make(first_request + i));
    let ok = pv_ok();
    let counting: CheckResponse = Arc::new(move |status, body| {
        let good = ok(status, body);
        if good {
            accepted.fetch_add(per_request as u64, Ordering::Relaxed);
        }
        good
    });
    let workers = connect_many(&fleet.ingress, connections, shifted, counting).await?;
    let requests = messages.div_ceil(per_request as u64);
    let report = run(workers, Plan { total: requests, pace: Pace::Closed }).await;
    ensure_no_failures("pv", &report)?;
    Ok(report)
}

/// Accepted and delivered counts at one instant (seconds since the start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: f64,
    pub accepted: u64,
    pub delivered: u64,
}

/// Accept-to-delivered latency percentiles (ms) from the accepted and
/// delivered curves, taking messages as delivered in the order accepted
/// (first in, first out): message k was accepted when the accepted count
/// reached k and delivered when the delivered count did. The resolution is
/// the sampling interval.
pub fn curve_latency_ms(samples: &[Sample], total: u64, quantiles: &[f64]) -> Vec<f64> {
    let first = |k: u64, pick: fn(&Sample) -> u64| samples.iter().find(|s| pick(s) >= k).map(|s| s.t);
    let points = total.clamp(1, 1_000);
    let mut latencies: Vec<f64> = (1..=points)
        .filter_map(|i| {
            let k = (i * total).div_ceil(points);
            Some((first(k, |s| s.delivered)? - first(k, |s| s.accepted)?).max(0.0) * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    quantiles
        .iter()
        .map(|q| {
            if latencies.is_empty() {
                return 0.0;
            }
            let idx = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[idx]
        })
        .collect()
}

struct Tracked {
    report: RunReport,
    all_accepted: Duration,
    all_delivered: Duration,
    samples: Vec<Sample>,
}

/// Sends `total` messages while sampling accepted and delivered counts
/// every 200 ms, until all are delivered in the projection.
async fn send_and_track(
    fleet: &Fleet,
    total: u64,
    per_request: usize,
    connections: usize,
    timeout: Duration,
) -> anyhow::Result<Tracked> {
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let send = async {
        let report = send_messages(fleet, total, per_request, connections, 0, accepted.clone()).await?;
        Ok::<_, anyhow::Error>((report, started.elapsed()))
    };
    let sample = async {
        let mut samples = Vec::new();
        loop {
            let delivered = fleet.delivered().await?;
            let t = started.elapsed();
            samples.push(Sample { t: t.as_secs_f64(), accepted: accepted.load(Ordering::Relaxed), delivered });
            if delivered >= total {
                return Ok::<_, anyhow::Error>((samples, t));
            }
            if t > timeout {
                bail!("only {delivered} of {total} messages delivered after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let ((report, all_accepted), (samples, all_delivered)) = tokio::try_join!(send, sample)?;
    Ok(Tracked { report, all_accepted, all_delivered, samples })
}

async fn end_to_end(fleet: &mut Fleet, sizes: &Sizes, result: &mut ScenarioResult) -> anyhow::Result<()> {
    let total = sizes.e2e_messages;
    let timeout = Duration::from_secs(sizes.deliver_timeout_secs);
    let t = send_and_track(fleet, total, 100, 8, timeout).await?;
    let latency = curve_latency_ms(&t.samples, total, &[0.5, 0.99]);
    let delivered_per_s = total as f64 / t.all_delivered.as_secs_f64();
    result.metrics.insert("messages".into(), total as f64);
    result.metrics.insert("accepted_per_s".into(), total as f64 / t.all_accepted.as_secs_f64());
    result.metrics.insert("messages_per_s".into(), delivered_per_s);
    result.metrics.insert("accept_to_delivered_p50_ms".into(), latency[0]);
    result.metrics.insert("accept_to_delivered_p99_ms".into(), latency[1]);
    result.goals.push(at_least("messages/s delivered", delivered_per_s, 10_000.0));
    result.runs.insert("accept".into(), t.report);
    Ok(())
}

async fn campaign(fleet: &mut Fleet, sizes: &Sizes, result: &mut ScenarioResult) -> anyhow::Result<()> {
    let total = sizes.campaign_recipients;
    let timeout = Duration::from_secs(sizes.deliver_timeout_secs);
    let t = send_and_track(fleet, total, 1_000, sizes.connections.min(16), timeout).await?;
    let (accepted, delivered) = (t.all_accepted.as_secs_f64(), t.all_delivered.as_secs_f64());
    // Visible in ds: the query role answers from the projection.
    let ds = reqwest::Client::new()
        .get(format!("{}/index.php", fleet.ingress))
        .query(&[("app", "ws"), ("u", "bench"), ("h", fleet.token.as_str()), ("op", "ds"), ("count", "1")])
        .send()
        .await?
        .text()
        .await?;
    ensure!(ds.contains("\"status\":3"), "ds does not show a delivered message: {ds}");
    let latency = curve_latency_ms(&t.samples, total, &[0.5, 0.99]);
    result.metrics.insert("recipients".into(), total as f64);
    result.metrics.insert("all_accepted_s".into(), accepted);
    result.metrics.insert("all_delivered_s".into(), delivered);
    result.metrics.insert("accepted_per_s".into(), total as f64 / accepted);
    result.metrics.insert("delivered_per_s".into(), total as f64 / delivered);
    result.metrics.insert("accept_to_delivered_p50_ms".into(), latency[0]);
    result.metrics.insert("accept_to_delivered_p99_ms".into(), latency[1]);
    let scale = total as f64 / 1_000_000.0;
    result.goals.push(below(&format!("seconds to accept {total}"), accepted, 15.0 * scale));
    result.goals.push(below(&format!("seconds until {total} delivered and in ds"), delivered, 120.0 * scale));
    result.runs.insert("accept".into(), t.report);
    Ok(())
}

fn stat(v: &serde_json::Value, key: &str) -> u64 {
    v.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

/// Sends `n` messages and measures the upstream's accept rate between 10 %
/// and 90 % of them (steady state: without the first chunk's trip through
/// ingress and ledger, or the last batch's tail).
async fn dispatch_phase(fleet: &Fleet, n: u64, first_request: u64, timeout: Duration) -> anyhow::Result<f64> {
    fleet.reset_sim_stats().await?;
    let started = Instant::now();
    let (low, high) = (n / 10, n * 9 / 10);
    let mut at_low = None;
    let send = send_messages(fleet, n, 100, 8, first_request, Arc::new(AtomicU64::new(0)));
    let watch = async {
        loop {
            let stats = fleet.sim_stats().await?;
            let accepted = stat(&stats, "accepted");
            let now = started.elapsed().as_secs_f64();
            if accepted >= low && at_low.is_none() {
                at_low = Some((now, accepted));
            }
            if accepted >= high
                && let Some((t0, a0)) = at_low
                && now > t0
            {
                return Ok::<_, anyhow::Error>((accepted - a0) as f64 / (now - t0));
            }
            if started.elapsed() > timeout {
                bail!("only {accepted} of {n} messages reached the simulator after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (_, rate) = tokio::try_join!(send, watch)?;
    // Every message reaches the upstream exactly once.
    loop {
        let stats = fleet.sim_stats().await?;
        let accepted = stat(&stats, "accepted");
        if accepted >= n {
            ensure!(accepted == n, "the simulator accepted {accepted} messages for {n} sent");
            ensure!(stat(&stats, "duplicate_submits") == 0, "messages were submitted twice: {stats}");
            return Ok(rate);
        }
        if started.elapsed() > timeout {
            bail!("only {accepted} of {n} messages reached the simulator after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scale_out(fleet: &mut Fleet, sizes: &Sizes, result: &mut ScenarioResult) -> anyhow::Result<()> {
    let n = sizes.scale_messages;
    let timeout = Duration::from_secs(sizes.deliver_timeout_secs);
    let one = dispatch_phase(fleet, n, 0, timeout).await?;
    fleet.wait_delivered(n, timeout).await?;
    fleet.spawn_dispatcher().await?;
    let two = dispatch_phase(fleet, n, n.div_ceil(100), timeout).await?;
    // Every message exactly once: all delivered, none twice at the upstream.
    fleet.wait_delivered(2 * n, timeout).await?;
    result.metrics.insert("one_dispatcher_msgs_per_s".into(), one);
    result.metrics.insert("two_dispatchers_msgs_per_s".into(), two);
    result.metrics.insert("scale_ratio".into(), two / one);
    result.metrics.insert("per_connection_mps_limit".into(), f64::from(sizes.scale_per_connection_mps));
    result.goals.push(at_least("two dispatchers / one", two / one, 1.8));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64, accepted: u64, delivered: u64) -> Sample {
        Sample { t, accepted, delivered }
    }

    #[test]
    fn curve_latency_pairs_the_kth_accept_with_the_kth_delivery() {
        // Everything accepted by 1 s; the first half delivered at 2 s, the rest at 4 s.
        let samples = [s(0.0, 0, 0), s(1.0, 100, 0), s(2.0, 100, 50), s(3.0, 100, 50), s(4.0, 100, 100)];
        let l = curve_latency_ms(&samples, 100, &[0.5, 0.99]);
        assert_eq!(l, vec![1000.0, 3000.0]);
    }

    #[test]
    fn curve_latency_without_deliveries_is_zero() {
        assert_eq!(curve_latency_ms(&[s(0.0, 10, 0)], 10, &[0.5]), vec![0.0]);
    }

    #[test]
    fn bulk_requests_use_distinct_numbers() {
        let make = multi_pv("t", 3);
        let body = |i| String::from_utf8(make(i).body.to_vec()).unwrap_or_default();
        assert_eq!(body(0), "to=620000000000%2C620000000001%2C620000000002");
        assert_eq!(body(1), "to=620000000003%2C620000000004%2C620000000005");
    }
}
