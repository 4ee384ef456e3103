//! smsfleet's NATS JetStream layer: provisioning the streams and consumers
//! of the contract at start-up, typed publishing with `Nats-Msg-Id`
//! de-duplication, batch-pulling workers with ack / retry with backoff /
//! dead-letter, the replicated state feed the ingress caches from, leased
//! blocks of message ids, leased slots, and request/reply services.
//! W3C trace context rides in message headers.
//!
//! Only this crate (and tests) touch async-nats, so the roles code against a
//! small surface that works the same on nats-server 2.9 and current releases:
//! one filter subject per consumer, no per-message TTL, no KV API.

mod error;
mod id_blocks;
mod mailbox;
mod progress;
mod provision;
mod publish;
mod service;
mod slots;
mod state;
mod supervise;
mod trim;
mod worker;

use std::time::Duration;

use async_nats::jetstream;
use smsfleet_contract::{Namespace, Topology};

pub use error::BusError;
pub use id_blocks::{IdBlocks, IdIssuer, raise_id_counter};
pub use mailbox::{Letter, Mailbox, MailboxSpec};
pub use progress::Progress;
pub use provision::MAX_STREAM_REPLICAS;
pub use publish::Published;
pub use service::serve_requests;
pub use slots::SlotLease;
pub use state::{StateEvent, StateFeed};
pub use supervise::{LoopFailure, supervise};
pub use trim::{TRIM_EVERY, run_trimmer};
pub use worker::{DEFAULT_BATCH_BYTES, Delivery, HandlerError, WorkerConfig, run_worker};

/// A connection to the bus within one namespace.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    ns: Namespace,
    topology: Topology,
    /// Copies of every stream provisioning keeps (`SMSFLEET_STREAM_REPLICAS`).
    stream_replicas: usize,
}

/// The servers of a `NATS_URL`: one URL or a comma-separated list of the
/// cluster's servers (`nats://a:4222,nats://b:4222`), so the first
/// connection does not depend on one node being up; the client also learns
/// the other members from the server it reaches.
pub fn server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>, BusError> {
    let addrs = url
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().map_err(|e| BusError::Connect(format!("NATS server {part:?}: {e}"))))
        .collect::<Result<Vec<async_nats::ServerAddr>, BusError>>()?;
    if addrs.is_empty() {
        return Err(BusError::Connect("NATS_URL names no server".to_owned()));
    }
    Ok(addrs)
}

impl Bus {
    /// Connects and retries the first connection for a while, because in
    /// Kubernetes the NATS pod may come up after ours. `url` may list
    /// several servers, see [`server_addrs`]. Streams get one replica unless
    /// [`Bus::with_stream_replicas`] says otherwise.
    pub async fn connect(url: &str, ns: Namespace, connection_name: &str) -> Result<Bus, BusError> {
        let servers = server_addrs(url)?;
        let client = async_nats::ConnectOptions::new()
            .name(connection_name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(10)))
            .connect(servers)
            .await
            .map_err(|e| BusError::Connect(e.to_string()))?;
        // Wait for the first connection so start-up fails loudly instead of
        // queueing publishes against a server that is not there.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while client.connection_state() != async_nats::connection::State::Connected {
            if tokio::time::Instant::now() > deadline {
                return Err(BusError::Connect(format!("no NATS server answered at {url} within 30 s")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(10))
            .max_ack_inflight(20_000)
            .build(client.clone());
        Ok(Bus { client, js, ns, topology: Topology::current(), stream_replicas: 1 })
    }

    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Sends everything buffered, so a shutdown does not drop acks.
    pub async fn flush(&self) -> Result<(), BusError> {
        self.client.flush().await.map_err(|e| BusError::Publish(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hosts(url: &str) -> Vec<String> {
        server_addrs(url).unwrap().iter().map(|a| format!("{}:{}", a.host(), a.port())).collect()
    }

    #[test]
    fn nats_url_takes_one_server_or_a_list() {
        assert_eq!(hosts("nats://127.0.0.1:4222"), ["127.0.0.1:4222"]);
        assert_eq!(hosts("nats://a:4222,nats://b:4223, nats://c:4224 ,"), ["a:4222", "b:4223", "c:4224"]);
        assert_eq!(hosts("a:4222,b"), ["a:4222", "b:4222"]);
    }

    #[test]
    fn a_bad_or_empty_server_list_is_refused() {
        assert!(matches!(server_addrs(""), Err(BusError::Connect(_))));
        assert!(matches!(server_addrs(" , "), Err(BusError::Connect(_))));
        assert!(matches!(server_addrs("nats://a:4222,nats://b:notaport"), Err(BusError::Connect(_))));
    }
}
