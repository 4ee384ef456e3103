//! Folding the submit and status streams into the `queues` / `outgoing`
//! projection. Each pulled batch becomes one statement per table, and every
//! write is idempotent, because JetStream redelivers after a crash or a lost
//! ack and the two streams are consumed independently (a status may overtake
//! its submission).

use std::collections::HashMap;

use smsfleet_bus::{Delivery, HandlerError};
use smsfleet_contract::{StatusBatch, StatusEvent, SubmitBatch};
use smsfleet_domain::DeliveryStatus;
use smsfleet_store::PgPool;
use smsfleet_store::projection::{self as store, OutgoingRow, QueueRow, StatusRow};
use time::OffsetDateTime;

/// Turns submissions into queue and message rows. Duplicates (a redelivered
/// batch pulled together with its original) are collapsed, since one upsert
/// statement may not touch a row twice.
pub fn submit_rows<'a>(
    batches: impl IntoIterator<Item = &'a SubmitBatch>,
) -> Result<(Vec<QueueRow>, Vec<OutgoingRow>), String> {
    let mut queues: HashMap<String, QueueRow> = HashMap::new();
    let mut rows: HashMap<i64, OutgoingRow> = HashMap::new();
    for sub in batches.into_iter().flat_map(|b| &b.submissions) {
        let accepted = from_ms(sub.accepted_at_ms)?;
        // A schedule in the past means "send now", as in playSMS.
        let scheduled = sub.schedule_at_ms.filter(|&at| at > sub.accepted_at_ms).map(from_ms).transpose()?;
        queues.insert(
            sub.queue.clone(),
            QueueRow { queue: sub.queue.clone(), uid: sub.uid, created_at: accepted, scheduled_at: scheduled },
        );
        for d in &sub.destinations {
            rows.insert(
                d.smslog_id,
                OutgoingRow {
                    smslog_id: d.smslog_id,
                    uid: sub.uid,
                    queue: sub.queue.clone(),
                    src: sub.sender.clone(),
                    dst: d.to.clone(),
                    msg: sub.text.clone(),
                    footer: sub.footer.clone(),
                    dt: scheduled.unwrap_or(accepted),
                },
            );
        }
    }
    let mut rows: Vec<OutgoingRow> = rows.into_values().collect();
    // A stable order keeps concurrent batches from locking rows in
    // opposite orders.
    rows.sort_by_key(|r| r.smslog_id);
    let mut queues: Vec<QueueRow> = queues.into_values().collect();
    queues.sort_by(|a, b| a.queue.cmp(&b.queue));
    Ok((queues, rows))
}

/// Keeps one row per message: the highest-ranked status, and for equal rank
/// the latest event, so that `apply_status` sees the batch's final word. An
/// upstream id seen on any event is kept.
pub fn coalesce_status<'a>(events: impl IntoIterator<Item = &'a StatusEvent>) -> Result<Vec<StatusRow>, String> {
    struct Acc {
        uid: i64,
        status: DeliveryStatus,
        at_ms: i64,
        upstream_id: Option<String>,
        reason: Option<String>,
    }
    let mut by_id: HashMap<i64, Acc> = HashMap::new();
    for ev in events {
        let status = ev.status;
        match by_id.get_mut(&ev.smslog_id) {
            None => {
                by_id.insert(
                    ev.smslog_id,
                    Acc {
                        uid: ev.uid,
                        status,
                        at_ms: ev.at_ms,
                        upstream_id: ev.upstream_id.clone(),
                        reason: ev.reason.clone(),
                    },
                );
            }
            Some(acc) => {
                let merged = acc.status.merge(status);
                let later_peer = status.rank() == acc.status.rank() && ev.at_ms > acc.at_ms;
                if merged != acc.status || later_peer {
                    acc.status = status;
                    acc.at_ms = ev.at_ms;
                    acc.reason = ev.reason.clone().or(acc.reason.take());
                }
                if acc.upstream_id.is_none() {
                    acc.upstream_id = ev.upstream_id.clone();
                }
            }
        }
    }
    let mut rows = by_id
        .into_iter()
        .map(|(smslog_id, a)| {
            Ok(StatusRow {
                smslog_id,
                uid: a.uid,
                status: a.status.playsms_code(),
                rank: i16::from(a.status.rank()),
                at: from_ms(a.at_ms)?,
                upstream_id: a.upstream_id,
                reason: a.reason,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    rows.sort_by_key(|r| r.smslog_id);
    Ok(rows)
}

#[tracing::instrument(skip_all, fields(messages = batch.len()))]
pub(crate) async fn handle_submit(pool: PgPool, batch: Vec<Delivery<SubmitBatch>>) -> Result<(), HandlerError> {
    let (queues, rows) = submit_rows(batch.iter().map(|d| &d.body)).map_err(HandlerError::Permanent)?;
    store::insert_submitted(&pool, &queues, &rows).await.map_err(|e| HandlerError::Transient(e.to_string()))?;
    metrics::counter!("smsfleet_query_projected_total", "stream" => "submit").increment(rows.len() as u64);
    Ok(())
}

#[tracing::instrument(skip_all, fields(messages = batch.len()))]
pub(crate) async fn handle_status(pool: PgPool, batch: Vec<Delivery<StatusBatch>>) -> Result<(), HandlerError> {
    let rows = coalesce_status(batch.iter().flat_map(|d| &d.body.events)).map_err(HandlerError::Permanent)?;
    let mut released: Vec<String> = batch.iter().flat_map(|d| d.body.released_queues.iter().cloned()).collect();
    released.sort();
    released.dedup();
    store::apply_status(&pool, &rows).await.map_err(|e| HandlerError::Transient(e.to_string()))?;
    store::release_queues(&pool, &released).await.map_err(|e| HandlerError::Transient(e.to_string()))?;
    metrics::counter!("smsfleet_query_projected_total", "stream" => "status").increment(rows.len() as u64);
    Ok(())
}

/// Bus timestamps are Unix milliseconds; one outside the representable
/// range is corrupt and will never convert, hence a permanent error.
fn from_ms(ms: i64) -> Result<OffsetDateTime, String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| format!("timestamp {ms} ms out of range: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use smsfleet_contract::{Api, DeliveryStatus, Destination, Encoding, Submission};

    use super::*;

    fn ev(id: i64, status: DeliveryStatus, at_ms: i64, up: Option<&str>) -> StatusEvent {
        StatusEvent { smslog_id: id, uid: 1, status, at_ms, upstream_id: up.map(str::to_owned), reason: None }
    }

    #[test]
    fn late_sent_does_not_undo_delivered_and_upstream_id_is_kept() {
        let events = [
            ev(1, DeliveryStatus::Sent, 1_000, Some("up-1")),
            ev(1, DeliveryStatus::Delivered, 2_000, None),
            ev(2, DeliveryStatus::Delivered, 2_000, None),
            ev(2, DeliveryStatus::Sent, 3_000, Some("up-2")),
        ];
        let rows = coalesce_status(&events).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].status, rows[0].rank, rows[0].upstream_id.as_deref()), (3, 2, Some("up-1")));
        assert_eq!(rows[0].at.unix_timestamp(), 2);
        assert_eq!((rows[1].status, rows[1].upstream_id.as_deref()), (3, Some("up-2")));
        assert_eq!(rows[1].at.unix_timestamp(), 2);
    }

    #[test]
    fn equal_rank_keeps_the_latest() {
        let events = [ev(1, DeliveryStatus::Failed, 5_000, None), ev(1, DeliveryStatus::Delivered, 4_000, None)];
        assert_eq!(coalesce_status(&events).unwrap()[0].status, 2);
        let events = [ev(1, DeliveryStatus::Delivered, 4_000, None), ev(1, DeliveryStatus::Failed, 5_000, None)];
        assert_eq!(coalesce_status(&events).unwrap()[0].status, 2);
    }

    #[test]
    fn submissions_become_rows_and_duplicates_collapse() {
        let sub = Submission {
            queue: "q1".into(),
            uid: 7,
            api: Api::Playsms,
            sender: "1234".into(),
            text: "hi".into(),
            footer: " @alice".into(),
            encoding: Encoding::Gsm7,
            flash: false,
            segments: 1,
            msg_type: "text".into(),
            dlr_requested: false,
            accepted_at_ms: 1_000_000,
            schedule_at_ms: Some(2_000_000),
            validity_until_ms: 9_000_000,
            destinations: vec![
                Destination { smslog_id: 11, to: "628111".into() },
                Destination { smslog_id: 12, to: "628222".into() },
            ],
            traceparent: None,
        };
        let mut past = sub.clone();
        past.queue = "q2".into();
        past.schedule_at_ms = Some(500_000);
        past.destinations = vec![Destination { smslog_id: 13, to: "628333".into() }];
        let batch = SubmitBatch { v: 1, batch_id: "b".into(), submissions: vec![sub, past], deadline_ms: None };
        let (queues, rows) = submit_rows([&batch, &batch]).unwrap();
        assert_eq!(queues.len(), 2);
        assert_eq!(queues[0].scheduled_at.map(|t| t.unix_timestamp()), Some(2_000));
        assert_eq!(queues[1].scheduled_at, None);
        assert_eq!(rows.iter().map(|r| r.smslog_id).collect::<Vec<_>>(), vec![11, 12, 13]);
        assert_eq!(rows[0].dt.unix_timestamp(), 2_000);
        assert_eq!(rows[2].dt.unix_timestamp(), 1_000);
        assert_eq!((rows[1].dst.as_str(), rows[1].msg.as_str(), rows[1].footer.as_str()), ("628222", "hi", " @alice"));
    }
}
