//! One chunk from claim to status batch.
//!
//! Order matters for idempotency: claim (Postgres) → submit (the route's
//! [`Upstream`]) → record the verdict (Postgres) → publish the status batch
//! → ack. A crash anywhere leaves a claim that tells the next attempt what
//! may already be out; the status batch id is derived from the outcome, so
//! repeating the tail after a redelivery adds nothing to the Status stream.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use smsfleet_bus::{Bus, Delivery, HandlerError};
use smsfleet_contract::{
    DeliveryStatus, DispatchChunk, SCHEMA_VERSION, StatusBatch, StatusEvent, StatusOrigin, StreamKind, status_batch_id,
};
use smsfleet_domain::Encoding;
use smsfleet_domain::clock::now_ms;
use smsfleet_domain::text::split_parts;
use smsfleet_store::PgPool;
use smsfleet_store::dispatch::{self, Prior};
use tokio::sync::Semaphore;

use crate::pacing::TokenBucket;
use crate::route::{Route, choose_route};
use crate::settle::settle;
use crate::upstream::{OutboundMessage, Upstream, Verdict};

/// Tries of one batch inside one delivery; after that the chunk goes back
/// to JetStream, whose backoff spaces out longer outages.
const MAX_TRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Events per status batch: a pull of 16 full chunks (1,600) fits one, and
/// a batch stays far below the server's 1 MB default payload limit
/// (an event is ~150 bytes of JSON) whatever the pull size.
const STATUS_EVENTS_PER_BATCH: usize = 2_000;

pub(crate) struct Dispatcher {
    bus: Bus,
    pool: PgPool,
    routes: Vec<RouteState>,
    /// The same routes, for [`choose_route`].
    route_list: Vec<Route>,
}

struct RouteState {
    route: Route,
    upstream: Arc<dyn Upstream>,
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

/// What every message of a chunk carries, worked out once per chunk.
struct Content<'a> {
    chunk: &'a DispatchChunk,
    encoding: Encoding,
    parts: Vec<String>,
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

impl Dispatcher {
    pub(crate) fn new(bus: Bus, pool: PgPool, client: &reqwest::Client, routes_in: &[Route]) -> Self {
        let routes = routes_in
            .iter()
            .map(|r| RouteState {
                route: r.clone(),
                upstream: crate::upstream::connect(r, client),
                in_flight: Semaphore::new(r.limits.max_in_flight),
                pace: r.limits.mps.map(TokenBucket::new),
            })
            .collect();
        Self { bus, pool, routes, route_list: routes_in.to_vec() }
    }

    /// Chunks of one pull are processed side by side; the route semaphores
    /// bound what actually hits the upstreams. Their statuses go out
    /// together (issue 13.2): one-recipient traffic makes a chunk per
    /// message, and a status batch per chunk was a publish per message plus
    /// a delivery and an ack per message for each STATUS consumer.
    pub(crate) async fn handle(&self, deliveries: Vec<Delivery<DispatchChunk>>) -> Result<(), HandlerError> {
        let outcomes = join_all(deliveries.iter().map(|d| self.process_chunk(&d.body))).await;
        let mut all = Outcome::default();
        for outcome in outcomes {
            all.merge(outcome);
        }
        let source = deliveries.first().map(|d| d.body.chunk_id.as_str()).unwrap_or_default();
        // Without the status batches the chunks must not be acked; a
        // redelivery re-emits the same events from the dispatch log. A pull
        // regrouped on redelivery gets other batch ids, and the copies
        // change nothing: statuses merge by rank.
        let batches: Vec<(String, String, StatusBatch)> = all
            .events
            .chunks(STATUS_EVENTS_PER_BATCH)
            .enumerate()
            .map(|(i, events)| {
                let batch = StatusBatch {
                    v: SCHEMA_VERSION,
                    batch_id: status_batch_id(StatusOrigin::Dispatch, &format!("{source}+{i}"), events),
                    events: events.to_vec(),
                    released_queues: vec![],
                };
                (self.bus.namespace().subject(StreamKind::Status), batch.batch_id.clone(), batch)
            })
            .collect();
        if !batches.is_empty() {
            self.bus.publish_all(batches).await.map_err(HandlerError::transient)?;
        }
        match all.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The chunk's status events, and the error that stopped part of it.
    #[tracing::instrument(skip_all, fields(chunk_id = %chunk.chunk_id, messages = chunk.destinations.len()))]
    async fn process_chunk(&self, chunk: &DispatchChunk) -> Outcome {
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
        let encoding = chunk.encoding;
        let content = Content { chunk, encoding, parts: split_parts(&chunk.body, encoding) };
        let parts =
            join_all(groups.into_iter().map(|(r, idx)| self.process_group(&self.routes[r], &content, idx))).await;
        for part in parts {
            outcome.merge(part);
        }
        outcome
    }

    /// The destinations of the chunk (by index) that go to one route.
    async fn process_group(&self, rs: &RouteState, content: &Content<'_>, idx: Vec<usize>) -> Outcome {
        let (route, chunk) = (rs.route.name.as_str(), content.chunk);
        let mut out = Outcome::default();
        let items: Vec<(i64, i64)> = idx.iter().map(|&i| (chunk.destinations[i].smslog_id, chunk.uid)).collect();
        let priors = match dispatch::claim(&self.pool, route, &items).await {
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
                Some(Prior::Unconfirmed { attempts }) if rs.upstream.dedupes_by_reference() => {
                    tracing::info!(smslog_id = id, attempts, route, "resending unconfirmed message");
                    to_send.push(i);
                }
                Some(Prior::Unconfirmed { .. }) => fail_now.push((id, "outcome unknown after crash")),
                Some(Prior::Sent { upstream_ids }) => {
                    already_sent += 1;
                    out.events.push(event(id, chunk.uid, DeliveryStatus::Sent, upstream_ids.first().cloned(), None));
                }
                Some(Prior::Failed) => {
                    already_failed += 1;
                    out.events.push(event(id, chunk.uid, DeliveryStatus::Failed, None, None));
                }
            }
        }
        count(route, "already_sent", already_sent);
        count(route, "already_failed", already_failed);
        if !fail_now.is_empty() {
            let ids: Vec<i64> = fail_now.iter().map(|f| f.0).collect();
            if let Err(e) = dispatch::record_failed(&self.pool, &ids).await {
                out.error = Some(HandlerError::transient(e));
                return out;
            }
            for (id, reason) in fail_now {
                count(route, if reason == "expired" { "expired" } else { "unknown" }, 1);
                out.events.push(event(id, chunk.uid, DeliveryStatus::Failed, None, Some(reason.to_owned())));
            }
        }
        let batches = to_send.chunks(rs.route.limits.batch).map(|b| self.send_batch(rs, content, b.to_vec()));
        for part in join_all(batches).await {
            out.merge(part);
        }
        out
    }

    /// Submits one batch, retrying in-process a few times. Claims are
    /// dropped only for messages no try can have reached the upstream with.
    async fn send_batch(&self, rs: &RouteState, content: &Content<'_>, mut pending: Vec<usize>) -> Outcome {
        let (route, chunk) = (rs.route.name.as_str(), content.chunk);
        let mut out = Outcome::default();
        let mut delay = FIRST_BACKOFF;
        let mut maybe_reached: HashSet<usize> = HashSet::new();
        let mut tries = 0;
        loop {
            if now_ms() > chunk.validity_until_ms {
                return self.fail_expired(route, chunk, &pending, out).await;
            }
            tries += 1;
            let messages: Vec<OutboundMessage<'_>> = pending
                .iter()
                .map(|&i| {
                    let d = &chunk.destinations[i];
                    OutboundMessage {
                        smslog_id: d.smslog_id,
                        reference: d.smslog_id.to_string(),
                        from: &chunk.sender,
                        to: &d.to,
                        text: &chunk.body,
                        parts: &content.parts,
                        encoding: content.encoding,
                        flash: chunk.flash,
                    }
                })
                .collect();
            if let Some(pace) = &rs.pace {
                pace.take(pending.len()).await;
            }
            let verdicts = match rs.in_flight.acquire().await {
                Ok(_permit) => rs.upstream.submit(&messages).await,
                Err(e) => vec![Verdict::Temporary { reason: e.to_string() }; pending.len()],
            };
            let settled = settle(&pending, verdicts);
            let sent: Vec<(i64, Vec<String>)> =
                settled.sent.into_iter().map(|(i, ids)| (chunk.destinations[i].smslog_id, ids)).collect();
            if let Err(e) = dispatch::record_sent(&self.pool, &sent).await {
                // The claims stay, so a redelivery resends (deduped
                // upstream by ref) and records the ids then.
                out.error = Some(HandlerError::transient(e));
                return out;
            }
            count(route, "sent", sent.len());
            for (id, upstream_ids) in sent {
                out.events.push(event(id, chunk.uid, DeliveryStatus::Sent, upstream_ids.into_iter().next(), None));
            }
            let rejected_ids: Vec<i64> =
                settled.rejected.iter().map(|&(i, _)| chunk.destinations[i].smslog_id).collect();
            if let Err(e) = dispatch::record_failed(&self.pool, &rejected_ids).await {
                out.error = Some(HandlerError::transient(e));
                return out;
            }
            count(route, "rejected", rejected_ids.len());
            for (id, (_, reason)) in rejected_ids.into_iter().zip(settled.rejected) {
                out.events.push(event(id, chunk.uid, DeliveryStatus::Failed, None, Some(reason)));
            }
            if settled.retry.is_empty() {
                return out;
            }
            maybe_reached.extend(settled.maybe_reached);
            pending = settled.retry;
            let last_error = settled.retry_reason.unwrap_or_default();
            tracing::warn!(route, tries, error = %last_error, messages = pending.len(), "submit failed");
            count(route, "retry", pending.len());
            if tries >= MAX_TRIES {
                let unreached: Vec<i64> = pending
                    .iter()
                    .filter(|i| !maybe_reached.contains(i))
                    .map(|&i| chunk.destinations[i].smslog_id)
                    .collect();
                if let Err(e) = dispatch::release(&self.pool, &unreached).await {
                    tracing::warn!(error = %e, "could not release claims; they will be resent as unconfirmed");
                }
                out.error = Some(HandlerError::Transient(format!("route {route}: {last_error}")));
                return out;
            }
            let until_expiry = u64::try_from(chunk.validity_until_ms - now_ms() + 1).unwrap_or(0);
            tokio::time::sleep(delay.min(Duration::from_millis(until_expiry))).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    async fn fail_expired(&self, route: &str, chunk: &DispatchChunk, pending: &[usize], mut out: Outcome) -> Outcome {
        let ids: Vec<i64> = pending.iter().map(|&i| chunk.destinations[i].smslog_id).collect();
        if let Err(e) = dispatch::record_failed(&self.pool, &ids).await {
            out.error = Some(HandlerError::transient(e));
            return out;
        }
        count(route, "expired", ids.len());
        for id in ids {
            out.events.push(event(id, chunk.uid, DeliveryStatus::Failed, None, Some("expired".to_owned())));
        }
        out
    }
}
