//! smsfleet-loadgen: the benchmark's load generator.
//!
//! A run is a set of [`Worker`]s (one per keep-alive connection, or one per
//! concurrent JetStream publisher) that take request numbers from a shared
//! counter, so each worker has exactly one request in flight:
//!
//! - closed loop ([`Pace::Closed`]): a worker sends its next request when the
//!   previous one answered; this finds the maximum throughput.
//! - open loop ([`Pace::Open`]): request `i` is due at `i / rate` seconds
//!   after the start, and its latency is measured from that intended time, not
//!   from when a worker got round to sending it. A stalled server therefore
//!   shows up as latency instead of silently lowering the offered load
//!   (coordinated omission).
//!
//! Latencies go to HDR histograms (microseconds): one for the whole run and
//! one per second of the run, for the throughput / percentile time series.

mod http;
mod record;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub use http::{CheckResponse, HttpWorker, MakeRequest, Method, RequestSpec, connect_many};
pub use record::{LatencySummary, Recorder, SecondPoint};

/// Everything that can stop a run from starting.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP handshake with {addr}: {source}")]
    Handshake {
        addr: String,
        #[source]
        source: hyper::Error,
    },
    #[error("invalid target URL {0:?} (expected http://host:port)")]
    Target(String),
}

/// How one request ended. A failed request is counted, not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
}

/// One source of requests with at most one request in flight.
pub trait Worker: Send + 'static {
    /// Performs request number `index` (0-based, unique within a run).
    fn call(&mut self, index: u64) -> impl Future<Output = Outcome> + Send;
}

/// Closed or open loop, see the crate documentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    Closed,
    /// Closed loop that stops sending once `secs` have passed (or `total`
    /// requests were sent): a burst of a fixed length.
    ClosedFor {
        secs: f64,
    },
    Open {
        per_second: f64,
    },
}

/// What to run: how many requests in all, and at what pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub total: u64,
    pub pace: Pace,
}

/// The result of one run, ready to serialize into the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub ok: u64,
    pub failed: u64,
    pub elapsed_secs: f64,
    /// Successful requests per second over the whole run.
    pub per_second: f64,
    pub latency: LatencySummary,
    pub series: Vec<SecondPoint>,
}

/// When request `index` is due in an open-loop run, relative to the start.
pub fn intended_offset(index: u64, per_second: f64) -> Duration {
    if per_second <= 0.0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(index as f64 / per_second)
}

/// Runs `plan` on `workers` and returns once every request has answered.
pub async fn run<W: Worker>(workers: Vec<W>, plan: Plan) -> RunReport {
    let recorder = Arc::new(Mutex::new(Recorder::new()));
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut worker in workers {
        let (recorder, next) = (recorder.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= plan.total {
                    break;
                }
                let sent = match plan.pace {
                    Pace::Closed => Instant::now(),
                    Pace::ClosedFor { secs } => {
                        let now = Instant::now();
                        if (now - start).as_secs_f64() >= secs {
                            break;
                        }
                        now
                    }
                    Pace::Open { per_second } => {
                        let due = start + intended_offset(index, per_second);
                        tokio::time::sleep_until(due).await;
                        due
                    }
                };
                let outcome = worker.call(index).await;
                let done = Instant::now();
                recorder.lock().unwrap_or_else(PoisonError::into_inner).record(done - start, done - sent, outcome);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    let recorder = recorder.lock().unwrap_or_else(PoisonError::into_inner);
    recorder.report(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_requests_are_spread_evenly() {
        assert_eq!(intended_offset(0, 1000.0), Duration::ZERO);
        assert_eq!(intended_offset(500, 1000.0), Duration::from_millis(500));
        assert_eq!(intended_offset(3000, 1000.0), Duration::from_secs(3));
        assert_eq!(intended_offset(7, 0.0), Duration::ZERO);
    }

    struct Sleeper {
        every_nth_fails: u64,
    }

    impl Worker for Sleeper {
        async fn call(&mut self, index: u64) -> Outcome {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if index.is_multiple_of(self.every_nth_fails) { Outcome::Failed } else { Outcome::Ok }
        }
    }

    #[tokio::test]
    async fn every_request_runs_once_and_failures_are_counted() {
        let workers = (0..4).map(|_| Sleeper { every_nth_fails: 10 }).collect();
        let report = run(workers, Plan { total: 100, pace: Pace::Closed }).await;
        assert_eq!(report.ok + report.failed, 100);
        assert_eq!(report.failed, 10);
        assert_eq!(report.series.iter().map(|s| s.ok).sum::<u64>(), 90);
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_measures_from_the_intended_time() {
        // One worker, each call takes 10 ms, 1,000 due per second: the
        // worker falls behind at once, so later requests wait and their
        // latency grows far beyond the 10 ms service time.
        struct Slow;
        impl Worker for Slow {
            async fn call(&mut self, _: u64) -> Outcome {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Outcome::Ok
            }
        }
        let report = run(vec![Slow], Plan { total: 100, pace: Pace::Open { per_second: 1000.0 } }).await;
        assert_eq!(report.ok, 100);
        assert!(report.latency.max_ms > 500.0, "{:?}", report.latency);
        assert!(report.latency.p50_ms > 100.0, "{:?}", report.latency);
    }
}
