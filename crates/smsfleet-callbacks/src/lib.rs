//! smsfleet-callbacks: pushes delivery reports of bulk HTTP API messages
//! sent with `dlr=1` to the account's callback URL.
//!
//! Two workers and a sender loop:
//! - SUBMIT (durable `callbacks`): for each `dlr_requested` submission of an
//!   account with a callback URL, a `callback_targets` row per destination
//!   (message id, destination, URL as it was when the message was accepted).
//! - STATUS (durable `callbacks`): for each final status (delivered or
//!   failed) of an account with a callback URL, a `callback_outbox` row.
//! - The sender tells every outbox row that has a target: by default a
//!   JSON POST `{"message_id","destination","status","done_at"}`, done on
//!   any 2xx; or as the account's callback template says
//!   (`smsfleet_domain::callback`: GET or form POST with escapes, done only
//!   on the statuses and body the account names, since e.g. Kannel answers
//!   `202 Insufficient args, rejected`). Done deletes both rows; anything
//!   else retries after 1 s, doubling, capped at 10 min, forever. Rows are claimed with `FOR UPDATE SKIP LOCKED` and a lease, so
//!   replicas share the work and a crashed sender's claims come due again.
//!
//! - Receipts for SMPP customers ([`receipts`]): the same two workers also
//!   join a registered_delivery submission made over SMPP with its final
//!   status and publish the receipt to the SMPP_OUT stream, where it waits
//!   for a receiver bind of the account.
//!
//! Why two tables joined instead of looking the target up on the status:
//! the streams are consumed independently, so a message's final status can
//! be read before its submission (this role lagging on SUBMIT, or a
//! redelivery). Recording each side on its own and sending when both exist
//! is correct in either order, and needs no retry-until-the-other-arrives.
//! The price is outbox rows for `dlr=0` messages of accounts that have a
//! callback URL; they never get a target and are dropped after a day.
//! Delivery is at least once: a receiver may see a report twice (a crash
//! between its 2xx and our delete) and should de-duplicate by message id.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use smsfleet_bus::{Bus, BusError, Delivery, HandlerError, WorkerConfig};
use smsfleet_contract::{DeliveryStatus, StatusBatch, StreamKind, SubmitBatch};
use smsfleet_domain::callback::{CallbackMethod, CallbackReport, CallbackSpec};
use smsfleet_runtime::RoleContext;
use smsfleet_store::PgPool;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

mod receipts;

pub const DURABLE: &str = "callbacks";

#[derive(Debug, Clone)]
pub struct CallbacksConfig {
    pub batch: usize,
    /// Callbacks claimed per round.
    pub send_batch: i64,
    /// How often the sender looks for due callbacks when idle.
    pub poll: Duration,
    /// Timeout of one POST.
    pub request_timeout: Duration,
    pub first_retry: Duration,
    pub max_retry: Duration,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        Self {
            batch: 256,
            send_batch: 50,
            poll: Duration::from_millis(250),
            request_timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallbacksError {
    #[error(transparent)]
    Context(#[from] smsfleet_runtime::MissingResource),
    #[error(transparent)]
    Loop(#[from] smsfleet_bus::LoopFailure),
}

/// The JSON body POSTed to the callback URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallbackBody {
    pub message_id: String,
    pub destination: String,
    /// `delivered` or `failed`.
    pub status: String,
    /// RFC 3339, UTC.
    pub done_at: String,
}

/// Delay before attempt `attempts + 1`: 1 s doubling, capped.
pub fn backoff(attempts: i32, first: Duration, max: Duration) -> Duration {
    let exp = attempts.clamp(0, 30) as u32;
    first.saturating_mul(2u32.saturating_pow(exp)).min(max)
}

async fn handle_submit(pool: PgPool, bus: Bus, batch: Vec<Delivery<SubmitBatch>>) -> Result<(), HandlerError> {
    receipts::on_submissions(&pool, &bus, &batch).await?;
    let wanted: Vec<_> = batch.iter().flat_map(|d| &d.body.submissions).filter(|s| s.dlr_requested).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let uids: Vec<i64> = wanted.iter().map(|s| s.uid).collect::<HashSet<_>>().into_iter().collect();
    let urls = smsfleet_store::callbacks::callback_urls(&pool, &uids).await.map_err(HandlerError::transient)?;
    let (mut ids, mut owners, mut dests, mut targets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in wanted {
        let Some(url) = urls.get(&s.uid) else { continue };
        for d in &s.destinations {
            ids.push(d.smslog_id);
            owners.push(s.uid);
            dests.push(d.to.clone());
            targets.push(url.clone());
        }
    }
    if !ids.is_empty() {
        smsfleet_store::callbacks::insert_targets(&pool, &ids, &owners, &dests, &targets)
            .await
            .map_err(HandlerError::transient)?;
    }
    Ok(())
}

async fn handle_status(pool: PgPool, bus: Bus, batch: Vec<Delivery<StatusBatch>>) -> Result<(), HandlerError> {
    receipts::on_statuses(&pool, &bus, &batch).await?;
    let finals: Vec<_> = batch
        .iter()
        .flat_map(|d| &d.body.events)
        .filter(|e| matches!(e.status, DeliveryStatus::Delivered | DeliveryStatus::Failed))
        .collect();
    if finals.is_empty() {
        return Ok(());
    }
    let uids: Vec<i64> = finals.iter().map(|e| e.uid).collect::<HashSet<_>>().into_iter().collect();
    let urls = smsfleet_store::callbacks::callback_urls(&pool, &uids).await.map_err(HandlerError::transient)?;
    let (mut ids, mut statuses, mut at) = (Vec::new(), Vec::new(), Vec::new());
    for e in finals.into_iter().filter(|e| urls.contains_key(&e.uid)) {
        let done = OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.at_ms) * 1_000_000)
            .map_err(|err| HandlerError::Permanent(err.to_string()))?;
        ids.push(e.smslog_id);
        statuses.push(if e.status == DeliveryStatus::Delivered { "delivered" } else { "failed" }.to_owned());
        at.push(done);
    }
    if !ids.is_empty() {
        smsfleet_store::callbacks::insert_outcomes(&pool, &ids, &statuses, &at)
            .await
            .map_err(HandlerError::transient)?;
    }
    Ok(())
}

/// Parsed callback specs, by their text: most accounts send many reports.
#[derive(Default)]
struct Specs(HashMap<String, Option<Arc<CallbackSpec>>>);

impl Specs {
    fn get(&mut self, text: &str) -> Option<Arc<CallbackSpec>> {
        if self.0.len() > 1_000 {
            self.0.clear();
        }
        self.0
            .entry(text.to_owned())
            .or_insert_with(|| match CallbackSpec::parse(text) {
                Ok(spec) => Some(Arc::new(spec)),
                Err(e) => {
                    // Checked when the account is saved; one stored before
                    // that check waits (and retries) until it is fixed.
                    tracing::warn!(error = %e, "unusable callback of an account");
                    None
                }
            })
            .clone()
    }
}

/// Makes one callback; `Ok` when the receiver's answer says it has it.
async fn tell(
    client: &reqwest::Client,
    spec: &CallbackSpec,
    c: &smsfleet_store::callbacks::DueCallback,
) -> Result<(), String> {
    let json = body(c);
    let report = CallbackReport {
        message_id: &json.message_id,
        destination: &json.destination,
        status: &json.status,
        done_at: &json.done_at,
        done_unix: c.done_at.unix_timestamp(),
    };
    let request = spec.request(&report);
    let builder = match request.method {
        CallbackMethod::Json => client.post(&request.url).json(&json),
        CallbackMethod::Get => client.get(&request.url),
        CallbackMethod::PostForm => client
            .post(&request.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(request.form.unwrap_or_default()),
    };
    let response = builder.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = if spec.needs_body() { response.text().await.map_err(|e| e.to_string())? } else { String::new() };
    if spec.is_success(status, &text) {
        Ok(())
    } else {
        Err(format!("HTTP {status} {}", text.chars().take(100).collect::<String>()))
    }
}

fn body(c: &smsfleet_store::callbacks::DueCallback) -> CallbackBody {
    CallbackBody {
        message_id: c.smslog_id.to_string(),
        destination: c.destination.clone(),
        status: c.status.clone(),
        done_at: c
            .done_at
            .to_offset(time::UtcOffset::UTC)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    }
}

/// Claims due callbacks and POSTs them until `stop`.
async fn send_loop(pool: PgPool, config: CallbacksConfig, stop: CancellationToken) -> Result<(), BusError> {
    let client = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .build()
        .map_err(|e| BusError::Consume(format!("http client: {e}")))?;
    let lease = config.request_timeout.as_secs_f64() * 3.0;
    let mut last_gc = std::time::Instant::now();
    let mut specs = Specs::default();
    while !stop.is_cancelled() {
        let due = match smsfleet_store::callbacks::claim_due(&pool, config.send_batch, lease).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "claiming callbacks failed");
                Vec::new()
            }
        };
        let mut sends = JoinSet::new();
        let idle = due.is_empty();
        for c in due {
            let (client, pool, config) = (client.clone(), pool.clone(), config.clone());
            let spec = specs.get(&c.url);
            sends.spawn(async move {
                let outcome = match &spec {
                    Some(spec) => tell(&client, spec, &c).await,
                    None => Err("unusable callback spec".to_owned()),
                };
                let stored = if outcome.is_ok() {
                    metrics::counter!("smsfleet_callbacks_sent_total").increment(1);
                    smsfleet_store::callbacks::complete(&pool, c.smslog_id).await
                } else {
                    let why = outcome.err().unwrap_or_default();
                    let delay = backoff(c.attempts, config.first_retry, config.max_retry);
                    tracing::info!(
                        smslog_id = c.smslog_id,
                        attempts = c.attempts + 1,
                        why,
                        ?delay,
                        "callback failed; retrying"
                    );
                    metrics::counter!("smsfleet_callbacks_failed_total").increment(1);
                    smsfleet_store::callbacks::retry_later(&pool, c.smslog_id, c.attempts + 1, delay.as_secs_f64())
                        .await
                };
                if let Err(e) = stored {
                    // The lease runs out and the callback is sent again: at least once.
                    tracing::warn!(error = %e, smslog_id = c.smslog_id, "callback outcome not stored");
                }
            });
        }
        while sends.join_next().await.is_some() {}
        if last_gc.elapsed() > Duration::from_secs(600) {
            last_gc = std::time::Instant::now();
            if let Err(e) = smsfleet_store::callbacks::drop_orphans(&pool, 86_400.0).await {
                tracing::warn!(error = %e, "dropping orphan callback rows failed");
            }
            if let Err(e) = smsfleet_store::smpp_receipts::drop_orphans(&pool, receipts::ORPHAN_AGE_SECS).await {
                tracing::warn!(error = %e, "dropping orphan SMPP receipt rows failed");
            }
        }
        if idle {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(config.poll) => {}
            }
        }
    }
    Ok(())
}

/// Runs the two workers and the sender until `shutdown`.
pub async fn run(ctx: RoleContext, config: CallbacksConfig) -> Result<(), CallbacksError> {
    let (bus, pool) = (ctx.bus()?, ctx.pool()?);
    let RoleContext { ready, shutdown, .. } = ctx;
    let stop = shutdown.child_token();
    let mut tasks: JoinSet<(&'static str, Result<(), BusError>)> = JoinSet::new();
    let worker = |stream| WorkerConfig {
        stream,
        durable: DURABLE,
        batch: config.batch,
        concurrency: 2,
        max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
    };

    let (b, p, s, w) = (bus.clone(), pool.clone(), stop.clone(), worker(StreamKind::Submit));
    tasks.spawn(async move {
        let bus = b.clone();
        let handler = move |batch| handle_submit(p.clone(), bus.clone(), batch);
        ("callback targets", smsfleet_bus::run_worker::<SubmitBatch, _, _>(b, w, s, handler).await)
    });
    let (b, p, s, w) = (bus.clone(), pool.clone(), stop.clone(), worker(StreamKind::Status));
    tasks.spawn(async move {
        let bus = b.clone();
        let handler = move |batch| handle_status(p.clone(), bus.clone(), batch);
        ("callback outcomes", smsfleet_bus::run_worker::<StatusBatch, _, _>(b, w, s, handler).await)
    });
    let (p, s, c) = (pool.clone(), stop.clone(), config.clone());
    tasks.spawn(async move { ("callback sender", send_loop(p, c, s).await) });

    ready.set(true);
    tracing::info!("callbacks role running");
    smsfleet_bus::supervise(tasks, &stop, &ready).await.map_err(CallbacksError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_ten_minutes() {
        let (f, m) = (Duration::from_secs(1), Duration::from_secs(600));
        assert_eq!(backoff(0, f, m), Duration::from_secs(1));
        assert_eq!(backoff(1, f, m), Duration::from_secs(2));
        assert_eq!(backoff(5, f, m), Duration::from_secs(32));
        assert_eq!(backoff(10, f, m), Duration::from_secs(600));
        assert_eq!(backoff(1000, f, m), Duration::from_secs(600));
    }
}
