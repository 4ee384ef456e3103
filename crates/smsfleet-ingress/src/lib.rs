//! The ingress role: the HTTP APIs clients already call, and the SMPP
//! server for customers ([`smpp`], on its own port). Its send path
//! authenticates from the in-memory account cache, validates, publishes the
//! submission to JetStream (awaiting the PubAck, so an OK is durable) and
//! answers; it never waits on Postgres. Reads (`ds`, `cr`) and account
//! changes (`set_token`) go to the query and accounts roles over NATS
//! request/reply.
//!
//! Where things are: [`playsms`] speaks the playSMS wire format (one module
//! per op under `playsms/ops/`, one reply in `playsms/reply.rs`), [`bulk`]
//! the bulk API, [`smpp`] the SMPP server, [`body`] reads every door's
//! body, and [`accept`] is the one
//! path a send request takes from any door to the SUBMIT stream.

mod accept;
mod app;
mod auth;
mod body;
mod bulk;
mod cache;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod guard;
mod playsms;
mod publisher;
mod smpp;
#[cfg(any(test, feature = "fuzzing"))]
mod test_fixtures;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get, post};
use smsfleet_bus::{IdBlocks, StateFeed};
use smsfleet_runtime::RoleContext;

use crate::accept::{Acceptor, DuplicateWindow};
use crate::app::{App, SendLimits};

pub use bulk::BulkSettings;
pub use cache::AccountCache;
pub use guard::GuardSettings;
pub use smpp::{SmppSettings, TlsSettings as SmppTlsSettings};

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
    /// How long a submission batch is retried (a leader election, a NATS
    /// restart) before its requests are answered with an error. The ledger
    /// fails a batch stored after it, so an error never becomes a send.
    pub store_deadline: Duration,
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
    /// Timeouts and connection limits of the HTTP port.
    pub http: smsfleet_telemetry::HttpLimits,
    /// The SMPP server (off unless a listen address is set).
    pub smpp: SmppSettings,
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
            store_deadline: Duration::from_secs(10),
            query_timeout: Duration::from_secs(5),
            bulk: BulkSettings::default(),
            login_guard: GuardSettings::default(),
            web_root: "index.php".to_owned(),
            trusted_proxies: String::new(),
            http: smsfleet_telemetry::HttpLimits::default(),
            smpp: SmppSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error(transparent)]
    Context(#[from] smsfleet_runtime::MissingResource),
    #[error(transparent)]
    Bus(#[from] smsfleet_bus::BusError),
    #[error("http server: {0}")]
    Serve(#[from] std::io::Error),
}

/// The HTTP routes, for tests and for embedding. The state is shared
/// behind one `Arc`: axum clones it for every request.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/index.php", any(playsms::index))
        .route("/playsms/api.php", post(playsms::json_api))
        .route("/bulksms/bulksms", get(bulk::bulksms).post(bulk::bulksms))
        .route("/bulksms/schedulemsg", get(bulk::schedulemsg).post(bulk::schedulemsg))
        // Multipart reads through axum's limit: the same one as every door.
        .layer(axum::extract::DefaultBodyLimit::max(body::MAX_FORM_BYTES))
        .with_state(Arc::new(app))
}

/// Runs the ingress until `shutdown`; in-flight requests finish first.
pub async fn run(mut ctx: RoleContext, config: IngressConfig) -> Result<(), IngressError> {
    let (bus, secrets, listener) = (ctx.bus()?, ctx.secrets()?, ctx.take_listener()?);
    let RoleContext { ready, shutdown, .. } = ctx;
    let cache = AccountCache::default();
    let feed_cache = cache.clone();
    let mut feed = StateFeed::start(&bus, move |e| feed_cache.apply(e)).await?;
    let id_blocks = IdBlocks::start(&bus).await?;
    feed.wait_caught_up(Duration::from_secs(60)).await?;
    let ids = id_blocks.issuer();
    let publisher =
        publisher::Publisher::start(bus.clone(), config.publishers, config.max_batch, config.store_deadline);
    let duplicates = DuplicateWindow::new(config.bulk.duplicate_window, 100_000);
    let app = App {
        bus: bus.clone(),
        acceptor: Acceptor::new(cache.clone(), publisher, ids.clone(), duplicates),
        cache,
        secrets,
        ids,
        limits: Arc::new(SendLimits {
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
    // Id blocks are claimed in the background for as long as the server
    // runs; while none can be claimed, no ids are issued.
    let stop = shutdown.child_token();
    // The SMPP port is bound before readiness, so a bad address or
    // certificate fails the start instead of a half-open role.
    let smpp = smpp::start(app.clone(), config.smpp.clone(), stop.clone()).await?;
    ready.set(true);
    tracing::info!(addr = ?listener.local_addr().ok(), "ingress listening");
    let served = smsfleet_telemetry::serve(listener, router(app), config.http.clone(), stop).await;
    ready.set(false);
    if let Some(smpp) = smpp {
        let _ = smpp.await;
    }
    drop(id_blocks);
    drop(feed);
    let _ = bus.flush().await;
    served?;
    Ok(())
}
