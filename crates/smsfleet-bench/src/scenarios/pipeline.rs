//! The scenarios with every role running: end to end, the campaign and
//! scale-out, measured from accept until the projection shows delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use smsfleet_loadgen::RunReport;

use crate::fleet::Fleet;

use super::{ScenarioResult, Sizes, at_least, below, send_messages};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sample {
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

pub(super) struct Tracked {
    pub report: RunReport,
    pub all_accepted: Duration,
    pub all_delivered: Duration,
    pub samples: Vec<Sample>,
}

/// Sends `total` messages while sampling accepted and delivered counts
/// every 200 ms, until all are delivered in the projection.
pub(super) async fn send_and_track(
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

pub(super) async fn end_to_end(fleet: &mut Fleet, sizes: &Sizes, result: &mut ScenarioResult) -> anyhow::Result<()> {
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

pub(super) async fn campaign(fleet: &mut Fleet, sizes: &Sizes, result: &mut ScenarioResult) -> anyhow::Result<()> {
    let total = sizes.campaign_recipients;
    let timeout = Duration::from_secs(sizes.deliver_timeout_secs);
    let t = send_and_track(fleet, total, 1_000, sizes.connections.min(16), timeout).await?;
    let (accepted, delivered) = (t.all_accepted.as_secs_f64(), t.all_delivered.as_secs_f64());
    // Visible in ds: the query role answers from the projection.
    super::one_recipient::ds_shows_delivered(fleet).await?;
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

pub(super) async fn scale_out(fleet: &mut Fleet, sizes: &Sizes, result: &mut ScenarioResult) -> anyhow::Result<()> {
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
