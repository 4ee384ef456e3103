//! smsfleet-dispatcher: sends charged messages to upstream SMSC routes.
//!
//! It pulls [`DispatchChunk`](smsfleet_contract::DispatchChunk)s from the
//! Dispatch stream, picks a route per destination (longest prefix), claims
//! each message in Postgres's `dispatch_log` *before* the upstream call,
//! submits in batches through the route's [`Upstream`], records the
//! upstream ids (one per part) the DLR role later matches reports against,
//! and publishes one `StatusBatch` per chunk for the projection.
//!
//! The claim is what keeps a message from going out twice after a crash or
//! a redelivery: a message already `Sent` is never resubmitted, and one whose
//! earlier attempt has an unknown outcome is resent only to upstreams that
//! dedupe by our reference (the `smslog_id`).

mod pacing;
mod route;
mod send;
mod settle;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use smsfleet_bus::{BusError, WorkerConfig, run_worker};
use smsfleet_contract::StreamKind;
use smsfleet_runtime::RoleContext;

pub use route::{CallbackSettings, Protocol, Route, RouteLimits, SimSettings, choose_route, parse_routes};
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
        Self { routes: Vec::new(), batch: 16, concurrency: 8, request_timeout: Duration::from_secs(10) }
    }
}

impl DispatcherConfig {
    pub fn validate(&self) -> Result<(), DispatcherError> {
        if self.routes.is_empty() {
            return Err(DispatcherError::Config("at least one route is required".to_owned()));
        }
        for (i, r) in self.routes.iter().enumerate() {
            if self.routes[..i].iter().any(|o| o.name == r.name) {
                return Err(DispatcherError::Config(format!("route name {:?} is used twice", r.name)));
            }
            if r.limits.batch == 0 || r.limits.max_in_flight == 0 || r.limits.mps == Some(0) {
                return Err(DispatcherError::Config(format!(
                    "route {:?}: batch, inflight and mps must be > 0",
                    r.name
                )));
            }
        }
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
    let dispatcher = Arc::new(send::Dispatcher::new(bus.clone(), pool, &client, &config.routes));
    let worker = WorkerConfig {
        stream: StreamKind::Dispatch,
        durable: "dispatcher",
        batch: config.batch,
        concurrency: config.concurrency,
        max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
    };
    tracing::info!(routes = config.routes.len(), "dispatcher starting");
    ready.set(true);
    let result = run_worker(bus, worker, shutdown, move |deliveries| {
        let dispatcher = dispatcher.clone();
        async move { dispatcher.handle(deliveries).await }
    })
    .await;
    ready.set(false);
    Ok(result?)
}
