//! Log and trace setup: one subscriber per process with an env filter, a human or JSON fmt
//! layer, and (when an OTLP endpoint is configured) an OpenTelemetry layer exporting spans.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::filter_fn, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

/// Filter used when `RUST_LOG` is unset: our own logs at info, chatty dependencies quieter.
const DEFAULT_FILTER: &str = "info,sqlx=warn,async_nats=warn";

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` is set but does not parse; failing loudly beats silently logging nothing.
    #[error("invalid RUST_LOG filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// The OTLP exporter could not be built (bad endpoint, headers, timeout...).
    #[error("building the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A global subscriber is already set, e.g. `init` was called twice (tests).
    #[error("installing the global tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the tracer provider alive and flushes it when the role stops.
///
/// Spans sit in the batch processor's buffer for up to a few seconds; without an explicit
/// shutdown the last spans of a run (usually the interesting ones) are lost.
#[must_use = "dropping the guard shuts down trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes buffered spans and shuts the provider down. Same as dropping the guard, but
    /// reads better at the end of `main`.
    ///
    /// Blocks while the exporter thread drains; on a current-thread runtime call it from
    /// `spawn_blocking` (the SDK documents a possible deadlock otherwise).
    pub fn shutdown(mut self) {
        self.shutdown_inner();
    }

    fn shutdown_inner(&mut self) {
        if let Some(provider) = self.provider.take() {
            // SdkTracerProvider::shutdown exports everything still buffered before stopping.
            if let Err(error) = provider.shutdown() {
                // stderr, not tracing: the exporter we would report through is the thing failing.
                eprintln!("smsfleet-telemetry: trace provider shutdown failed: {error}");
            }
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown_inner();
    }
}

/// Sets up logging and tracing for the process and installs the Prometheus recorder.
///
/// - Filter: `RUST_LOG`, default `info,sqlx=warn,async_nats=warn`.
/// - Format: JSON when `SMSFLEET_LOG_FORMAT=json` (for log shippers), compact text otherwise.
/// - Traces: exported over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, so local
///   runs and tests need no collector. Service name is `service` unless `OTEL_SERVICE_NAME`
///   overrides it. The standard `OTEL_EXPORTER_OTLP_*` variables (headers, timeout, per-signal
///   endpoint) are honoured by the exporter itself.
/// - Propagator: W3C TraceContext, the format carried in NATS headers between roles.
///
/// Call once per process; a second call returns [`TelemetryError::Subscriber`], which tests can
/// ignore.
pub fn init(service: &str) -> Result<TelemetryGuard, TelemetryError> {
    // RUST_LOG filters what is logged; it must not decide what is traced,
    // or an operator quietening logs to `warn` would lose every span. So
    // each layer gets its own filter.
    let filter_spec = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value,
        _ => DEFAULT_FILTER.to_owned(),
    };
    EnvFilter::try_new(&filter_spec)?;

    let json = std::env::var("SMSFLEET_LOG_FORMAT").is_ok_and(|v| v.trim().eq_ignore_ascii_case("json"));
    // Two optional layers instead of a boxed one keeps the subscriber type concrete; exactly
    // one of them is Some.
    let json_layer = json.then(|| tracing_subscriber::fmt::layer().json().with_filter(EnvFilter::new(&filter_spec)));
    let text_layer =
        (!json).then(|| tracing_subscriber::fmt::layer().compact().with_filter(EnvFilter::new(&filter_spec)));

    let provider = otlp_endpoint_configured().then(|| build_provider(&service_name(service))).transpose()?;
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service_name(service)))
            .with_filter(filter_fn(|meta| *meta.level() <= tracing::Level::INFO && !is_export_plumbing(meta.target())))
    });

    let installed = tracing_subscriber::registry().with(otel_layer).with(json_layer).with(text_layer).try_init();
    if let Err(error) = installed {
        if let Some(provider) = provider {
            let _ = provider.shutdown();
        }
        return Err(error.into());
    }

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    if let Some(provider) = &provider {
        // Libraries that use the OpenTelemetry API directly get the same pipeline.
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    let _ = crate::prom::prometheus_handle();

    Ok(TelemetryGuard { provider })
}

/// Targets whose events come from exporting spans itself. Turning them into spans would feed
/// the exporter its own traffic (a loop under `RUST_LOG=debug`), so the OTel layer skips them;
/// they still reach the fmt layer.
fn is_export_plumbing(target: &str) -> bool {
    ["opentelemetry", "hyper", "h2", "reqwest", "tower"].iter().any(|prefix| target.starts_with(prefix))
}

fn otlp_endpoint_configured() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()))
}

fn service_name(service: &str) -> String {
    match std::env::var("OTEL_SERVICE_NAME") {
        Ok(name) if !name.trim().is_empty() => name,
        _ => service.to_owned(),
    }
}

fn build_provider(service: &str) -> Result<SdkTracerProvider, TelemetryError> {
    // The endpoint comes from OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces).
    // The blocking reqwest client is used because the SDK's default batch processor exports
    // from its own thread outside tokio; an async client there panics with "no reactor".
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service.to_owned()).build())
        .build())
}
