#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The scheduler against real NATS and Postgres: a held chunk is released
//! on time, exactly once, across a restart of the scheduler.

use std::time::{Duration, Instant};

use smsfleet_domain::clock::now_ms;

use smsfleet_contract::{Destination, DispatchChunk, Encoding, StatusBatch, StreamKind};
use smsfleet_scheduler::SchedulerConfig;
use smsfleet_testkit::{CancellationToken, TestEnv, eventually};

fn start(env: &TestEnv) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let token = CancellationToken::new();
    let run = smsfleet_scheduler::run(env.context("scheduler", &token), SchedulerConfig::default());
    let handle = tokio::spawn(async move { run.await.unwrap() });
    (token, handle)
}

async fn stream_messages(env: &TestEnv, kind: StreamKind) -> u64 {
    let mut stream = env.bus.jetstream().get_stream(env.ns.stream_name(kind)).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
async fn releases_on_time_once_across_a_restart() {
    let env = TestEnv::start().await;
    let (token, handle) = start(&env);

    let started = Instant::now();
    let release_at = now_ms() + 2_000;
    let chunk = DispatchChunk {
        v: 1,
        chunk_id: "Q7.0".into(),
        queue: "Q7".into(),
        uid: 1,
        sender: "ACME".into(),
        body: "later".into(),
        encoding: Encoding::Gsm7,
        flash: false,
        segments: 1,
        validity_until_ms: release_at + 86_400_000,
        release_at_ms: Some(release_at),
        destinations: vec![Destination { smslog_id: 42, to: "628110001".into() }],
        traceparent: None,
    };
    let schedule = env.ns.subject(StreamKind::Schedule);
    env.bus.publish(schedule.clone(), "Q7.0", &chunk).await.unwrap();
    // A redelivered copy under another id is held once.
    env.bus.publish(schedule, "Q7.0-again", &chunk).await.unwrap();

    // Held in Postgres and acked, then the scheduler restarts before the
    // release instant.
    let held =
        eventually(Duration::from_secs(2), || async { smsfleet_store::scheduler::next_due(&env.pool).await.unwrap() })
            .await;
    assert!(held.is_some(), "chunk was not held");
    let acked = eventually(Duration::from_secs(2), || async {
        (stream_messages(&env, StreamKind::Schedule).await == 0).then_some(())
    })
    .await;
    assert!(acked.is_some(), "schedule stream not drained");
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_millis(1_500), "restart happened too late for the test");
    assert_eq!(stream_messages(&env, StreamKind::Dispatch).await, 0);
    let (token, handle) = start(&env);

    let released = eventually(Duration::from_secs(5), || async {
        (stream_messages(&env, StreamKind::Dispatch).await >= 1).then(|| started.elapsed())
    })
    .await
    .expect("chunk was never released");
    assert!(released >= Duration::from_millis(1_500), "released too early: {released:?}");
    assert!(released <= Duration::from_millis(2_700), "released too late: {released:?}");

    // Nothing more arrives: once the release is committed no chunk is due,
    // and only a due chunk is ever published.
    let committed = eventually(Duration::from_secs(5), || async {
        smsfleet_store::scheduler::next_due(&env.pool).await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(committed.is_some(), "the release was never committed");
    assert_eq!(stream_messages(&env, StreamKind::Dispatch).await, 1);
    let dispatch = env.bus.jetstream().get_stream(env.ns.stream_name(StreamKind::Dispatch)).await.unwrap();
    let out: DispatchChunk = serde_json::from_slice(
        &dispatch.get_last_raw_message_by_subject(&env.ns.subject(StreamKind::Dispatch)).await.unwrap().payload,
    )
    .unwrap();
    assert_eq!(out.chunk_id, "Q7.0");
    assert_eq!(out.release_at_ms, None);
    assert_eq!(out.destinations, chunk.destinations);

    assert_eq!(stream_messages(&env, StreamKind::Status).await, 1);
    let status_stream = env.bus.jetstream().get_stream(env.ns.stream_name(StreamKind::Status)).await.unwrap();
    let status: StatusBatch = serde_json::from_slice(
        &status_stream.get_last_raw_message_by_subject(&env.ns.subject(StreamKind::Status)).await.unwrap().payload,
    )
    .unwrap();
    assert_eq!(status.batch_id, "released.Q7.0.1");
    assert_eq!(status.released_queues, vec!["Q7".to_owned()]);
    assert!(status.events.is_empty());
    assert_eq!(smsfleet_store::scheduler::next_due(&env.pool).await.unwrap(), None);

    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
}
