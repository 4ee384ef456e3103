//! smsfleet's NATS JetStream layer: provisioning the streams and consumers
//! of the contract at start-up, typed publishing with `Nats-Msg-Id`
//! de-duplication, batch-pulling workers with ack / retry with backoff /
//! dead-letter, the replicated state feed the ingress caches from, worker-id
//! leases for snowflake ids, and request/reply services. W3C trace context
//! rides in message headers.
//!
//! Only this crate (and tests) touch async-nats, so the roles code against a
//! small surface that works the same on nats-server 2.9 and current releases:
//! one filter subject per consumer, no per-message TTL, no KV API.

mod error;
mod lease;
mod provision;
mod publish;
mod service;
mod state;
mod supervise;
mod worker;

use std::time::Duration;

use async_nats::jetstream;
use smsfleet_contract::{Namespace, Topology};

pub use error::BusError;
pub use lease::{WorkerIds, WorkerLease};
pub use publish::Published;
pub use service::serve_requests;
pub use state::{StateEvent, StateFeed};
pub use supervise::{LoopFailure, supervise};
pub use worker::{DEFAULT_BATCH_BYTES, Delivery, HandlerError, WorkerConfig, run_worker};

/// A connection to the bus within one namespace.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    ns: Namespace,
    topology: Topology,
}

impl Bus {
    /// Connects and retries the first connection for a while, because in
    /// Kubernetes the NATS pod may come up after ours.
    pub async fn connect(url: &str, ns: Namespace, connection_name: &str) -> Result<Bus, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name(connection_name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(10)))
            .connect(url)
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
        Ok(Bus { client, js, ns, topology: Topology::current() })
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
