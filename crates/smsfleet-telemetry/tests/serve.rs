//! The serving function every HTTP port runs on, against hostile clients
//! (issue 14.8): idle and slow connections are closed after the header
//! timeout, one IP cannot hold more than its share.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use smsfleet_telemetry::{HttpLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);

struct Server {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(limits: HttpLimits) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let router = Router::new().route("/healthz", get(|| async { "ok" }));
    tokio::spawn(serve(listener, router, limits, shutdown.clone()));
    Server { addr, shutdown }
}

fn limits(per_ip: usize) -> HttpLimits {
    HttpLimits { header_read_timeout: HEADER_TIMEOUT, max_connections: 64, max_connections_per_ip: per_ip }
}

/// Whether the server closes `stream` (EOF or reset) within `within`;
/// anything it sends first is skipped.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Sends one keep-alive request and reads the answer's head.
async fn healthz(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[tokio::test]
async fn idle_half_sent_and_kept_alive_connections_are_closed_after_the_header_timeout() {
    let server = start(limits(0)).await;
    let wait = HEADER_TIMEOUT * 10;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"GET /healthz HT").await.unwrap();
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    assert!(healthz(&mut kept).await.starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut idle, wait).await, "an idle socket stays open");
    assert!(closed_within(&mut half, wait).await, "a half-sent request line stays open");
    assert!(closed_within(&mut kept, wait).await, "an idle keep-alive stays open");
}

#[tokio::test]
async fn one_ip_gets_at_most_its_connections() {
    let server = start(limits(2)).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    assert!(healthz(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(healthz(&mut second).await.starts_with("HTTP/1.1 200"));
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_within(&mut third, HEADER_TIMEOUT / 2).await, "the third connection was served");
    // A closed connection gives its slot back.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = TcpStream::connect(server.addr).await.unwrap();
        let _ = again.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), again.read(&mut buf)).await
            && buf[..n].starts_with(b"HTTP/1.1 200")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
