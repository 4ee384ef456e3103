//! One pull of chunks from claim to status batch.
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
    DeliveryStatus, Destination, DispatchChunk, SCHEMA_VERSION, StatusBatch, StatusEvent, StatusOrigin, StreamKind,
    status_batch_id,
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

/// One destination of a pull: its chunk and its place in that chunk.
#[derive(Debug, Clone, Copy)]
struct Target {
    chunk: usize,
    dest: usize,
}

/// The destinations of one pull that go to one route; the send loop refers
/// to them by index into `targets`.
struct Pull<'c, 'a> {
    contents: &'c [Content<'a>],
    targets: Vec<Target>,
}

impl Pull<'_, '_> {
    fn content(&self, i: usize) -> &Content<'_> {
        &self.contents[self.targets[i].chunk]
    }

    fn chunk(&self, i: usize) -> &DispatchChunk {
        self.content(i).chunk
    }

    fn dest(&self, i: usize) -> &Destination {
        &self.chunk(i).destinations[self.targets[i].dest]
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

    /// The chunks of one pull are sent together (issue 13.2): one-recipient
    /// traffic makes a chunk per message, and per chunk it cost a claim, an
    /// upstream call, a record and a status batch per message. Now each
    /// route gets one claim for its destinations of the whole pull, upstream
    /// calls of up to the route's batch size across chunks, and the pull one
    /// status batch; the route semaphores bound what hits the upstreams.
    #[tracing::instrument(skip_all, fields(chunks = deliveries.len()))]
    pub(crate) async fn handle(&self, deliveries: Vec<Delivery<DispatchChunk>>) -> Result<(), HandlerError> {
        let contents: Vec<Content<'_>> = deliveries
            .iter()
            .map(|d| Content {
                chunk: &d.body,
                encoding: d.body.encoding,
                parts: split_parts(&d.body.body, d.body.encoding),
            })
            .collect();
        let mut all = Outcome::default();
        let mut groups: BTreeMap<usize, Vec<Target>> = BTreeMap::new();
        for (c, content) in contents.iter().enumerate() {
            let chunk = content.chunk;
            for (i, d) in chunk.destinations.iter().enumerate() {
                match choose_route(&self.route_list, &d.to) {
                    Some(r) => groups.entry(r).or_default().push(Target { chunk: c, dest: i }),
                    None => {
                        tracing::warn!(smslog_id = d.smslog_id, to = %d.to, chunk_id = %chunk.chunk_id, "no route for destination");
                        count("", "no_route", 1);
                        all.events.push(event(
                            d.smslog_id,
                            chunk.uid,
                            DeliveryStatus::Failed,
                            None,
                            Some("no route".into()),
                        ));
                    }
                }
            }
        }
        let parts = join_all(groups.into_iter().map(|(r, targets)| {
            let pull = Pull { contents: &contents, targets };
            async move { self.process_group(&self.routes[r], &pull).await }
        }))
        .await;
        for part in parts {
            all.merge(part);
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

    /// The destinations of the pull that go to one route.
    async fn process_group(&self, rs: &RouteState, pull: &Pull<'_, '_>) -> Outcome {
        let route = rs.route.name.as_str();
        let mut out = Outcome::default();
        let items: Vec<(i64, i64)> =
            (0..pull.targets.len()).map(|i| (pull.dest(i).smslog_id, pull.chunk(i).uid)).collect();
        let priors = match dispatch::claim(&self.pool, route, &items).await {
            Ok(p) => p,
            Err(e) => return Outcome { events: vec![], error: Some(HandlerError::transient(e)) },
        };
        let now = now_ms();
        let mut to_send = Vec::new();
        let mut fail_now: Vec<(usize, &'static str)> = Vec::new();
        let (mut already_sent, mut already_failed) = (0, 0);
        for i in 0..pull.targets.len() {
            let (id, uid) = (pull.dest(i).smslog_id, pull.chunk(i).uid);
            let expired = now > pull.chunk(i).validity_until_ms;
            match priors.get(&id) {
                None => {
                    // Cannot happen (claim returns every id), but sending
                    // without a claim would break the guarantee.
                    out.error = Some(HandlerError::transient(format!("no claim returned for {id}")));
                }
                Some(Prior::Fresh | Prior::Unconfirmed { .. }) if expired => fail_now.push((i, "expired")),
                Some(Prior::Fresh) => to_send.push(i),
                Some(Prior::Unconfirmed { attempts }) if rs.upstream.dedupes_by_reference() => {
                    tracing::info!(smslog_id = id, attempts, route, "resending unconfirmed message");
                    to_send.push(i);
                }
                Some(Prior::Unconfirmed { .. }) => fail_now.push((i, "outcome unknown after crash")),
                Some(Prior::Sent { upstream_ids }) => {
                    already_sent += 1;
                    out.events.push(event(id, uid, DeliveryStatus::Sent, upstream_ids.first().cloned(), None));
                }
                Some(Prior::Failed) => {
                    already_failed += 1;
                    out.events.push(event(id, uid, DeliveryStatus::Failed, None, None));
                }
            }
        }
        count(route, "already_sent", already_sent);
        count(route, "already_failed", already_failed);
        if !fail_now.is_empty() {
            let ids: Vec<i64> = fail_now.iter().map(|f| pull.dest(f.0).smslog_id).collect();
            if let Err(e) = dispatch::record_failed(&self.pool, &ids).await {
                out.error = Some(HandlerError::transient(e));
                return out;
            }
            for (i, reason) in fail_now {
                count(route, if reason == "expired" { "expired" } else { "unknown" }, 1);
                let (id, uid) = (pull.dest(i).smslog_id, pull.chunk(i).uid);
                out.events.push(event(id, uid, DeliveryStatus::Failed, None, Some(reason.to_owned())));
            }
        }
        let batches = to_send.chunks(rs.route.limits.batch).map(|b| self.send_batch(rs, pull, b.to_vec()));
        for part in join_all(batches).await {
            out.merge(part);
        }
        out
    }

    /// Submits one batch (indices into the pull's targets for this route),
    /// retrying in-process a few times. Claims are dropped only for messages
    /// no try can have reached the upstream with.
    async fn send_batch(&self, rs: &RouteState, pull: &Pull<'_, '_>, mut pending: Vec<usize>) -> Outcome {
        let route = rs.route.name.as_str();
        let mut out = Outcome::default();
        let mut delay = FIRST_BACKOFF;
        let mut maybe_reached: HashSet<usize> = HashSet::new();
        let mut tries = 0;
        loop {
            let now = now_ms();
            let (expired, live): (Vec<usize>, Vec<usize>) =
                pending.iter().partition(|&&i| now > pull.chunk(i).validity_until_ms);
            if !expired.is_empty() {
                out = self.fail_expired(route, pull, &expired, out).await;
                if out.error.is_some() {
                    return out;
                }
            }
            pending = live;
            if pending.is_empty() {
                return out;
            }
            tries += 1;
            let messages: Vec<OutboundMessage<'_>> = pending
                .iter()
                .map(|&i| {
                    let (d, content) = (pull.dest(i), pull.content(i));
                    OutboundMessage {
                        smslog_id: d.smslog_id,
                        reference: d.smslog_id.to_string(),
                        from: &content.chunk.sender,
                        to: &d.to,
                        text: &content.chunk.body,
                        parts: &content.parts,
                        encoding: content.encoding,
                        flash: content.chunk.flash,
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
            let sent: Vec<(usize, Vec<String>)> = settled.sent;
            let recorded: Vec<(i64, Vec<String>)> =
                sent.iter().map(|(i, ids)| (pull.dest(*i).smslog_id, ids.clone())).collect();
            if let Err(e) = dispatch::record_sent(&self.pool, &recorded).await {
                // The claims stay, so a redelivery resends (deduped
                // upstream by ref) and records the ids then.
                out.error = Some(HandlerError::transient(e));
                return out;
            }
            count(route, "sent", sent.len());
            for (i, upstream_ids) in sent {
                let (id, uid) = (pull.dest(i).smslog_id, pull.chunk(i).uid);
                out.events.push(event(id, uid, DeliveryStatus::Sent, upstream_ids.into_iter().next(), None));
            }
            let rejected_ids: Vec<i64> = settled.rejected.iter().map(|&(i, _)| pull.dest(i).smslog_id).collect();
            if let Err(e) = dispatch::record_failed(&self.pool, &rejected_ids).await {
                out.error = Some(HandlerError::transient(e));
                return out;
            }
            count(route, "rejected", rejected_ids.len());
            for (i, reason) in settled.rejected {
                let (id, uid) = (pull.dest(i).smslog_id, pull.chunk(i).uid);
                out.events.push(event(id, uid, DeliveryStatus::Failed, None, Some(reason)));
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
                let unreached: Vec<i64> =
                    pending.iter().filter(|i| !maybe_reached.contains(i)).map(|&i| pull.dest(i).smslog_id).collect();
                if let Err(e) = dispatch::release(&self.pool, &unreached).await {
                    tracing::warn!(error = %e, "could not release claims; they will be resent as unconfirmed");
                }
                out.error = Some(HandlerError::Transient(format!("route {route}: {last_error}")));
                return out;
            }
            let soonest_expiry = pending.iter().map(|&i| pull.chunk(i).validity_until_ms).min().unwrap_or(now);
            let until_expiry = u64::try_from(soonest_expiry - now_ms() + 1).unwrap_or(0);
            tokio::time::sleep(delay.min(Duration::from_millis(until_expiry))).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    async fn fail_expired(&self, route: &str, pull: &Pull<'_, '_>, pending: &[usize], mut out: Outcome) -> Outcome {
        let ids: Vec<i64> = pending.iter().map(|&i| pull.dest(i).smslog_id).collect();
        if let Err(e) = dispatch::record_failed(&self.pool, &ids).await {
            out.error = Some(HandlerError::transient(e));
            return out;
        }
        count(route, "expired", ids.len());
        for &i in pending {
            let (id, uid) = (pull.dest(i).smslog_id, pull.chunk(i).uid);
            out.events.push(event(id, uid, DeliveryStatus::Failed, None, Some("expired".to_owned())));
        }
        out
    }
}
