//! One pull of chunks from claim to status batch.
//!
//! Order matters for idempotency: claim (Postgres) → submit (the route's
//! [`Upstream`]) → record the verdict (Postgres) → publish the status batch
//! → ack. A crash anywhere leaves a claim that tells the next attempt what
//! may already be out; the status batch id is derived from the outcome, so
//! repeating the tail after a redelivery adds nothing to the Status stream.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
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
/// Redeliveries that may resend a message whose outcome stayed unknown,
/// even to a de-duplicating upstream: an upstream that keeps answering
/// what we cannot read (perhaps not the upstream its route says) must not
/// get the message over and over for the whole life of the chunk.
const MAX_UNCONFIRMED_ATTEMPTS: i32 = 3;
/// Events per status batch: a pull of 16 full chunks (1,600) fits one, and
/// a batch stays far below the server's 1 MB default payload limit
/// (an event is ~150 bytes of JSON) whatever the pull size.
const STATUS_EVENTS_PER_BATCH: usize = 2_000;

pub(crate) struct Dispatcher {
    bus: Bus,
    pool: PgPool,
    client: reqwest::Client,
    /// Swapped whole by [`Dispatcher::reload`]; a pull works with the table
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
    /// Set when a whole call was not taken (the upstream is down or
    /// refuses everything for now), cleared by any other answer.
    down: AtomicBool,
}

impl RouteState {
    fn note_health(&self, settled: &Settlement) {
        let down = settled.sent.is_empty() && settled.rejected.is_empty() && settled.unknown.is_empty();
        if self.down.swap(down, Ordering::Relaxed) != down {
            tracing::info!(route = %self.route.name, up = !down, "route state changed");
        }
        metrics::gauge!("smsfleet_dispatch_route_up", "route" => self.route.name.to_string()).set(if down {
            0.0
        } else {
            1.0
        });
    }
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
                    down: AtomicBool::new(false),
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

    /// Whether every destination prefix has a route that is not down
    /// (itself or one of its failover routes).
    fn usable(&self) -> bool {
        self.chains.iter().all(|chain| chain.iter().any(|&r| !self.routes[r].down.load(Ordering::Relaxed)))
    }
}

/// How a batch's claim treats what earlier attempts left.
#[derive(Debug, Clone, Copy)]
struct ClaimRules {
    /// Every route of the chain de-duplicates by our reference, so an
    /// unconfirmed message may be sent again (a few times).
    chain_dedupes: bool,
}

const EXPIRED: &str = "expired";

/// What the send loop does with a just-claimed message.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Send,
    Fail(&'static str),
    /// Sent by an earlier attempt (its first upstream id).
    AlreadySent(Option<String>),
    AlreadyFailed,
}

/// Decides a claimed message from its prior state. `attempts` of an
/// unconfirmed claim already counts this claim.
fn next_step(prior: &Prior, expired: bool, chain_dedupes: bool) -> Step {
    match prior {
        Prior::Fresh | Prior::Unconfirmed { .. } if expired => Step::Fail(EXPIRED),
        Prior::Fresh => Step::Send,
        Prior::Unconfirmed { attempts } if chain_dedupes && *attempts > MAX_UNCONFIRMED_ATTEMPTS => {
            Step::Fail("outcome unknown after repeated interrupted attempts")
        }
        Prior::Unconfirmed { .. } if chain_dedupes => Step::Send,
        Prior::Unconfirmed { .. } => Step::Fail("outcome unknown after an interrupted attempt"),
        Prior::Sent { upstream_ids } => Step::AlreadySent(upstream_ids.first().cloned()),
        Prior::Failed => Step::AlreadyFailed,
    }
}

/// Events of one part of a pull, plus the error that stopped the rest.
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

/// The destinations of one pull whose route is one primary route; the send
/// loop refers to them by index into `targets`.
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

    fn smslog_id(&self, i: usize) -> i64 {
        self.dest(i).smslog_id
    }

    fn event(
        &self,
        i: usize,
        status: DeliveryStatus,
        upstream_id: Option<String>,
        reason: Option<String>,
    ) -> StatusEvent {
        event(self.smslog_id(i), self.chunk(i).uid, status, upstream_id, reason)
    }

    fn expired(&self, i: usize, now: i64) -> bool {
        now > self.chunk(i).validity_until_ms
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
    pub(crate) fn new(
        bus: Bus,
        pool: PgPool,
        client: &reqwest::Client,
        routes: &[Route],
    ) -> Result<Self, DispatcherError> {
        let table = RouteTable::build(routes, client, &bus, None)?;
        Ok(Self { bus, pool, client: client.clone(), table: RwLock::new(Arc::new(table)) })
    }

    /// Replaces the route table. Pulls in flight keep the table they hold
    /// (the old upstreams drain when the last of them is done); the next
    /// pull uses the new one. Refused whole if any new upstream cannot be
    /// built. While a changed route drains, its old and new upstreams both
    /// run, each within its own limits.
    pub(crate) fn reload(&self, routes: &[Route]) -> Result<(), DispatcherError> {
        let current = self.current();
        let table = RouteTable::build(routes, &self.client, &self.bus, Some(&current))?;
        *self.table.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(table);
        Ok(())
    }

    /// For `/readyz`: ready while at least one route per prefix is usable.
    pub(crate) fn usable(&self) -> bool {
        self.current().usable()
    }

    /// Closes every upstream of the current table (clean SMPP unbinds).
    pub(crate) async fn close(&self) {
        let table = self.current();
        join_all(table.routes.iter().map(|r| r.upstream.close())).await;
    }

    fn current(&self) -> Arc<RouteTable> {
        self.table.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The chunks of one pull are sent together (issue 13.2): one-recipient
    /// traffic makes a chunk per message, and per chunk it cost a claim, an
    /// upstream call, a record and a status batch per message. Now each
    /// route gets one claim for its destinations of the whole pull, upstream
    /// calls of up to the route's batch size across chunks, and the pull one
    /// status batch; the route semaphores bound what hits the upstreams.
    /// The whole pull uses one route table, so a reload never splits it.
    #[tracing::instrument(skip_all, fields(chunks = deliveries.len()))]
    pub(crate) async fn handle(&self, deliveries: Vec<Delivery<DispatchChunk>>) -> Result<(), HandlerError> {
        let table = self.current();
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
                match choose_route(&table.list, &d.to) {
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
            let (table, pull) = (&table, Pull { contents: &contents, targets });
            async move { self.process_group(table, r, &pull).await }
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

    /// The destinations of the pull whose route is `primary`.
    async fn process_group(&self, table: &RouteTable, primary: usize, pull: &Pull<'_, '_>) -> Outcome {
        let rs = &table.routes[primary];
        let chain = &table.chains[primary];
        // An unconfirmed claim may have reached any route of the chain (a
        // crash during a failover): resend only if every one de-duplicates.
        let chain_dedupes = chain.iter().all(|&r| table.routes[r].upstream.dedupes_by_reference());
        let mut out = Outcome::default();
        let targets: Vec<usize> = (0..pull.targets.len()).collect();
        let batches = targets
            .chunks(rs.route.limits.batch)
            .map(|b| self.send_batch(table, chain, chain_dedupes, pull, b.to_vec()));
        for part in join_all(batches).await {
            out.merge(part);
        }
        out
    }

    /// Submits one batch (indices into the pull's targets) along its route's
    /// failover chain, retrying the chain in-process a few times. A message
    /// no route took for certain (temporary) moves to the next route of the
    /// chain at once; one that may be out (unknown) is tried again only on
    /// the same route and only if it de-duplicates by our reference, and is
    /// otherwise failed at once: sending it again could deliver it twice.
    /// The batch is claimed in its first call, just before the submit (see
    /// [`Dispatcher::send_on`]). Claims are dropped only for messages no try
    /// can have reached an upstream with. The batch may span chunks, so
    /// validity is per message.
    async fn send_batch(
        &self,
        table: &RouteTable,
        chain: &[usize],
        chain_dedupes: bool,
        pull: &Pull<'_, '_>,
        batch: Vec<usize>,
    ) -> Outcome {
        let primary = table.routes[chain[0]].route.name.as_str();
        let mut out = Outcome::default();
        let mut delay = FIRST_BACKOFF;
        // Where each message is in the chain (position), and which route
        // the dispatch log names for it (reports are matched by route).
        let mut at: Vec<(usize, usize)> = batch.iter().map(|&i| (i, 0)).collect();
        let mut logged_on: HashMap<usize, usize> = batch.iter().map(|&i| (i, chain[0])).collect();
        let mut maybe_reached: HashSet<usize> = HashSet::new();
        let mut tries = 0;
        let mut claim = Some(ClaimRules { chain_dedupes });
        loop {
            let now = now_ms();
            // Before the claim an expired message may have been sent
            // already: the claim decides what it is.
            let (expired, live): (Vec<_>, Vec<_>) =
                at.into_iter().partition(|p| claim.is_none() && pull.expired(p.0, now));
            at = live;
            if !expired.is_empty() {
                let expired: Vec<usize> = expired.iter().map(|p| p.0).collect();
                out = self.fail_expired(primary, pull, &expired, out).await;
                if out.error.is_some() {
                    return out;
                }
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
                    .map(|&i| pull.smslog_id(i))
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
                let settled = match self.send_on(rs, pull, group, claim.take(), &mut out).await {
                    Ok(s) => s,
                    Err(e) => {
                        out.error = Some(e);
                        return out;
                    }
                };
                for (i, ids) in settled.sent {
                    out.events.push(pull.event(i, DeliveryStatus::Sent, ids.into_iter().next(), None));
                }
                count(route, "rejected", settled.rejected.len());
                let mut failed: Vec<(usize, String)> = settled.rejected;
                for (i, reason) in settled.unknown {
                    if rs.upstream.dedupes_by_reference() {
                        maybe_reached.insert(i);
                        last_error.clone_from(&reason);
                        next_try.push((i, pos));
                    } else {
                        tracing::warn!(route, smslog_id = pull.smslog_id(i), %reason, "outcome unknown; not sending again");
                        count(route, "unknown", 1);
                        failed.push((i, format!("outcome unknown: {reason}")));
                    }
                }
                if let Err(e) = self.record_failures(pull, &failed, &mut out).await {
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
                let unreached: Vec<i64> =
                    next_try.iter().filter(|p| !maybe_reached.contains(&p.0)).map(|p| pull.smslog_id(p.0)).collect();
                if let Err(e) = dispatch::release(&self.pool, &unreached).await {
                    tracing::warn!(error = %e, "could not release claims; they will be resent as unconfirmed");
                }
                out.error = Some(HandlerError::Transient(format!("route {primary}: {last_error}")));
                return out;
            }
            at = next_try;
            // Wake for the first message to expire, so it fails on time.
            let soonest_expiry = at.iter().map(|p| pull.chunk(p.0).validity_until_ms).min().unwrap_or(now);
            let until_expiry = u64::try_from(soonest_expiry - now_ms() + 1).unwrap_or(0);
            tokio::time::sleep(delay.min(Duration::from_millis(until_expiry))).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// One call to one route's upstream (paced in parts, within its
    /// concurrency), with the sent ones recorded. With `claim` (a batch's
    /// first call) the group is claimed inside the route's concurrency
    /// permit, right before the submit: after a crash only claims that may
    /// really have reached the upstream look "in flight", and everything
    /// else is simply sent on redelivery.
    async fn send_on(
        &self,
        rs: &RouteState,
        pull: &Pull<'_, '_>,
        mut group: Vec<usize>,
        claim: Option<ClaimRules>,
        out: &mut Outcome,
    ) -> Result<Settlement, HandlerError> {
        let route = rs.route.name.as_str();
        if let Some(pace) = &rs.pace {
            pace.take(group.iter().map(|&i| pull.content(i).parts.len().max(1)).sum()).await;
        }
        let permit = rs.in_flight.acquire().await;
        if let Some(rules) = claim {
            group = self.claim_group(route, pull, &group, rules, out).await?;
            if group.is_empty() {
                return Ok(Settlement::default());
            }
        }
        // The route's own validity caps the chunk's, from the time of this
        // call (a failover starts the clock again).
        let route_until_ms =
            rs.route.limits.validity.map(|v| now_ms().saturating_add(i64::try_from(v.as_millis()).unwrap_or(i64::MAX)));
        let messages: Vec<OutboundMessage<'_>> = group
            .iter()
            .map(|&i| {
                let (d, content) = (pull.dest(i), pull.content(i));
                let chunk = content.chunk;
                OutboundMessage {
                    smslog_id: d.smslog_id,
                    reference: d.smslog_id.to_string(),
                    from: &chunk.sender,
                    to: &d.to,
                    text: &chunk.body,
                    parts: &content.parts,
                    encoding: content.encoding,
                    flash: chunk.flash,
                    valid_until_ms: route_until_ms.map_or(chunk.validity_until_ms, |r| r.min(chunk.validity_until_ms)),
                }
            })
            .collect();
        let verdicts = match &permit {
            Ok(_) => rs.upstream.submit(&messages).await,
            Err(e) => vec![Verdict::Temporary { reason: e.to_string() }; group.len()],
        };
        let settled = settle(&group, verdicts);
        rs.note_health(&settled);
        let sent: Vec<(i64, Vec<String>)> =
            settled.sent.iter().map(|(i, ids)| (pull.smslog_id(*i), ids.clone())).collect();
        // On failure the claims stay, so a redelivery resends (deduped
        // upstream by ref) or fails them, and records the ids then.
        dispatch::record_sent(&self.pool, &sent).await.map_err(HandlerError::transient)?;
        // Held until the accepted ones are recorded: a crash then leaves at
        // most concurrency × batch claims of the route that may be out
        // unrecorded (what a redelivery must treat as unknown).
        drop(permit);
        count(route, "sent", sent.len());
        Ok(settled)
    }

    /// Claims `group` in one statement and settles what an earlier attempt
    /// already decided (sent, failed, expired, outcome unknown); returns the
    /// messages to submit now.
    async fn claim_group(
        &self,
        route: &str,
        pull: &Pull<'_, '_>,
        group: &[usize],
        rules: ClaimRules,
        out: &mut Outcome,
    ) -> Result<Vec<usize>, HandlerError> {
        let items: Vec<(i64, i64)> = group.iter().map(|&i| (pull.smslog_id(i), pull.chunk(i).uid)).collect();
        let priors = dispatch::claim(&self.pool, route, &items).await.map_err(HandlerError::transient)?;
        let now = now_ms();
        let mut to_send = Vec::with_capacity(group.len());
        let mut fail_now: Vec<(usize, &'static str)> = Vec::new();
        let (mut already_sent, mut already_failed) = (0, 0);
        for &i in group {
            let id = pull.smslog_id(i);
            let Some(prior) = priors.get(&id) else {
                // Cannot happen (claim returns every id), but sending
                // without a claim would break the guarantee.
                out.error = Some(HandlerError::transient(format!("no claim returned for {id}")));
                continue;
            };
            match next_step(prior, pull.expired(i, now), rules.chain_dedupes) {
                Step::Send => {
                    if let Prior::Unconfirmed { attempts } = prior {
                        tracing::info!(smslog_id = id, attempts, route, "resending unconfirmed message");
                    }
                    to_send.push(i);
                }
                Step::Fail(reason) => fail_now.push((i, reason)),
                Step::AlreadySent(upstream_id) => {
                    already_sent += 1;
                    out.events.push(pull.event(i, DeliveryStatus::Sent, upstream_id, None));
                }
                Step::AlreadyFailed => {
                    already_failed += 1;
                    out.events.push(pull.event(i, DeliveryStatus::Failed, None, None));
                }
            }
        }
        count(route, "already_sent", already_sent);
        count(route, "already_failed", already_failed);
        if !fail_now.is_empty() {
            let ids: Vec<i64> = fail_now.iter().map(|f| pull.smslog_id(f.0)).collect();
            dispatch::record_failed(&self.pool, &ids).await.map_err(HandlerError::transient)?;
            for (i, reason) in fail_now {
                count(route, if reason == EXPIRED { "expired" } else { "unknown" }, 1);
                out.events.push(pull.event(i, DeliveryStatus::Failed, None, Some(reason.to_owned())));
            }
        }
        Ok(to_send)
    }

    async fn record_failures(
        &self,
        pull: &Pull<'_, '_>,
        failed: &[(usize, String)],
        out: &mut Outcome,
    ) -> Result<(), HandlerError> {
        let ids: Vec<i64> = failed.iter().map(|(i, _)| pull.smslog_id(*i)).collect();
        dispatch::record_failed(&self.pool, &ids).await.map_err(HandlerError::transient)?;
        for (i, reason) in failed {
            out.events.push(pull.event(*i, DeliveryStatus::Failed, None, Some(reason.clone())));
        }
        Ok(())
    }

    async fn fail_expired(&self, route: &str, pull: &Pull<'_, '_>, pending: &[usize], mut out: Outcome) -> Outcome {
        let ids: Vec<i64> = pending.iter().map(|&i| pull.smslog_id(i)).collect();
        if let Err(e) = dispatch::record_failed(&self.pool, &ids).await {
            out.error = Some(HandlerError::transient(e));
            return out;
        }
        count(route, "expired", ids.len());
        for &i in pending {
            out.events.push(pull.event(i, DeliveryStatus::Failed, None, Some("expired".to_owned())));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_sends_fresh_and_settles_what_earlier_attempts_decided() {
        let sent = Prior::Sent { upstream_ids: vec!["u1".into(), "u2".into()] };
        assert_eq!(next_step(&Prior::Fresh, false, false), Step::Send);
        assert_eq!(next_step(&Prior::Fresh, true, true), Step::Fail(EXPIRED));
        assert_eq!(next_step(&sent, true, false), Step::AlreadySent(Some("u1".into())));
        assert_eq!(next_step(&Prior::Failed, false, true), Step::AlreadyFailed);
    }

    #[test]
    fn unconfirmed_is_resent_only_along_a_deduplicating_chain_and_not_forever() {
        let once = Prior::Unconfirmed { attempts: 1 };
        let often = Prior::Unconfirmed { attempts: MAX_UNCONFIRMED_ATTEMPTS + 1 };
        assert_eq!(next_step(&once, false, true), Step::Send);
        assert_eq!(next_step(&once, false, false), Step::Fail("outcome unknown after an interrupted attempt"));
        assert_eq!(next_step(&often, false, true), Step::Fail("outcome unknown after repeated interrupted attempts"));
        assert_eq!(next_step(&once, true, true), Step::Fail(EXPIRED));
    }
}
