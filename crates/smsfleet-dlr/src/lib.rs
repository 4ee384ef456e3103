//! smsfleet-dlr: delivery reports from upstream SMSCs.
//!
//! Two halves joined by the Dlr stream. The HTTP receiver stores each
//! callback as a `DlrBatch` and answers 200 only after JetStream has it, so
//! an upstream retries anything we could not store. The matcher worker maps
//! (route, upstream id of any part) to `smslog_id`s through the dispatcher's
//! `dispatch_part` and publishes `StatusBatch`es for the projection. A
//! report can overtake the dispatcher's record of the upstream id; such a
//! batch is retried with backoff until it matches or `max_match_attempts`
//! is reached.
//!
//! The same HTTP server takes upstreams' MO callbacks (`/mo/{route}`) and
//! stores them on the INCOMING stream for the query role to route.

mod auth;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod gateways;
mod http;
mod limits;
mod matcher;
mod mo;

use smsfleet_bus::{BusError, WorkerConfig, run_worker};
use smsfleet_contract::StreamKind;
use smsfleet_runtime::RoleContext;

pub use auth::{CallbackAuth, Refusal, RouteCallbacks, guard};
pub use gateways::JASMIN_ACK;
pub use http::router;

#[derive(Debug, thiserror::Error)]
pub enum DlrError {
    #[error(transparent)]
    Context(#[from] smsfleet_runtime::MissingResource),
    #[error("invalid dlr config: {0}")]
    Config(String),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("dlr HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct DlrConfig {
    /// DlrBatches handed to one matcher call.
    pub batch: usize,
    /// Matcher calls running at once.
    pub concurrency: usize,
    /// Deliveries of a batch with unmatched reports before they are given
    /// up; with the bus backoff (0.5 s doubling, cap 60 s) 12 tries cover
    /// about five minutes of dispatcher lag. Must stay below the consumer's
    /// `max_deliver` (40) so the last try is ours, not the dead letter's.
    pub max_match_attempts: i64,
    /// Timeouts and connection limits of the callback port.
    pub http: smsfleet_telemetry::HttpLimits,
    /// Which routes' callbacks are taken, with which secret, from where.
    pub callbacks: CallbackAuth,
}

impl Default for DlrConfig {
    fn default() -> Self {
        Self {
            batch: 32,
            concurrency: 4,
            max_match_attempts: 12,
            http: smsfleet_telemetry::HttpLimits::default(),
            callbacks: CallbackAuth::default(),
        }
    }
}

impl DlrConfig {
    pub fn validate(&self) -> Result<(), DlrError> {
        if self.batch == 0 || self.concurrency == 0 || self.max_match_attempts < 1 {
            return Err(DlrError::Config("batch, concurrency and max_match_attempts must be > 0".to_owned()));
        }
        Ok(())
    }
}

/// Serves the callback endpoint on `listener` and runs the matcher until
/// `shutdown`; both stop gracefully (in-flight callbacks are answered,
/// in-flight batches acked).
pub async fn run(mut ctx: RoleContext, config: DlrConfig) -> Result<(), DlrError> {
    let (bus, pool, listener) = (ctx.bus()?, ctx.pool()?, ctx.take_listener()?);
    let RoleContext { ready, shutdown, .. } = ctx;
    config.validate()?;
    let addr = listener.local_addr().ok();
    if config.callbacks.is_open() {
        tracing::warn!("no routes given: callbacks for any route are taken unauthenticated (set SMSFLEET_ROUTES)");
    }
    let app = guard(router(bus.clone()), config.callbacks.clone());
    let server = smsfleet_telemetry::serve(listener, app, config.http.clone(), shutdown.clone());
    let matcher = matcher::Matcher::new(bus.clone(), pool, config.max_match_attempts);
    let worker = WorkerConfig {
        stream: StreamKind::Dlr,
        durable: "dlr",
        batch: config.batch,
        concurrency: config.concurrency,
        max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
    };
    let worker_shutdown = shutdown.clone();
    let worker = run_worker(bus, worker, worker_shutdown, move |deliveries| {
        let matcher = matcher.clone();
        async move { matcher.handle(deliveries).await }
    });
    tracing::info!(?addr, "dlr receiver listening");
    ready.set(true);
    // If either half stops on its own, stop the other too.
    let (served, worked) = tokio::join!(
        async {
            let r = server.await;
            shutdown.cancel();
            r
        },
        async {
            let r = worker.await;
            shutdown.cancel();
            r
        }
    );
    ready.set(false);
    served.map_err(DlrError::Serve)?;
    Ok(worked?)
}
