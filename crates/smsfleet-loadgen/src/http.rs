//! HTTP/1.1 keep-alive workers on hyper: one TCP connection per worker, so
//! "64 connections" means exactly 64 sockets, unlike a pooled client.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{LoadgenError, Outcome, Worker};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One request to send; built per request number by a [`MakeRequest`].
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    /// e.g. `/index.php?app=ws&op=pv&...`.
    pub path_and_query: String,
    pub body: Bytes,
    pub content_type: Option<&'static str>,
}

/// Builds request number `index`.
pub type MakeRequest = Arc<dyn Fn(u64) -> RequestSpec + Send + Sync>;
/// Decides from status and body whether the server did what was asked.
pub type CheckResponse = Arc<dyn Fn(u16, &[u8]) -> bool + Send + Sync>;

/// A worker owning one keep-alive connection. A broken connection is
/// reopened before the next request; the request that saw it fail counts
/// as failed.
pub struct HttpWorker {
    addr: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    make: MakeRequest,
    check: CheckResponse,
}

/// `http://host:port[/...]` to `host:port`.
fn authority(base_url: &str) -> Result<String, LoadgenError> {
    let rest = base_url.strip_prefix("http://").ok_or_else(|| LoadgenError::Target(base_url.to_owned()))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || !authority.contains(':') {
        return Err(LoadgenError::Target(base_url.to_owned()));
    }
    Ok(authority.to_owned())
}

async fn open(addr: &str) -> Result<SendRequest<Full<Bytes>>, LoadgenError> {
    let stream =
        TcpStream::connect(addr).await.map_err(|source| LoadgenError::Connect { addr: addr.to_owned(), source })?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| LoadgenError::Handshake { addr: addr.to_owned(), source })?;
    tokio::spawn(async move {
        // Ends when the worker drops its sender or the server closes.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Opens `connections` keep-alive connections to `base_url` (`http://host:port`).
pub async fn connect_many(
    base_url: &str,
    connections: usize,
    make: MakeRequest,
    check: CheckResponse,
) -> Result<Vec<HttpWorker>, LoadgenError> {
    let addr = authority(base_url)?;
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let sender = open(&addr).await?;
        workers.push(HttpWorker { addr: addr.clone(), sender: Some(sender), make: make.clone(), check: check.clone() });
    }
    Ok(workers)
}

impl HttpWorker {
    async fn send(&mut self, spec: RequestSpec) -> Result<(u16, Bytes), ()> {
        let sender = match &mut self.sender {
            Some(s) if !s.is_closed() => s,
            _ => self.sender.insert(open(&self.addr).await.map_err(|_| ())?),
        };
        sender.ready().await.map_err(|_| ())?;
        let mut builder = hyper::Request::builder()
            .method(match spec.method {
                Method::Get => hyper::Method::GET,
                Method::Post => hyper::Method::POST,
            })
            .uri(spec.path_and_query)
            .header(hyper::header::HOST, self.addr.as_str());
        if let Some(ct) = spec.content_type {
            builder = builder.header(hyper::header::CONTENT_TYPE, ct);
        }
        let request = builder.body(Full::new(spec.body)).map_err(|_| ())?;
        let response = sender.send_request(request).await.map_err(|_| ())?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|_| ())?.to_bytes();
        Ok((status, body))
    }
}

impl Worker for HttpWorker {
    async fn call(&mut self, index: u64) -> Outcome {
        let spec = (self.make)(index);
        match self.send(spec).await {
            Ok((status, body)) if (self.check)(status, &body) => Outcome::Ok,
            Ok(_) => Outcome::Failed,
            Err(()) => {
                self.sender = None;
                Outcome::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_must_be_plain_http_with_a_port() {
        assert_eq!(authority("http://127.0.0.1:8080").ok().as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(authority("http://127.0.0.1:8080/x/y").ok().as_deref(), Some("127.0.0.1:8080"));
        assert!(authority("https://127.0.0.1:8080").is_err());
        assert!(authority("http://localhost").is_err());
    }
}
