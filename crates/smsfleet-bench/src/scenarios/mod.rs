//! The scenarios of the benchmark (see docs/benchmark.md). Each returns its
//! figures; only functional failures (lost or duplicated messages, failed
//! requests, a crashed process) are errors. Timings are never asserted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::ensure;
use bytes::Bytes;
use smsfleet_loadgen::{CheckResponse, MakeRequest, Method, Pace, Plan, RequestSpec, RunReport, connect_many, run};

use crate::fleet::{Fleet, FleetSpec, Infra};
use crate::procs::{self, Usage};

mod ceilings;
mod one_recipient;
mod pipeline;
mod smpp;

pub use ceilings::serve_fixed;
use ceilings::{ceiling_http, ceiling_jetstream};
use one_recipient::{burst, group_commit_figures, transactional};
use pipeline::{campaign, end_to_end, scale_out};
pub use smpp::PASSWORD as SMPP_PASSWORD;

pub const ALL: [&str; 12] = [
    "ceiling-jetstream",
    "ceiling-http",
    "ingress-pv",
    "bulk-pv",
    "burst",
    "burst-all",
    "transactional",
    "transactional-all",
    "end-to-end",
    "campaign",
    "scale-out",
    "smpp",
];

/// Scenarios whose figures are read against the ceilings of the same run.
const COMPARED_WITH_CEILINGS: [&str; 5] = ["ingress-pv", "burst", "burst-all", "transactional", "transactional-all"];

/// The scenarios to run: `names` with the ceilings put first when a
/// scenario compared with them is chosen alone, so the ratios are always
/// from the same run.
pub fn with_ceilings(mut names: Vec<String>) -> Vec<String> {
    if names.iter().any(|n| COMPARED_WITH_CEILINGS.contains(&n.as_str())) {
        for ceiling in ["ceiling-http", "ceiling-jetstream"] {
            if !names.iter().any(|n| n == ceiling) {
                names.insert(0, ceiling.to_owned());
            }
        }
    }
    names
}

/// `smsfleet all` instead of one process per role.
fn single_process(name: &str) -> bool {
    name.ends_with("-all")
}

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
    /// How long the one-recipient burst sends.
    pub burst_secs: f64,
    pub transactional_messages: u64,
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
            burst_secs: 10.0,
            transactional_messages: 100_000,
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
            burst_secs: 1.0,
            transactional_messages: 500,
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
            single_process: false,
        }
    } else if name == "ingress-pv" || name == "bulk-pv" {
        FleetSpec { ingress_only: true, ..FleetSpec::default() }
    } else {
        FleetSpec { single_process: single_process(name), ..FleetSpec::default() }
    };
    let mut fleet = Fleet::start(infra, &spec).await?;
    let mut watched = infra.watched();
    watched.extend(fleet.watched());
    let baseline = procs::start(&watched);
    let mut outcome = match name {
        "ingress-pv" => ingress_pv(&mut fleet, sizes, ceilings, result).await,
        "bulk-pv" => bulk_pv(&mut fleet, sizes, result).await,
        "end-to-end" => end_to_end(&mut fleet, sizes, result).await,
        "burst" | "burst-all" => burst(&mut fleet, sizes, ceilings, result).await,
        "transactional" | "transactional-all" => transactional(&mut fleet, sizes, ceilings, result).await,
        "campaign" => campaign(&mut fleet, sizes, result).await,
        "smpp" => smpp::smpp_submit(&mut fleet, sizes, ceilings, result).await,
        _ => scale_out(&mut fleet, sizes, result).await,
    };
    // A dispatcher started during the scenario is accounted from its start.
    let mut watched = infra.watched();
    watched.extend(fleet.watched());
    result.usage = procs::finish(&watched, &baseline);
    let infra_names: Vec<String> = infra.watched().into_iter().map(|w| w.name).collect();
    // `smsfleet all` is one process with the simulator in it: no per-role figure.
    let largest_role = result
        .usage
        .iter()
        // The simulator stands in for the operator's SMSC, not a gateway
        // role; it remembers up to two million message refs on purpose, to
        // catch a message sent twice. Its memory is still in the report.
        .filter(|u| !infra_names.contains(&u.name) && u.name != "simulator" && u.name != "all")
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
    // The same figures as burst's, without consumers: the difference is
    // what the running pipeline costs the accept path.
    group_commit_figures(fleet, result).await;
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
#[cfg(test)]
mod tests {
    use super::*;

    use super::pipeline::{Sample, curve_latency_ms};

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
    fn scenarios_read_against_the_ceilings_bring_them_along() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(with_ceilings(names(&["burst"])), names(&["ceiling-jetstream", "ceiling-http", "burst"]));
        assert_eq!(
            with_ceilings(names(&["ceiling-http", "burst-all"])),
            names(&["ceiling-jetstream", "ceiling-http", "burst-all"])
        );
        assert_eq!(with_ceilings(names(&["campaign"])), names(&["campaign"]));
        assert!(ALL.iter().all(|n| !single_process(n) || ALL.contains(&n.trim_end_matches("-all"))));
    }

    #[test]
    fn bulk_requests_use_distinct_numbers() {
        let make = multi_pv("t", 3);
        let body = |i| String::from_utf8(make(i).body.to_vec()).unwrap_or_default();
        assert_eq!(body(0), "to=620000000000%2C620000000001%2C620000000002");
        assert_eq!(body(1), "to=620000000003%2C620000000004%2C620000000005");
    }
}
