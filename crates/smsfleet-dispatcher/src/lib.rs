//! smsfleet-dispatcher: sends charged messages to upstream SMSC routes.
//!
//! It pulls [`DispatchChunk`](smsfleet_contract::DispatchChunk)s from the
//! Dispatch stream, picks a route per destination (longest prefix), claims
//! each message in Postgres's `dispatch_log` *before* the upstream call,
//! submits in batches through the route's [`Upstream`], records the
//! upstream ids (one per part) the DLR role later matches reports against,
//! and publishes the statuses of a whole pull of chunks together in
//! `StatusBatch`es of up to 2,000 events for the projection (one-recipient
//! traffic is a chunk per message; a batch per chunk was a publish per
//! message).
//!
//! The claim is what keeps a message from going out twice after a crash or
//! a redelivery: a message already `Sent` is never resubmitted, and one whose
//! earlier attempt has an unknown outcome is resent only to upstreams that
//! dedupe by our reference (the `smslog_id`). A route that is down, or
//! answers that it did not take a message, hands it to the next route of its
//! failover list; an answer that cannot be read never sends a message again
//! to an upstream that does not de-duplicate.
//!
//! Routes come from the routes file (`route/file.rs`) and are re-read on
//! SIGHUP: the new table applies to the next pull, pulls in flight finish
//! on the upstreams they started with (a pull uses one table throughout).

mod pacing;
mod route;
mod send;
mod settle;
mod upstream;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smsfleet_bus::{BusError, WorkerConfig, run_worker};
use smsfleet_contract::StreamKind;
use smsfleet_runtime::RoleContext;

pub use route::{
    CallbackSettings, HttpMethod, HttpProfile, HttpSettings, Protocol, Route, RouteLimits, SimSettings, SmppSettings,
    choose_route, load_routes_file, parse_routes, parse_routes_file, validate_routes,
};
pub use upstream::{OutboundMessage, Upstream, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum DispatcherError {
    #[error(transparent)]
    Context(#[from] smsfleet_runtime::MissingResource),
    #[error("invalid dispatcher config: {0}")]
    Config(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error(transparent)]
    Bus(#[from] BusError),
}

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub routes: Vec<Route>,
    /// Where `routes` came from; re-read on SIGHUP when set.
    pub routes_file: Option<PathBuf>,
    /// Chunks handed to one handler call.
    pub batch: usize,
    /// Handler calls running at once in this process.
    pub concurrency: usize,
    /// Whole-request timeout of one upstream submit over HTTP. A timeout leaves the
    /// outcome unknown, so keep it well above the upstream's normal latency.
    pub request_timeout: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            routes_file: None,
            batch: 16,
            concurrency: 8,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl DispatcherConfig {
    pub fn validate(&self) -> Result<(), DispatcherError> {
        validate_routes(&self.routes)?;
        if self.batch == 0 || self.concurrency == 0 || self.request_timeout.is_zero() {
            return Err(DispatcherError::Config("batch, concurrency and request_timeout must be > 0".to_owned()));
        }
        Ok(())
    }
}

/// Runs until `shutdown` is cancelled; in-flight chunks are finished (and
/// acked) before it returns.
pub async fn run(ctx: RoleContext, config: DispatcherConfig) -> Result<(), DispatcherError> {
    let (bus, pool) = (ctx.bus()?, ctx.pool()?);
    let RoleContext { ready, shutdown, .. } = ctx;
    config.validate()?;
    let client = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(config.routes.iter().map(|r| r.limits.max_in_flight).max().unwrap_or(16))
        .tcp_nodelay(true)
        .build()
        .map_err(DispatcherError::Client)?;
    let dispatcher = Arc::new(send::Dispatcher::new(bus.clone(), pool, &client, &config.routes)?);
    if let Some(path) = config.routes_file.clone() {
        tokio::spawn(reload_on_hangup(dispatcher.clone(), path, shutdown.clone()));
    }
    let worker = WorkerConfig {
        stream: StreamKind::Dispatch,
        durable: "dispatcher",
        batch: config.batch,
        concurrency: config.concurrency,
        max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
    };
    tracing::info!(routes = config.routes.len(), "dispatcher starting");
    ready.set(true);
    tokio::spawn(track_readiness(dispatcher.clone(), ready.clone(), shutdown.clone()));
    let closing = dispatcher.clone();
    let result = run_worker(bus, worker, shutdown, move |deliveries| {
        let dispatcher = dispatcher.clone();
        async move { dispatcher.handle(deliveries).await }
    })
    .await;
    ready.set(false);
    closing.close().await;
    Ok(result?)
}

/// Re-reads the routes file on every SIGHUP until `shutdown`. A file that
/// does not check out is refused whole, with the reason logged, and the
/// routes in use stay.
async fn reload_on_hangup(
    dispatcher: Arc<send::Dispatcher>,
    path: PathBuf,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; the routes file is read at start only");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = hangups.recv() => if got.is_none() { return },
        }
        let result = load_routes_file(&path).and_then(|routes| {
            let n = routes.len();
            dispatcher.reload(&routes).map(|()| n)
        });
        match result {
            Ok(n) => {
                metrics::counter!("smsfleet_dispatch_route_reloads_total", "outcome" => "ok").increment(1);
                tracing::info!(path = %path.display(), routes = n, "routes reloaded");
            }
            Err(e) => {
                metrics::counter!("smsfleet_dispatch_route_reloads_total", "outcome" => "refused").increment(1);
                tracing::error!(path = %path.display(), error = %e, "routes file refused; keeping the routes in use");
            }
        }
    }
}

/// `/readyz` follows the routes: ready while every prefix has a route (or
/// a failover route) that is not down, so one route down behind a failover
/// does not make the dispatcher look broken.
async fn track_readiness(
    dispatcher: Arc<send::Dispatcher>,
    ready: smsfleet_runtime::ReadyFlag,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => ready.set(dispatcher.usable()),
        }
    }
}
