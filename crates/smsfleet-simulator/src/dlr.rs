//! Delivery-report pipeline: accepted message → wait `dlr_latency` → batch per `dlr_url` → POST.
//!
//! Handlers push one [`PendingBatch`] per submit onto an unbounded channel; since every batch
//! is due exactly `dlr_latency` after its accept, the channel is already in due order and a
//! single scheduler task just sleeps until the head is due. It hands reports to one worker per
//! receiver URL, which batches them (up to `dlr_batch_max`, or whatever arrived within
//! `dlr_batch_linger`) and posts with a few batches in flight. A failed POST is retried with
//! exponential backoff until it succeeds or the drain deadline passes, so the DLR worker under
//! test sees at-least-once delivery, as from a real SMSC. The queue is unbounded on purpose:
//! a receiver that is down makes `pending_reports` grow visibly rather than slowing submits.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::protocol::{Report, ReportBatch};
use crate::store::{Counters, add, sub};

/// Batches posted concurrently to one receiver; enough to hide a round trip, few enough not to
/// flood a receiver that is struggling.
const IN_FLIGHT_PER_URL: usize = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One report waiting to be sent.
pub(crate) struct PendingReport {
    pub id: String,
    pub reference: String,
    pub failed: bool,
}

/// Reports from one submit, all due at the same instant.
pub(crate) struct PendingBatch {
    pub due: Instant,
    pub items: Vec<(Arc<str>, PendingReport)>,
}

struct DueReport {
    report: PendingReport,
    done_at: Arc<str>,
}

pub(crate) struct Pipeline {
    pub client: reqwest::Client,
    pub counters: Arc<Counters>,
    pub batch_max: usize,
    pub linger: Duration,
    /// `None` while serving; set to the instant after which undelivered reports are abandoned.
    pub deadline: watch::Receiver<Option<Instant>>,
}

/// Runs until every sender of `rx` is gone and every queued report is posted or abandoned.
pub(crate) async fn schedule(mut rx: mpsc::UnboundedReceiver<PendingBatch>, pipeline: Arc<Pipeline>) {
    let mut workers: HashMap<Arc<str>, mpsc::UnboundedSender<DueReport>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut clock = DoneAtClock::default();
    while let Some(batch) = rx.recv().await {
        if batch.due > Instant::now() {
            tokio::time::sleep_until(batch.due).await;
        }
        let done_at = clock.now();
        for (url, report) in batch.items {
            let worker = workers.entry(url.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tasks.spawn(post_worker(url, rx, pipeline.clone()));
                tx
            });
            let due = DueReport { report, done_at: done_at.clone() };
            // A worker only stops after its sender is dropped, so this cannot fail; if it ever
            // did, the report is lost and the gauge must not keep counting it.
            if worker.send(due).is_err() {
                sub(&pipeline.counters.pending_reports, 1);
            }
        }
        // Reap finished workers so their results do not pile up in the set.
        while tasks.try_join_next().is_some() {}
    }
    drop(workers);
    while tasks.join_next().await.is_some() {}
}

/// `done_at` has one-second resolution; format it once per second, not once per report.
#[derive(Default)]
struct DoneAtClock {
    second: i64,
    text: Option<Arc<str>>,
}

impl DoneAtClock {
    fn now(&mut self) -> Arc<str> {
        let now = OffsetDateTime::now_utc();
        let second = now.unix_timestamp();
        match &self.text {
            Some(text) if self.second == second => text.clone(),
            _ => {
                let whole = now.replace_nanosecond(0).unwrap_or(now);
                let text: Arc<str> =
                    whole.format(&Rfc3339).unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z")).into();
                self.second = second;
                self.text = Some(text.clone());
                text
            }
        }
    }
}

async fn post_worker(url: Arc<str>, mut rx: mpsc::UnboundedReceiver<DueReport>, pipeline: Arc<Pipeline>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT_PER_URL));
    let mut in_flight = JoinSet::new();
    let mut closed = false;
    while !closed {
        let mut batch = Vec::with_capacity(pipeline.batch_max.min(1024));
        if rx.recv_many(&mut batch, pipeline.batch_max).await == 0 {
            break;
        }
        let linger = tokio::time::sleep(pipeline.linger);
        tokio::pin!(linger);
        while batch.len() < pipeline.batch_max {
            let room = pipeline.batch_max - batch.len();
            tokio::select! {
                received = rx.recv_many(&mut batch, room) => {
                    if received == 0 {
                        // Draining: nothing more will come, send what we have now.
                        closed = true;
                        break;
                    }
                }
                () = &mut linger => break,
            }
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (url, pipeline) = (url.clone(), pipeline.clone());
        in_flight.spawn(async move {
            post_with_retry(&url, batch, &pipeline).await;
            drop(permit);
        });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

async fn post_with_retry(url: &str, batch: Vec<DueReport>, pipeline: &Pipeline) {
    let counters = &pipeline.counters;
    let body = match serde_json::to_vec(&ReportBatch { reports: batch.iter().map(wire).collect() }) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "cannot encode delivery reports; dropping batch");
            sub(&counters.pending_reports, batch.len());
            return;
        }
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        add(&counters.report_posts, 1);
        match post_once(&pipeline.client, url, body.clone()).await {
            Ok(()) => {
                let failed = batch.iter().filter(|due| due.report.failed).count();
                add(&counters.failed_reports, failed);
                add(&counters.delivered_reports, batch.len() - failed);
                sub(&counters.pending_reports, batch.len());
                metrics::counter!("smsfleet_simulator_reports_sent_total").increment(batch.len() as u64);
                return;
            }
            Err(reason) => {
                add(&counters.report_post_failures, 1);
                tracing::debug!(url, %reason, retry_in = ?backoff, "delivery report post failed");
            }
        }
        let now = Instant::now();
        let mut wake = now + backoff;
        if let Some(deadline) = *pipeline.deadline.borrow() {
            if now >= deadline {
                tracing::warn!(url, reports = batch.len(), "drain deadline passed; abandoning delivery reports");
                sub(&counters.pending_reports, batch.len());
                return;
            }
            wake = wake.min(deadline);
        }
        tokio::time::sleep_until(wake).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn wire(due: &DueReport) -> Report<'_> {
    let (status, error_code) = if due.report.failed { ("failed", "001") } else { ("delivered", "000") };
    Report {
        id: due.report.id.as_str().into(),
        reference: Some(due.report.reference.as_str().into()),
        status: status.into(),
        error_code: Some(error_code.into()),
        done_at: Some(due.done_at.as_ref().into()),
    }
}

async fn post_once(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), String> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    // Read the body so the keep-alive connection can be reused.
    let _ = response.bytes().await;
    if status.is_success() { Ok(()) } else { Err(format!("receiver answered {status}")) }
}

pub(crate) fn pending_count(counters: &Counters) -> u64 {
    counters.pending_reports.load(Ordering::Relaxed)
}
