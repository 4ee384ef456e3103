//! The MC side: accept one bind on a new connection, asking the owner's
//! authenticator for the verdict, then run the session.

use std::future::Future;

use rusmpp::{
    CommandStatus, Pdu,
    pdus::{BindReceiverResp, BindTransceiverResp, BindTransmitterResp},
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::{self, BindKind, CloseReason, Session, SessionConfig, SessionError, Side};

/// What the ESME asked for, as given (the password too: the authenticator
/// checks it; never log it).
#[derive(Clone, PartialEq, Eq)]
pub struct BindRequest {
    pub kind: BindKind,
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub interface_version: u8,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

impl std::fmt::Debug for BindRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindRequest")
            .field("kind", &self.kind)
            .field("system_id", &self.system_id)
            .field("system_type", &self.system_type)
            .field("interface_version", &self.interface_version)
            .finish_non_exhaustive()
    }
}

impl BindRequest {
    fn from_pdu(pdu: &Pdu) -> Option<Self> {
        macro_rules! take {
            ($b:expr, $kind:expr) => {
                Some(Self {
                    kind: $kind,
                    system_id: $b.system_id.as_str().to_owned(),
                    password: $b.password.as_str().to_owned(),
                    system_type: $b.system_type.as_str().to_owned(),
                    interface_version: u8::from($b.interface_version),
                    addr_ton: u8::from($b.addr_ton),
                    addr_npi: u8::from($b.addr_npi),
                    address_range: $b.address_range.as_str().to_owned(),
                })
            };
        }
        match pdu {
            Pdu::BindTransmitter(b) => take!(b, BindKind::Transmitter),
            Pdu::BindReceiver(b) => take!(b, BindKind::Receiver),
            Pdu::BindTransceiver(b) => take!(b, BindKind::Transceiver),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    /// The authenticator refused with this status (sent to the ESME).
    #[error("bind refused: {0:?}")]
    Refused(CommandStatus),
    #[error("no bind: {0}")]
    NoBind(CloseReason),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Accepts one bind on `io`. `authenticate` returns the command_status to
/// answer (ESME_ROK to accept; e.g. ESME_RINVPASWD, ESME_RBINDFAIL to
/// refuse). On refusal the bind_resp is flushed and the connection closed.
/// `system_id` is ours, sent in the bind_resp.
pub async fn accept<IO, F, Fut>(
    io: IO,
    config: SessionConfig,
    system_id: &str,
    authenticate: F,
) -> Result<(Session, BindRequest), AcceptError>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
    F: FnOnce(&BindRequest) -> Fut,
    Fut: Future<Output = CommandStatus>,
{
    let bind_timeout = config.bind_timeout;
    let mut session = session::start(io, Side::Mc, config);
    // Only binds reach the owner before the session is bound; the session
    // answers anything else itself (ESME_RINVBNDSTS, enquire_link_resp).
    let first = match tokio::time::timeout(bind_timeout, session.inbound.recv()).await {
        Ok(Some(req)) => req,
        Ok(None) => return Err(AcceptError::NoBind(session.handle.closed().await)),
        Err(_) => {
            session.handle.close_with(CloseReason::NoBind(bind_timeout));
            return Err(AcceptError::NoBind(CloseReason::NoBind(bind_timeout)));
        }
    };
    let Some(request) = first.command.pdu().and_then(BindRequest::from_pdu) else {
        first.responder.reject(CommandStatus::EsmeRinvbndsts).await?;
        session.handle.close_with(CloseReason::NoBind(bind_timeout));
        return Err(AcceptError::NoBind(CloseReason::NoBind(bind_timeout)));
    };
    let status = authenticate(&request).await;
    if status != CommandStatus::EsmeRok {
        first.responder.reject(status).await?;
        session.handle.close_with(CloseReason::BindRefused(status));
        session.handle.flushed().await;
        return Err(AcceptError::Refused(status));
    }
    let ours = crate::c_string(system_id);
    let resp: Pdu = match request.kind {
        BindKind::Transmitter => BindTransmitterResp::builder().system_id(ours).build().into(),
        BindKind::Receiver => BindReceiverResp::builder().system_id(ours).build().into(),
        BindKind::Transceiver => BindTransceiverResp::builder().system_id(ours).build().into(),
    };
    first.responder.respond(resp).await?;
    Ok((session, request))
}
