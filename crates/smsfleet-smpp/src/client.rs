//! The ESME side: bind to an SMSC, and keep a bind up (reconnect with
//! backoff, report its state) for the dispatcher's upstream routes.

use std::{sync::Arc, time::Duration};

use rusmpp::{
    CommandStatus, Pdu,
    pdus::{BindReceiver, BindTransceiver, BindTransmitter},
    values::{InterfaceVersion, Npi, Ton},
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::{mpsc, watch},
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::session::{self, BindKind, InboundRequest, Session, SessionConfig, SessionError, SessionHandle, Side};

/// What an ESME says in its bind. Built through [`BindConfig::new`], which
/// refuses what the wire cannot carry, so a bad route stops the start.
#[derive(Clone, PartialEq, Eq)]
pub struct BindConfig {
    pub kind: BindKind,
    system_id: String,
    password: String,
    pub system_type: String,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

impl std::fmt::Debug for BindConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindConfig")
            .field("kind", &self.kind)
            .field("system_id", &self.system_id)
            .field("password", &"***")
            .field("system_type", &self.system_type)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindConfigError {
    #[error("system_id must be 1 to 15 ASCII characters")]
    SystemId,
    #[error("password must be at most 8 ASCII characters")]
    Password,
    #[error("system_type must be at most 12 ASCII characters")]
    SystemType,
    #[error("address_range must be at most 40 ASCII characters")]
    AddressRange,
}

fn fits(s: &str, max: usize) -> bool {
    s.len() <= max && s.bytes().all(|b| b.is_ascii() && b != 0)
}

impl BindConfig {
    pub fn new(
        kind: BindKind,
        system_id: impl Into<String>,
        password: impl Into<String>,
        system_type: impl Into<String>,
    ) -> Result<Self, BindConfigError> {
        let (system_id, password, system_type) = (system_id.into(), password.into(), system_type.into());
        if system_id.is_empty() || !fits(&system_id, 15) {
            return Err(BindConfigError::SystemId);
        }
        if !fits(&password, 8) {
            return Err(BindConfigError::Password);
        }
        if !fits(&system_type, 12) {
            return Err(BindConfigError::SystemType);
        }
        Ok(Self { kind, system_id, password, system_type, addr_ton: 0, addr_npi: 0, address_range: String::new() })
    }

    pub fn with_address_range(mut self, ton: u8, npi: u8, range: impl Into<String>) -> Result<Self, BindConfigError> {
        let range = range.into();
        if !fits(&range, 40) {
            return Err(BindConfigError::AddressRange);
        }
        self.addr_ton = ton;
        self.addr_npi = npi;
        self.address_range = range;
        Ok(self)
    }

    pub fn system_id(&self) -> &str {
        &self.system_id
    }

    /// The bind PDU. Lengths were checked in `new`, so the conversions
    /// cannot fail; should they, the field goes empty and the SMSC refuses.
    pub fn to_pdu(&self) -> Pdu {
        let (system_id, password, system_type, range) = (
            crate::c_string(&self.system_id),
            crate::c_string(&self.password),
            crate::c_string(&self.system_type),
            crate::c_string(&self.address_range),
        );
        let (ton, npi) = (Ton::from(self.addr_ton), Npi::from(self.addr_npi));
        let v = InterfaceVersion::Smpp3_4;
        match self.kind {
            BindKind::Transmitter => BindTransmitter::new(system_id, password, system_type, v, ton, npi, range).into(),
            BindKind::Receiver => BindReceiver::new(system_id, password, system_type, v, ton, npi, range).into(),
            BindKind::Transceiver => BindTransceiver::new(system_id, password, system_type, v, ton, npi, range).into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("bind refused: {0:?}")]
    Refused(CommandStatus),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("connect: {0}")]
    Connect(String),
}

/// Binds over an already connected stream.
pub async fn bind<IO>(io: IO, bind: &BindConfig, config: SessionConfig) -> Result<Session, BindError>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let session = session::start(io, Side::Esme, config);
    let response = match session.handle.request_unwindowed(bind.to_pdu()).await {
        Ok(r) => r,
        Err(e) => {
            session.handle.close();
            return Err(e.into());
        }
    };
    if response.status() != CommandStatus::EsmeRok {
        session.handle.close_with(session::CloseReason::BindRefused(response.status()));
        return Err(BindError::Refused(response.status()));
    }
    Ok(session)
}

/// Where an SMSC listens.
#[derive(Clone)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    /// TLS with the certificate checked against `tls`'s roots and
    /// `server_name`.
    Tls {
        host: String,
        port: u16,
        tls: Arc<rustls::ClientConfig>,
        server_name: String,
    },
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Self::Tls { host, port, server_name, .. } => write!(f, "tls://{host}:{port} (name {server_name})"),
        }
    }
}

/// A rustls client config trusting the CA certificates of a PEM file (or
/// nothing else). aws-lc-rs, the one crypto provider of the workspace.
pub fn tls_config_from_ca_pem(pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("CA file: {e}"))?;
        roots.add(cert).map_err(|e| format!("CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("CA file holds no certificate".into());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Any connected byte stream (TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Box<dyn Stream>, BindError> {
    let fut = async {
        match endpoint {
            Endpoint::Tcp { host, port } => {
                let tcp = TcpStream::connect((host.as_str(), *port)).await.map_err(|e| e.to_string())?;
                let _ = tcp.set_nodelay(true);
                Ok::<Box<dyn Stream>, String>(Box::new(tcp))
            }
            Endpoint::Tls { host, port, tls, server_name } => {
                let tcp = TcpStream::connect((host.as_str(), *port)).await.map_err(|e| e.to_string())?;
                let _ = tcp.set_nodelay(true);
                let name = rustls::pki_types::ServerName::try_from(server_name.clone()).map_err(|e| e.to_string())?;
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<Box<dyn Stream>, String>(Box::new(stream))
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r.map_err(BindError::Connect),
        Err(_) => Err(BindError::Connect(format!("no connection within {timeout:?}"))),
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoint: Endpoint,
    pub bind: BindConfig,
    pub session: SessionConfig,
    pub connect_timeout: Duration,
    /// Backoff between attempts doubles from min to max.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

/// What a kept bind is doing, for metrics and readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindState {
    Connecting,
    Bound,
    /// Waiting before the next attempt; `last_error` says why the last one
    /// ended.
    Reconnecting {
        attempt: u32,
        last_error: String,
    },
    /// Stopped by its owner.
    Down,
}

impl BindState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Bound => "bound",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Down => "down",
        }
    }
}

/// A bind kept up in the background. Inbound requests of every session it
/// makes arrive on one receiver.
#[derive(Debug)]
pub struct Client {
    state: watch::Receiver<BindState>,
    session: watch::Receiver<Option<SessionHandle>>,
    inbound: mpsc::Receiver<InboundRequest>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    pub fn spawn(config: ClientConfig) -> Self {
        let (state_tx, state) = watch::channel(BindState::Connecting);
        let (session_tx, session) = watch::channel(None);
        let (inbound_tx, inbound) = mpsc::channel(config.session.inbound_window.max(1));
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep_bound(config, state_tx, session_tx, inbound_tx, stop.clone()));
        Self { state, session, inbound, stop, task }
    }

    pub fn state(&self) -> BindState {
        self.state.borrow().clone()
    }

    pub fn state_watch(&self) -> watch::Receiver<BindState> {
        self.state.clone()
    }

    /// The current bound session, if any.
    pub fn session(&self) -> Option<SessionHandle> {
        self.session.borrow().clone().filter(|s| !s.is_closed())
    }

    pub fn session_watch(&self) -> watch::Receiver<Option<SessionHandle>> {
        self.session.clone()
    }

    /// Waits until a session is bound (or the client is stopped).
    pub async fn bound(&self) -> Option<SessionHandle> {
        let mut w = self.session.clone();
        loop {
            if let Some(s) = w.borrow_and_update().clone().filter(|s| !s.is_closed()) {
                return Some(s);
            }
            if self.stop.is_cancelled() || w.changed().await.is_err() {
                return None;
            }
        }
    }

    pub async fn recv(&mut self) -> Option<InboundRequest> {
        self.inbound.recv().await
    }

    /// Takes the inbound receiver out (to read it from another task).
    pub fn take_inbound(&mut self) -> mpsc::Receiver<InboundRequest> {
        let (_, empty) = mpsc::channel(1);
        std::mem::replace(&mut self.inbound, empty)
    }

    /// Unbinds cleanly and stops reconnecting.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn keep_bound(
    config: ClientConfig,
    state: watch::Sender<BindState>,
    current: watch::Sender<Option<SessionHandle>>,
    inbound: mpsc::Sender<InboundRequest>,
    stop: CancellationToken,
) {
    let mut attempt = 0u32;
    let mut delay = config.reconnect_min;
    loop {
        if stop.is_cancelled() {
            break;
        }
        state.send_replace(BindState::Connecting);
        let result = tokio::select! {
            r = connect_and_bind(&config) => r,
            _ = stop.cancelled() => break,
        };
        let last_error = match result {
            Ok(mut session) => {
                info!(endpoint = ?config.endpoint, kind = config.bind.kind.as_str(), "smpp bound");
                attempt = 0;
                delay = config.reconnect_min;
                current.send_replace(Some(session.handle.clone()));
                state.send_replace(BindState::Bound);
                let reason = loop {
                    tokio::select! {
                        req = session.inbound.recv() => match req {
                            Some(req) => {
                                if inbound.send(req).await.is_err() {
                                    // Nobody reads inbound any more: the
                                    // dropped responder answers RSYSERR.
                                }
                            }
                            None => break session.handle.closed().await.to_string(),
                        },
                        _ = stop.cancelled() => {
                            let _ = session.handle.unbind().await;
                            break "stopped".to_string();
                        }
                    }
                };
                current.send_replace(None);
                reason
            }
            Err(e) => e.to_string(),
        };
        if stop.is_cancelled() {
            break;
        }
        attempt += 1;
        warn!(endpoint = ?config.endpoint, attempt, error = %last_error, retry_in = ?delay, "smpp bind lost");
        state.send_replace(BindState::Reconnecting { attempt, last_error });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => break,
        }
        delay = (delay * 2).min(config.reconnect_max.max(config.reconnect_min));
    }
    current.send_replace(None);
    state.send_replace(BindState::Down);
}

async fn connect_and_bind(config: &ClientConfig) -> Result<Session, BindError> {
    let stream = connect(&config.endpoint, config.connect_timeout).await?;
    bind(stream, &config.bind, config.session.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_over_eight_is_refused() {
        assert_eq!(
            BindConfig::new(BindKind::Transceiver, "id", "123456789", "").unwrap_err(),
            BindConfigError::Password
        );
        assert!(BindConfig::new(BindKind::Transceiver, "id", "12345678", "").is_ok());
        assert_eq!(BindConfig::new(BindKind::Transmitter, "", "", "").unwrap_err(), BindConfigError::SystemId);
        assert_eq!(
            BindConfig::new(BindKind::Transmitter, "x".repeat(16), "", "").unwrap_err(),
            BindConfigError::SystemId
        );
        assert_eq!(
            BindConfig::new(BindKind::Receiver, "id", "", "x".repeat(13)).unwrap_err(),
            BindConfigError::SystemType
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let b = BindConfig::new(BindKind::Transceiver, "id", "sekrit", "").unwrap();
        assert!(!format!("{b:?}").contains("sekrit"));
    }
}
