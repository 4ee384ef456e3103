//! [`Upstream`] over SMPP 3.4: a route's binds (leased fleet-wide through
//! the bus, so the route never holds more than `binds` however many
//! dispatchers run), one submit_sm per part, and the receipts and MOs that
//! arrive on RX/TRX binds.
//!
//! Per bind the session layer (`smsfleet-smpp`) keeps the window, the pace
//! and the timers. Here: ESME_RTHROTTLED / ESME_RMSGQFUL pause the bind and
//! the refused parts go again, first, in their order; other error statuses
//! reject the message with the status's name; a part whose response never
//! came (timeout, bind died) makes the message's outcome unknown, which the
//! send loop fails at most once or resends on a route with `resend = true`.
//!
//! Receipts become `DlrBatch`es on the Dlr stream (the upstream id in the
//! route's canonical form, the same form the submit_sm_resp id is recorded
//! in) and MOs `IncomingMessage`s on INCOMING; the deliver_sm_resp goes out
//! only after the PubAck, so the SMSC redelivers what we could not store.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, join_all};
use smsfleet_bus::{Bus, SlotLease};
use smsfleet_contract::{
    DlrBatch, DlrOutcome, DlrReport, IncomingKind, IncomingMessage, RouteId, SCHEMA_VERSION, StreamKind,
};
use smsfleet_domain::clock::now_ms;
use smsfleet_smpp::{
    InboundRequest, PendingResponse, SessionError, SessionHandle,
    client::{BindState, Client},
    receipt::{self, IdMatch, IdSource, Receipt, ReceiptState},
    rusmpp::{
        CommandStatus, Pdu,
        pdus::{DeliverSm, DeliverSmResp, SubmitSm},
        types::EmptyOrFullCOctetString,
        values::{EsmClass, Npi, RegisteredDelivery, ServiceType, Ton},
    },
    status_name,
    text::{self, DataCodingMap, EncodedMessage, Reassembler},
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{OutboundMessage, Upstream, Verdict};
use crate::route::SmppSettings;

/// Longest pause after repeated throttling answers.
const MAX_THROTTLE_PAUSE: Duration = Duration::from_secs(30);
/// Throttling answers one part may get before it is given back to the send
/// loop (as not sent).
const MAX_THROTTLED_TRIES: u32 = 20;
/// How long a submit waits for a bind when none is bound (start-up,
/// reconnect) before the route counts as down.
const WAIT_FOR_BIND: Duration = Duration::from_secs(5);

pub(crate) struct SmppUpstream {
    route: RouteId,
    settings: SmppSettings,
    map: DataCodingMap,
    pool: Arc<BindPool>,
    next_reference: AtomicU16,
    stop: CancellationToken,
    keeper: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The binds this process holds for one route.
#[derive(Default)]
struct BindPool {
    binds: Mutex<Vec<HeldBind>>,
    next: AtomicUsize,
    changed: tokio::sync::Notify,
}

struct HeldBind {
    slot: u32,
    session: watch::Receiver<Option<SessionHandle>>,
}

impl BindPool {
    fn bound(&self) -> Vec<SessionHandle> {
        let binds = self.binds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        binds.iter().filter_map(|b| b.session.borrow().clone().filter(|s| !s.is_closed())).collect()
    }

    fn held(&self) -> usize {
        self.binds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    async fn wait_bound(&self, timeout: Duration) -> Vec<SessionHandle> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let bound = self.bound();
            if !bound.is_empty() {
                return bound;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }
}

impl SmppUpstream {
    pub(crate) fn new(bus: &Bus, route: &RouteId, settings: &SmppSettings) -> Result<Self, String> {
        let client_config = settings.client_config()?;
        let pool = Arc::new(BindPool::default());
        let stop = CancellationToken::new();
        let ctx = BindContext {
            bus: bus.clone(),
            route: route.clone(),
            id_match: settings.id_match(),
            map: settings.data_coding_map(),
        };
        let keeper = tokio::spawn(keep_binds(ctx, client_config, settings.binds, pool.clone(), stop.clone()));
        Ok(Self {
            route: route.clone(),
            settings: settings.clone(),
            map: settings.data_coding_map(),
            pool,
            next_reference: AtomicU16::new(rand::random()),
            stop,
            keeper: Mutex::new(Some(keeper)),
        })
    }

    fn submit_sm(&self, m: &OutboundMessage<'_>) -> SubmitSm {
        let s = &self.settings;
        let from = m.from.trim_start_matches('+');
        let numeric = !from.is_empty() && from.bytes().all(|b| b.is_ascii_digit());
        let source_ton = s.source_ton.unwrap_or(if numeric { 1 } else { 5 });
        let source_npi = s.source_npi.unwrap_or(if numeric { 1 } else { 0 });
        let validity = time_of_ms(m.valid_until_ms)
            .map(smsfleet_smpp::time::format_absolute)
            .and_then(|t| EmptyOrFullCOctetString::<17>::from_string(t).ok())
            .unwrap_or_else(EmptyOrFullCOctetString::empty);
        let mut sm = SubmitSm::builder()
            .source_addr_ton(Ton::from(source_ton))
            .source_addr_npi(Npi::from(source_npi))
            .source_addr(smsfleet_smpp::c_string(if numeric { from } else { m.from }))
            .dest_addr_ton(Ton::from(s.destination_ton))
            .dest_addr_npi(Npi::from(s.destination_npi))
            .destination_addr(smsfleet_smpp::c_string(m.to.trim_start_matches('+')))
            .registered_delivery(RegisteredDelivery::from(u8::from(s.registered_delivery)))
            .validity_period(validity)
            .esm_class(EsmClass::from(0))
            .build();
        if !s.service_type.is_empty() {
            sm.service_type = ServiceType::new(smsfleet_smpp::c_string(&s.service_type));
        }
        sm
    }

    fn encode(&self, m: &OutboundMessage<'_>) -> Result<(EncodedMessage, SubmitSm), Verdict> {
        let reference = self.next_reference.fetch_add(1, Ordering::Relaxed);
        let encoded = text::encode_message(m.text, m.encoding, &self.map, self.settings.split_mode(), reference)
            .map_err(|e| Verdict::Rejected { reason: e.to_string() })?;
        Ok((encoded, self.submit_sm(m)))
    }

    async fn submit_batch(&self, batch: &[OutboundMessage<'_>]) -> Vec<Verdict> {
        let route = self.route.as_str();
        let mut sessions = self.pool.bound();
        if sessions.is_empty() {
            sessions = self.pool.wait_bound(WAIT_FOR_BIND).await;
        }
        if sessions.is_empty() {
            return vec![Verdict::Temporary { reason: format!("route {route}: no SMPP bind is up") }; batch.len()];
        }
        let mut verdicts: Vec<Option<Verdict>> = vec![None; batch.len()];
        let mut queues: Vec<Vec<Item>> = (0..sessions.len()).map(|_| Vec::new()).collect();
        let mut parts_of: Vec<usize> = vec![0; batch.len()];
        for (i, m) in batch.iter().enumerate() {
            match self.encode(m) {
                Err(v) => verdicts[i] = Some(v),
                Ok((encoded, base)) => {
                    // All parts of one message on one bind, in order.
                    let bind = self.pool.next.fetch_add(1, Ordering::Relaxed) % sessions.len();
                    parts_of[i] = encoded.parts.len();
                    for (p, part) in encoded.parts.iter().enumerate() {
                        let mut sm = base.clone();
                        let mut dcs = encoded.data_coding;
                        if m.flash && (dcs == 0 || dcs == 8) {
                            dcs |= 0x10; // message class 0
                        }
                        text::apply_to_submit(part, dcs, &mut sm);
                        queues[bind].push(Item { message: i, part: p, pdu: sm, throttled: 0 });
                    }
                }
            }
        }
        let pause = Duration::from_millis(self.settings.throttle_pause_ms.max(1));
        let runs = sessions.iter().zip(queues).map(|(s, q)| run_on_bind(route, s, q, pause));
        let mut results: Vec<Vec<PartResult>> = parts_of.iter().map(|&n| Vec::with_capacity(n)).collect();
        let mut outcomes: Vec<(usize, usize, PartResult)> = join_all(runs).await.into_iter().flatten().collect();
        outcomes.sort_by_key(|(m, p, _)| (*m, *p));
        for (m, _, r) in outcomes {
            results[m].push(r);
        }
        let id_match = self.settings.id_match();
        verdicts.into_iter().zip(results).map(|(v, parts)| v.unwrap_or_else(|| aggregate(parts, id_match))).collect()
    }
}

impl Drop for SmppUpstream {
    fn drop(&mut self) {
        // A route removed by a reload: its binds unbind in the background.
        self.stop.cancel();
    }
}

impl Upstream for SmppUpstream {
    fn submit<'a>(&'a self, batch: &'a [OutboundMessage<'a>]) -> BoxFuture<'a, Vec<Verdict>> {
        Box::pin(self.submit_batch(batch))
    }

    fn dedupes_by_reference(&self) -> bool {
        self.settings.resend
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.stop.cancel();
            let keeper = self.keeper.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            if let Some(k) = keeper {
                let _ = k.await;
            }
        })
    }
}

fn time_of_ms(ms: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

struct Item {
    message: usize,
    part: usize,
    pdu: SubmitSm,
    throttled: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum PartResult {
    Accepted(String),
    Rejected(String),
    /// Certainly not processed by the SMSC.
    NotSent(String),
    /// May have been processed.
    Unknown(String),
}

fn is_throttling(status: CommandStatus) -> bool {
    matches!(status, CommandStatus::EsmeRthrottled | CommandStatus::EsmeRmsgqful)
}

/// Sends `items` on one bind, pipelined up to its window; throttling
/// answers pause the bind and put the refused parts back first, in order.
async fn run_on_bind(
    route: &str,
    session: &SessionHandle,
    items: Vec<Item>,
    first_pause: Duration,
) -> Vec<(usize, usize, PartResult)> {
    let mut queue: VecDeque<Item> = items.into();
    let mut done = Vec::with_capacity(queue.len());
    let mut in_flight: VecDeque<(Item, PendingResponse)> = VecDeque::new();
    let mut pause = first_pause;
    loop {
        let mut throttled: Vec<Item> = Vec::new();
        while in_flight.len() < session.window() {
            let Some(item) = queue.pop_front() else { break };
            match session.send(item.pdu.clone()).await {
                Ok(pending) => {
                    metrics::counter!("smsfleet_smpp_submits_total", "route" => route.to_owned()).increment(1);
                    in_flight.push_back((item, pending));
                }
                Err(e) => {
                    done.push((item.message, item.part, PartResult::NotSent(e.to_string())));
                    // The bind is gone: nothing further is sent on it.
                    done.extend(queue.drain(..).map(|i| (i.message, i.part, PartResult::NotSent(e.to_string()))));
                    break;
                }
            }
        }
        metrics::gauge!("smsfleet_smpp_window_in_use", "route" => route.to_owned()).set(session.in_flight() as f64);
        let Some((item, pending)) = in_flight.pop_front() else { break };
        // Await the oldest; on throttling, drain the rest first so the
        // retries go ahead of everything not yet sent.
        let mut answers = vec![(item, pending.response().await)];
        if matches!(&answers[0].1, Ok(c) if is_throttling(c.status())) {
            while let Some((item, pending)) = in_flight.pop_front() {
                answers.push((item, pending.response().await));
            }
        }
        for (mut item, answer) in answers {
            let result = match answer {
                Ok(resp) if resp.status() == CommandStatus::EsmeRok => match resp.pdu() {
                    Some(Pdu::SubmitSmResp(r)) if !r.message_id().as_str().is_empty() => {
                        PartResult::Accepted(r.message_id().as_str().to_owned())
                    }
                    _ => PartResult::Unknown("submit_sm_resp without a message_id".to_owned()),
                },
                Ok(resp) if is_throttling(resp.status()) => {
                    error_metric(route, resp.status());
                    item.throttled += 1;
                    if item.throttled >= MAX_THROTTLED_TRIES {
                        PartResult::NotSent(status_name(resp.status()))
                    } else {
                        throttled.push(item);
                        continue;
                    }
                }
                Ok(resp) => {
                    error_metric(route, resp.status());
                    PartResult::Rejected(status_name(resp.status()))
                }
                Err(SessionError::GenericNack(status)) => {
                    error_metric(route, status);
                    PartResult::Rejected(format!("generic_nack {}", status_name(status)))
                }
                Err(e @ SessionError::Unbinding) => PartResult::NotSent(e.to_string()),
                Err(e) => PartResult::Unknown(e.to_string()),
            };
            done.push((item.message, item.part, result));
        }
        if !throttled.is_empty() {
            tracing::warn!(route, parts = throttled.len(), ?pause, "SMSC throttling; bind paused");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_THROTTLE_PAUSE);
            for item in throttled.into_iter().rev() {
                queue.push_front(item);
            }
        } else if !done.is_empty() {
            pause = first_pause;
        }
    }
    done
}

fn error_metric(route: &str, status: CommandStatus) {
    metrics::counter!("smsfleet_smpp_errors_total", "route" => route.to_owned(), "status" => status_name(status))
        .increment(1);
}

/// One message's verdict from its parts' results.
fn aggregate(parts: Vec<PartResult>, id_match: IdMatch) -> Verdict {
    if parts.is_empty() {
        return Verdict::Unknown { reason: "no part was answered".to_owned() };
    }
    let any_out = parts.iter().any(|p| matches!(p, PartResult::Accepted(_) | PartResult::Unknown(_)));
    let mut ids = Vec::with_capacity(parts.len());
    let (mut rejected, mut not_sent, mut unknown) = (None, None, None);
    for p in parts {
        match p {
            PartResult::Accepted(id) => ids.push(receipt::canonical_id(&id, id_match, IdSource::SubmitResp)),
            PartResult::Rejected(r) => rejected = rejected.or(Some(r)),
            PartResult::NotSent(r) => not_sent = not_sent.or(Some(r)),
            PartResult::Unknown(r) => unknown = unknown.or(Some(r)),
        }
    }
    match (rejected, not_sent, unknown) {
        (None, None, None) => Verdict::Accepted { upstream_ids: ids },
        (_, _, Some(reason)) => Verdict::Unknown { reason },
        // Some parts are out, others not: sending again would repeat them.
        (r, n, None) if any_out => {
            Verdict::Unknown { reason: format!("only some parts were accepted: {}", r.or(n).unwrap_or_default()) }
        }
        (Some(reason), _, None) => Verdict::Rejected { reason },
        (None, Some(reason), None) => Verdict::Temporary { reason },
    }
}

/// What the bind tasks need to turn deliver_sm into bus messages.
#[derive(Clone)]
struct BindContext {
    bus: Bus,
    route: RouteId,
    id_match: IdMatch,
    map: DataCodingMap,
}

/// Takes bind slots (fleet-wide) up to `binds`, keeps a bind per slot,
/// gives a slot back when its bind stops.
async fn keep_binds(
    ctx: BindContext,
    config: smsfleet_smpp::client::ClientConfig,
    binds: u32,
    pool: Arc<BindPool>,
    stop: CancellationToken,
) {
    let pool_name = format!("smpp.{}", ctx.route.as_str());
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        if pool.held() < binds as usize {
            match SlotLease::acquire(&ctx.bus, &pool_name, binds).await {
                Ok(Some(lease)) => {
                    running.spawn(run_bind(ctx.clone(), config.clone(), lease, pool.clone(), stop.clone()));
                    // Jitter, so replicas starting together share the slots.
                    let jitter = Duration::from_millis(200 + u64::from(rand::random::<u16>() % 800));
                    tokio::select! {
                        _ = tokio::time::sleep(jitter) => continue,
                        _ = stop.cancelled() => break,
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(route = %ctx.route, error = %e, "cannot lease an SMPP bind slot"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3)) => {}
            _ = stop.cancelled() => break,
        }
    }
    while running.join_next().await.is_some() {}
}

async fn run_bind(
    ctx: BindContext,
    config: smsfleet_smpp::client::ClientConfig,
    lease: SlotLease,
    pool: Arc<BindPool>,
    stop: CancellationToken,
) {
    let slot = lease.slot();
    let route = ctx.route.as_str().to_owned();
    let mut client = Client::spawn(config);
    let inbound = client.take_inbound();
    let receiver = tokio::spawn(serve_inbound(ctx.clone(), inbound));
    {
        let mut binds = pool.binds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        binds.push(HeldBind { slot, session: client.session_watch() });
    }
    let mut state = client.state_watch();
    loop {
        let current = state.borrow_and_update().clone();
        report_state(&route, slot, &current);
        if current == BindState::Bound {
            pool.changed.notify_waiters();
        }
        tokio::select! {
            changed = state.changed() => if changed.is_err() { break },
            _ = lease.lost() => {
                tracing::error!(route, slot, "bind slot lost; unbinding");
                break;
            }
            _ = stop.cancelled() => break,
        }
    }
    pool.binds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|b| b.slot != slot);
    client.shutdown().await;
    report_state(&route, slot, &BindState::Down);
    receiver.abort();
    lease.release().await;
}

fn report_state(route: &str, slot: u32, state: &BindState) {
    for s in ["connecting", "bound", "reconnecting", "down"] {
        let value = if s == state.as_str() { 1.0 } else { 0.0 };
        metrics::gauge!("smsfleet_smpp_bind_state", "route" => route.to_owned(), "bind" => slot.to_string(), "state" => s)
            .set(value);
    }
}

/// Receipts being stored at once per bind (each waits for its PubAck).
const RECEIPTS_IN_FLIGHT: usize = 256;

/// Answers the deliver_sm of one bind: each only after what it carries is
/// durable on the bus. Receipts are stored side by side (bounded); MOs in
/// order, since their parts are reassembled here.
async fn serve_inbound(ctx: BindContext, mut inbound: mpsc::Receiver<InboundRequest>) {
    let mut reassembler = Reassembler::new(1024);
    let slots = Arc::new(tokio::sync::Semaphore::new(RECEIPTS_IN_FLIGHT));
    while let Some(InboundRequest { command, responder }) = inbound.recv().await {
        let Some(Pdu::DeliverSm(sm)) = command.pdu() else {
            let _ = responder.reject(CommandStatus::EsmeRinvcmdid).await;
            continue;
        };
        match receipt::from_deliver_sm(sm, &ctx.map) {
            Some(Ok(r)) => {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let stored = store_receipt(&ctx, &r).await;
                    answer(&ctx, responder, stored).await;
                    drop(slot);
                });
            }
            Some(Err(e)) => {
                // Refusing would only have it sent again, forever.
                tracing::warn!(route = %ctx.route, error = %e, "unreadable SMPP receipt dropped");
                metrics::counter!("smsfleet_smpp_receipts_total", "route" => ctx.route.as_str().to_owned(), "outcome" => "unreadable").increment(1);
                answer(&ctx, responder, Ok(())).await;
            }
            None => {
                let stored = store_mo(&ctx, sm, &mut reassembler).await;
                answer(&ctx, responder, stored).await;
            }
        }
    }
}

async fn answer(ctx: &BindContext, responder: smsfleet_smpp::Responder, stored: Result<(), smsfleet_bus::BusError>) {
    let _ = match stored {
        Ok(()) => responder.respond(DeliverSmResp::default()).await,
        Err(e) => {
            tracing::warn!(route = %ctx.route, error = %e, "deliver_sm not stored; the SMSC will retry");
            responder.reject(CommandStatus::EsmeRxTAppn).await
        }
    };
}

fn outcome(state: ReceiptState) -> Option<DlrOutcome> {
    match state {
        ReceiptState::Delivered => Some(DlrOutcome::Delivered),
        ReceiptState::Expired
        | ReceiptState::Deleted
        | ReceiptState::Undeliverable
        | ReceiptState::Rejected
        | ReceiptState::Failed => Some(DlrOutcome::Failed),
        ReceiptState::Scheduled
        | ReceiptState::Enroute
        | ReceiptState::Accepted
        | ReceiptState::Unknown
        | ReceiptState::Skipped => None,
    }
}

async fn store_receipt(ctx: &BindContext, r: &Receipt) -> Result<(), smsfleet_bus::BusError> {
    let route = ctx.route.as_str();
    let Some(outcome) = outcome(r.state) else {
        metrics::counter!("smsfleet_smpp_receipts_total", "route" => route.to_owned(), "outcome" => "intermediate")
            .increment(1);
        return Ok(());
    };
    let upstream_id = receipt::canonical_id(&r.id, ctx.id_match, IdSource::Receipt);
    if upstream_id.is_empty() || upstream_id.contains('\0') {
        return Ok(());
    }
    let report = DlrReport {
        upstream_id: upstream_id.clone(),
        outcome,
        error_code: r.error.clone().filter(|e| !e.is_empty() && !e.contains('\0')),
        done_at_ms: r.done_date.map(|d| d.assume_utc().unix_timestamp() * 1000),
    };
    // Deterministic: a deliver_sm sent again (our resp was lost) is the
    // same message to JetStream's de-duplication.
    let batch_id = format!("smpp:{route}:{upstream_id}:{}", r.state.stat());
    let batch = DlrBatch {
        v: SCHEMA_VERSION,
        batch_id: batch_id.clone(),
        route: route.to_owned(),
        received_at_ms: now_ms(),
        reports: vec![report],
    };
    ctx.bus.publish(ctx.bus.namespace().subject(StreamKind::Dlr), &batch_id, &batch).await?;
    metrics::counter!("smsfleet_smpp_receipts_total", "route" => route.to_owned(), "outcome" => "stored").increment(1);
    Ok(())
}

async fn store_mo(
    ctx: &BindContext,
    sm: &DeliverSm,
    reassembler: &mut Reassembler,
) -> Result<(), smsfleet_bus::BusError> {
    let from = sm.source_addr.as_str().to_owned();
    let to = sm.destination_addr.as_str().to_owned();
    let part = text::received_part(sm.esm_class, sm.data_coding, sm.short_message().as_ref(), sm.tlvs());
    let dcs = part.data_coding;
    let Some(content) = reassembler.push(&format!("{from}>{to}"), part) else {
        // A part of a longer MO: kept in memory until the rest arrives.
        return Ok(());
    };
    let text = text::decode(&content, ctx.map.encoding_of(dcs));
    if text.contains('\0') || from.is_empty() {
        return Ok(());
    }
    let route = ctx.route.as_str();
    // deliver_sm carries no id: the key is the content, so a deliver_sm
    // sent again within the de-duplication window is stored once.
    let key = format!("mo:{route}:{}", fnv(&[from.as_bytes(), to.as_bytes(), text.as_bytes()]));
    let message = IncomingMessage {
        v: SCHEMA_VERSION,
        key: key.clone(),
        kind: IncomingKind::Mo,
        sender: from,
        receiver: to,
        text,
        smsc: route.to_owned(),
        to_uid: None,
        received_at_ms: now_ms(),
        traceparent: smsfleet_telemetry::current_traceparent(),
    };
    ctx.bus.publish(ctx.bus.namespace().subject(StreamKind::Incoming), &key, &message).await?;
    metrics::counter!("smsfleet_smpp_mo_received_total", "route" => route.to_owned()).increment(1);
    Ok(())
}

fn fnv(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0xFF)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_from_parts() {
        let ok = |id: &str| PartResult::Accepted(id.to_owned());
        assert_eq!(
            aggregate(vec![ok("1F"), ok("20")], IdMatch::HexToDec),
            Verdict::Accepted { upstream_ids: vec!["31".into(), "32".into()] }
        );
        assert_eq!(
            aggregate(vec![PartResult::Rejected("ESME_RINVDSTADR".into())], IdMatch::AsIs),
            Verdict::Rejected { reason: "ESME_RINVDSTADR".into() }
        );
        assert!(matches!(
            aggregate(vec![ok("1"), PartResult::Rejected("x".into())], IdMatch::AsIs),
            Verdict::Unknown { .. }
        ));
        assert!(matches!(
            aggregate(vec![PartResult::NotSent("down".into())], IdMatch::AsIs),
            Verdict::Temporary { .. }
        ));
        assert!(matches!(
            aggregate(vec![ok("1"), PartResult::Unknown("t".into())], IdMatch::AsIs),
            Verdict::Unknown { .. }
        ));
        assert!(matches!(aggregate(vec![], IdMatch::AsIs), Verdict::Unknown { .. }));
    }

    #[test]
    fn intermediate_receipts_are_not_reports() {
        assert_eq!(outcome(ReceiptState::Delivered), Some(DlrOutcome::Delivered));
        assert_eq!(outcome(ReceiptState::Failed), Some(DlrOutcome::Failed));
        assert_eq!(outcome(ReceiptState::Enroute), None);
    }
}
