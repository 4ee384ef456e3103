//! The scheduler role: holds charged chunks whose send time is ahead and
//! releases them onto the Dispatch stream when due.
//!
//! The ledger publishes a future chunk to the Schedule stream; we store it
//! in Postgres (idempotent by chunk id) and ack, so the wait survives any
//! restart. A release loop then publishes due chunks with their chunk id as
//! message id, tells the query projection which queues became visible, and
//! marks them released in the same transaction that selected them with
//! `FOR UPDATE SKIP LOCKED`, so replicas share the work without releasing a
//! chunk twice. A crash after publishing but before commit re-releases the
//! same message ids, which JetStream drops as duplicates.

use std::collections::HashSet;
use std::time::Duration;

use smsfleet_bus::{Bus, BusError, Delivery, HandlerError, WorkerConfig, run_worker};
use smsfleet_contract::{DispatchChunk, SCHEMA_VERSION, StatusBatch, StreamKind};
use smsfleet_runtime::RoleContext;
use smsfleet_store::scheduler::{self, Held};
use smsfleet_store::{PgPool, StoreError};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often due chunks are looked for; bounds how late a release is.
    pub tick: Duration,
    /// Most chunks released in one transaction.
    pub release_batch: i64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self { tick: Duration::from_millis(200), release_batch: 500 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Context(#[from] smsfleet_runtime::MissingResource),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs until `shutdown` is cancelled; a release in progress is finished.
pub async fn run(ctx: RoleContext, config: SchedulerConfig) -> Result<(), SchedulerError> {
    let (bus, pool) = (ctx.bus()?, ctx.pool()?);
    let RoleContext { ready, shutdown, .. } = ctx;
    let stop_release = shutdown.child_token();
    let releaser = tokio::spawn(release_loop(bus.clone(), pool.clone(), config.clone(), stop_release.clone()));
    let worker = WorkerConfig {
        stream: StreamKind::Schedule,
        durable: "scheduler",
        batch: 256,
        concurrency: 1,
        max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
    };
    ready.set(true);
    let result = run_worker(bus, worker, shutdown, move |deliveries| {
        let pool = pool.clone();
        async move { hold(&pool, deliveries).await }
    })
    .await;
    ready.set(false);
    stop_release.cancel();
    let _ = releaser.await;
    result.map_err(SchedulerError::from)
}

/// Stores incoming chunks until due. A chunk without a release instant is
/// held as due now rather than dropped.
async fn hold(pool: &PgPool, deliveries: Vec<Delivery<DispatchChunk>>) -> Result<(), HandlerError> {
    let mut seen = HashSet::new();
    let mut held = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let chunk = d.body;
        if !seen.insert(chunk.chunk_id.clone()) {
            continue;
        }
        let release_at = match chunk.release_at_ms {
            Some(ms) => {
                from_ms(ms).ok_or_else(|| HandlerError::Permanent(format!("release_at_ms {ms} is out of range")))?
            }
            None => OffsetDateTime::now_utc(),
        };
        let payload = serde_json::to_value(&chunk).map_err(|e| HandlerError::Permanent(e.to_string()))?;
        held.push(Held { chunk_id: chunk.chunk_id, queue: chunk.queue, release_at, payload });
    }
    scheduler::hold(pool, &held).await.map_err(|e| HandlerError::Transient(e.to_string()))
}

fn from_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

async fn release_loop(bus: Bus, pool: PgPool, config: SchedulerConfig, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(config.tick.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // Drain a backlog (e.g. after downtime) without waiting a tick per batch.
        loop {
            match release_due(&bus, &pool, config.release_batch.max(1)).await {
                Ok(n) if n as i64 >= config.release_batch.max(1) && !stop.is_cancelled() => continue,
                Ok(_) => break,
                Err(e) => {
                    // Nothing was marked released; the next tick tries again.
                    tracing::warn!(error = %e, "releasing scheduled chunks failed");
                    break;
                }
            }
        }
    }
}

/// Releases up to `limit` due chunks in one transaction; returns how many
/// were released (unreadable ones do not count, so a page of them cannot
/// keep the drain loop spinning).
async fn release_due(bus: &Bus, pool: &PgPool, limit: i64) -> Result<usize, SchedulerError> {
    let now = OffsetDateTime::now_utc();
    let mut tx = pool.begin().await.map_err(StoreError::from)?;
    let due = scheduler::due(&mut tx, now, limit).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let dispatch = bus.namespace().subject(StreamKind::Dispatch);
    let mut items = Vec::with_capacity(due.len());
    let mut ids = Vec::with_capacity(due.len());
    let mut queues: Vec<String> = Vec::new();
    for (chunk_id, queue, payload) in due {
        let mut chunk: DispatchChunk = match serde_json::from_value(payload) {
            Ok(c) => c,
            Err(e) => {
                // Left held for an operator rather than lost; it cannot be
                // sent without knowing what it says.
                tracing::error!(%chunk_id, error = %e, "held chunk is unreadable; not released");
                continue;
            }
        };
        chunk.release_at_ms = None;
        if !queues.contains(&queue) {
            queues.push(queue);
        }
        ids.push(chunk_id.clone());
        items.push((dispatch.clone(), chunk_id, chunk));
    }
    if let Some(first) = ids.first() {
        let batch_id = format!("released.{first}.{}", ids.len());
        bus.publish_all(items).await?;
        let status =
            StatusBatch { v: SCHEMA_VERSION, batch_id: batch_id.clone(), events: vec![], released_queues: queues };
        bus.publish(bus.namespace().subject(StreamKind::Status), &batch_id, &status).await?;
        scheduler::mark_released(&mut tx, &ids, now).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("smsfleet_scheduler_released_total").increment(ids.len() as u64);
    tracing::debug!(released = ids.len(), "released scheduled chunks");
    Ok(ids.len())
}
