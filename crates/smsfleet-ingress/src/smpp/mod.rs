//! The SMPP 3.4 server for customers: a third door of the ingress, next to
//! `playsms/` and `bulk/`. The session layer (window, timers, PDU size,
//! generic_nack, answering only when the owner says so) is `smsfleet-smpp`;
//! this module decides who binds ([`bind`]), turns submit_sm into the one
//! accept path's `SendRequest` ([`submit`]) and answers submit_sm_resp only
//! after the PubAck, keeps the live binds ([`sessions`]) and feeds receipts
//! and MOs from the SMPP_OUT stream to receiver binds ([`deliver`]).
//! Binds per account are counted across every replica with bind-slot
//! leases on the bus; throughput is limited per account on each replica.

mod bind;
mod concat;
mod deliver;
mod pdu;
mod sessions;
mod submit;
mod throttle;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smsfleet_contract::{AccountState, SmppSessionsReply, services};
use smsfleet_domain::clock::now_ms;
use smsfleet_smpp::rusmpp::pdus::{QuerySm, QuerySmResp, SubmitSm, SubmitSmResp};
use smsfleet_smpp::rusmpp::{CommandStatus, Pdu};
use smsfleet_smpp::server::{AcceptError, BindRequest};
use smsfleet_smpp::{InboundRequest, Responder, SessionConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use sessions::{BindEntry, BindStats, Registered, Registry};
use throttle::Throttle;

/// Settings of the SMPP server (`SMSFLEET_SMPP_*`).
#[derive(Debug, Clone)]
pub struct SmppSettings {
    /// Plain SMPP; `None` leaves the server off.
    pub listen: Option<SocketAddr>,
    /// SMPP over TLS.
    pub tls: Option<TlsSettings>,
    /// Our system_id in bind responses.
    pub system_id: String,
    /// submit_sm a bind may have unanswered; beyond it ESME_RTHROTTLED.
    pub window: usize,
    /// deliver_sm we have unanswered per bind.
    pub deliver_window: usize,
    pub max_pdu_len: usize,
    pub enquire_link_interval: Duration,
    pub response_timeout: Duration,
    /// Close a bind after this long without anything but enquire_link; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// Receipts and MOs older than this are dropped instead of delivered
    /// (at most the SMPP_OUT stream's 7 days).
    pub receipt_expiry: Duration,
    /// Connections open at once on each port.
    pub max_connections: usize,
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Default for SmppSettings {
    fn default() -> Self {
        Self {
            listen: None,
            tls: None,
            system_id: "smsfleet".to_owned(),
            window: 64,
            deliver_window: 10,
            max_pdu_len: smsfleet_smpp::frame::DEFAULT_MAX_PDU_LEN,
            enquire_link_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(30),
            idle_timeout: None,
            receipt_expiry: Duration::from_secs(72 * 3600),
            max_connections: 1024,
        }
    }
}

/// The shared state of every SMPP connection of this replica.
pub(crate) struct SmppServer {
    app: App,
    settings: SmppSettings,
    registry: Registry,
    throttle: Throttle,
    replica: String,
    /// Good SMPP password checks (see `bind`).
    credentials: crate::bulk::state::CredentialCache,
}

impl SmppServer {
    fn session_config(&self) -> SessionConfig {
        SessionConfig {
            window: self.settings.deliver_window.max(1),
            rate_per_sec: None,
            enquire_link_interval: Some(self.settings.enquire_link_interval),
            response_timeout: self.settings.response_timeout,
            idle_timeout: self.settings.idle_timeout,
            max_pdu_len: self.settings.max_pdu_len,
            inbound_window: self.settings.window.max(1),
            bind_timeout: Duration::from_secs(10),
        }
    }
}

/// Binds the SMPP ports (when configured) and runs the server in a task
/// that ends when `stop` is cancelled and every bind has been unbound.
pub(crate) async fn start(
    app: App,
    settings: SmppSettings,
    stop: CancellationToken,
) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let plain = match settings.listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let secure = match &settings.tls {
        Some(t) => Some((TcpListener::bind(t.listen).await?, tls::acceptor(&t.cert_file, &t.key_file)?)),
        None => None,
    };
    if plain.is_none() && secure.is_none() {
        return Ok(None);
    }
    let replica = match (&plain, &secure) {
        (Some(l), _) | (None, Some((l, _))) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        (None, None) => String::new(),
    };
    let replica = format!("{}@{replica}", hostname());
    let server = Arc::new(SmppServer {
        app,
        settings,
        registry: Registry::default(),
        throttle: Throttle::default(),
        replica,
        credentials: crate::bulk::state::CredentialCache::new(10_000),
    });
    Ok(Some(tokio::spawn(run(server, plain, secure, stop))))
}

async fn run(
    server: Arc<SmppServer>,
    plain: Option<TcpListener>,
    secure: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    stop: CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listener) = plain {
        tracing::info!(addr = ?listener.local_addr().ok(), "SMPP listening");
        tasks.spawn(accept_loop(server.clone(), listener, None, stop.clone()));
    }
    if let Some((listener, acceptor)) = secure {
        tracing::info!(addr = ?listener.local_addr().ok(), "SMPP over TLS listening");
        tasks.spawn(accept_loop(server.clone(), listener, Some(acceptor), stop.clone()));
    }
    let (s, st) = (server.clone(), stop.clone());
    tasks.spawn(async move {
        let bus = s.app.bus.clone();
        let served = smsfleet_bus::serve_requests(bus, services::SMPP_SESSIONS, st, move |_req| {
            let s = s.clone();
            async move { SmppSessionsReply { replica: s.replica.clone(), sessions: s.registry.list() } }
        })
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "SMPP sessions service stopped");
        }
    });
    stop.cancelled().await;
    // Unbind every customer cleanly; their clients rebind to another replica.
    let handles = server.registry.handles();
    let unbinds = handles.iter().map(|h| tokio::time::timeout(Duration::from_secs(5), h.unbind()));
    futures_util::future::join_all(unbinds).await;
    while tasks.join_next().await.is_some() {}
}

fn hostname() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "ingress".to_owned())
}

async fn accept_loop(
    server: Arc<SmppServer>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(server.settings.max_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors, most likely: back off instead of spinning.
                tracing::warn!(error = %e, "SMPP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "SMPP connection limit reached; closing");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (server, tls, stop) = (server.clone(), tls.clone(), stop.clone());
        tokio::spawn(async move {
            match tls {
                None => connection(server, tcp, peer, stop).await,
                Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => connection(server, stream, peer, stop).await,
                    Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                },
            }
            drop(permit);
        });
    }
}

/// What a successful bind holds for as long as it lives.
struct Granted {
    account: Arc<AccountState>,
    slot: BindSlot,
}

#[tracing::instrument(name = "smpp.connection", skip_all, fields(%peer, system_id))]
async fn connection<IO>(server: Arc<SmppServer>, io: IO, peer: SocketAddr, stop: CancellationToken)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut granted: Option<Granted> = None;
    let slot = &mut granted;
    let srv = server.clone();
    let accepted = smsfleet_smpp::server::accept(io, server.session_config(), &server.settings.system_id, move |req| {
        let req = req.clone();
        async move {
            match authorize(&srv, &req, peer.ip()).await {
                Ok(g) => {
                    *slot = Some(g);
                    CommandStatus::EsmeRok
                }
                Err(refusal) => {
                    tracing::info!(system_id = %req.system_id, why = refusal.as_str(), "SMPP bind refused");
                    metrics::counter!("smsfleet_ingress_smpp_binds_refused_total", "why" => refusal.as_str())
                        .increment(1);
                    refusal.status()
                }
            }
        }
    })
    .await;
    let (session, request) = match accepted {
        Ok(x) => x,
        Err(AcceptError::Refused(_)) => return,
        Err(e) => {
            tracing::debug!(error = %e, "SMPP connection ended before a bind");
            return;
        }
    };
    let Some(granted) = granted else { return };
    tracing::Span::current().record("system_id", request.system_id.as_str());
    let account = granted.account.clone();
    let stats = Arc::new(BindStats::default());
    let entry = BindEntry {
        uid: account.uid,
        system_id: account.username.clone(),
        kind: request.kind,
        peer: peer.to_string(),
        bound_at_ms: now_ms(),
        handle: session.handle.clone(),
        stats: stats.clone(),
    };
    let id = match server.registry.add(entry) {
        Registered::StartPump(id, token) => {
            tokio::spawn(deliver::pump(server.clone(), account.uid, account.username.clone(), token));
            id
        }
        Registered::Done(id) => id,
    };
    let bound_gauge = metrics::gauge!("smsfleet_ingress_smpp_binds", "account" => account.username.clone());
    bound_gauge.increment(1.0);
    tracing::info!(uid = account.uid, bind = request.kind.as_str(), "SMPP bound");
    let mut inbound = session.inbound;
    let parts = Arc::new(concat::Parts::default());
    let mut sweep = tokio::time::interval(Duration::from_secs(5));
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            _ = granted.slot.lost() => {
                tracing::warn!(uid = account.uid, "bind slot lost; closing the bind");
                session.handle.close();
                break;
            }
            _ = sweep.tick() => {
                for late in parts.expired(Instant::now(), concat::PART_WAIT) {
                    let _ = late.reject(CommandStatus::EsmeRsyserr).await;
                }
                continue;
            }
            next = inbound.recv() => next,
        };
        let Some(req) = next else { break };
        let (server, stats, uid, parts) = (server.clone(), stats.clone(), account.uid, parts.clone());
        tokio::spawn(async move { handle_request(server, uid, req, stats, parts).await });
    }
    let reason = session.handle.closed().await;
    server.registry.remove(id);
    bound_gauge.decrement(1.0);
    tracing::info!(uid = account.uid, %reason, "SMPP bind ended");
    drop(granted);
}

async fn authorize(server: &SmppServer, req: &BindRequest, client: IpAddr) -> Result<Granted, bind::BindRefusal> {
    let account = bind::check(&server.app, &server.credentials, &req.system_id, &req.password, client).await?;
    let slot = BindSlot::acquire(server, &account).await.ok_or(bind::BindRefusal::TooManyBinds)?;
    Ok(Granted { account, slot })
}

/// One of the account's `smpp_max_binds` bind slots, leased on the bus so
/// the limit holds across every replica; given back when the bind ends.
struct BindSlot {
    lease: Option<smsfleet_bus::SlotLease>,
}

impl BindSlot {
    async fn acquire(server: &SmppServer, account: &AccountState) -> Option<BindSlot> {
        let pool = format!("smpp_binds.{}", account.uid);
        match smsfleet_bus::SlotLease::acquire(&server.app.bus, &pool, account.smpp_max_binds).await {
            Ok(Some(lease)) => Some(BindSlot { lease: Some(lease) }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, uid = account.uid, "bind slot not leased");
                None
            }
        }
    }

    /// Resolves if the slot is lost (the bus unreachable past its life):
    /// the bind must end, or the limit would no longer hold.
    async fn lost(&self) {
        match &self.lease {
            Some(lease) => lease.lost().await,
            None => std::future::pending().await,
        }
    }
}

impl Drop for BindSlot {
    fn drop(&mut self) {
        // Free it at once for the customer's next bind, on any replica.
        if let Some(lease) = self.lease.take() {
            tokio::spawn(lease.release());
        }
    }
}

async fn handle_request(
    server: Arc<SmppServer>,
    uid: i64,
    req: InboundRequest,
    stats: Arc<BindStats>,
    parts: Arc<concat::Parts>,
) {
    let InboundRequest { command, responder } = req;
    let answered = match command.pdu() {
        Some(Pdu::SubmitSm(sm)) => {
            BindStats::count(&stats.submits);
            let (responders, outcome) = match on_submit(&server, uid, sm, &stats, &parts, responder).await {
                Submitted::Waiting => return,
                Submitted::Answer(responders, outcome) => (responders, outcome),
            };
            let mut result = Ok(());
            for responder in responders {
                let sent = match &outcome {
                    Ok(message_id) => {
                        let resp = SubmitSmResp::builder().message_id(cstring(message_id)).build();
                        responder.respond(resp).await
                    }
                    Err(status) => responder.reject(*status).await,
                };
                result = result.and(sent);
            }
            result
        }
        Some(Pdu::QuerySm(q)) => match on_query(&server, uid, q).await {
            Ok(resp) => responder.respond(resp).await,
            Err(status) => responder.reject(status).await,
        },
        _ => responder.reject(CommandStatus::EsmeRinvcmdid).await,
    };
    if let Err(e) = answered {
        tracing::debug!(error = %e, "SMPP answer not sent");
    }
}

/// A C-string field of a response; our values always fit.
fn cstring<const N: usize>(s: &str) -> smsfleet_smpp::rusmpp::types::COctetString<1, N> {
    use std::str::FromStr;
    smsfleet_smpp::rusmpp::types::COctetString::from_str(s)
        .unwrap_or_else(|_| smsfleet_smpp::rusmpp::types::COctetString::empty())
}

/// What became of a submit_sm: answered (with the responders of every
/// part of its message, all with the same outcome), or kept until the rest
/// of its message arrives.
enum Submitted {
    Waiting,
    Answer(Vec<Responder>, Result<String, CommandStatus>),
}

/// One submit_sm: the account as it is now (a ban applies to live binds),
/// its throughput (per part), the SMPP fields, then, once the message is
/// whole, the accept path. Answered only after the PubAck.
#[tracing::instrument(name = "smpp.submit", level = "debug", skip_all, fields(uid))]
async fn on_submit(
    server: &SmppServer,
    uid: i64,
    sm: &SubmitSm,
    stats: &BindStats,
    parts: &concat::Parts,
    responder: Responder,
) -> Submitted {
    let app = &server.app;
    let Some(account) = app.cache.by_uid(uid).filter(|a| crate::auth::active(&app.cache, a)) else {
        return Submitted::Answer(vec![responder], Err(CommandStatus::EsmeRsubmitfail));
    };
    let outcome = |o: &'static str| {
        metrics::counter!("smsfleet_ingress_smpp_submits_total", "account" => account.username.clone(), "outcome" => o)
            .increment(1)
    };
    let refuse = |responders: Vec<Responder>, status| {
        outcome("refused");
        Submitted::Answer(responders, Err(status))
    };
    if !server.throttle.admit(uid, account.smpp_throughput, Instant::now()) {
        BindStats::count(&stats.throttled);
        outcome("throttled");
        return Submitted::Answer(vec![responder], Err(CommandStatus::EsmeRthrottled));
    }
    let now = time::OffsetDateTime::now_utc();
    let read = match pdu::read_submit(sm, now) {
        Ok(r) => r,
        Err(status) => return refuse(vec![responder], status),
    };
    let mut fields = read.fields;
    let responders = match read.part.concat {
        Some(c) if concat::valid(&c) => {
            let key = concat::MessageKey {
                source: fields.source_addr.clone(),
                destination: fields.destination_addr.clone(),
                reference: c.reference,
                total: c.total,
            };
            match parts.add(key, c, read.part.data_coding, read.part.content, responder) {
                concat::Added::Waiting => return Submitted::Waiting,
                concat::Added::Whole { content, data_coding, responders } => {
                    (fields.text, fields.unicode) = pdu::decode(&content, data_coding);
                    responders
                }
            }
        }
        Some(_) => return refuse(vec![responder], CommandStatus::EsmeRinvesmclass),
        None => vec![responder],
    };
    let limits = submit::SubmitLimits {
        max_segments: app.limits.max_segments,
        default_sender: app.limits.default_sender.clone(),
        validity: app.validity,
    };
    let request = match submit::plan(account.clone(), fields, &limits, now) {
        Ok(r) => r,
        Err(status) => return refuse(responders, status),
    };
    let answer = submit::answer(app.acceptor.accept(&request).await);
    outcome(if answer.is_ok() { "accepted" } else { "refused" });
    Submitted::Answer(responders, answer.map(|id| id.0.to_string()))
}

/// query_sm: the message's state as `ds` shows it, for the bind's own
/// account only.
async fn on_query(server: &SmppServer, uid: i64, q: &QuerySm) -> Result<QuerySmResp, CommandStatus> {
    let id: i64 = q.message_id.as_str().trim().parse().map_err(|_| CommandStatus::EsmeRinvmsgid)?;
    let req = smsfleet_contract::DsRequest {
        uid,
        queue: None,
        src: None,
        dst: None,
        dt: None,
        smslog_id: Some(id),
        limit: 1,
        last: None,
    };
    let app = &server.app;
    let reply = app.bus.request(services::DS, &req, app.query_timeout).await.map_err(|e| {
        tracing::warn!(error = %e, "query_sm: ds failed");
        CommandStatus::EsmeRqueryfail
    })?;
    let row = match reply {
        smsfleet_contract::DsReply::Rows(rows) => rows.into_iter().next().ok_or(CommandStatus::EsmeRqueryfail)?,
        smsfleet_contract::DsReply::Error(_) => return Err(CommandStatus::EsmeRqueryfail),
    };
    let status = smsfleet_domain::DeliveryStatus::from_playsms_code(row.status).ok_or(CommandStatus::EsmeRqueryfail)?;
    Ok(QuerySmResp::builder()
        .message_id(cstring(q.message_id.as_str()))
        .message_state(pdu::message_state(status))
        .build())
}
