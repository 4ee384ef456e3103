//! The ceilings every scenario is compared with: raw JetStream publishes
//! with acks, and the ingress's HTTP stack answering a fixed body.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use smsfleet_loadgen::{Outcome, Pace, Plan, Worker, connect_many, run};

use crate::fleet::Infra;
use crate::procs::{self};

use super::{SUBMISSION_BYTES, ScenarioResult, Sizes, ensure_no_failures, pv_ok, single_pv};

struct JetStreamWorker {
    js: async_nats::jetstream::Context,
    subject: String,
    payload: Bytes,
}

impl Worker for JetStreamWorker {
    async fn call(&mut self, index: u64) -> Outcome {
        let msg = async_nats::jetstream::message::PublishMessage::build()
            .payload(self.payload.clone())
            .message_id(format!("c{index}"));
        match self.js.send_publish(self.subject.clone(), msg).await {
            Ok(ack) => match ack.await {
                Ok(_) => Outcome::Ok,
                Err(_) => Outcome::Failed,
            },
            Err(_) => Outcome::Failed,
        }
    }
}

/// Raw JetStream publishes with acks: a file-stored stream like the
/// submit stream, one message (with a Nats-Msg-Id) per request, the same
/// concurrency as ingress-pv, on one connection as the ingress has.
pub(super) async fn ceiling_jetstream(
    infra: &mut Infra,
    sizes: &Sizes,
    result: &mut ScenarioResult,
) -> anyhow::Result<()> {
    let client = async_nats::connect(infra.nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let stream = "BENCH_CEILING";
    let _ = js.delete_stream(stream).await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream.into(),
        subjects: vec!["benchceiling.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("creating the ceiling stream: {e}"))?;
    let payload = Bytes::from(vec![b'x'; SUBMISSION_BYTES]);
    let workers: Vec<JetStreamWorker> = (0..sizes.connections)
        .map(|_| JetStreamWorker { js: js.clone(), subject: "benchceiling.submit".into(), payload: payload.clone() })
        .collect();
    let watched = infra.watched();
    let baseline = procs::start(&watched);
    let report = run(workers, Plan { total: sizes.single_requests, pace: Pace::Closed }).await;
    result.usage = procs::finish(&watched, &baseline);
    let _ = js.delete_stream(stream).await;
    ensure_no_failures("ceiling-jetstream", &report)?;
    result.metrics.insert("requests_per_s".into(), report.per_second);
    result.runs.insert("closed".into(), report);
    Ok(())
}

/// The same HTTP stack as the ingress (axum on hyper, multi-threaded tokio)
/// in its own process, answering every request with a fixed pv-like body.
pub(super) async fn ceiling_http(infra: &mut Infra, sizes: &Sizes, result: &mut ScenarioResult) -> anyhow::Result<()> {
    let port = smsfleet_localinfra::free_port()?;
    let mut server = tokio::process::Command::new(std::env::current_exe()?)
        .args(["serve-fixed", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the fixed-body server")?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            bail!("fixed-body server did not listen");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut watched = infra.watched();
    if let Some(pid) = server.id() {
        watched.push(procs::Watched { name: "fixed-body-server".into(), pid, with_children: false });
    }
    let workers = connect_many(&base, sizes.connections, single_pv("0123456789abcdef"), pv_ok()).await?;
    let baseline = procs::start(&watched);
    let report = run(workers, Plan { total: sizes.single_requests, pace: Pace::Closed }).await;
    result.usage = procs::finish(&watched, &baseline);
    let _ = server.start_kill();
    let _ = server.wait().await;
    ensure_no_failures("ceiling-http", &report)?;
    result.metrics.insert("requests_per_s".into(), report.per_second);
    result.runs.insert("closed".into(), report);
    Ok(())
}

/// The fixed body: the shape of a one-destination pv answer.
pub const FIXED_BODY: &str = r#"{"data":[{"status":"OK","error":"0","smslog_id":"1","queue":"0123456789abcdef0123456789abcdef","to":"628000000000"}],"error_string":null,"timestamp":1700000000}"#;

/// Serves FIXED_BODY on every path until killed (ceiling-http's server).
pub async fn serve_fixed(listen: &str) -> anyhow::Result<()> {
    let app = axum::Router::new()
        .fallback(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json; charset=utf-8")], FIXED_BODY) });
    // Set up as the ingress sets up its listener.
    let listener = axum::serve::ListenerExt::tap_io(tokio::net::TcpListener::bind(listen).await?, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
