//! The simulator as a fake SMSC over SMPP 3.4, on the same session layer as
//! our customer-facing server (`smsfleet-smpp`, server side). It accepts
//! binds, answers submit_sm with a message id after `latency`, and sends a
//! receipt per accepted part on a bind of the same system_id that takes
//! deliveries (the submitting one if it is TRX), after `receipt_latency` or,
//! with `receipts_before_response`, before the submit_sm_resp. A share of
//! submits can be throttled (ESME_RTHROTTLED) and a share of receipts fail
//! (UNDELIV), to exercise the dispatcher's paths. Counters are the HTTP
//! simulator's (`/stats`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsfleet_smpp::{
    SessionConfig, SessionHandle,
    receipt::{self, Receipt, ReceiptState},
    rusmpp::{
        CommandStatus, Pdu,
        pdus::{SubmitSm, SubmitSmResp},
    },
    server,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::store::{Counters, add};

#[derive(Debug, Clone)]
pub struct SmscConfig {
    /// The password every bind must give; `None` accepts any.
    pub password: Option<String>,
    /// Delay before each submit_sm_resp.
    pub latency: Duration,
    /// Delay between the resp and the receipt.
    pub receipt_latency: Duration,
    /// Send (and have acknowledged) the receipt before the submit_sm_resp.
    pub receipts_before_response: bool,
    /// Share of submits answered ESME_RTHROTTLED (0.0-1.0).
    pub throttle_ratio: f64,
    /// Share of accepted parts whose receipt says UNDELIV (0.0-1.0).
    pub failure_ratio: f64,
    /// Destinations (digits) whose receipt is UNDELIV.
    pub fail_prefixes: Vec<String>,
    /// Destinations refused with ESME_RINVDSTADR.
    pub reject_prefixes: Vec<String>,
    /// Receipts in flight per bind.
    pub window: usize,
}

impl Default for SmscConfig {
    fn default() -> Self {
        Self {
            password: None,
            latency: Duration::ZERO,
            receipt_latency: Duration::from_millis(50),
            receipts_before_response: false,
            throttle_ratio: 0.0,
            failure_ratio: 0.0,
            fail_prefixes: Vec::new(),
            reject_prefixes: Vec::new(),
            window: 256,
        }
    }
}

struct Smsc {
    config: SmscConfig,
    counters: Arc<Counters>,
    next_id: AtomicU64,
    /// Bound sessions that take deliveries, by system_id.
    receivers: Mutex<HashMap<String, Vec<SessionHandle>>>,
}

impl Smsc {
    fn receiver(&self, system_id: &str, submitter: &SessionHandle) -> Option<SessionHandle> {
        if submitter.bound_as().is_some_and(|k| k.delivers()) && !submitter.is_closed() {
            return Some(submitter.clone());
        }
        let mut map = self.receivers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = map.get_mut(system_id)?;
        list.retain(|s| !s.is_closed());
        list.first().cloned()
    }
}

/// Serves SMPP binds on `listener` until `shutdown`; sessions are unbound
/// on the way out.
pub(crate) async fn serve(
    config: SmscConfig,
    listener: TcpListener,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) {
    let smsc = Arc::new(Smsc { config, counters, next_id: AtomicU64::new(1), receivers: Mutex::new(HashMap::new()) });
    tracing::info!(addr = ?listener.local_addr().ok(), "simulator SMPP listening");
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let Ok((tcp, _peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        sessions.spawn(session(smsc.clone(), tcp, shutdown.clone()));
        while sessions.try_join_next().is_some() {}
    }
    while sessions.join_next().await.is_some() {}
}

async fn session(smsc: Arc<Smsc>, tcp: tokio::net::TcpStream, shutdown: CancellationToken) {
    let config = SessionConfig {
        window: smsc.config.window,
        inbound_window: 4096,
        enquire_link_interval: Some(Duration::from_secs(30)),
        ..SessionConfig::default()
    };
    let password = smsc.config.password.clone();
    let accepted = server::accept(tcp, config, "smsfleet-sim", move |req| {
        let ok = password.as_deref().is_none_or(|p| p == req.password);
        async move { if ok { CommandStatus::EsmeRok } else { CommandStatus::EsmeRinvpaswd } }
    })
    .await;
    let Ok((mut session, bind)) = accepted else { return };
    if bind.kind.delivers() {
        let mut map = smsc.receivers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(bind.system_id.clone()).or_default().push(session.handle.clone());
    }
    loop {
        let request = tokio::select! {
            r = session.inbound.recv() => r,
            _ = shutdown.cancelled() => {
                let _ = session.handle.unbind().await;
                return;
            }
        };
        let Some(request) = request else { return };
        let Some(Pdu::SubmitSm(sm)) = request.command.pdu() else {
            let _ = request.responder.reject(CommandStatus::EsmeRinvcmdid).await;
            continue;
        };
        let sm = sm.clone();
        add(&smsc.counters.submits, 1);
        let to = sm.destination_addr.as_str().trim_start_matches('+').to_owned();
        if smsc.config.throttle_ratio > 0.0 && rand::random::<f64>() < smsc.config.throttle_ratio {
            let _ = request.responder.reject(CommandStatus::EsmeRthrottled).await;
            continue;
        }
        if smsc.config.reject_prefixes.iter().any(|p| to.starts_with(p.as_str())) {
            add(&smsc.counters.rejected, 1);
            let _ = request.responder.reject(CommandStatus::EsmeRinvdstadr).await;
            continue;
        }
        add(&smsc.counters.accepted, 1);
        metrics::counter!("smsfleet_simulator_accepted_total").increment(1);
        let id = smsc.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let (smsc, handle, system_id) = (smsc.clone(), session.handle.clone(), bind.system_id.clone());
        tokio::spawn(async move {
            if !smsc.config.latency.is_zero() {
                tokio::time::sleep(smsc.config.latency).await;
            }
            let wants_receipt = u8::from(sm.registered_delivery) & 0x03 != 0;
            let resp = SubmitSmResp::builder().message_id(smsfleet_smpp::c_string(&id)).build();
            if smsc.config.receipts_before_response && wants_receipt {
                send_receipt(&smsc, &system_id, &handle, &sm, &id).await;
                let _ = request.responder.respond(resp).await;
            } else {
                let _ = request.responder.respond(resp).await;
                if wants_receipt {
                    tokio::time::sleep(smsc.config.receipt_latency).await;
                    send_receipt(&smsc, &system_id, &handle, &sm, &id).await;
                }
            }
        });
    }
}

async fn send_receipt(smsc: &Smsc, system_id: &str, submitter: &SessionHandle, sm: &SubmitSm, id: &str) {
    let Some(target) = smsc.receiver(system_id, submitter) else { return };
    let to = sm.destination_addr.as_str();
    let digits = to.trim_start_matches('+');
    let fails = smsc.config.fail_prefixes.iter().any(|p| digits.starts_with(p.as_str()))
        || (smsc.config.failure_ratio > 0.0 && rand::random::<f64>() < smsc.config.failure_ratio);
    let now = time::OffsetDateTime::now_utc();
    let now = time::PrimitiveDateTime::new(now.date(), now.time());
    let r = Receipt {
        id: id.to_owned(),
        submitted: Some(1),
        delivered: Some(u32::from(!fails)),
        submit_date: Some(now),
        done_date: Some(now),
        state: if fails { ReceiptState::Undeliverable } else { ReceiptState::Delivered },
        error: Some(if fails { "001" } else { "000" }.to_owned()),
        text: None,
    };
    let deliver = receipt::to_deliver_sm(&r, to, sm.source_addr.as_str());
    smsc.counters.pending_reports.fetch_add(1, Ordering::Relaxed);
    let acked = matches!(target.request(deliver).await, Ok(resp) if resp.status() == CommandStatus::EsmeRok);
    smsc.counters.pending_reports.fetch_sub(1, Ordering::Relaxed);
    add(&smsc.counters.report_posts, 1);
    if acked {
        add(if fails { &smsc.counters.failed_reports } else { &smsc.counters.delivered_reports }, 1);
    } else {
        add(&smsc.counters.report_post_failures, 1);
    }
}
