#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 14.6: the work of a killed worker comes back within the (short)
//! ack wait, a handler slower than the ack wait is kept alive with
//! in-progress acks instead of being redelivered, and provisioning brings
//! existing consumers to the ack wait of the topology.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer;
use smsfleet_bus::{Delivery, HandlerError, WorkerConfig, run_worker};
use smsfleet_contract::{SCHEMA_VERSION, StatusBatch, StreamKind};
use smsfleet_testkit::{CancellationToken, TestEnv, eventually};
use tokio::sync::mpsc;

const DURABLE: &str = "projection";

fn batch(id: &str) -> StatusBatch {
    StatusBatch { v: SCHEMA_VERSION, batch_id: id.to_owned(), events: vec![], released_queues: vec![] }
}

fn config(concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        stream: StreamKind::Status,
        durable: DURABLE,
        batch: 10,
        concurrency,
        max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
    }
}

fn ack_wait(env: &TestEnv) -> Duration {
    Duration::from_secs(env.bus.topology().consumer(StreamKind::Status, DURABLE).unwrap().ack_wait_secs)
}

#[tokio::test]
async fn a_killed_workers_message_comes_back_within_the_ack_wait() {
    let env = TestEnv::start().await;
    let wait = ack_wait(&env);
    assert!(wait <= Duration::from_secs(10), "ack wait {wait:?} is not short");
    env.bus.publish(env.ns.subject(StreamKind::Status), "held", &batch("held")).await.unwrap();

    // The first worker takes the message and hangs in its handler until it
    // is killed.
    let (took, mut taken) = mpsc::unbounded_channel();
    let doomed = tokio::spawn(run_worker(
        env.bus.clone(),
        config(1),
        CancellationToken::new(),
        move |d: Vec<Delivery<StatusBatch>>| {
            let took = took.clone();
            async move {
                let _ = took.send(d[0].delivered);
                std::future::pending::<()>().await;
                Ok::<(), HandlerError>(())
            }
        },
    ));
    let first = tokio::time::timeout(Duration::from_secs(10), taken.recv()).await.unwrap();
    assert_eq!(first, Some(1));
    doomed.abort();
    let killed_at = tokio::time::Instant::now();

    let (got, mut received) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let survivor =
        tokio::spawn(run_worker(env.bus.clone(), config(1), shutdown.clone(), move |d: Vec<Delivery<StatusBatch>>| {
            let got = got.clone();
            async move {
                let _ = got.send((d[0].body.batch_id.clone(), d[0].delivered));
                Ok::<(), HandlerError>(())
            }
        }));
    let again = tokio::time::timeout(wait + Duration::from_secs(3), received.recv()).await;
    let (id, delivered) = again.expect("not redelivered within the ack wait").unwrap();
    assert_eq!((id.as_str(), delivered), ("held", 2));
    assert!(killed_at.elapsed() <= wait + Duration::from_secs(3));
    shutdown.cancel();
    survivor.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_handler_slower_than_the_ack_wait_is_not_redelivered() {
    let env = TestEnv::start().await;
    let wait = ack_wait(&env);
    env.bus.publish(env.ns.subject(StreamKind::Status), "slow", &batch("slow")).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (c, f) = (calls.clone(), finished.clone());
    let shutdown = CancellationToken::new();
    // Two slots, so a redelivery would be taken while the first call runs.
    let worker =
        tokio::spawn(run_worker(env.bus.clone(), config(2), shutdown.clone(), move |_: Vec<Delivery<StatusBatch>>| {
            let (c, f) = (c.clone(), f.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(wait + Duration::from_secs(4)).await;
                f.fetch_add(1, Ordering::SeqCst);
                Ok::<(), HandlerError>(())
            }
        }));
    let done = eventually(wait * 3, || async { (finished.load(Ordering::SeqCst) >= 1).then_some(()) }).await;
    assert!(done.is_some(), "the slow handler did not finish");
    // Time for a redelivery that should not come.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a handler still running was redelivered");
    shutdown.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn provisioning_brings_an_existing_consumer_to_the_topologys_ack_wait() {
    let env = TestEnv::start().await;
    let stream = env.bus.jetstream().get_stream(env.ns.stream_name(StreamKind::Status)).await.unwrap();
    let mut info = stream.consumer_info(DURABLE).await.unwrap();
    // As an older release left it.
    let mut old = consumer::pull::Config {
        durable_name: Some(DURABLE.to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_deliver: info.config.max_deliver,
        max_ack_pending: info.config.max_ack_pending,
        filter_subject: info.config.filter_subject.clone(),
        ..Default::default()
    };
    old.description = info.config.description.clone();
    stream.create_consumer(old).await.unwrap();
    info = stream.consumer_info(DURABLE).await.unwrap();
    assert_eq!(info.config.ack_wait, Duration::from_secs(30));

    env.bus.provision().await.unwrap();
    let info = stream.consumer_info(DURABLE).await.unwrap();
    assert_eq!(info.config.ack_wait, ack_wait(&env));
}
