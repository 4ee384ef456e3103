//! The ledger role: the only writer of balances. It consumes submissions
//! from the Submit stream, charges each one whole or rejects it in one
//! Postgres transaction per batch, then hands charged work on (Dispatch,
//! or Schedule for a future send), reports rejections on Status, and
//! publishes new balances and the rate table to the state feed the ingress
//! caches from.
//!
//! A batch the stream received after its `deadline_ms` was answered with
//! an error by the ingress: it is rejected (a Failed status, no charge, no
//! send) whatever the balance.
//!
//! Idempotency: every submission has a unique ledger ref
//! (`submit:<queue>`), so a redelivered batch charges nothing again, and
//! every publish carries a deterministic message id, so re-publishing after
//! a redelivery is a no-op within the stream's duplicate window.

mod credit;
mod handler;
pub mod plan;
mod rates;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use smsfleet_bus::{BusError, WorkerConfig, run_worker};
use smsfleet_contract::{CreditChangeRequest, StreamKind, services};
use smsfleet_domain::RateTable;
use smsfleet_runtime::RoleContext;
use smsfleet_store::StoreError;

pub use credit::adjust_credit;
pub use rates::set_rate;

#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Destinations per dispatch chunk: small enough that dispatcher
    /// replicas share a campaign, large enough to amortise publishes.
    pub chunk_size: usize,
    /// Most Submit messages charged in one transaction.
    pub batch: usize,
    /// Batches in flight at once on this replica.
    pub concurrency: usize,
    /// How often the rate table is re-read to notice operator changes.
    pub rates_refresh: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self { chunk_size: 100, batch: 64, concurrency: 2, rates_refresh: Duration::from_secs(5) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Context(#[from] smsfleet_runtime::MissingResource),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("account {0} has no balance")]
    UnknownAccount(i64),
    #[error("a credit adjustment must not be zero")]
    ZeroAmount,
    #[error("{0}")]
    InvalidRate(String),
}

/// Shared by the handler and the rates refresher. A std lock is enough:
/// it is only held to clone or replace the table, never across an await.
pub(crate) type SharedRates = Arc<RwLock<RateTable>>;

/// Runs the ledger until `shutdown` is cancelled and in-flight batches are done.
pub async fn run(ctx: RoleContext, config: LedgerConfig) -> Result<(), LedgerError> {
    let (bus, pool) = (ctx.bus()?, ctx.pool()?);
    let RoleContext { ready, shutdown, .. } = ctx;
    // Every ingress must see rates and balances before it can price a send,
    // so both are published before we claim readiness.
    let rates: SharedRates = Arc::default();
    let revision = rates::refresh(&bus, &pool, &rates, None).await?;
    credit::publish_all_balances(&bus, &pool).await?;

    let stop_refresh = shutdown.child_token();
    let refresher = tokio::spawn(rates::refresh_loop(
        bus.clone(),
        pool.clone(),
        rates.clone(),
        revision,
        config.rates_refresh,
        stop_refresh.clone(),
    ));

    // Admin credit changes share the balance row locks with charging, so
    // they are answered here, by the only writer of balances.
    let credit_service = {
        let (b, p) = (bus.clone(), pool.clone());
        let handler = move |req: CreditChangeRequest| {
            let (b, p) = (b.clone(), p.clone());
            async move { credit::change_reply(&p, &b, &req).await }
        };
        tokio::spawn(smsfleet_bus::serve_requests(
            bus.clone(),
            services::LEDGER_CREDIT,
            shutdown.child_token(),
            handler,
        ))
    };

    let ctx = Arc::new(handler::Ctx { bus: bus.clone(), pool, rates, chunk_size: config.chunk_size.max(1) });
    let worker = WorkerConfig {
        stream: StreamKind::Submit,
        durable: "ledger",
        batch: config.batch.max(1),
        concurrency: config.concurrency.max(1),
        max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
    };
    ready.set(true);
    let result = run_worker(bus, worker, shutdown, move |deliveries| {
        let ctx = ctx.clone();
        async move { ctx.handle(deliveries).await }
    })
    .await;
    ready.set(false);
    stop_refresh.cancel();
    let _ = refresher.await;
    credit_service.abort();
    result.map_err(LedgerError::from)
}
