//! Integration tests: the admin server on port 0 spoken to over real HTTP/1.1, and trace
//! context round-tripping through a header map the way it travels in NATS headers.
#![expect(clippy::unwrap_used, reason = "tests should fail loudly at the failing step")]

use std::collections::HashMap;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use smsfleet_telemetry::{
    Readiness, current_traceparent, inject_current, prometheus_handle, serve_admin, set_parent_from,
    set_parent_from_traceparent,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

struct Admin {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start_admin(readiness: Readiness) -> Admin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_admin(listener, readiness, shutdown.clone()));
    Admin { addr, shutdown, task }
}

/// Minimal HTTP/1.1 GET; returns (status, lower-cased head, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn healthz_answers_ok() {
    let admin = start_admin(Readiness::default()).await;
    let (status, _, body) = get(admin.addr, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body, "ok");
    admin.shutdown.cancel();
    admin.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn readyz_flips_when_all_flags_are_set() {
    let readiness = Readiness::default();
    let nats = readiness.register("nats");
    let db = readiness.register("postgres");
    let admin = start_admin(readiness).await;

    let (status, _, body) = get(admin.addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("nats") && body.contains("postgres"), "{body}");

    nats.set(true);
    let (status, _, body) = get(admin.addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(!body.contains("nats") && body.contains("postgres"), "{body}");

    db.set(true);
    let (status, _, body) = get(admin.addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready"));

    db.set(false);
    let (status, _, _) = get(admin.addr, "/readyz").await;
    assert_eq!(status, 503);

    admin.shutdown.cancel();
    admin.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn readyz_with_no_checks_is_ready() {
    let admin = start_admin(Readiness::default()).await;
    let (status, _, _) = get(admin.addr, "/readyz").await;
    assert_eq!(status, 200);
    admin.shutdown.cancel();
}

#[tokio::test]
async fn metrics_render_counters() {
    let first = prometheus_handle();
    metrics::counter!("test_counter_total").increment(1);
    metrics::counter!("test_counter_total").increment(2);
    // Same recorder on every call.
    assert!(prometheus_handle().render().contains("test_counter_total 3"));
    assert!(first.render().contains("test_counter_total 3"));

    let admin = start_admin(Readiness::default()).await;
    let (status, head, body) = get(admin.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
    assert!(body.contains("test_counter_total 3"), "{body}");
    admin.shutdown.cancel();
    admin.task.await.unwrap().unwrap();
}

#[test]
fn trace_context_round_trips_through_a_header_map() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    // No exporter: spans are created and sampled but go nowhere.
    let provider = SdkTracerProvider::builder().build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));

    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(current_traceparent(), None, "no span, no context");

        let publisher = tracing::info_span!("publish");
        let (carrier, sent_trace_id) = publisher.in_scope(|| {
            let mut carrier = HashMap::new();
            inject_current(&mut carrier);
            let trace_id = tracing::Span::current().context().span().span_context().trace_id();
            (carrier, trace_id)
        });
        let traceparent = carrier.get("traceparent").unwrap().clone();
        assert!(traceparent.starts_with("00-"), "{traceparent}");
        assert!(traceparent.contains(&sent_trace_id.to_string()));
        assert_eq!(publisher.in_scope(current_traceparent).as_deref(), Some(traceparent.as_str()));

        let consumer = tracing::info_span!("consume");
        set_parent_from(&consumer, &carrier);
        let got = consumer.context().span().span_context().trace_id();
        assert_eq!(got, sent_trace_id);

        let other = tracing::info_span!("consume_bare");
        set_parent_from_traceparent(&other, &traceparent);
        assert_eq!(other.context().span().span_context().trace_id(), sent_trace_id);

        // Garbage leaves the span as a fresh root instead of failing.
        let orphan = tracing::info_span!("orphan");
        set_parent_from_traceparent(&orphan, "not-a-traceparent");
        assert_ne!(orphan.context().span().span_context().trace_id(), sent_trace_id);
    });
}

#[test]
fn crypto_provider_install_is_idempotent() {
    smsfleet_telemetry::install_crypto_provider();
    smsfleet_telemetry::install_crypto_provider();
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
}

#[tokio::test]
async fn init_twice_is_an_error_not_a_panic() {
    // Without an OTLP endpoint no exporter is built, so this needs no collector.
    let first = smsfleet_telemetry::init("telemetry-test");
    let second = smsfleet_telemetry::init("telemetry-test");
    assert!(first.is_ok() || second.is_err());
    assert!(second.is_err());
    if let Ok(guard) = first {
        guard.shutdown();
    }
}

/// Set for the child process of the two-signal tests: the folder it reports through.
const SIGNAL_CHILD_DIR: &str = "SMSFLEET_SIGNAL_CHILD_DIR";

/// A role whose graceful stop takes a minute (a backlog); run as a child of the tests below.
#[tokio::test]
async fn signal_child_drains_slowly() {
    let Some(dir) = std::env::var_os(SIGNAL_CHILD_DIR) else { return };
    let dir = std::path::PathBuf::from(dir);
    let shutdown = smsfleet_telemetry::shutdown_on_signal();
    std::fs::write(dir.join("ready"), "").unwrap();
    shutdown.cancelled().await;
    std::fs::write(dir.join("draining"), "").unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
}

/// Issue 12.3: the first signal starts the graceful stop, the second exits at once.
fn second_signal_exits_at_once(signal: &str, status: i32) {
    let dir = scratch_dir();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "signal_child_drains_slowly", "--nocapture"])
        .env(SIGNAL_CHILD_DIR, &dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let send = |what: &str| {
        let pid = child.id().to_string();
        assert!(std::process::Command::new("kill").args([what, &pid]).status().unwrap().success());
    };
    wait_for_file(&dir.join("ready"));
    send(signal);
    wait_for_file(&dir.join("draining"));
    let second = std::time::Instant::now();
    send(signal);
    let deadline = second + std::time::Duration::from_secs(5);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the second {signal} did not stop the process");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(status));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    second_signal_exits_at_once("-INT", 130);
}

#[test]
fn a_second_sigterm_exits_at_once() {
    second_signal_exits_at_once("-TERM", 143);
}

/// A fresh folder for one child (tempfile is not a dependency of this crate).
fn scratch_dir() -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("smsfleet-signal-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wait_for_file(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
