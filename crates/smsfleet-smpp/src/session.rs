//! One SMPP session over any byte stream, for either side of a bind.
//!
//! The session owns what every SMPP peer must get right and what the owner
//! should never re-implement: sequence numbers, a window of outstanding
//! requests (never more in flight; callers wait), an optional pace in
//! requests per second (each submit_sm is one part), response timeouts,
//! enquire_link keep-alive with dead-link detection, an inactivity timeout,
//! automatic enquire_link_resp / unbind_resp, generic_nack for PDUs that do
//! not decode or are unknown, and a clean unbind.
//!
//! Inbound requests (submit_sm on a server, deliver_sm on a client) are
//! handed to the owner with a [`Responder`], so the answer goes out only
//! after the owner's own work (e.g. once the message is durable). Unanswered
//! inbound requests are bounded too: past the inbound window the peer gets
//! ESME_RTHROTTLED at once instead of the session buffering without limit.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use rusmpp::{Command, CommandId, CommandStatus, Pdu, tokio_codec::CommandCodec, types::AnyOctetString};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot},
    time::Instant,
};
use tokio_util::{
    codec::{FramedRead, FramedWrite},
    sync::CancellationToken,
};
use tracing::{debug, warn};

use crate::frame::{DEFAULT_MAX_PDU_LEN, Frame, FrameCodec, FrameError, Header};

/// How a bind was made. The same on both sides: an ESME binds *as* a
/// transmitter, the MC accepts it *as* one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindKind {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindKind {
    /// Whether the ESME may submit on this bind.
    pub fn submits(self) -> bool {
        matches!(self, Self::Transmitter | Self::Transceiver)
    }
    /// Whether the MC may deliver (receipts, MOs) on this bind.
    pub fn delivers(self) -> bool {
        matches!(self, Self::Receiver | Self::Transceiver)
    }
    pub fn from_request(id: CommandId) -> Option<Self> {
        match id {
            CommandId::BindTransmitter | CommandId::BindTransmitterResp => Some(Self::Transmitter),
            CommandId::BindReceiver | CommandId::BindReceiverResp => Some(Self::Receiver),
            CommandId::BindTransceiver | CommandId::BindTransceiverResp => Some(Self::Transceiver),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transmitter => "tx",
            Self::Receiver => "rx",
            Self::Transceiver => "trx",
        }
    }
}

/// Which end of the bind this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client (our dispatcher's upstream binds).
    Esme,
    /// The server (our customer-facing SMPP server, the fake SMSC).
    Mc,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Requests we sent that may await their response at once (submit_sm
    /// on a client, deliver_sm on a server). At least 1.
    pub window: usize,
    /// Requests per second sent through [`SessionHandle::send`]; `None` is
    /// unpaced. Each submit_sm is one part, so this is parts per second.
    pub rate_per_sec: Option<f64>,
    /// Send enquire_link after this long; `None` disables it.
    pub enquire_link_interval: Option<Duration>,
    /// Every request's response must arrive within this (enquire_link and
    /// unbind included): a dead link is seen within interval + timeout.
    pub response_timeout: Duration,
    /// Close the session after this long without any PDU other than
    /// enquire_link / enquire_link_resp in either direction.
    pub idle_timeout: Option<Duration>,
    /// Largest PDU accepted from the peer, checked from the length field.
    pub max_pdu_len: usize,
    /// Inbound requests handed to the owner and not yet answered; beyond it
    /// the peer gets ESME_RTHROTTLED.
    pub inbound_window: usize,
    /// How long a server waits for the first bind on a new connection.
    pub bind_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            window: 10,
            rate_per_sec: None,
            enquire_link_interval: Some(Duration::from_secs(30)),
            response_timeout: Duration::from_secs(30),
            idle_timeout: None,
            max_pdu_len: DEFAULT_MAX_PDU_LEN,
            inbound_window: 64,
            bind_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    #[error("unbound by us")]
    Unbound,
    #[error("the peer unbound")]
    PeerUnbound,
    #[error("the peer closed the connection")]
    PeerClosed,
    #[error("no enquire_link_resp within {0:?}")]
    LinkDead(Duration),
    #[error("nothing but keep-alives for {0:?}")]
    Idle(Duration),
    #[error("no bind within {0:?}")]
    NoBind(Duration),
    #[error("bind refused: {0:?}")]
    BindRefused(CommandStatus),
    #[error("i/o: {0}")]
    Io(String),
    #[error("unreadable stream: {0}")]
    Garbled(String),
    #[error("closed by its owner")]
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("session closed: {0}")]
    Closed(CloseReason),
    #[error("the session is unbinding")]
    Unbinding,
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("generic_nack {0:?}")]
    GenericNack(CommandStatus),
    #[error("undecodable response: {0}")]
    BadResponse(String),
}

type ResponseSender = oneshot::Sender<Result<Command, SessionError>>;
type ResponseReceiver = oneshot::Receiver<Result<Command, SessionError>>;

struct Shared {
    side: Side,
    config: SessionConfig,
    out: mpsc::Sender<Command>,
    /// Requests awaiting their response, with the window slot each holds
    /// (freed when the response arrives, not when the caller reads it).
    pending: Mutex<HashMap<u32, (ResponseSender, Option<OwnedSemaphorePermit>)>>,
    next_seq: AtomicU32,
    window: Arc<Semaphore>,
    inbound_window: Arc<Semaphore>,
    next_slot: tokio::sync::Mutex<Instant>,
    bound: Mutex<Option<BindKind>>,
    unbinding: AtomicBool,
    close: CancellationToken,
    writer_done: CancellationToken,
    reason: Mutex<Option<CloseReason>>,
    last_activity: Mutex<Instant>,
}

/// A lock that survives a panicked holder: the data are plain maps and
/// flags, still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn seq(&self) -> u32 {
        // 1..=0x7FFF_FFFF as the spec asks; wraps around.
        let n = self.next_seq.fetch_add(1, Ordering::Relaxed);
        (n % 0x7FFF_FFFF) + 1
    }

    fn close(&self, reason: CloseReason) {
        {
            let mut r = lock(&self.reason);
            if r.is_none() {
                debug!(%reason, "smpp session closing");
                *r = Some(reason.clone());
            }
        }
        self.close.cancel();
        let pending: Vec<_> = lock(&self.pending).drain().collect();
        let reason = self.reason();
        for (_, (tx, _permit)) in pending {
            let _ = tx.send(Err(SessionError::Closed(reason.clone())));
        }
    }

    fn reason(&self) -> CloseReason {
        lock(&self.reason).clone().unwrap_or(CloseReason::Closed)
    }

    fn closed_error(&self) -> SessionError {
        SessionError::Closed(self.reason())
    }

    fn touch(&self) {
        *lock(&self.last_activity) = Instant::now();
    }

    /// Queues a PDU for the writer.
    async fn write(&self, command: Command) -> Result<(), SessionError> {
        if self.close.is_cancelled() {
            return Err(self.closed_error());
        }
        self.out.send(command).await.map_err(|_| self.closed_error())
    }

    /// Sends a request and registers for its response, outside the window.
    async fn request_raw(
        &self,
        pdu: Pdu,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<(u32, ResponseReceiver), SessionError> {
        let keepalive = matches!(pdu, Pdu::EnquireLink);
        let seq = self.seq();
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(seq, (tx, permit));
        if let Err(e) = self.write(Command::new(CommandStatus::EsmeRok, seq, pdu)).await {
            lock(&self.pending).remove(&seq);
            return Err(e);
        }
        if self.close.is_cancelled() {
            // Closed between registering and sending: close() may have
            // drained before our insert.
            lock(&self.pending).remove(&seq);
            return Err(self.closed_error());
        }
        if !keepalive {
            self.touch();
        }
        Ok((seq, rx))
    }

    async fn await_response(&self, rx: ResponseReceiver, deadline: Instant) -> Result<Command, SessionError> {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => Err(SessionError::Timeout(self.config.response_timeout)),
        }
    }

    async fn request_unwindowed(&self, pdu: Pdu) -> Result<Command, SessionError> {
        let deadline = Instant::now() + self.config.response_timeout;
        let (_, rx) = self.request_raw(pdu, None).await?;
        self.await_response(rx, deadline).await
    }

    async fn pace(&self) {
        let Some(rate) = self.config.rate_per_sec.filter(|r| *r > 0.0) else { return };
        let slot = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + Duration::from_secs_f64(1.0 / rate);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// The matching `*_resp` for `request` with `status` and no meaningful body
/// (the spec leaves the body out on error; we send an empty message_id or
/// system_id where a body is usual, which every peer we test with reads).
pub fn error_response(request: CommandId, sequence_number: u32, status: CommandStatus) -> Command {
    let response = request.matching_response();
    let body: &'static [u8] = match response {
        CommandId::SubmitSmResp
        | CommandId::DeliverSmResp
        | CommandId::DataSmResp
        | CommandId::BindTransmitterResp
        | CommandId::BindReceiverResp
        | CommandId::BindTransceiverResp => &[0],
        _ => &[],
    };
    if matches!(response, CommandId::Other(_)) {
        return Command::new(status, sequence_number, Pdu::GenericNack);
    }
    Command::new(
        status,
        sequence_number,
        Pdu::Other { command_id: response, body: AnyOctetString::from_static_slice(body) },
    )
}

/// A running session: the handle to send and unbind, and the inbound
/// requests to answer.
pub struct Session {
    pub handle: SessionHandle,
    pub inbound: Inbound,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("handle", &self.handle).finish_non_exhaustive()
    }
}

/// Starts a session over `io`. Nothing is bound yet: use
/// [`crate::client::bind`] or [`crate::server::accept`], which call this.
pub fn start<IO>(io: IO, side: Side, config: SessionConfig) -> Session
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let window = config.window.max(1);
    let inbound_window = config.inbound_window.max(1);
    let (out_tx, out_rx) = mpsc::channel(window + inbound_window + 16);
    let (inbound_tx, inbound_rx) = mpsc::channel(inbound_window);
    let shared = Arc::new(Shared {
        side,
        out: out_tx,
        pending: Mutex::new(HashMap::new()),
        next_seq: AtomicU32::new(0),
        window: Arc::new(Semaphore::new(window)),
        inbound_window: Arc::new(Semaphore::new(inbound_window)),
        next_slot: tokio::sync::Mutex::new(Instant::now()),
        bound: Mutex::new(None),
        unbinding: AtomicBool::new(false),
        close: CancellationToken::new(),
        writer_done: CancellationToken::new(),
        reason: Mutex::new(None),
        last_activity: Mutex::new(Instant::now()),
        config: SessionConfig { window, inbound_window, ..config },
    });
    let (reader, writer) = tokio::io::split(io);
    tokio::spawn(write_loop(shared.clone(), FramedWrite::new(writer, CommandCodec::new()), out_rx));
    let codec = FrameCodec::new(shared.config.max_pdu_len);
    tokio::spawn(read_loop(shared.clone(), FramedRead::new(reader, codec), inbound_tx));
    tokio::spawn(keepalive_loop(shared.clone()));
    Session { handle: SessionHandle { shared }, inbound: Inbound { rx: inbound_rx } }
}

async fn write_loop<W>(shared: Arc<Shared>, mut sink: FramedWrite<W, CommandCodec>, mut rx: mpsc::Receiver<Command>)
where
    W: AsyncWrite + Send + Unpin + 'static,
{
    loop {
        let command = tokio::select! {
            biased;
            c = rx.recv() => c,
            _ = shared.close.cancelled() => None,
        };
        let Some(command) = command else { break };
        if let Err(e) = sink.feed(command).await {
            shared.close(CloseReason::Io(e.to_string()));
            break;
        }
        // Batch what is already queued into one flush.
        while let Ok(more) = rx.try_recv() {
            if let Err(e) = sink.feed(more).await {
                shared.close(CloseReason::Io(e.to_string()));
                break;
            }
        }
        if let Err(e) = SinkExt::<Command>::flush(&mut sink).await {
            shared.close(CloseReason::Io(e.to_string()));
            break;
        }
    }
    // Whatever was queued before the close (an unbind_resp, a bind_resp
    // refusing) still goes out.
    while let Ok(more) = rx.try_recv() {
        if sink.feed(more).await.is_err() {
            break;
        }
    }
    let _ = SinkExt::<Command>::flush(&mut sink).await;
    let _ = SinkExt::<Command>::close(&mut sink).await;
    shared.writer_done.cancel();
}

async fn read_loop<R>(shared: Arc<Shared>, mut stream: FramedRead<R, FrameCodec>, inbound: mpsc::Sender<InboundRequest>)
where
    R: AsyncRead + Send + Unpin + 'static,
{
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = shared.close.cancelled() => break,
        };
        match next {
            None => {
                let reason = if shared.unbinding.load(Ordering::Relaxed) {
                    CloseReason::Unbound
                } else {
                    CloseReason::PeerClosed
                };
                shared.close(reason);
                break;
            }
            Some(Err(FrameError::Io(e))) => {
                shared.close(CloseReason::Io(e.to_string()));
                break;
            }
            Some(Err(e @ FrameError::Garbled(_))) => {
                warn!(error = %e, "smpp peer sent a garbled stream");
                let _ = shared.write(Command::new(CommandStatus::EsmeRinvcmdlen, 0, Pdu::GenericNack)).await;
                shared.close(CloseReason::Garbled(e.to_string()));
                break;
            }
            Some(Ok(frame)) => {
                if handle_frame(&shared, frame, &inbound).await.is_err() {
                    break;
                }
            }
        }
    }
}

fn is_response_id(id: u32) -> bool {
    id & 0x8000_0000 != 0
}

async fn nack(shared: &Shared, header: &Header, status: CommandStatus) -> Result<(), SessionError> {
    shared.write(Command::new(status, header.sequence_number, Pdu::GenericNack)).await
}

async fn handle_frame(
    shared: &Arc<Shared>,
    frame: Frame,
    inbound: &mpsc::Sender<InboundRequest>,
) -> Result<(), SessionError> {
    let command = match frame {
        Frame::TooLong { header } => {
            warn!(command_length = header.command_length, limit = shared.config.max_pdu_len, "smpp pdu too long");
            if is_response_id(header.command_id) {
                resolve(shared, header.sequence_number, Err(SessionError::BadResponse("too long".into())));
                return Ok(());
            }
            return nack(shared, &header, CommandStatus::EsmeRinvcmdlen).await;
        }
        Frame::Undecodable { header, reason } => {
            warn!(command_id = format_args!("{:#010x}", header.command_id), %reason, "undecodable smpp pdu");
            if is_response_id(header.command_id) {
                resolve(shared, header.sequence_number, Err(SessionError::BadResponse(reason)));
                return Ok(());
            }
            return nack(shared, &header, CommandStatus::EsmeRinvcmdlen).await;
        }
        Frame::Pdu(command) => *command,
    };
    let id = command.id();
    let seq = command.sequence_number();
    if !matches!(id, CommandId::EnquireLink | CommandId::EnquireLinkResp) {
        shared.touch();
    }
    if id == CommandId::GenericNack {
        let status = command.status();
        warn!(?status, seq, "smpp peer answered generic_nack");
        resolve(shared, seq, Err(SessionError::GenericNack(status)));
        return Ok(());
    }
    if id.is_response() {
        if let Some(kind) = BindKind::from_request(id)
            && shared.side == Side::Esme
            && command.status() == CommandStatus::EsmeRok
        {
            // Set here, not by the binder: the MC may deliver right after
            // its bind_resp, before the binding task runs again.
            *lock(&shared.bound) = Some(kind);
        }
        resolve(shared, seq, Ok(command));
        return Ok(());
    }
    let reply = |status| error_response(id, seq, status);
    match command.pdu() {
        Some(Pdu::EnquireLink) => {
            return shared.write(Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLinkResp)).await;
        }
        Some(Pdu::Unbind) => {
            let _ = shared.write(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp)).await;
            shared.close(CloseReason::PeerUnbound);
            return Err(SessionError::Closed(CloseReason::PeerUnbound));
        }
        Some(Pdu::AlertNotification(_)) => {
            debug!("smpp alert_notification ignored");
            return Ok(());
        }
        Some(Pdu::Other { command_id, .. }) => {
            warn!(?command_id, "unknown smpp command");
            return shared.write(Command::new(CommandStatus::EsmeRinvcmdid, seq, Pdu::GenericNack)).await;
        }
        None => {
            return shared.write(Command::new(CommandStatus::EsmeRinvcmdid, seq, Pdu::GenericNack)).await;
        }
        _ => {}
    }
    let bound = *lock(&shared.bound);
    let allowed = match (BindKind::from_request(id), shared.side, bound) {
        (Some(_), Side::Mc, None) => Ok(()),
        (Some(_), Side::Mc, Some(_)) => Err(CommandStatus::EsmeRalybnd),
        (Some(_), Side::Esme, _) => Err(CommandStatus::EsmeRinvcmdid),
        (None, _, None) => Err(CommandStatus::EsmeRinvbndsts),
        (None, Side::Mc, Some(kind)) => {
            if kind.submits() {
                Ok(())
            } else {
                Err(CommandStatus::EsmeRinvbndsts)
            }
        }
        (None, Side::Esme, Some(kind)) => {
            if kind.delivers() || id == CommandId::Outbind {
                Ok(())
            } else {
                Err(CommandStatus::EsmeRinvbndsts)
            }
        }
    };
    if let Err(status) = allowed {
        debug!(?id, ?status, "smpp request refused by bind state");
        return shared.write(reply(status)).await;
    }
    let Ok(permit) = shared.inbound_window.clone().try_acquire_owned() else {
        return shared.write(reply(CommandStatus::EsmeRthrottled)).await;
    };
    let (settled_tx, settled) = match BindKind::from_request(id) {
        Some(_) => {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let responder =
        Responder { shared: shared.clone(), request: id, seq, answered: false, settled: settled_tx, _permit: permit };
    match inbound.try_send(InboundRequest { command, responder }) {
        Ok(()) => {
            if let Some(settled) = settled {
                // Read nothing more until the bind is answered: what an
                // eager ESME pipelines after its bind must see the outcome.
                tokio::select! {
                    _ = settled => {}
                    _ = shared.close.cancelled() => {}
                }
            }
            Ok(())
        }
        Err(mpsc::error::TrySendError::Full(req)) => {
            // The owner holds the receiver but is not reading: the dropped
            // responder answers ESME_RSYSERR, so answer explicitly first.
            let InboundRequest { responder, .. } = req;
            responder.reject(CommandStatus::EsmeRthrottled).await
        }
        Err(mpsc::error::TrySendError::Closed(req)) => {
            let InboundRequest { responder, .. } = req;
            responder.reject(CommandStatus::EsmeRsyserr).await
        }
    }
}

fn resolve(shared: &Shared, seq: u32, result: Result<Command, SessionError>) {
    let entry = lock(&shared.pending).remove(&seq);
    match entry {
        Some((tx, permit)) => {
            drop(permit);
            let _ = tx.send(result);
        }
        None => debug!(seq, "smpp response for no pending request"),
    }
}

async fn keepalive_loop(shared: Arc<Shared>) {
    let interval = shared.config.enquire_link_interval;
    let idle = shared.config.idle_timeout;
    if interval.is_none() && idle.is_none() {
        return;
    }
    loop {
        let idle_at = idle.map(|d| *lock(&shared.last_activity) + d);
        let enquire = async {
            match interval {
                Some(i) => tokio::time::sleep(i).await,
                None => std::future::pending().await,
            }
        };
        let idle_wait = async {
            match idle_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.close.cancelled() => return,
            _ = idle_wait => {
                if let Some(d) = idle
                    && lock(&shared.last_activity).elapsed() >= d
                {
                    shared.close(CloseReason::Idle(d));
                    return;
                }
            }
            _ = enquire => {
                match shared.request_unwindowed(Pdu::EnquireLink).await {
                    Ok(_) | Err(SessionError::GenericNack(_)) => {}
                    Err(SessionError::Timeout(_)) | Err(SessionError::BadResponse(_)) => {
                        warn!("smpp link dead: no enquire_link_resp");
                        shared.close(CloseReason::LinkDead(shared.config.response_timeout));
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
    }
}

/// Sends requests on a session and ends it. Cheap to clone.
#[derive(Clone)]
pub struct SessionHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("side", &self.shared.side)
            .field("bound", &self.bound_as())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// A request on the wire, waiting for its response. Its window slot is
/// held until the response arrives (or the timeout, or this is dropped),
/// whether or not anyone is awaiting it yet.
#[derive(Debug)]
pub struct PendingResponse {
    shared: Arc<Shared>,
    seq: u32,
    deadline: Instant,
    rx: Option<ResponseReceiver>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("side", &self.side).finish_non_exhaustive()
    }
}

impl PendingResponse {
    pub fn sequence_number(&self) -> u32 {
        self.seq
    }

    /// The response, whatever its command_status (the caller decides what
    /// ESME_RTHROTTLED means); `Err` on timeout, generic_nack or close.
    pub async fn response(mut self) -> Result<Command, SessionError> {
        let Some(rx) = self.rx.take() else { return Err(self.shared.closed_error()) };
        let result = self.shared.await_response(rx, self.deadline).await;
        if result.is_err() {
            lock(&self.shared.pending).remove(&self.seq);
        }
        result
    }
}

impl Drop for PendingResponse {
    fn drop(&mut self) {
        if self.rx.is_some() {
            lock(&self.shared.pending).remove(&self.seq);
        }
    }
}

impl SessionHandle {
    /// Waits for a window slot and the pace, then puts the request on the
    /// wire. Requests sent one after another from one task go out in that
    /// order. Await the returned value for the response.
    pub async fn send(&self, pdu: impl Into<Pdu>) -> Result<PendingResponse, SessionError> {
        let shared = &self.shared;
        if shared.unbinding.load(Ordering::Relaxed) {
            return Err(SessionError::Unbinding);
        }
        let permit = tokio::select! {
            p = shared.window.clone().acquire_owned() => p.map_err(|_| shared.closed_error())?,
            _ = shared.close.cancelled() => return Err(shared.closed_error()),
        };
        tokio::select! {
            _ = shared.pace() => {}
            _ = shared.close.cancelled() => return Err(shared.closed_error()),
        }
        if shared.unbinding.load(Ordering::Relaxed) {
            return Err(SessionError::Unbinding);
        }
        let deadline = Instant::now() + shared.config.response_timeout;
        let (seq, rx) = shared.request_raw(pdu.into(), Some(permit)).await?;
        Ok(PendingResponse { shared: shared.clone(), seq, deadline, rx: Some(rx) })
    }

    /// [`send`](Self::send) and wait for the response.
    pub async fn request(&self, pdu: impl Into<Pdu>) -> Result<Command, SessionError> {
        self.send(pdu).await?.response().await
    }

    /// Requests on the wire without their response yet.
    pub fn in_flight(&self) -> usize {
        self.shared.config.window - self.shared.window.available_permits()
    }

    pub fn window(&self) -> usize {
        self.shared.config.window
    }

    pub fn config(&self) -> &SessionConfig {
        &self.shared.config
    }

    pub fn side(&self) -> Side {
        self.shared.side
    }

    pub fn bound_as(&self) -> Option<BindKind> {
        *lock(&self.shared.bound)
    }

    pub fn is_closed(&self) -> bool {
        self.shared.close.is_cancelled()
    }

    /// Resolves when the session has ended, with why.
    pub async fn closed(&self) -> CloseReason {
        self.shared.close.cancelled().await;
        self.shared.reason()
    }

    /// Ends the session now, without unbind (what is already queued is
    /// still written). Outstanding requests fail with `Closed`.
    pub fn close(&self) {
        self.shared.close(CloseReason::Closed);
    }

    /// The clean end: refuses new requests, waits (up to the response
    /// timeout) for the outstanding ones, sends unbind, waits for
    /// unbind_resp, closes and flushes.
    pub async fn unbind(&self) -> Result<(), SessionError> {
        let shared = &self.shared;
        if shared.close.is_cancelled() {
            return Ok(());
        }
        shared.unbinding.store(true, Ordering::Relaxed);
        let window = u32::try_from(shared.config.window).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(shared.config.response_timeout, shared.window.acquire_many(window)).await;
        drop(drained);
        let result = shared.request_unwindowed(Pdu::Unbind).await.map(|_| ());
        shared.close(CloseReason::Unbound);
        let _ = tokio::time::timeout(shared.config.response_timeout, shared.writer_done.cancelled()).await;
        result
    }

    /// A request outside the window and the pace (bind, enquire_link).
    pub(crate) async fn request_unwindowed(&self, pdu: impl Into<Pdu>) -> Result<Command, SessionError> {
        self.shared.request_unwindowed(pdu.into()).await
    }

    pub(crate) fn close_with(&self, reason: CloseReason) {
        self.shared.close(reason);
    }

    /// Waits until everything queued has been written (after a close).
    pub(crate) async fn flushed(&self) {
        let _ = tokio::time::timeout(self.shared.config.response_timeout, self.shared.writer_done.cancelled()).await;
    }
}

/// A request from the peer for the owner to answer.
#[derive(Debug)]
pub struct InboundRequest {
    pub command: Command,
    pub responder: Responder,
}

/// Inbound requests of one session; `None` once the session has ended.
#[derive(Debug)]
pub struct Inbound {
    rx: mpsc::Receiver<InboundRequest>,
}

impl Inbound {
    pub async fn recv(&mut self) -> Option<InboundRequest> {
        self.rx.recv().await
    }
}

/// Answers one inbound request exactly once. Dropped unanswered, it
/// answers ESME_RSYSERR so the peer is never left waiting.
#[derive(Debug)]
pub struct Responder {
    shared: Arc<Shared>,
    request: CommandId,
    seq: u32,
    answered: bool,
    /// For a bind: tells the reader the bind has been answered.
    settled: Option<oneshot::Sender<()>>,
    _permit: OwnedSemaphorePermit,
}

impl Responder {
    pub fn sequence_number(&self) -> u32 {
        self.seq
    }

    pub fn request_id(&self) -> CommandId {
        self.request
    }

    /// Answers with `pdu` (which must be the matching response) and
    /// ESME_ROK.
    pub async fn respond(self, pdu: impl Into<Pdu>) -> Result<(), SessionError> {
        self.respond_with_status(CommandStatus::EsmeRok, pdu).await
    }

    pub async fn respond_with_status(mut self, status: CommandStatus, pdu: impl Into<Pdu>) -> Result<(), SessionError> {
        self.answered = true;
        if status == CommandStatus::EsmeRok
            && let Some(kind) = BindKind::from_request(self.request)
        {
            *lock(&self.shared.bound) = Some(kind);
        }
        let result = self.shared.write(Command::new(status, self.seq, pdu.into())).await;
        self.settle();
        result
    }

    /// Answers with `status` and no body.
    pub async fn reject(mut self, status: CommandStatus) -> Result<(), SessionError> {
        self.answered = true;
        let result = self.shared.write(error_response(self.request, self.seq, status)).await;
        self.settle();
        result
    }

    fn settle(&mut self) {
        if let Some(tx) = self.settled.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.shared.out.try_send(error_response(self.request, self.seq, CommandStatus::EsmeRsyserr));
        }
    }
}
