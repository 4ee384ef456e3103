//! One chunk from claim to status batch.
//!
//! Order matters for idempotency: claim (Postgres) → submit (HTTP) →
//! record the verdict (Postgres) → publish the status batch → ack. A crash
//! anywhere leaves a claim that tells the next attempt what may already be
//! out; the status batch id is derived from the outcome, so repeating the
//! tail after a redelivery adds nothing to the Status stream.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use smsfleet_bus::{Bus, Delivery, HandlerError};
use smsfleet_contract::{DeliveryStatus, DispatchChunk, SCHEMA_VERSION, StatusBatch, StatusEvent, StreamKind};
use smsfleet_domain::clock::now_ms;
use smsfleet_store::PgPool;
use smsfleet_store::dispatch::{self, Prior};
use tokio::sync::Semaphore;

use crate::pacing::TokenBucket;
use crate::route::{Route, choose_route};
use crate::upstream::{self, CallError, SubmitMessage, SubmitRequest, Verdict};

/// Tries of one HTTP batch inside one delivery; after that the chunk goes
/// back to JetStream, whose backoff spaces out longer outages.
const MAX_TRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) struct Dispatcher {
    bus: Bus,
    pool: PgPool,
    client: reqwest::Client,
    routes: Vec<RouteState>,
    /// The same routes, for [`choose_route`].
    route_list: Vec<Route>,
}

struct RouteState {
    route: Route,
    in_flight: Semaphore,
    pace: Option<TokenBucket>,
}

/// Events of one part of a chunk, plus the error that stopped the rest.
#[derive(Default)]
struct Outcome {
    events: Vec<StatusEvent>,
    error: Option<HandlerError>,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.events.extend(other.events);
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}

fn event(
    smslog_id: i64,
    uid: i64,
    status: DeliveryStatus,
    upstream_id: Option<String>,
    reason: Option<String>,
) -> StatusEvent {
    StatusEvent { smslog_id, uid, status, at_ms: now_ms(), upstream_id, reason }
}

fn count(route: &str, outcome: &'static str, n: usize) {
    if n > 0 {
        metrics::counter!("smsfleet_dispatch_messages_total", "route" => route.to_owned(), "outcome" => outcome)
            .increment(n as u64);
    }
}

/// `d.<chunk_id>.<hash>`: the same outcome of the same chunk always gets the
/// same id (JetStream drops the repeat), a different outcome a new one.
pub(crate) fn status_batch_id(chunk_id: &str, events: &[StatusEvent]) -> String {
    let mut pairs: Vec<(i64, u8)> = events.iter().map(|e| (e.smslog_id, e.status as u8)).collect();
    pairs.sort_unstable();
    let hash = crate::fnv1a(pairs.iter().flat_map(|(id, s)| id.to_le_bytes().into_iter().chain([*s])));
    format!("d.{chunk_id}.{hash:x}")
}

impl Dispatcher {
    pub(crate) fn new(bus: Bus, pool: PgPool, client: reqwest::Client, routes_in: &[Route]) -> Self {
        let routes = routes_in
            .iter()
            .map(|r| RouteState {
                route: r.clone(),
                in_flight: Semaphore::new(r.max_in_flight),
                pace: r.mps.map(TokenBucket::new),
            })
            .collect();
        Self { bus, pool, client, routes, route_list: routes_in.to_vec() }
    }

    /// Chunks of one pull are processed side by side; the route semaphores
    /// bound what actually hits the upstreams.
    pub(crate) async fn handle(&self, deliveries: Vec<Delivery<DispatchChunk>>) -> Result<(), HandlerError> {
        let results = join_all(deliveries.iter().map(|d| self.process_chunk(&d.body))).await;
        results.into_iter().collect()
    }

    #[tracing::instrument(skip_all, fields(chunk_id = %chunk.chunk_id, messages = chunk.destinations.len()))]
    async fn process_chunk(&self, chunk: &DispatchChunk) -> Result<(), HandlerError> {
        let mut outcome = Outcome::default();
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, d) in chunk.destinations.iter().enumerate() {
            match choose_route(&self.route_list, &d.to) {
                Some(r) => groups.entry(r).or_default().push(i),
                None => {
                    tracing::warn!(smslog_id = d.smslog_id, to = %d.to, "no route for destination");
                    count("", "no_route", 1);
                    outcome.events.push(event(
                        d.smslog_id,
                        chunk.uid,
                        DeliveryStatus::Failed,
                        None,
                        Some("no route".into()),
                    ));
                }
            }
        }
        let parts = join_all(groups.into_iter().map(|(r, idx)| self.process_group(&self.routes[r], chunk, idx))).await;
        for part in parts {
            outcome.merge(part);
        }
        if !outcome.events.is_empty() {
            let batch = StatusBatch {
                v: SCHEMA_VERSION,
                batch_id: status_batch_id(&chunk.chunk_id, &outcome.events),
                events: outcome.events,
                released_queues: vec![],
            };
            let subject = self.bus.namespace().subject(StreamKind::Status);
            // Without the status batch the chunk must not be acked; a
            // redelivery re-emits the same events from the dispatch log.
            self.bus.publish(subject, &batch.batch_id, &batch).await.map_err(HandlerError::transient)?;
        }
        match outcome.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The destinations of `chunk` (by index) that go to one route.
    async fn process_group(&self, rs: &RouteState, chunk: &DispatchChunk, idx: Vec<usize>) -> Outcome {
        let route = &rs.route;
        let mut out = Outcome::default();
        let items: Vec<(i64, i64)> = idx.iter().map(|&i| (chunk.destinations[i].smslog_id, chunk.uid)).collect();
        let priors = match dispatch::claim(&self.pool, &route.name, &items).await {
            Ok(p) => p,
            Err(e) => return Outcome { events: vec![], error: Some(HandlerError::transient(e)) },
        };
        let expired = now_ms() > chunk.validity_until_ms;
        let mut to_send = Vec::new();
        let mut fail_now: Vec<(i64, &'static str)> = Vec::new();
        let (mut already_sent, mut already_failed) = (0, 0);
        for &i in &idx {
            let id = chunk.destinations[i].smslog_id;
            match priors.get(&id) {
                None => {
                    // Cannot happen (claim returns every id), but sending
                    // without a claim would break the guarantee.
                    out.error = Some(HandlerError::transient(format!("no claim returned for {id}")));
                }
                Some(Prior::Fresh | Prior::Unconfirmed { .. }) if expired => fail_now.push((id, "expired")),
                Some(Prior::Fresh) => to_send.push(i),
                Some(Prior::Unconfirmed { attempts }) if route.resend_unconfirmed => {
                    tracing::info!(smslog_id = id, attempts, route = %route.name, "resending unconfirmed message");
                    to_send.push(i);
                }
                Some(Prior::Unconfirmed { .. }) => fail_now.push((id, "outcome unknown after crash")),
                Some(Prior::Sent { upstream_id }) => {
                    already_sent += 1;
                    out.events.push(event(id, chunk.uid, DeliveryStatus::Sent, Some(upstream_id.clone()), None));
                }
                Some(Prior::Failed) => {
                    already_failed += 1;
                    out.events.push(event(id, chunk.uid, DeliveryStatus::Failed, None, None));
                }
            }
        }
        count(&route.name, "already_sent", already_sent);
        count(&route.name, "already_failed", already_failed);
        if !fail_now.is_empty() {
            let ids: Vec<i64> = fail_now.iter().map(|f| f.0).collect();
            if let Err(e) = dispatch::record_failed(&self.pool, &ids).await {
                out.error = Some(HandlerError::transient(e));
                return out;
            }
            for (id, reason) in fail_now {
                count(&route.name, if reason == "expired" { "expired" } else { "unknown" }, 1);
                out.events.push(event(id, chunk.uid, DeliveryStatus::Failed, None, Some(reason.to_owned())));
            }
        }
        let batches = to_send.chunks(route.batch).map(|b| self.send_batch(rs, chunk, b.to_vec()));
        for part in join_all(batches).await {
            out.merge(part);
        }
        out
    }

    /// Submits one HTTP batch, retrying in-process a few times. Claims are
    /// dropped only if no try can have reached the upstream.
    async fn send_batch(&self, rs: &RouteState, chunk: &DispatchChunk, mut pending: Vec<usize>) -> Outcome {
        let route = &rs.route;
        let mut out = Outcome::default();
        let mut delay = FIRST_BACKOFF;
        let mut maybe_reached = false;
        let mut tries = 0;
        loop {
            if now_ms() > chunk.validity_until_ms {
                return self.fail_all(route, chunk, &pending, "expired", out).await;
            }
            tries += 1;
            let messages = pending
                .iter()
                .map(|&i| {
                    let d = &chunk.destinations[i];
                    SubmitMessage {
                        reference: d.smslog_id.to_string(),
                        from: &chunk.sender,
                        to: &d.to,
                        text: &chunk.body,
                        encoding: chunk.encoding,
                        flash: chunk.flash,
                        dlr_url: &route.dlr_url,
                    }
                })
                .collect();
            let request = SubmitRequest { messages };
            if let Some(pace) = &rs.pace {
                pace.take(pending.len()).await;
            }
            let result = match rs.in_flight.acquire().await {
                Ok(_permit) => upstream::submit(&self.client, &route.submit_url, &request).await,
                Err(e) => Err(CallError::NotReached(e.to_string())),
            };
            let last_error = match result {
                Ok(verdicts) => {
                    let (mut sent, mut rejected, mut missing) = (Vec::new(), Vec::new(), Vec::new());
                    for &i in &pending {
                        let id = chunk.destinations[i].smslog_id;
                        match verdicts.get(&id.to_string()) {
                            Some(Verdict::Accepted { upstream_id }) => sent.push((id, upstream_id.clone())),
                            Some(Verdict::Rejected { reason }) => rejected.push((id, reason.clone())),
                            None => missing.push(i),
                        }
                    }
                    if let Err(e) = dispatch::record_sent(&self.pool, &sent).await {
                        // The claims stay, so a redelivery resends (deduped
                        // upstream by ref) and records the ids then.
                        out.error = Some(HandlerError::transient(e));
                        return out;
                    }
                    count(&route.name, "sent", sent.len());
                    for (id, upstream_id) in sent {
                        out.events.push(event(id, chunk.uid, DeliveryStatus::Sent, Some(upstream_id), None));
                    }
                    let rejected_ids: Vec<i64> = rejected.iter().map(|r| r.0).collect();
                    if let Err(e) = dispatch::record_failed(&self.pool, &rejected_ids).await {
                        out.error = Some(HandlerError::transient(e));
                        return out;
                    }
                    count(&route.name, "rejected", rejected.len());
                    for (id, reason) in rejected {
                        out.events.push(event(id, chunk.uid, DeliveryStatus::Failed, None, Some(reason)));
                    }
                    if missing.is_empty() {
                        return out;
                    }
                    maybe_reached = true;
                    pending = missing;
                    "the upstream's answer lacked some refs".to_owned()
                }
                Err(CallError::Refused(why)) => {
                    tracing::warn!(route = %route.name, %why, "upstream refused a submit");
                    return self.fail_all(route, chunk, &pending, &why, out).await;
                }
                Err(CallError::NotReached(why)) => why,
                Err(CallError::Unknown(why)) => {
                    maybe_reached = true;
                    why
                }
            };
            tracing::warn!(route = %route.name, tries, error = %last_error, messages = pending.len(), "submit failed");
            count(&route.name, "retry", pending.len());
            if tries >= MAX_TRIES {
                if !maybe_reached {
                    let ids: Vec<i64> = pending.iter().map(|&i| chunk.destinations[i].smslog_id).collect();
                    if let Err(e) = dispatch::release(&self.pool, &ids).await {
                        tracing::warn!(error = %e, "could not release claims; they will be resent as unconfirmed");
                    }
                }
                out.error = Some(HandlerError::Transient(format!("route {}: {last_error}", route.name)));
                return out;
            }
            let until_expiry = u64::try_from(chunk.validity_until_ms - now_ms() + 1).unwrap_or(0);
            tokio::time::sleep(delay.min(Duration::from_millis(until_expiry))).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    async fn fail_all(
        &self,
        route: &Route,
        chunk: &DispatchChunk,
        pending: &[usize],
        reason: &str,
        mut out: Outcome,
    ) -> Outcome {
        let ids: Vec<i64> = pending.iter().map(|&i| chunk.destinations[i].smslog_id).collect();
        if let Err(e) = dispatch::record_failed(&self.pool, &ids).await {
            out.error = Some(HandlerError::transient(e));
            return out;
        }
        count(&route.name, if reason == "expired" { "expired" } else { "rejected" }, ids.len());
        for id in ids {
            out.events.push(event(id, chunk.uid, DeliveryStatus::Failed, None, Some(reason.to_owned())));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_id_depends_on_outcome_not_order() {
        let a = event(1, 7, DeliveryStatus::Sent, Some("u1".into()), None);
        let b = event(2, 7, DeliveryStatus::Failed, None, Some("x".into()));
        let id1 = status_batch_id("q.0", &[a.clone(), b.clone()]);
        let id2 = status_batch_id("q.0", &[b.clone(), a.clone()]);
        assert_eq!(id1, id2);
        assert!(id1.starts_with("d.q.0."));
        let mut b2 = b;
        b2.status = DeliveryStatus::Sent;
        assert_ne!(id1, status_batch_id("q.0", &[a, b2]));
    }
}
