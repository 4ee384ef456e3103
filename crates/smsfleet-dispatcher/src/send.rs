//! One chunk from claim to status batch.
//!
//! Order matters for idempotency: claim (Postgres) → submit (the route's
//! [`Upstream`]) → record the verdict (Postgres) → publish the status batch
//! → ack. A crash anywhere leaves a claim that tells the next attempt what
//! may already be out; the status batch id is derived from the outcome, so
//! repeating the tail after a redelivery adds nothing to the Status stream.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
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

use crate::DispatcherError;
use crate::pacing::TokenBucket;
use crate::route::{Route, choose_route};
use crate::settle::{Settlement, settle};
use crate::upstream::{OutboundMessage, Upstream, Verdict};

/// Tries of one batch inside one delivery; after that the chunk goes back
/// to JetStream, whose backoff spaces out longer outages.
const MAX_TRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) struct Dispatcher {
    bus: Bus,
    pool: PgPool,
    client: reqwest::Client,
    /// Swapped whole by [`Dispatcher::reload`]; a chunk works with the table
    /// it started with, so its sends finish on the upstreams they began on.
    table: RwLock<Arc<RouteTable>>,
}

/// The routes of one configuration, with their upstreams.
pub(crate) struct RouteTable {
    routes: Vec<Arc<RouteState>>,
    /// The same routes, for [`choose_route`].
    list: Vec<Route>,
    /// Per route: itself, then its failover routes (indices into `routes`).
    chains: Vec<Vec<usize>>,
}

struct RouteState {
    route: Route,
    upstream: Arc<dyn Upstream>,
    in_flight: Semaphore,
    pace: Option<TokenBucket>,
}

impl RouteTable {
    /// Connects the upstreams of `routes`. A route whose settings did not
    /// change keeps its upstream, connections, pacing and limits from
    /// `previous`, so a reload disturbs only what it changes.
    fn build(
        routes: &[Route],
        client: &reqwest::Client,
        bus: &Bus,
        previous: Option<&RouteTable>,
    ) -> Result<Self, DispatcherError> {
        let mut states = Vec::with_capacity(routes.len());
        for r in routes {
            let kept = previous.and_then(|p| p.routes.iter().find(|s| s.route == *r)).cloned();
            let state = match kept {
                Some(s) => s,
                None => Arc::new(RouteState {
                    route: r.clone(),
                    upstream: crate::upstream::connect(r, client, bus)?,
                    in_flight: Semaphore::new(r.limits.max_in_flight),
                    pace: r.limits.mps.map(TokenBucket::new),
                }),
            };
            states.push(state);
        }
        let chains = routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let failover = r.failover.iter().filter_map(|f| routes.iter().position(|o| o.name == *f));
                std::iter::once(i).chain(failover).collect()
            })
            .collect();
        Ok(RouteTable { routes: states, list: routes.to_vec(), chains })
    }
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
    pub(crate) fn new(
        bus: Bus,
        pool: PgPool,
        client: &reqwest::Client,
        routes: &[Route],
    ) -> Result<Self, DispatcherError> {
        let table = RouteTable::build(routes, client, &bus, None)?;
        Ok(Self { bus, pool, client: client.clone(), table: RwLock::new(Arc::new(table)) })
    }

    /// Replaces the route table. Chunks in flight keep the table they hold
    /// (the old upstreams drain when the last of them is done); the next
    /// chunk uses the new one. Refused whole if any new upstream cannot be
    /// built.
    pub(crate) fn reload(&self, routes: &[Route]) -> Result<(), DispatcherError> {
        let current = self.current();
        let table = RouteTable::build(routes, &self.client, &self.bus, Some(&current))?;
        *self.table.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(table);
        Ok(())
    }

    /// Closes every upstream of the current table (clean SMPP unbinds).
    pub(crate) async fn close(&self) {
        let table = self.current();
        join_all(table.routes.iter().map(|r| r.upstream.close())).await;
    }

    fn current(&self) -> Arc<RouteTable> {
        self.table.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Chunks of one pull are processed side by side; the route semaphores
    /// bound what actually hits the upstreams.
    pub(crate) async fn handle(&self, deliveries: Vec<Delivery<DispatchChunk>>) -> Result<(), HandlerError> {
        let results = join_all(deliveries.iter().map(|d| self.process_chunk(&d.body))).await;
        results.into_iter().collect()
    }

    #[tracing::instrument(skip_all, fields(chunk_id = %chunk.chunk_id, messages = chunk.destinations.len()))]
    async fn process_chunk(&self, chunk: &DispatchChunk) -> Result<(), HandlerError> {
        let table = self.current();
        let mut outcome = Outcome::default();
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, d) in chunk.destinations.iter().enumerate() {
            match choose_route(&table.list, &d.to) {
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
        let parts = join_all(groups.into_iter().map(|(r, idx)| self.process_group(&table, r, &content, idx))).await;
        for part in parts {
            outcome.merge(part);
        }
        if !outcome.events.is_empty() {
            let batch = StatusBatch {
                v: SCHEMA_VERSION,
                batch_id: status_batch_id(StatusOrigin::Dispatch, &chunk.chunk_id, &outcome.events),
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

    /// The destinations of the chunk (by index) whose route is `primary`.
    async fn process_group(
        &self,
        table: &RouteTable,
        primary: usize,
        content: &Content<'_>,
        idx: Vec<usize>,
    ) -> Outcome {
        let rs = &table.routes[primary];
        let chain = &table.chains[primary];
        let (route, chain_name, chunk) = (rs.route.name.as_str(), rs.route.name.as_str(), content.chunk);
        let mut out = Outcome::default();
        let items: Vec<(i64, i64)> = idx.iter().map(|&i| (chunk.destinations[i].smslog_id, chunk.uid)).collect();
        let priors = match dispatch::claim(&self.pool, route, &items).await {
            Ok(p) => p,
            Err(e) => return Outcome { events: vec![], error: Some(HandlerError::transient(e)) },
        };
        // An unconfirmed claim may have reached any route of the chain (a
        // crash during a failover): resend only if every one de-duplicates.
        let chain_dedupes = chain.iter().all(|&r| table.routes[r].upstream.dedupes_by_reference());
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
                Some(Prior::Unconfirmed { attempts }) if chain_dedupes => {
                    tracing::info!(smslog_id = id, attempts, route, "resending unconfirmed message");
                    to_send.push(i);
                }
                Some(Prior::Unconfirmed { .. }) => fail_now.push((id, "outcome unknown after an interrupted attempt")),
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
        count(chain_name, "already_sent", already_sent);
        count(chain_name, "already_failed", already_failed);
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
        let batches = to_send.chunks(rs.route.limits.batch).map(|b| self.send_batch(table, chain, content, b.to_vec()));
        for part in join_all(batches).await {
            out.merge(part);
        }
        out
    }

    /// Submits one batch along its route's failover chain, retrying the
    /// chain in-process a few times. A message no route took for certain
    /// (temporary) moves to the next route of the chain at once; one that
    /// may be out (unknown) is tried again only on the same route and only
    /// if it de-duplicates by our reference, and is otherwise failed at once:
    /// sending it again could deliver it twice. Claims are dropped only for
    /// messages no try can have reached an upstream with.
    async fn send_batch(
        &self,
        table: &RouteTable,
        chain: &[usize],
        content: &Content<'_>,
        batch: Vec<usize>,
    ) -> Outcome {
        let chunk = content.chunk;
        let primary = table.routes[chain[0]].route.name.as_str();
        let mut out = Outcome::default();
        let mut delay = FIRST_BACKOFF;
        // Where each message is in the chain (position), and which route
        // the dispatch log names for it (reports are matched by route).
        let mut at: Vec<(usize, usize)> = batch.iter().map(|&i| (i, 0)).collect();
        let mut logged_on: HashMap<usize, usize> = batch.iter().map(|&i| (i, chain[0])).collect();
        let mut maybe_reached: HashSet<usize> = HashSet::new();
        let mut tries = 0;
        loop {
            if now_ms() > chunk.validity_until_ms {
                let pending: Vec<usize> = at.iter().map(|p| p.0).collect();
                return self.fail_expired(primary, chunk, &pending, out).await;
            }
            tries += 1;
            let mut next_try: Vec<(usize, usize)> = Vec::new();
            let mut last_error = String::new();
            for pos in 0..chain.len() {
                let group: Vec<usize> = at.iter().filter(|p| p.1 == pos).map(|p| p.0).collect();
                at.retain(|p| p.1 != pos);
                if group.is_empty() {
                    continue;
                }
                let rs = &table.routes[chain[pos]];
                let route = rs.route.name.as_str();
                let moved: Vec<i64> = group
                    .iter()
                    .filter(|i| logged_on.get(i) != Some(&chain[pos]))
                    .map(|&i| chunk.destinations[i].smslog_id)
                    .collect();
                if !moved.is_empty() {
                    tracing::info!(route, messages = moved.len(), "failing over");
                    count(route, "failover", moved.len());
                    if let Err(e) = dispatch::reroute(&self.pool, &moved, route).await {
                        out.error = Some(HandlerError::transient(e));
                        return out;
                    }
                    for &i in &group {
                        logged_on.insert(i, chain[pos]);
                    }
                }
                let settled = match self.send_on(rs, content, &group).await {
                    Ok(s) => s,
                    Err(e) => {
                        out.error = Some(e);
                        return out;
                    }
                };
                for (i, ids) in settled.sent {
                    let id = chunk.destinations[i].smslog_id;
                    out.events.push(event(id, chunk.uid, DeliveryStatus::Sent, ids.into_iter().next(), None));
                }
                count(route, "rejected", settled.rejected.len());
                let mut failed: Vec<(usize, String)> = settled.rejected;
                for (i, reason) in settled.unknown {
                    if rs.upstream.dedupes_by_reference() {
                        maybe_reached.insert(i);
                        last_error.clone_from(&reason);
                        next_try.push((i, pos));
                    } else {
                        tracing::warn!(route, smslog_id = chunk.destinations[i].smslog_id, %reason, "outcome unknown; not sending again");
                        count(route, "unknown", 1);
                        failed.push((i, format!("outcome unknown: {reason}")));
                    }
                }
                if let Err(e) = self.record_failures(chunk, &failed, &mut out).await {
                    out.error = Some(e);
                    return out;
                }
                for (i, reason) in settled.temporary {
                    last_error = reason;
                    if pos + 1 < chain.len() && !maybe_reached.contains(&i) {
                        at.push((i, pos + 1));
                    } else {
                        next_try.push((i, if maybe_reached.contains(&i) { pos } else { 0 }));
                    }
                }
            }
            if next_try.is_empty() {
                return out;
            }
            tracing::warn!(route = primary, tries, error = %last_error, messages = next_try.len(), "submit failed");
            count(primary, "retry", next_try.len());
            if tries >= MAX_TRIES {
                let unreached: Vec<i64> = next_try
                    .iter()
                    .filter(|p| !maybe_reached.contains(&p.0))
                    .map(|p| chunk.destinations[p.0].smslog_id)
                    .collect();
                if let Err(e) = dispatch::release(&self.pool, &unreached).await {
                    tracing::warn!(error = %e, "could not release claims; they will be resent as unconfirmed");
                }
                out.error = Some(HandlerError::Transient(format!("route {primary}: {last_error}")));
                return out;
            }
            at = next_try;
            let until_expiry = u64::try_from(chunk.validity_until_ms - now_ms() + 1).unwrap_or(0);
            tokio::time::sleep(delay.min(Duration::from_millis(until_expiry))).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// One call to one route's upstream (paced in parts, within its
    /// concurrency), with the sent ones recorded.
    async fn send_on(
        &self,
        rs: &RouteState,
        content: &Content<'_>,
        group: &[usize],
    ) -> Result<Settlement, HandlerError> {
        let chunk = content.chunk;
        let route = rs.route.name.as_str();
        let valid_until_ms = match rs.route.limits.validity {
            Some(v) => {
                chunk.validity_until_ms.min(now_ms().saturating_add(i64::try_from(v.as_millis()).unwrap_or(i64::MAX)))
            }
            None => chunk.validity_until_ms,
        };
        let messages: Vec<OutboundMessage<'_>> = group
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
                    valid_until_ms,
                }
            })
            .collect();
        if let Some(pace) = &rs.pace {
            pace.take(group.len() * content.parts.len().max(1)).await;
        }
        let verdicts = match rs.in_flight.acquire().await {
            Ok(_permit) => rs.upstream.submit(&messages).await,
            Err(e) => vec![Verdict::Temporary { reason: e.to_string() }; group.len()],
        };
        let settled = settle(group, verdicts);
        let sent: Vec<(i64, Vec<String>)> =
            settled.sent.iter().map(|(i, ids)| (chunk.destinations[*i].smslog_id, ids.clone())).collect();
        // On failure the claims stay, so a redelivery resends (deduped
        // upstream by ref) or fails them, and records the ids then.
        dispatch::record_sent(&self.pool, &sent).await.map_err(HandlerError::transient)?;
        count(route, "sent", sent.len());
        Ok(settled)
    }

    async fn record_failures(
        &self,
        chunk: &DispatchChunk,
        failed: &[(usize, String)],
        out: &mut Outcome,
    ) -> Result<(), HandlerError> {
        let ids: Vec<i64> = failed.iter().map(|(i, _)| chunk.destinations[*i].smslog_id).collect();
        dispatch::record_failed(&self.pool, &ids).await.map_err(HandlerError::transient)?;
        for (id, (_, reason)) in ids.into_iter().zip(failed) {
            out.events.push(event(id, chunk.uid, DeliveryStatus::Failed, None, Some(reason.clone())));
        }
        Ok(())
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
