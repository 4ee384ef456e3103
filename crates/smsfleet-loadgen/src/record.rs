//! Latency recording: one precise histogram for the run, and a coarser one
//! per second for the time series (coarser so a long run stays small).

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::{Outcome, RunReport};

/// Longest latency we can record: one hour, in microseconds. Longer ones are
/// clamped, which only matters for a broken run.
const MAX_MICROS: u64 = 3_600_000_000;

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencySummary {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// One second of a run: requests that completed in it and their latencies.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SecondPoint {
    /// Seconds since the start of the run (this point covers `[t, t+1)`).
    pub t: u64,
    pub ok: u64,
    pub failed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

/// Collects outcomes by completion time.
pub struct Recorder {
    all: Histogram<u64>,
    seconds: Vec<(Histogram<u64>, u64)>,
    failed: u64,
}

#[expect(clippy::expect_used, reason = "constant bounds that hdrhistogram always accepts (1..3.6e9, 2 or 3 digits)")]
fn histogram(significant_digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, significant_digits).expect("valid histogram bounds")
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder { all: histogram(3), seconds: Vec::new(), failed: 0 }
    }

    /// Records one request that completed `at` after the start and took `latency`.
    /// Failed requests are counted but not put in the latency histograms.
    pub fn record(&mut self, at: Duration, latency: Duration, outcome: Outcome) {
        let second = at.as_secs() as usize;
        while self.seconds.len() <= second {
            self.seconds.push((histogram(2), 0));
        }
        if outcome == Outcome::Failed {
            self.failed += 1;
            self.seconds[second].1 += 1;
            return;
        }
        let micros = (latency.as_micros() as u64).clamp(1, MAX_MICROS);
        self.all.saturating_record(micros);
        self.seconds[second].0.saturating_record(micros);
    }

    pub fn series(&self) -> Vec<SecondPoint> {
        self.seconds
            .iter()
            .enumerate()
            .map(|(t, (h, failed))| {
                let s = LatencySummary::of(h);
                SecondPoint {
                    t: t as u64,
                    ok: h.len(),
                    failed: *failed,
                    p50_ms: s.p50_ms,
                    p99_ms: s.p99_ms,
                    p999_ms: s.p999_ms,
                }
            })
            .collect()
    }

    pub fn report(&self, elapsed: Duration) -> RunReport {
        let secs = elapsed.as_secs_f64().max(1e-9);
        RunReport {
            ok: self.all.len(),
            failed: self.failed,
            elapsed_secs: elapsed.as_secs_f64(),
            per_second: self.all.len() as f64 / secs,
            latency: LatencySummary::of(&self.all),
            series: self.series(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let mut r = Recorder::new();
        for ms in 1..=1000u64 {
            r.record(Duration::from_millis(10), Duration::from_millis(ms), Outcome::Ok);
        }
        let s = r.report(Duration::from_secs(2)).latency;
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
    }

    #[test]
    fn series_buckets_by_completion_second() {
        let mut r = Recorder::new();
        r.record(Duration::from_millis(100), Duration::from_millis(5), Outcome::Ok);
        r.record(Duration::from_millis(2_500), Duration::from_millis(5), Outcome::Ok);
        r.record(Duration::from_millis(2_900), Duration::from_millis(5), Outcome::Failed);
        let series = r.series();
        assert_eq!(series.len(), 3);
        assert_eq!((series[0].ok, series[0].failed), (1, 0));
        assert_eq!((series[1].ok, series[1].failed), (0, 0));
        assert_eq!((series[2].ok, series[2].failed), (1, 1));
        let report = r.report(Duration::from_secs(4));
        assert_eq!((report.ok, report.failed), (2, 1));
        assert!((report.per_second - 0.5).abs() < 1e-9);
    }

    #[test]
    fn an_empty_run_reports_zeros() {
        let report = Recorder::new().report(Duration::ZERO);
        assert_eq!(report.ok, 0);
        assert_eq!(report.latency, LatencySummary::default());
        assert!(report.series.is_empty());
    }
}
