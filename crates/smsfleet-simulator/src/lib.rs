//! smsfleet-simulator: an upstream SMSC stand-in reached over HTTP.
//!
//! The dispatcher submits batches to `POST /submit`; after `dlr_latency` the simulator posts
//! delivery reports to each message's `dlr_url`, the way an aggregator would. It is the default
//! route of the local setup, the upstream of end-to-end tests and the benchmark's load target,
//! so it is built for throughput (sharded short critical sections, batched reports, one
//! keep-alive client) and its `/stats` counters only count what really happened: reports count
//! as delivered once a receiver acknowledged them. Submits are idempotent by `ref`, within the
//! bound of [`REF_CAPACITY`] refs (see `store.rs`). Rate limits delay answers instead of refusing them.

mod dlr;
mod http;
pub use smsfleet_sim_protocol as protocol;
mod ratelimit;
mod smpp;
mod store;

pub use smpp::SmscConfig;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use smsfleet_runtime::RoleContext;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use store::REF_CAPACITY;

use dlr::{PendingBatch, PendingReport, Pipeline};
use protocol::{ACCEPTED, REJECTED, SubmitMessage, SubmitResponse, SubmitResult};
use ratelimit::RateLimits;
use store::{Counters, Offer, RefStore, add, sub};

/// How long pending delivery reports may still be sent after `shutdown` resolves.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Behaviour of one simulated SMSC. Start from `Default` and override what a test needs.
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// Default callback URL for delivery reports when a submit carries none.
    pub dlr_url: Option<String>,
    /// Delay between accept and the report (default 50 ms).
    pub dlr_latency: Duration,
    /// Destinations (digits, '+' ignored) starting with one of these get a "failed" report.
    pub fail_prefixes: Vec<String>,
    /// Destinations rejected at submit time (per-message status "rejected").
    pub reject_prefixes: Vec<String>,
    /// Global accepted-messages-per-second limit; over it, responses are delayed, never dropped.
    pub max_mps: Option<u32>,
    /// The same, per TCP connection (keyed by the peer address).
    pub per_connection_mps: Option<u32>,
    /// Most reports in one POST to a receiver (default 500).
    pub dlr_batch_max: usize,
    /// How long a report waits for others to share its POST (default 10 ms).
    pub dlr_batch_linger: Duration,
    /// Also be a fake SMSC over SMPP (the local default route uses it).
    pub smpp: Option<SmppListener>,
}

/// The SMPP side's settings and its already bound listener (bound by the
/// caller, who needs the port for its route before the simulator runs).
#[derive(Clone, Debug)]
pub struct SmppListener {
    pub config: SmscConfig,
    listener: Arc<std::sync::Mutex<Option<std::net::TcpListener>>>,
}

impl SmppListener {
    pub fn new(config: SmscConfig, listener: std::net::TcpListener) -> Self {
        Self { config, listener: Arc::new(std::sync::Mutex::new(Some(listener))) }
    }

    fn take(&self) -> Option<std::net::TcpListener> {
        self.listener.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            dlr_url: None,
            dlr_latency: Duration::from_millis(50),
            fail_prefixes: Vec::new(),
            reject_prefixes: Vec::new(),
            max_mps: None,
            per_connection_mps: None,
            dlr_batch_max: 500,
            dlr_batch_linger: Duration::from_millis(10),
            smpp: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error(transparent)]
    Context(#[from] smsfleet_runtime::MissingResource),
    #[error("invalid simulator config: {0}")]
    Config(&'static str),
    #[error("cannot build the delivery-report HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("simulator server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The simulator as a role: serves on the context's listener until its
/// shutdown token is cancelled.
pub async fn run(mut ctx: RoleContext, config: SimulatorConfig) -> Result<(), SimulatorError> {
    let listener = ctx.take_listener()?;
    let smpp = match config.smpp.as_ref().and_then(|s| s.take().map(|l| (s.config.clone(), l))) {
        Some((smsc, std_listener)) => {
            std_listener.set_nonblocking(true).map_err(SimulatorError::Serve)?;
            Some((smsc, tokio::net::TcpListener::from_std(std_listener).map_err(SimulatorError::Serve)?))
        }
        None => None,
    };
    ctx.ready.set(true);
    let result = serve_with_smpp(config, listener, smpp, ctx.shutdown.clone().cancelled_owned()).await;
    ctx.ready.set(false);
    result
}

/// Serves until `shutdown` resolves, then drains: pending delivery reports are still sent
/// (bounded by [`DRAIN_TIMEOUT`]).
pub async fn serve(
    config: SimulatorConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SimulatorError> {
    serve_with_smpp(config, listener, None, shutdown).await
}

/// [`serve`], plus the fake SMSC over SMPP on `smpp`'s listener (same
/// counters, same `/stats`).
pub async fn serve_with_smpp(
    config: SimulatorConfig,
    listener: tokio::net::TcpListener,
    smpp: Option<(SmscConfig, tokio::net::TcpListener)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SimulatorError> {
    if config.max_mps == Some(0) || config.per_connection_mps == Some(0) {
        return Err(SimulatorError::Config("a messages-per-second limit must be > 0"));
    }
    if config.dlr_batch_max == 0 {
        return Err(SimulatorError::Config("dlr_batch_max must be > 0"));
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(SimulatorError::Client)?;

    let counters = Arc::new(Counters::default());
    let (deadline_tx, deadline_rx) = watch::channel(None);
    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    let pipeline = Arc::new(Pipeline {
        client,
        counters: counters.clone(),
        batch_max: config.dlr_batch_max,
        linger: config.dlr_batch_linger,
        deadline: deadline_rx,
    });
    let mut scheduler = tokio::spawn(dlr::schedule(reports_rx, pipeline));

    let stop = tokio_util::sync::CancellationToken::new();
    let smpp_task = smpp.map(|(smsc, l)| tokio::spawn(smpp::serve(smsc, l, counters.clone(), stop.clone())));
    let app = Arc::new(App::new(&config, counters.clone(), reports_tx));
    let local = listener.local_addr().ok();
    tracing::info!(addr = ?local, "simulator listening");
    let listener = listener.tap_io(|tcp| {
        // Small JSON replies must not wait for Nagle.
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(listener, http::router(app).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown({
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        })
        .await;
    stop.cancel();
    if let Some(task) = smpp_task
        && tokio::time::timeout(DRAIN_TIMEOUT, task).await.is_err()
    {
        tracing::warn!("SMPP sessions did not unbind in time");
    }

    // The router (and with it the last report sender) is gone now, so the scheduler ends
    // once it has handed out what is queued.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let _ = deadline_tx.send(Some(deadline));
    if tokio::time::timeout_at(deadline, &mut scheduler).await.is_err() {
        scheduler.abort();
        tracing::warn!(abandoned = dlr::pending_count(&counters), "drain timed out; abandoning delivery reports");
    }
    tracing::info!("simulator stopped");
    served.map_err(SimulatorError::Serve)
}

/// Verdict on one message before it touches shared state.
#[derive(Clone, Copy)]
enum Screen {
    Pass { fails: bool },
    Reject(&'static str),
}

/// Shared state of one running simulator.
pub(crate) struct App {
    refs: RefStore,
    counters: Arc<Counters>,
    limits: RateLimits,
    fail_prefixes: Vec<String>,
    reject_prefixes: Vec<String>,
    default_dlr_url: Option<Arc<str>>,
    dlr_latency: Duration,
    reports: mpsc::UnboundedSender<PendingBatch>,
}

impl App {
    fn new(config: &SimulatorConfig, counters: Arc<Counters>, reports: mpsc::UnboundedSender<PendingBatch>) -> Self {
        Self {
            refs: RefStore::new(),
            counters,
            limits: RateLimits::new(config.max_mps, config.per_connection_mps),
            fail_prefixes: normalize_prefixes(&config.fail_prefixes),
            reject_prefixes: normalize_prefixes(&config.reject_prefixes),
            default_dlr_url: config.dlr_url.as_deref().map(Arc::from),
            dlr_latency: config.dlr_latency,
            reports,
        }
    }

    fn screen(&self, messages: &[SubmitMessage<'_>]) -> Vec<Screen> {
        messages
            .iter()
            .map(|msg| {
                let digits = msg.to.strip_prefix('+').unwrap_or(&msg.to);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Screen::Reject("invalid destination");
                }
                if matches_any(digits, &self.reject_prefixes) {
                    return Screen::Reject("destination rejected by upstream");
                }
                Screen::Pass { fails: matches_any(digits, &self.fail_prefixes) }
            })
            .collect()
    }

    /// How long to hold the answer so accepted messages stay under the configured rates.
    /// Rejected messages cost the upstream nothing and are not counted.
    fn pace(&self, peer: SocketAddr, screened: &[Screen]) -> Duration {
        if self.limits.is_unlimited() {
            return Duration::ZERO;
        }
        let passing = screened.iter().filter(|s| matches!(s, Screen::Pass { .. })).count();
        if passing == 0 {
            return Duration::ZERO;
        }
        self.limits.reserve(peer, passing)
    }

    /// Accepts the batch in order and queues its delivery reports.
    fn accept(&self, messages: Vec<SubmitMessage<'static>>, screened: Vec<Screen>) -> SubmitResponse<'static> {
        let due = Instant::now() + self.dlr_latency;
        let mut results = Vec::with_capacity(messages.len());
        let mut reports = Vec::new();
        let (mut accepted, mut rejected, mut duplicates) = (0, 0, 0);
        for (msg, screen) in messages.into_iter().zip(screened) {
            let reject = match screen {
                Screen::Reject(reason) => Some(reason),
                Screen::Pass { .. } => None,
            };
            match self.refs.offer(&msg, reject) {
                Offer::New { id } => {
                    accepted += 1;
                    let url = match &msg.dlr_url {
                        Some(url) => Some(Arc::from(url.as_ref())),
                        None => self.default_dlr_url.clone(),
                    };
                    if let Some(url) = url {
                        reports.push((
                            url,
                            PendingReport {
                                id: id.clone(),
                                reference: msg.reference.to_string(),
                                failed: matches!(screen, Screen::Pass { fails: true }),
                            },
                        ));
                    }
                    results.push(SubmitResult {
                        reference: msg.reference,
                        id: Some(id),
                        status: ACCEPTED.into(),
                        error: None,
                    });
                }
                Offer::Duplicate { id } => {
                    duplicates += 1;
                    results.push(SubmitResult {
                        reference: msg.reference,
                        id: Some(id),
                        status: ACCEPTED.into(),
                        error: None,
                    });
                }
                Offer::Rejected { reason } => {
                    rejected += 1;
                    results.push(SubmitResult {
                        reference: msg.reference,
                        id: None,
                        status: REJECTED.into(),
                        error: Some(reason.into()),
                    });
                }
            }
        }
        let c = &self.counters;
        add(&c.submits, results.len());
        add(&c.accepted, accepted);
        add(&c.rejected, rejected);
        add(&c.duplicate_submits, duplicates);
        metrics::counter!("smsfleet_simulator_accepted_total").increment(accepted as u64);
        if !reports.is_empty() {
            let n = reports.len();
            add(&c.pending_reports, n);
            if self.reports.send(PendingBatch { due, items: reports }).is_err() {
                // Only possible while shutting down after the scheduler was aborted.
                sub(&c.pending_reports, n);
            }
        }
        SubmitResponse { results }
    }
}

/// Prefixes are compared against the destination's digits, so drop a leading '+' here too.
fn normalize_prefixes(prefixes: &[String]) -> Vec<String> {
    prefixes.iter().map(|p| p.trim().trim_start_matches('+').to_owned()).filter(|p| !p.is_empty()).collect()
}

fn matches_any(digits: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| digits.starts_with(p.as_str()))
}
