//! smsfleet-query: the read side of the gateway.
//!
//! It folds the submit and status streams into the Postgres projection of
//! outgoing messages (one statement per pulled batch, so the projection keeps
//! up with the ingress under load) and answers the ingress's `ds` (delivery
//! status), `cr` (credit), phonebook (`get_contact`, `get_contact_group`)
//! and `query` requests over NATS request/reply. It also routes incoming
//! messages (MO, inject, `@user`) into their tables and answers `in`, `ix`
//! and `sx`. Replicas share
//! the durable consumers and the service queue group, so the role scales out
//! by running more of it.

mod barrier;
mod credit;
mod ds;
mod incoming;
mod keywords;
mod last_ids;
mod phonebook;
mod projection;

use std::future::Future;
use std::time::Duration;

use smsfleet_bus::{Bus, BusError, WorkerConfig};
use smsfleet_contract::{BusMessage, IncomingMessage, Service, StatusBatch, StreamKind, SubmitBatch, services};
use smsfleet_runtime::RoleContext;
use smsfleet_store::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use credit::credit_reply;
pub use ds::{ds_filter, ds_reply};
pub use incoming::{Routed, SANDBOX_UID, incoming_filter, incoming_reply, route};
pub use keywords::{KeywordError, add_keyword, list_keywords, remove_keyword};
pub use last_ids::last_ids_reply;
pub use phonebook::{phonebook_limit, phonebook_reply};
pub use projection::{coalesce_status, submit_rows};

/// Durable consumer name on the submit, status and incoming streams.
const DURABLE: &str = "projection";
/// Payload bytes per projection batch.
const QUERY_BATCH_BYTES: usize = 512 * 1024;

#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Most stream messages folded into one database statement.
    pub batch: usize,
    /// Batches written at the same time per stream.
    pub concurrency: usize,
    /// Cap on `c`: playSMS has none, but one request must not be able to
    /// pull the whole table through the ingress.
    pub max_rows: i64,
    /// Longest a `ds`, `in`, `ix` or `sx` waits for the projection to apply
    /// what was accepted before it arrived (see `barrier`).
    pub read_barrier: Duration,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self { batch: 256, concurrency: 2, max_rows: 10_000, read_barrier: Duration::from_secs(2) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Context(#[from] smsfleet_runtime::MissingResource),
    #[error(transparent)]
    Loop(#[from] smsfleet_bus::LoopFailure),
}

/// Runs the projection and incoming workers and the request/reply services until
/// `shutdown` is cancelled. If one loop fails, the others are stopped and
/// the error is returned, so a half-working replica never stays up.
pub async fn run(ctx: RoleContext, config: QueryConfig) -> Result<(), QueryError> {
    let (bus, pool) = (ctx.bus()?, ctx.pool()?);
    let RoleContext { ready, shutdown, .. } = ctx;
    // A child token lets a failing loop stop its siblings without
    // cancelling the caller's token.
    let stop = shutdown.child_token();
    let mut tasks: JoinSet<(&'static str, Result<(), BusError>)> = JoinSet::new();

    let worker = |stream| WorkerConfig {
        stream,
        durable: DURABLE,
        batch: config.batch,
        concurrency: config.concurrency,
        // Every recipient becomes a row carrying the text: 512 KiB of
        // submissions is already ~12,000 rows per statement, and keeps the
        // role's memory (batches, and the database connections' buffers,
        // which keep the size of the largest statement) flat through a
        // million-recipient campaign.
        max_batch_bytes: QUERY_BATCH_BYTES,
    };

    let (b, p, s, w) = (bus.clone(), pool.clone(), stop.clone(), worker(StreamKind::Submit));
    tasks.spawn(async move {
        let handler = move |batch| projection::handle_submit(p.clone(), batch);
        ("submit projection", smsfleet_bus::run_worker::<SubmitBatch, _, _>(b, w, s, handler).await)
    });

    let (b, p, s, w) = (bus.clone(), pool.clone(), stop.clone(), worker(StreamKind::Status));
    tasks.spawn(async move {
        let handler = move |batch| projection::handle_status(p.clone(), batch);
        ("status projection", smsfleet_bus::run_worker::<StatusBatch, _, _>(b, w, s, handler).await)
    });

    let max_rows = config.max_rows;
    let reads = barrier::ReadBarrier::new(bus.clone(), config.read_barrier);
    let ds_reads = reads.clone();
    tasks.spawn(serve_with_pool("ds service", &bus, services::DS, &pool, &stop, move |p, req| {
        let reads = ds_reads.clone();
        async move {
            reads.wait("ds", barrier::OUTGOING).await;
            ds_reply(&p, &req, max_rows).await
        }
    }));
    tasks.spawn(serve_with_pool("cr service", &bus, services::CREDIT, &pool, &stop, |p, req| async move {
        credit_reply(&p, &req).await
    }));
    tasks.spawn(serve_with_pool("last ids service", &bus, services::LAST_IDS, &pool, &stop, |p, req| async move {
        last_ids_reply(&p, &req).await
    }));
    tasks.spawn(serve_with_pool(
        "phonebook service",
        &bus,
        services::PHONEBOOK,
        &pool,
        &stop,
        move |p, req| async move { phonebook_reply(&p, &req, max_rows).await },
    ));
    tasks.spawn(serve_with_pool("incoming service", &bus, services::INCOMING, &pool, &stop, move |p, req| {
        let reads = reads.clone();
        async move {
            reads.wait("incoming", barrier::INCOMING).await;
            incoming_reply(&p, &req, max_rows).await
        }
    }));

    // One batch at a time, so `in`/`ix`/`sx` ids follow arrival order as
    // playSMS's do; incoming traffic is a trickle next to outgoing.
    let incoming_worker = WorkerConfig { concurrency: 1, ..worker(StreamKind::Incoming) };
    let (b, p, s, w) = (bus.clone(), pool.clone(), stop.clone(), incoming_worker);
    tasks.spawn(async move {
        let bus = b.clone();
        let handler = move |batch| incoming::handle_incoming(p.clone(), bus.clone(), batch);
        ("incoming routing", smsfleet_bus::run_worker::<IncomingMessage, _, _>(b, w, s, handler).await)
    });

    raise_id_counter(&bus, &pool, &stop).await;

    // The projection reads every fan-out stream, so it is where they are
    // trimmed (any number of replicas may do it).
    let (b, s) = (bus.clone(), stop.clone());
    tasks.spawn(async move {
        smsfleet_bus::run_trimmer(b, s).await;
        ("stream trimmer", Ok(()))
    });

    ready.set(true);
    tracing::info!(batch = config.batch, concurrency = config.concurrency, "query role running");

    let outcome = smsfleet_bus::supervise(tasks, &stop, &ready).await.map_err(QueryError::from);
    tracing::info!("query role stopped");
    outcome
}

/// Keeps the `smslog_id` counter above every id the projection holds, in
/// case the counter was lost with the NATS data while Postgres kept the
/// rows: a reissued id would overwrite another message's row. Snowflake
/// ids from before issue 12.4 lie above 2^53 and cannot collide. Retried
/// until it succeeds or the role stops.
async fn raise_id_counter(bus: &Bus, pool: &PgPool, stop: &CancellationToken) {
    while !stop.is_cancelled() {
        let raised = match smsfleet_store::projection::largest_smslog_id_up_to(pool, smsfleet_domain::ids::MAX_ID).await
        {
            Ok(largest) => smsfleet_bus::raise_id_counter(bus, largest).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match raised {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "cannot check the smslog_id counter yet; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Serves one of the query services, each request answered from the
/// projection by `reply` with its own handle on the pool.
fn serve_with_pool<Req, Rep, F, Fut>(
    name: &'static str,
    bus: &Bus,
    service: Service<Req, Rep>,
    pool: &PgPool,
    stop: &CancellationToken,
    reply: F,
) -> impl Future<Output = (&'static str, Result<(), BusError>)> + Send + 'static
where
    Req: BusMessage + Send + 'static,
    Rep: BusMessage + Send + 'static,
    F: Fn(PgPool, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Rep> + Send + 'static,
{
    let pool = pool.clone();
    let handler = move |req: Req| reply(pool.clone(), req);
    let served = smsfleet_bus::serve_requests(bus.clone(), service, stop.clone(), handler);
    async move { (name, served.await) }
}
