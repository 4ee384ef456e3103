//! Matches stored reports to messages and publishes their statuses.

use std::sync::Arc;

use futures_util::future::join_all;
use smsfleet_bus::{Bus, Delivery, HandlerError};
use smsfleet_contract::{
    DeliveryStatus, DlrBatch, DlrOutcome, SCHEMA_VERSION, StatusBatch, StatusEvent, StatusOrigin, StreamKind,
    status_batch_id,
};
use smsfleet_store::PgPool;
use smsfleet_store::dispatch;

#[derive(Clone)]
pub(crate) struct Matcher {
    inner: Arc<Inner>,
}

struct Inner {
    bus: Bus,
    pool: PgPool,
    max_match_attempts: i64,
}

impl Matcher {
    pub(crate) fn new(bus: Bus, pool: PgPool, max_match_attempts: i64) -> Self {
        Self { inner: Arc::new(Inner { bus, pool, max_match_attempts }) }
    }

    pub(crate) async fn handle(&self, deliveries: Vec<Delivery<DlrBatch>>) -> Result<(), HandlerError> {
        // Each batch has its own delivery count, so each decides alone
        // whether to wait for its unmatched reports.
        let results = join_all(deliveries.iter().map(|d| self.match_batch(&d.body, d.delivered))).await;
        results.into_iter().collect()
    }

    #[tracing::instrument(skip_all, fields(batch_id = %batch.batch_id, route = %batch.route, reports = batch.reports.len()))]
    async fn match_batch(&self, batch: &DlrBatch, delivered: i64) -> Result<(), HandlerError> {
        let inner = &self.inner;
        let ids: Vec<String> = batch.reports.iter().map(|r| r.upstream_id.clone()).collect();
        let found =
            dispatch::lookup_upstream(&inner.pool, &batch.route, &ids).await.map_err(HandlerError::transient)?;
        let mut events = Vec::with_capacity(found.len());
        let mut unmatched = 0usize;
        for r in &batch.reports {
            let Some(&(smslog_id, uid)) = found.get(&r.upstream_id) else {
                unmatched += 1;
                continue;
            };
            let (status, reason) = match r.outcome {
                DlrOutcome::Delivered => (DeliveryStatus::Delivered, None),
                DlrOutcome::Failed => {
                    (DeliveryStatus::Failed, Some(r.error_code.clone().unwrap_or_else(|| "failed".to_owned())))
                }
            };
            events.push(StatusEvent {
                smslog_id,
                uid,
                status,
                at_ms: r.done_at_ms.unwrap_or(batch.received_at_ms),
                upstream_id: Some(r.upstream_id.clone()),
                reason,
            });
        }
        if !events.is_empty() {
            let matched = events.len();
            let status = StatusBatch {
                v: SCHEMA_VERSION,
                batch_id: status_batch_id(StatusOrigin::Report, &batch.batch_id, &events),
                events,
                released_queues: vec![],
            };
            let subject = inner.bus.namespace().subject(StreamKind::Status);
            let published =
                inner.bus.publish(subject, &status.batch_id, &status).await.map_err(HandlerError::transient)?;
            if !published.duplicate {
                metrics::counter!("smsfleet_dlr_reports_total", "outcome" => "matched").increment(matched as u64);
            }
        }
        if unmatched == 0 {
            return Ok(());
        }
        if delivered < inner.max_match_attempts {
            // The dispatcher may not have recorded the upstream id yet: an
            // expected wait, retried quietly (one line per batch, below).
            return Err(HandlerError::NotYet(format!("{unmatched} unmatched reports")));
        }
        tracing::warn!(unmatched, delivered, "giving up on unmatched delivery reports");
        metrics::counter!("smsfleet_dlr_reports_total", "outcome" => "unmatched").increment(unmatched as u64);
        Ok(())
    }
}
