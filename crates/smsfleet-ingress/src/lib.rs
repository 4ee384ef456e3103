//! The ingress role: the HTTP APIs clients already call. Its send path
//! authenticates from the in-memory account cache, validates, publishes the
//! submission to JetStream (awaiting the PubAck, so an OK is durable) and
//! answers; it never waits on Postgres. Reads (`ds`, `cr`) and account
//! changes (`set_token`) go to the query and accounts roles over NATS
//! request/reply.

mod admin;
mod auth;
mod bulk;
mod cache;
mod guard;
mod incoming;
mod phonebook;
mod playsms;
mod publisher;
mod pv;
#[cfg(test)]
mod test_fixtures;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get, post};
use axum::serve::ListenerExt;
use smsfleet_accounts::Secrets;
use smsfleet_bus::{Bus, StateFeed, WorkerIds, WorkerLease};
use smsfleet_domain::{SmsLogId, SnowflakeGenerator};
use tokio_util::sync::CancellationToken;

pub use bulk::BulkSettings;
pub use cache::AccountCache;
pub use guard::GuardSettings;

#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// Destinations accepted in one request (one bus message carries them all).
    pub max_destinations: usize,
    /// Longest message, in parts (playSMS truncates silently; we refuse).
    pub max_segments: u32,
    /// Sender used when neither `from` nor the account's sender is set.
    pub default_sender: String,
    /// How long the dispatcher keeps trying before a message fails.
    pub validity: Duration,
    /// Concurrent JetStream publishes of submission batches.
    pub publishers: usize,
    /// Most submissions per batch.
    pub max_batch: usize,
    pub query_timeout: Duration,
    /// Bulk HTTP API settings.
    pub bulk: BulkSettings,
    /// Brute-force protection for every login (tokens, passwords).
    pub login_guard: GuardSettings,
    /// Where `op=ws_login` redirects (playSMS: `index.php`).
    pub web_root: String,
    /// Reverse proxies whose `X-Forwarded-For` is believed (allow-list
    /// syntax; empty = none, the TCP peer is the client).
    pub trusted_proxies: String,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            max_destinations: 10_000,
            max_segments: 10,
            default_sender: "smsfleet".to_owned(),
            validity: Duration::from_secs(48 * 3600),
            publishers: 4,
            max_batch: 256,
            query_timeout: Duration::from_secs(5),
            bulk: BulkSettings::default(),
            login_guard: GuardSettings::default(),
            web_root: "index.php".to_owned(),
            trusted_proxies: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error(transparent)]
    Bus(#[from] smsfleet_bus::BusError),
    #[error("http server: {0}")]
    Serve(#[from] std::io::Error),
}

#[derive(Clone)]
pub(crate) struct App {
    pub bus: Bus,
    pub cache: AccountCache,
    pub secrets: Secrets,
    pub publisher: publisher::Publisher,
    pub ids: Arc<Mutex<SnowflakeGenerator>>,
    /// The leased worker id `ids` must use; it changes if the lease is lost.
    pub worker_ids: WorkerIds,
    pub pv_limits: Arc<pv::PvLimits>,
    pub validity: Duration,
    pub query_timeout: Duration,
    pub bulk: Arc<bulk::BulkState>,
    pub guard: Arc<guard::LoginGuard>,
    pub web_root: Arc<str>,
    pub trusted_proxies: Arc<str>,
}

impl App {
    /// The client's address, through trusted reverse proxies.
    pub fn client_ip(&self, peer: SocketAddr, headers: &axum::http::HeaderMap) -> std::net::IpAddr {
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        smsfleet_domain::ipallow::client_ip(peer.ip(), forwarded, &self.trusted_proxies)
    }

    /// Whether `client` is blocked for too many failed logins.
    pub fn login_blocked(&self, client: std::net::IpAddr) -> bool {
        self.guard.enabled() && self.cache.blocked(client, now_ms())
    }

    /// Counts a login outcome; the failure that crosses the limit blocks
    /// the IP here at once and on every other replica through the state
    /// stream.
    pub fn record_login(&self, client: std::net::IpAddr, ok: bool) {
        if ok {
            self.guard.succeeded(client);
            return;
        }
        metrics::counter!("smsfleet_ingress_login_failures_total").increment(1);
        let Some(until_ms) = self.guard.failed(client, now_ms()) else { return };
        tracing::warn!(%client, until_ms, "client blocked after repeated failed logins");
        metrics::counter!("smsfleet_ingress_clients_blocked_total").increment(1);
        let state =
            smsfleet_contract::BlockState { v: smsfleet_contract::SCHEMA_VERSION, ip: client.to_string(), until_ms };
        self.cache.apply(smsfleet_bus::StateEvent::Block(state.clone()));
        let bus = self.bus.clone();
        tokio::spawn(async move {
            let subject = bus.namespace().block_state_subject(&state.ip);
            if let Err(e) = bus.publish_state(subject, &state).await {
                tracing::error!(error = %e, "block not published to other replicas");
            }
        });
    }

    /// `n` new ids, or `None` while no worker-id lease is held.
    pub fn next_ids(&self, n: usize) -> Option<Vec<SmsLogId>> {
        let worker_id = self.worker_ids.current()?;
        let mut g = self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.worker_id() != worker_id {
            // A lease taken again on another id: the id's previous holder
            // stopped using it before its lease expired, i.e. before ours.
            *g = SnowflakeGenerator::new(worker_id).ok()?;
        }
        let ms = smsfleet_domain::clock::now_ms() as u64;
        Some((0..n).map(|_| g.next(ms)).collect())
    }
}

pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The HTTP routes, for tests and for embedding.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/index.php", any(playsms::index))
        .route("/playsms/api.php", post(playsms::json_api))
        .route("/bulksms/bulksms", get(bulk::bulksms).post(bulk::bulksms))
        .route("/bulksms/schedulemsg", get(bulk::schedulemsg).post(bulk::schedulemsg))
        .with_state(app)
}

/// Runs the ingress until `shutdown`; in-flight requests finish first.
pub async fn run(
    bus: Bus,
    secrets: Secrets,
    config: IngressConfig,
    listener: tokio::net::TcpListener,
    ready: smsfleet_telemetry::ReadyFlag,
    shutdown: CancellationToken,
) -> Result<(), IngressError> {
    let cache = AccountCache::default();
    let feed_cache = cache.clone();
    let mut feed = StateFeed::start(&bus, move |e| feed_cache.apply(e)).await?;
    let lease = WorkerLease::acquire(&bus).await?;
    let first_worker_id = lease.worker_id().ok_or(smsfleet_bus::BusError::NoWorkerId)?;
    let generator =
        SnowflakeGenerator::new(first_worker_id).map_err(|e| smsfleet_bus::BusError::Consume(e.to_string()))?;
    feed.wait_caught_up(Duration::from_secs(60)).await?;
    let app = App {
        bus: bus.clone(),
        cache,
        secrets,
        publisher: publisher::Publisher::start(bus.clone(), config.publishers, config.max_batch),
        ids: Arc::new(Mutex::new(generator)),
        worker_ids: lease.ids(),
        pv_limits: Arc::new(pv::PvLimits {
            max_destinations: config.max_destinations,
            max_segments: config.max_segments,
            default_sender: config.default_sender.clone(),
        }),
        validity: config.validity,
        query_timeout: config.query_timeout,
        bulk: Arc::new(bulk::BulkState::new(config.bulk.clone())),
        guard: Arc::new(guard::LoginGuard::new(config.login_guard.clone())),
        web_root: Arc::from(config.web_root.as_str()),
        trusted_proxies: Arc::from(config.trusted_proxies.as_str()),
    };
    // A lost lease is taken again by the lease itself (no ids meanwhile);
    // it lives as long as the server.
    let stop = shutdown.child_token();
    ready.set(true);
    tracing::info!(addr = ?listener.local_addr().ok(), "ingress listening");
    let listener = listener.tap_io(|tcp| {
        // Without it an answer written in two segments waits for the
        // client's delayed ACK (Nagle): ~40 ms per keep-alive request.
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(listener, router(app).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    ready.set(false);
    drop(lease);
    drop(feed);
    let _ = bus.flush().await;
    served?;
    Ok(())
}
