//! Receipts for SMPP customers. A submission accepted over SMPP with
//! registered_delivery and its final status are recorded as the two halves
//! of one `smpp_receipts` row (either may come first); the worker that
//! completes the row publishes the receipt to `<ns>.smpp.out.<uid>` with
//! `Nats-Msg-Id` `receipt:<smslog_id>` and then deletes the row. A crash
//! between the two is a redelivery that completes the row again and
//! republishes under the same id. Receipts are published in the order of
//! the final statuses within a batch, which is the order a customer's
//! receiver bind gets them in.

use std::collections::{HashMap, HashSet};

use smsfleet_bus::{Bus, Delivery, HandlerError};
use smsfleet_contract::{Api, DeliveryStatus, SCHEMA_VERSION, SmppDeliver, SmppDeliverBody, StatusBatch, SubmitBatch};
use smsfleet_domain::clock::now_ms;
use smsfleet_store::PgPool;
use smsfleet_store::smpp_receipts::{self as store, CompleteReceipt, ReceiptOutcome, ReceiptTarget};
use time::OffsetDateTime;

/// Halves older than the SMPP_OUT stream's age limit can never be useful.
pub const ORPHAN_AGE_SECS: f64 = smsfleet_contract::topology::SMPP_OUT_MAX_AGE_SECS as f64;

/// Characters of the text a receipt quotes (`text:`), as SMPP 3.4 appendix B.
const TEXT_START_CHARS: usize = 20;

fn instant(ms: i64) -> Result<OffsetDateTime, HandlerError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| HandlerError::Permanent(e.to_string()))
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The SUBMIT side: SMPP submissions that asked for a receipt.
pub async fn on_submissions(pool: &PgPool, bus: &Bus, batch: &[Delivery<SubmitBatch>]) -> Result<(), HandlerError> {
    let mut targets = Vec::new();
    for s in batch.iter().flat_map(|d| &d.body.submissions) {
        if s.api != Api::Smpp || !s.dlr_requested {
            continue;
        }
        let submitted_at = instant(s.accepted_at_ms)?;
        let text_start: String = s.text.chars().take(TEXT_START_CHARS).collect();
        for d in &s.destinations {
            targets.push(ReceiptTarget {
                smslog_id: d.smslog_id,
                uid: s.uid,
                destination: d.to.clone(),
                sender: s.sender.clone(),
                text_start: text_start.clone(),
                submitted_at,
            });
        }
    }
    let order: Vec<i64> = targets.iter().map(|t| t.smslog_id).collect();
    let done = store::record_targets(pool, &targets).await.map_err(HandlerError::transient)?;
    publish(pool, bus, &order, done).await
}

/// The STATUS side: final statuses of accounts that can bind over SMPP.
pub async fn on_statuses(pool: &PgPool, bus: &Bus, batch: &[Delivery<StatusBatch>]) -> Result<(), HandlerError> {
    let finals: Vec<_> = batch.iter().flat_map(|d| &d.body.events).filter(|e| e.status.is_final()).collect();
    if finals.is_empty() {
        return Ok(());
    }
    let uids: Vec<i64> = finals.iter().map(|e| e.uid).collect::<HashSet<_>>().into_iter().collect();
    let smpp = smsfleet_store::accounts::smpp_enabled(pool, &uids).await.map_err(HandlerError::transient)?;
    let mut seen = HashSet::new();
    let mut outcomes = Vec::new();
    for e in finals.into_iter().filter(|e| smpp.contains(&e.uid)) {
        if !seen.insert(e.smslog_id) {
            continue;
        }
        let status = if e.status == DeliveryStatus::Delivered { "delivered" } else { "failed" };
        outcomes.push(ReceiptOutcome { smslog_id: e.smslog_id, status: status.to_owned(), done_at: instant(e.at_ms)? });
    }
    let order: Vec<i64> = outcomes.iter().map(|o| o.smslog_id).collect();
    let done = store::record_outcomes(pool, &outcomes).await.map_err(HandlerError::transient)?;
    publish(pool, bus, &order, done).await
}

/// The deliver_sm a completed row becomes.
pub fn deliver(r: &CompleteReceipt, created_at_ms: i64) -> SmppDeliver {
    let status = if r.status == "delivered" { DeliveryStatus::Delivered } else { DeliveryStatus::Failed };
    SmppDeliver {
        v: SCHEMA_VERSION,
        uid: r.uid,
        key: format!("receipt:{}", r.smslog_id),
        source_addr: r.destination.clone(),
        destination_addr: r.sender.clone(),
        created_at_ms,
        body: SmppDeliverBody::Receipt {
            smslog_id: r.smslog_id,
            status,
            submitted_at_ms: ms(r.submitted_at),
            done_at_ms: ms(r.done_at),
            text_start: r.text_start.clone(),
        },
    }
}

/// Publishes the completed receipts in `order` (the batch's order), then
/// forgets them.
async fn publish(pool: &PgPool, bus: &Bus, order: &[i64], done: Vec<CompleteReceipt>) -> Result<(), HandlerError> {
    if done.is_empty() {
        return Ok(());
    }
    let mut by_id: HashMap<i64, CompleteReceipt> = done.into_iter().map(|r| (r.smslog_id, r)).collect();
    let now = now_ms();
    let ns = bus.namespace();
    let items: Vec<(String, String, SmppDeliver)> = order
        .iter()
        .filter_map(|id| by_id.remove(id))
        .map(|r| {
            let d = deliver(&r, now);
            (ns.smpp_out_subject(r.uid), d.key.clone(), d)
        })
        .collect();
    let ids: Vec<i64> = items
        .iter()
        .filter_map(|(_, _, d)| match d.body {
            SmppDeliverBody::Receipt { smslog_id, .. } => Some(smslog_id),
            SmppDeliverBody::Mo { .. } => None,
        })
        .collect();
    let count = items.len();
    bus.publish_all(items).await.map_err(HandlerError::transient)?;
    metrics::counter!("smsfleet_callbacks_smpp_receipts_published_total").increment(count as u64);
    store::published(pool, &ids).await.map_err(HandlerError::transient)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_completed_row_becomes_a_receipt_to_the_customers_sender() {
        let r = CompleteReceipt {
            smslog_id: 42,
            uid: 7,
            destination: "+628111".into(),
            sender: "ACME".into(),
            text_start: "hello".into(),
            submitted_at: instant(1_000).unwrap(),
            status: "failed".into(),
            done_at: instant(2_000).unwrap(),
        };
        let d = deliver(&r, 3_000);
        assert_eq!(d.key, "receipt:42");
        assert_eq!((d.source_addr.as_str(), d.destination_addr.as_str()), ("+628111", "ACME"));
        assert_eq!(
            d.body,
            SmppDeliverBody::Receipt {
                smslog_id: 42,
                status: DeliveryStatus::Failed,
                submitted_at_ms: 1_000,
                done_at_ms: 2_000,
                text_start: "hello".into()
            }
        );
    }
}
