//! The one HTTP server every port runs on (ingress, dlr callbacks, admin).
//! A port must survive hostile clients: idle sockets, half-sent request
//! lines, idle keep-alives and clients that send their head a byte a
//! second are closed after the header-read timeout; at most
//! `max_connections` are open (further clients wait in the kernel's
//! backlog rather than taking descriptors the process needs), one peer IP
//! holds at most `max_connections_per_ip`, and a failing `accept` (no
//! descriptor left) backs off instead of spinning.
//!
//! Handlers get the peer as `ConnectInfo<SocketAddr>`, as with axum's
//! `into_make_service_with_connect_info`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower_service::Service;

/// Connection limits of one port.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Longest wait for a request's head, from the connection's start or
    /// the previous answer.
    pub header_read_timeout: Duration,
    /// Connections open at once on the port.
    pub max_connections: usize,
    /// Connections open at once from one peer IP (the TCP peer: behind a
    /// proxy, the proxy); a further one is closed at once. 0 = no limit.
    pub max_connections_per_ip: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(30), max_connections: 4096, max_connections_per_ip: 1024 }
    }
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Open connections per peer IP.
#[derive(Default)]
struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped.
struct IpSlot {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<IpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(IpSlot { per_ip: Arc::clone(self), ip })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.per_ip.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown`; then stops accepting,
/// lets in-flight requests finish and returns once every connection is
/// closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let max = u32::try_from(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
    let total = Arc::new(Semaphore::new(max as usize));
    let per_ip = Arc::new(PerIp::default());
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&total).acquire_owned() => p.map_err(std::io::Error::other)?,
            () = shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => {
                backoff = ACCEPT_BACKOFF_MIN;
                c
            }
            Err(e) => {
                // Out of descriptors (EMFILE) or an aborted handshake: wait
                // for connections to close instead of spinning on accept.
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                metrics::counter!("smsfleet_http_accept_errors_total").increment(1);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Some(slot) = per_ip.take(peer.ip(), limits.max_connections_per_ip) else {
            tracing::debug!(%peer, "connection refused: too many from this IP");
            metrics::counter!("smsfleet_http_connections_refused_total").increment(1);
            continue;
        };
        // Without it an answer written in two segments waits for the
        // client's delayed ACK (Nagle): ~40 ms per keep-alive request.
        let _ = tcp.set_nodelay(true);
        let held = (permit, slot);
        tokio::spawn(connection(tcp, peer, router.clone(), limits.header_read_timeout, shutdown.clone(), held));
    }
    // Every permit back means every connection has ended.
    let _all_closed = total.acquire_many(max).await;
    Ok(())
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
    _held: (OwnedSemaphorePermit, IpSlot),
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move { router.call(req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(tcp), service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    let ended = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            () = shutdown.cancelled(), if !draining => {
                // Finishes the request in flight, then closes.
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
