//! The admin HTTP surface every role serves on its own port: `/metrics` for Prometheus,
//! `/healthz` for liveness (the process answers) and `/readyz` for readiness (its
//! dependencies, e.g. NATS and Postgres, are usable), so the orchestrator only routes work to
//! roles that can do it.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use tokio_util::sync::CancellationToken;

/// Content type of the Prometheus text exposition format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The set of named readiness checks a role registers; `/readyz` is 200 only when all are ready.
///
/// Clones share the same set, so the role can hand one to the admin server and keep
/// registering checks from its components.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<(String, ReadyFlag)>>>,
}

impl Readiness {
    /// Registers a check named `name`, initially not ready: a role is unready until each
    /// component says otherwise, so traffic never arrives before its connections exist.
    pub fn register(&self, name: &str) -> ReadyFlag {
        let flag = ReadyFlag::default();
        self.lock().push((name.to_owned(), flag.clone()));
        flag
    }

    /// Names of the checks that are currently not ready, in registration order.
    fn not_ready(&self) -> Vec<String> {
        self.lock().iter().filter(|(_, flag)| !flag.get()).map(|(name, _)| name.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, ReadyFlag)>> {
        // The list is only ever pushed to, so a panic mid-push cannot leave it inconsistent.
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One readiness check's state; the component that owns the dependency flips it.
#[derive(Clone, Default)]
pub struct ReadyFlag {
    ready: Arc<AtomicBool>,
}

impl ReadyFlag {
    /// Marks the check ready or not, e.g. false when the NATS connection drops.
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    fn get(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// The admin router: `GET /metrics`, `GET /healthz`, `GET /readyz`.
///
/// Installs the Prometheus recorder if nobody has yet, so `/metrics` never serves a
/// recorder-less empty page by accident.
pub fn admin_router(readiness: Readiness) -> Router {
    let _ = crate::prom::prometheus_handle();
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

/// Serves [`admin_router`] on `listener` until `shutdown` is cancelled.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    crate::serve(listener, admin_router(readiness), crate::HttpLimits::default(), shutdown).await
}

async fn metrics() -> impl IntoResponse {
    let handle = crate::prom::prometheus_handle();
    // Drain histogram buffers so the scrape sees everything recorded up to now.
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], handle.render())
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, String) {
    let pending = readiness.not_ready();
    if pending.is_empty() {
        (StatusCode::OK, "ready".to_owned())
    } else {
        let mut body = String::from("not ready:\n");
        for name in pending {
            body.push_str(&name);
            body.push('\n');
        }
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}
