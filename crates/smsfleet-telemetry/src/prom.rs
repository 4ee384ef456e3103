//! The process-wide Prometheus recorder behind every `metrics::counter!`/`histogram!` call.
//! It has no listener of its own: the admin router renders it on `/metrics`, so each role
//! exposes one port for metrics, health and readiness.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often histogram buffers are drained into their summaries, so memory stays bounded
/// even when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder once and returns the handle that renders it.
///
/// Later calls return the same handle. If some other recorder already owns the global slot
/// (only plausible in tests), the handle still works but renders nothing; that is logged
/// rather than panicking, because metrics are not worth crashing a role for.
pub fn prometheus_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if let Err(error) = metrics::set_global_recorder(recorder) {
                tracing::warn!(%error, "a global metrics recorder is already installed; /metrics will be empty");
            }
            spawn_upkeep(handle.clone());
            handle
        })
        .clone()
}

/// A plain thread rather than a tokio task so the handle works before (or without) a runtime.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        }
    });
    if let Err(error) = spawned {
        // /metrics also runs upkeep before each render, so this only costs memory between scrapes.
        tracing::warn!(%error, "could not start the metrics upkeep thread");
    }
}
