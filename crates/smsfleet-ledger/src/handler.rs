//! The Submit handler: price, decide in one transaction, then publish the
//! consequences. Publishing happens after commit and is repeated for refs
//! found already decided, so a crash between commit and publish is healed
//! by the redelivery (the message ids make the repeat a no-op).

use std::collections::{BTreeMap, HashMap, HashSet};

use smsfleet_bus::{Bus, Delivery, HandlerError};
use smsfleet_contract::{
    DeliveryStatus, DispatchChunk, SCHEMA_VERSION, StatusBatch, StatusEvent, StreamKind, Submission, SubmitBatch,
};
use smsfleet_domain::account::{Role, bills_parent};
use smsfleet_domain::clock::now_ms;
use smsfleet_domain::{Credit, charge_for};
use smsfleet_store::{PgConnection, PgPool, ledger};

use crate::plan::{ChargeRequest, Outcome, plan};
use crate::{SharedRates, credit};

pub(crate) struct Ctx {
    pub bus: Bus,
    pub pool: PgPool,
    pub rates: SharedRates,
    pub chunk_size: usize,
}

pub(crate) fn reference(s: &Submission) -> String {
    format!("submit:{}", s.queue)
}

impl Ctx {
    #[tracing::instrument(skip_all, fields(batches = deliveries.len()))]
    pub(crate) async fn handle(&self, deliveries: Vec<Delivery<SubmitBatch>>) -> Result<(), HandlerError> {
        let redelivered = deliveries.iter().any(|d| d.delivered > 1);
        let (submissions, lateness): (Vec<Submission>, Vec<bool>) = deliveries
            .into_iter()
            .flat_map(|d| {
                let late = stored_too_late(&d);
                d.body.submissions.into_iter().map(move |s| (s, late))
            })
            .unzip();
        if submissions.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(HandlerError::transient)?;
        let senders: Vec<i64> = submissions.iter().map(|s| s.uid).collect();
        let parents = billing_parents(&mut tx, &senders).await?;
        let requests = {
            let rates = self.rates.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            submissions
                .iter()
                .zip(&lateness)
                .map(|(s, &late)| ChargeRequest {
                    reference: reference(s),
                    uid: s.uid,
                    parent: parents.get(&s.uid).copied(),
                    total: s.destinations.iter().map(|d| charge_for(&rates, &d.to, s.segments)).sum(),
                    messages: i32::try_from(s.destinations.len()).unwrap_or(i32::MAX),
                    late,
                })
                .collect::<Vec<_>>()
        };

        // Parents are locked with their subusers, all in uid order.
        let uids: Vec<i64> = requests.iter().flat_map(|r| std::iter::once(r.uid).chain(r.parent)).collect();
        let refs: Vec<String> = requests.iter().map(|r| r.reference.clone()).collect();
        let locked = ledger::lock_balances(&mut tx, &uids).await.map_err(HandlerError::transient)?;
        let existing = ledger::existing_entries(&mut tx, &refs).await.map_err(HandlerError::transient)?;
        let balances: HashMap<i64, Credit> = locked.iter().map(|(uid, b)| (*uid, Credit::new(b.balance))).collect();
        let decided = plan(&balances, &existing, &requests);
        ledger::insert_entries(&mut tx, &decided.entries).await.map_err(HandlerError::transient)?;
        let revisions = ledger::update_balances(&mut tx, &decided.balances).await.map_err(HandlerError::transient)?;
        tx.commit().await.map_err(HandlerError::transient)?;
        metrics::counter!("smsfleet_ledger_entries_total").increment(decided.entries.len() as u64);

        let now = now_ms();
        let mut chunks = Vec::new();
        let mut rejections = Vec::new();
        let mut seen = HashSet::new();
        let status_subject = self.bus.namespace().subject(StreamKind::Status);
        for ((s, outcome), &late) in submissions.iter().zip(&decided.outcomes).zip(&lateness) {
            // One submission twice in a batch: publish its consequences once.
            if !seen.insert(s.queue.as_str()) {
                continue;
            }
            match outcome {
                Outcome::Charged => chunks.extend(self.chunks(s, now)),
                Outcome::Rejected => {
                    if late {
                        tracing::warn!(queue = %s.queue, "stored after the ingress's deadline; failed, not charged");
                        metrics::counter!("smsfleet_ledger_late_submissions_total").increment(1);
                    }
                    let reason = if late { REASON_LATE } else { REASON_NO_CREDIT };
                    rejections.push(rejection(&status_subject, s, now, reason))
                }
                Outcome::Foreign(kind) => {
                    tracing::error!(queue = %s.queue, kind = %kind, "ledger ref taken by another entry kind; not sent")
                }
            }
        }
        if !chunks.is_empty() {
            self.bus.publish_all(chunks).await.map_err(HandlerError::transient)?;
        }
        if !rejections.is_empty() {
            self.bus.publish_all(rejections).await.map_err(HandlerError::transient)?;
        }

        // New balances; after a replay, every touched balance, because the
        // first attempt may have died before publishing them.
        let mut states: BTreeMap<i64, (i64, rust_decimal::Decimal)> = BTreeMap::new();
        if redelivered || decided.replayed {
            for (uid, b) in &locked {
                states.insert(*uid, (b.revision, b.balance));
            }
        }
        for (uid, balance) in &decided.balances {
            let revision = revisions.get(uid).copied().unwrap_or_default();
            states.insert(*uid, (revision, *balance));
        }
        for (uid, (revision, balance)) in states {
            credit::publish_balance(&self.bus, uid, revision, balance).await.map_err(HandlerError::transient)?;
        }
        Ok(())
    }

    /// Cuts a charged submission into dispatch chunks, routed through the
    /// scheduler when its send time is still ahead.
    fn chunks(&self, s: &Submission, now: i64) -> Vec<(String, String, DispatchChunk)> {
        let scheduled = s.schedule_at_ms.filter(|at| *at > now);
        let subject =
            self.bus.namespace().subject(if scheduled.is_some() { StreamKind::Schedule } else { StreamKind::Dispatch });
        s.destinations
            .chunks(self.chunk_size)
            .enumerate()
            .map(|(index, destinations)| {
                let chunk_id = format!("{}.{index}", s.queue);
                let chunk = DispatchChunk {
                    v: SCHEMA_VERSION,
                    chunk_id: chunk_id.clone(),
                    queue: s.queue.clone(),
                    uid: s.uid,
                    sender: s.sender.clone(),
                    body: format!("{}{}", s.text, s.footer),
                    encoding: s.encoding,
                    flash: s.flash,
                    segments: s.segments,
                    validity_until_ms: s.validity_until_ms,
                    release_at_ms: scheduled,
                    destinations: destinations.to_vec(),
                    traceparent: s.traceparent.clone(),
                };
                (subject.clone(), chunk_id, chunk)
            })
            .collect()
    }
}

/// The parent each of `uids` spends the credit of, where it has one
/// ([`bills_parent`]): read in the charging transaction, so a `parentset`
/// applies to every send charged after it.
async fn billing_parents(conn: &mut PgConnection, uids: &[i64]) -> Result<HashMap<i64, i64>, HandlerError> {
    let links = ledger::parent_links(conn, uids).await.map_err(HandlerError::transient)?;
    Ok(links
        .into_iter()
        .filter(|l| match (Role::from_code(l.role), Role::from_code(l.parent_role)) {
            (Some(account), Some(parent)) => bills_parent(account, parent),
            _ => false,
        })
        .map(|l| (l.uid, l.parent_uid))
        .collect())
}

const REASON_NO_CREDIT: &str = "insufficient credit";
const REASON_LATE: &str = "not stored in time: the request was answered with an error";

/// The stream received the batch after the instant the ingress stopped
/// waiting for it (a publish buffered through an outage and delivered
/// later): its requests were answered with an error, so it must not be
/// charged or sent. Judged on the stream's clock against the ingress's.
fn stored_too_late(d: &Delivery<SubmitBatch>) -> bool {
    d.body.deadline_ms.is_some_and(|deadline| d.received_ms > deadline)
}

fn rejection(subject: &str, s: &Submission, now: i64, reason: &str) -> (String, String, StatusBatch) {
    let batch_id = format!("rejected.{}", s.queue);
    let events = s
        .destinations
        .iter()
        .map(|d| StatusEvent {
            smslog_id: d.smslog_id,
            uid: s.uid,
            status: DeliveryStatus::Failed,
            at_ms: now,
            upstream_id: None,
            reason: Some(reason.to_owned()),
        })
        .collect();
    (subject.to_owned(), batch_id.clone(), StatusBatch { v: SCHEMA_VERSION, batch_id, events, released_queues: vec![] })
}
