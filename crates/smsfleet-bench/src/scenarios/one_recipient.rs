//! One-recipient `pv` with every role running and consuming (issue 13):
//! what a user of codes, alerts and transactional traffic sees. `burst`
//! measures the accept side of a 10 s burst and then how long the backlog
//! takes to be delivered; `transactional` measures a steady stream from
//! accept to delivered. Both run with one process per role and with
//! `smsfleet all` (the `-all` scenarios).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use smsfleet_loadgen::{CheckResponse, Pace, Plan, connect_many, run};

use crate::fleet::Fleet;

use super::pipeline::{curve_latency_ms, send_and_track};
use super::{Ceilings, ScenarioResult, Sizes, at_least, below, ensure_no_failures, pv_ok, ratio, single_pv};

/// Every accepted message was delivered and is in the projection (what `ds`
/// reads), and the upstream accepted each exactly once.
async fn delivered_exactly_once(fleet: &Fleet, accepted: u64, timeout: Duration) -> anyhow::Result<Instant> {
    let at = fleet.wait_delivered(accepted, timeout).await?;
    let delivered = fleet.delivered().await?;
    ensure!(delivered == accepted, "{delivered} messages delivered for {accepted} accepted");
    let stats = fleet.sim_stats().await?;
    let stat = |key: &str| stats.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0);
    ensure!(stat("accepted") == accepted, "the simulator accepted {} messages for {accepted}", stat("accepted"));
    ensure!(stat("duplicate_submits") == 0, "messages were submitted twice: {stats}");
    Ok(at)
}

/// The mean of a histogram or summary in Prometheus text (`_sum / _count`,
/// all label sets together); `None` when it was never recorded.
pub fn metric_mean(text: &str, name: &str) -> Option<f64> {
    let total = |suffix: &str| -> f64 {
        let series = format!("{name}{suffix}");
        text.lines()
            .filter(|l| l.split([' ', '{']).next() == Some(series.as_str()))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let count = total("_count");
    (count > 0.0).then(|| total("_sum") / count)
}

/// What the ingress saw of its group commit during the scenario: mean
/// submissions per SUBMIT publish and mean publish-to-PubAck time, the two
/// factors of the accept rate (issue 13.2).
pub(super) async fn group_commit_figures(fleet: &Fleet, result: &mut ScenarioResult) {
    let process = if fleet.single_process { "all" } else { "ingress" };
    let Ok(text) = fleet.metrics_text(process).await else { return };
    if let Some(size) = metric_mean(&text, "smsfleet_ingress_submit_batch_size") {
        result.metrics.insert("mean_submissions_per_publish".into(), size);
    }
    if let Some(secs) = metric_mean(&text, "smsfleet_ingress_submit_store_seconds") {
        result.metrics.insert("mean_publish_to_puback_ms".into(), secs * 1000.0);
    }
}

/// `ds` answers with a delivered message: the projection is what users read.
pub(super) async fn ds_shows_delivered(fleet: &Fleet) -> anyhow::Result<()> {
    let ds = reqwest::Client::new()
        .get(format!("{}/index.php", fleet.ingress))
        .query(&[("app", "ws"), ("u", "bench"), ("h", fleet.token.as_str()), ("op", "ds"), ("count", "1")])
        .send()
        .await?
        .text()
        .await?;
    ensure!(ds.contains("\"status\":3"), "ds does not show a delivered message: {ds}");
    Ok(())
}

pub(super) async fn burst(
    fleet: &mut Fleet,
    sizes: &Sizes,
    ceilings: &Ceilings,
    result: &mut ScenarioResult,
) -> anyhow::Result<()> {
    let accepted = Arc::new(AtomicU64::new(0));
    let counted = accepted.clone();
    let ok = pv_ok();
    let counting: CheckResponse = Arc::new(move |status, body| {
        let good = ok(status, body);
        if good {
            counted.fetch_add(1, Ordering::Relaxed);
        }
        good
    });
    let workers = connect_many(&fleet.ingress, sizes.connections, single_pv(&fleet.token), counting).await?;
    let started = Instant::now();
    let report = run(workers, Plan { total: u64::MAX, pace: Pace::ClosedFor { secs: sizes.burst_secs } }).await;
    let burst_over = Instant::now();
    ensure_no_failures("burst", &report)?;
    group_commit_figures(fleet, result).await;
    let accepted = accepted.load(Ordering::Relaxed);
    let timeout = Duration::from_secs(sizes.deliver_timeout_secs);
    let delivered_at = delivered_exactly_once(fleet, accepted, timeout).await?;
    ds_shows_delivered(fleet).await?;
    let rps = report.per_second;
    let backlog_secs = delivered_at.saturating_duration_since(burst_over).as_secs_f64();
    let m = &mut result.metrics;
    m.insert("accepted".into(), accepted as f64);
    m.insert("requests_per_s".into(), rps);
    m.insert("p50_ms".into(), report.latency.p50_ms);
    m.insert("p99_ms".into(), report.latency.p99_ms);
    m.insert("p999_ms".into(), report.latency.p999_ms);
    m.insert("backlog_delivered_after_s".into(), backlog_secs);
    m.insert("all_delivered_s".into(), delivered_at.duration_since(started).as_secs_f64());
    result.goals.push(at_least("requests/s accepted with every role consuming", rps, 25_000.0));
    result.goals.push(below("p99 ms", report.latency.p99_ms, 20.0));
    if let Some(r) = ratio(rps, ceilings.jetstream) {
        result.metrics.insert("ratio_to_ceiling_jetstream".into(), r);
        result.goals.push(at_least("ratio to ceiling-jetstream", r, 0.2));
    }
    if let Some(r) = ratio(rps, ceilings.http) {
        result.metrics.insert("ratio_to_ceiling_http".into(), r);
    }
    result.runs.insert("burst".into(), report);
    Ok(())
}

pub(super) async fn transactional(
    fleet: &mut Fleet,
    sizes: &Sizes,
    ceilings: &Ceilings,
    result: &mut ScenarioResult,
) -> anyhow::Result<()> {
    let total = sizes.transactional_messages;
    let timeout = Duration::from_secs(sizes.deliver_timeout_secs);
    let t = send_and_track(fleet, total, 1, sizes.connections, timeout).await?;
    group_commit_figures(fleet, result).await;
    delivered_exactly_once(fleet, total, timeout).await?;
    ds_shows_delivered(fleet).await?;
    let latency = curve_latency_ms(&t.samples, total, &[0.5, 0.99]);
    let delivered_per_s = total as f64 / t.all_delivered.as_secs_f64();
    let accepted_per_s = total as f64 / t.all_accepted.as_secs_f64();
    let m = &mut result.metrics;
    m.insert("messages".into(), total as f64);
    m.insert("accepted_per_s".into(), accepted_per_s);
    m.insert("messages_per_s".into(), delivered_per_s);
    m.insert("accept_to_delivered_p50_ms".into(), latency[0]);
    m.insert("accept_to_delivered_p99_ms".into(), latency[1]);
    if let Some(r) = ratio(accepted_per_s, ceilings.jetstream) {
        result.metrics.insert("ratio_to_ceiling_jetstream".into(), r);
    }
    if let Some(r) = ratio(accepted_per_s, ceilings.http) {
        result.metrics.insert("ratio_to_ceiling_http".into(), r);
    }
    result.goals.push(at_least("one-recipient messages/s delivered and in ds", delivered_per_s, 10_000.0));
    result.runs.insert("accept".into(), t.report);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::metric_mean;

    #[test]
    fn the_mean_is_sum_over_count_across_label_sets() {
        let text = "# TYPE smsfleet_ingress_submit_batch_size summary\n\
                    smsfleet_ingress_submit_batch_size{quantile=\"0.5\"} 9\n\
                    smsfleet_ingress_submit_batch_size_sum 95\n\
                    smsfleet_ingress_submit_batch_size_count 10\n\
                    smsfleet_ingress_submit_store_seconds_sum{a=\"1\"} 0.01\n\
                    smsfleet_ingress_submit_store_seconds_count{a=\"1\"} 2\n\
                    smsfleet_ingress_submit_store_seconds_sum{a=\"2\"} 0.03\n\
                    smsfleet_ingress_submit_store_seconds_count{a=\"2\"} 2\n";
        assert_eq!(metric_mean(text, "smsfleet_ingress_submit_batch_size"), Some(9.5));
        let secs = metric_mean(text, "smsfleet_ingress_submit_store_seconds").unwrap();
        assert!((secs - 0.01).abs() < 1e-12);
        assert_eq!(metric_mean(text, "smsfleet_nothing"), None);
    }
}
