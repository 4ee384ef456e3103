//! Batch-pulling workers.
//!
//! A worker pulls continuously and hands the handler whatever has arrived,
//! up to `batch` messages, so that under load one Postgres statement or one
//! publish serves many messages, and under light load nothing waits for a
//! batch to fill. The handler must be idempotent: JetStream redelivers on
//! a crash, a timeout or a lost ack, and we ack only after the handler's
//! effects are durable. While a batch is held (waiting for a slot or in
//! its handler) in-progress acks keep it ours, so the ack wait can be short:
//! the batches of a worker that died come back within seconds.
//!
//! Failures: a failed batch is retried message by message so one poison
//! message cannot hold back the others. A transient failure is NAKed with
//! exponential backoff; a permanent one, an undecodable payload, or the last
//! allowed delivery goes to the dead-letter stream and is terminated.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use futures_util::{FutureExt, StreamExt};
use smsfleet_contract::{BusMessage, SCHEMA_VERSION, StreamKind};
use smsfleet_domain::clock::unix_ms;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Bus, BusError};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub stream: StreamKind,
    pub durable: &'static str,
    /// Most messages handed to the handler at once.
    pub batch: usize,
    /// Batches processed at the same time by this replica.
    pub concurrency: usize,
    /// A batch also ends once its payloads reach this many bytes, so a run
    /// of 1,000-recipient submissions cannot make a batch hundreds of
    /// megabytes once decoded. A single larger message still goes alone.
    pub max_batch_bytes: usize,
}

/// 4 MiB of JSON per batch: about 100 submissions of 1,000 recipients, or
/// thousands of single-recipient ones.
pub const DEFAULT_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One message as the handler sees it.
#[derive(Debug, Clone)]
pub struct Delivery<T> {
    pub body: T,
    /// 1 on first delivery, more on redelivery.
    pub delivered: i64,
    pub stream_sequence: u64,
    /// Unix ms at which the stream stored the message (the server's clock):
    /// what a deadline carried in the payload is judged against.
    pub received_ms: i64,
    pub traceparent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying later (a database or network hiccup).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (invalid content).
    #[error("permanent: {0}")]
    Permanent(String),
    /// Waits on another worker's record (a report that overtook the
    /// dispatcher's): retried with the same backoff as [`Self::Transient`],
    /// but expected, so it is counted (`outcome="not_yet"`) and logged
    /// only at debug level; the handler bounds the tries itself.
    #[error("not yet: {0}")]
    NotYet(String),
}

impl HandlerError {
    /// A failure worth retrying, from any error (a database or bus hiccup).
    pub fn transient(e: impl std::fmt::Display) -> Self {
        Self::Transient(e.to_string())
    }
}

struct Raw<T> {
    msg: jetstream::Message,
    delivery: Delivery<T>,
}

/// Runs until `shutdown` is cancelled, then finishes the batches in hand.
pub async fn run_worker<T, F, Fut>(
    bus: Bus,
    config: WorkerConfig,
    shutdown: CancellationToken,
    handler: F,
) -> Result<(), BusError>
where
    T: BusMessage + Clone + Send + Sync + 'static,
    F: Fn(Vec<Delivery<T>>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let spec = bus
        .topology
        .consumer(config.stream, config.durable)
        .cloned()
        .ok_or_else(|| BusError::Consume(format!("no consumer {} in the topology", config.durable)))?;
    let consumer = bus.pull_consumer(&spec).await?;
    // Prefetch is bounded in bytes too (two batches' worth), or a backlog
    // of large messages sits decoded-to-be in memory ahead of the handler.
    // Never below the server's max payload: a pull whose byte budget is
    // smaller than the next message would stall the consumer.
    let max_payload = bus.client.server_info().max_payload;
    let prefetch_bytes = config.max_batch_bytes.max(1).saturating_mul(2).max(max_payload);
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(config.batch.max(1) * 2)
        .max_bytes_per_batch(prefetch_bytes)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| BusError::Consume(e.to_string()))?;
    let ctx = Arc::new(Ctx { bus: bus.clone(), config: config.clone(), max_deliver: spec.max_deliver });
    let progress_every = progress_interval(Duration::from_secs(spec.ack_wait_secs));
    let mut inflight = JoinSet::new();
    tracing::info!(stream = ?config.stream, consumer = config.durable, "worker started");
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = messages.next() => next,
        };
        let first = match first {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::warn!(error = %e, consumer = config.durable, "pull failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            None => return Err(BusError::Consume("message stream ended".to_owned())),
        };
        let mut bytes = first.payload.len();
        let mut batch = vec![first];
        while batch.len() < config.batch && bytes < config.max_batch_bytes.max(1) {
            match messages.next().now_or_never() {
                Some(Some(Ok(m))) => {
                    bytes += m.payload.len();
                    batch.push(m);
                }
                _ => break,
            }
        }
        // The batch is ours from here: keep it from being redelivered while
        // it waits for a slot and while the handler runs.
        let keepalive = KeepAlive::start(&batch, progress_every);
        while inflight.len() >= config.concurrency.max(1) {
            inflight.join_next().await;
        }
        let ctx = ctx.clone();
        let handler = handler.clone();
        inflight.spawn(async move {
            ctx.process(batch, handler).await;
            drop(keepalive);
        });
    }
    while inflight.join_next().await.is_some() {}
    let _ = bus.flush().await;
    tracing::info!(consumer = config.durable, "worker stopped");
    Ok(())
}

struct Ctx {
    bus: Bus,
    config: WorkerConfig,
    max_deliver: i64,
}

impl Ctx {
    async fn process<T, F, Fut>(&self, batch: Vec<jetstream::Message>, handler: F)
    where
        T: BusMessage + Clone + Send + Sync + 'static,
        F: Fn(Vec<Delivery<T>>) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let mut good: Vec<Raw<T>> = Vec::with_capacity(batch.len());
        for msg in batch {
            match decode::<T>(&msg) {
                Ok(delivery) => good.push(Raw { msg, delivery }),
                Err(e) => self.dead_letter(&msg, &e).await,
            }
        }
        if good.is_empty() {
            return;
        }
        let span = tracing::info_span!("bus.consume", consumer = self.config.durable, messages = good.len());
        if let Some(tp) = good.first().and_then(|r| r.delivery.traceparent.clone()) {
            smsfleet_telemetry::set_parent_from_traceparent(&span, &tp);
        }
        let deliveries: Vec<Delivery<T>> = good.iter().map(|r| r.delivery.clone()).collect();
        let outcome = handler(deliveries).instrument(span).await;
        match outcome {
            Ok(()) => {
                for r in &good {
                    self.ack(&r.msg).await;
                }
                metrics::counter!("smsfleet_bus_processed_total", "consumer" => self.config.durable, "outcome" => "ack")
                    .increment(good.len() as u64);
            }
            Err(e) if good.len() == 1 => self.fail(&good[0], &e).await,
            Err(e) => {
                if matches!(e, HandlerError::NotYet(_)) {
                    tracing::debug!(error = %e, consumer = self.config.durable, "batch not ready; message by message");
                } else {
                    tracing::warn!(error = %e, consumer = self.config.durable, "batch failed; retrying message by message");
                }
                for r in good {
                    match handler(vec![r.delivery.clone()]).await {
                        Ok(()) => self.ack(&r.msg).await,
                        Err(e) => self.fail(&r, &e).await,
                    }
                }
            }
        }
    }

    async fn ack(&self, msg: &jetstream::Message) {
        if let Err(e) = msg.ack().await {
            // The message will be redelivered; the handler is idempotent.
            tracing::warn!(error = %e, "ack not sent");
        }
    }

    async fn fail<T>(&self, r: &Raw<T>, e: &HandlerError) {
        let last_try = r.delivery.delivered >= self.max_deliver;
        match e {
            HandlerError::Transient(detail) if !last_try => {
                let delay = backoff(r.delivery.delivered);
                tracing::warn!(consumer = self.config.durable, delivered = r.delivery.delivered, ?delay, %detail, "retrying later");
                metrics::counter!("smsfleet_bus_processed_total", "consumer" => self.config.durable, "outcome" => "retry")
                    .increment(1);
                if let Err(e) = r.msg.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %e, "nak not sent");
                }
            }
            HandlerError::NotYet(detail) if !last_try => {
                let delay = backoff(r.delivery.delivered);
                tracing::debug!(consumer = self.config.durable, delivered = r.delivery.delivered, ?delay, %detail, "not ready; retrying later");
                metrics::counter!("smsfleet_bus_processed_total", "consumer" => self.config.durable, "outcome" => "not_yet")
                    .increment(1);
                if let Err(e) = r.msg.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %e, "nak not sent");
                }
            }
            _ => self.dead_letter(&r.msg, &e.to_string()).await,
        }
    }

    async fn dead_letter(&self, msg: &jetstream::Message, reason: &str) {
        tracing::error!(consumer = self.config.durable, %reason, "dead-lettering message");
        let mut headers = msg.headers.clone().unwrap_or_default();
        headers.insert("Smsfleet-Dead-Reason", sanitize_header(reason).as_str());
        headers.insert("Smsfleet-Dead-Consumer", self.config.durable);
        if let Ok(info) = msg.info() {
            headers.insert("Smsfleet-Dead-Sequence", info.stream_sequence.to_string().as_str());
        }
        let subject = self.bus.ns.dead_letter_subject(self.config.stream);
        let published = self.bus.js.publish_with_headers(subject, headers, msg.payload.clone()).await;
        let stored = match published {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        metrics::counter!("smsfleet_bus_processed_total", "consumer" => self.config.durable, "outcome" => "dead_letter")
            .increment(1);
        if stored {
            let _ = msg.ack_with(AckKind::Term).await;
        } else {
            // Could not store the dead letter: leave it for redelivery rather
            // than lose it.
            let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(30)))).await;
        }
    }
}

/// Sends in-progress acks for a batch until dropped, so a short ack wait
/// (a dead worker's messages come back quickly) never redelivers a batch
/// whose handler is still working, however slow its upstream is.
struct KeepAlive {
    stop: CancellationToken,
}

impl KeepAlive {
    fn start(batch: &[jetstream::Message], every: Duration) -> KeepAlive {
        let stop = CancellationToken::new();
        let messages = batch.to_vec();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = stopped.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                for msg in &messages {
                    if let Err(e) = msg.ack_with(AckKind::Progress).await {
                        tracing::debug!(error = %e, "in-progress ack not sent");
                    }
                }
            }
        });
        KeepAlive { stop }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A third of the ack wait: two progress acks may be lost before the
/// server gives up on a live worker.
fn progress_interval(ack_wait: Duration) -> Duration {
    (ack_wait / 3).max(Duration::from_millis(100))
}

fn sanitize_header(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(512).collect()
}

/// 0.5 s, 1 s, 2 s ... capped at 60 s.
pub fn backoff(delivered: i64) -> Duration {
    let exp = delivered.clamp(1, 8) as u32 - 1;
    Duration::from_millis((500u64 << exp).min(60_000))
}

pub(crate) fn decode<T: BusMessage>(msg: &jetstream::Message) -> Result<Delivery<T>, String> {
    let body: T = serde_json::from_slice(&msg.payload).map_err(|e| format!("undecodable {}: {e}", T::SCHEMA))?;
    // A payload of another version may mean something else in the same
    // shape: dead-letter it rather than misread it.
    if let Some(v) = body.schema_version().filter(|&v| v != SCHEMA_VERSION) {
        return Err(format!("{} version {v} is unknown", T::SCHEMA));
    }
    let info = msg.info().map_err(|e| e.to_string())?;
    Ok(Delivery {
        body,
        delivered: info.delivered,
        stream_sequence: info.stream_sequence,
        received_ms: unix_ms(info.published),
        traceparent: traceparent(msg.headers.as_ref()),
    })
}

fn traceparent(headers: Option<&HeaderMap>) -> Option<String> {
    headers.and_then(|h| h.get("traceparent")).map(|v| v.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_acked_well_within_the_ack_wait() {
        assert_eq!(progress_interval(Duration::from_secs(6)), Duration::from_secs(2));
        assert_eq!(progress_interval(Duration::ZERO), Duration::from_millis(100));
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(50), Duration::from_secs(60));
    }
}
