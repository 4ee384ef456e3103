//! Incoming routing against a real nats-server and PostgreSQL: messages go
//! in through the INCOMING stream, answers come out of the incoming service
//! over request/reply, as the ingress sees them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smsfleet_contract::{
    IncomingKind, IncomingList, IncomingMessage, IncomingReply, IncomingRequest, SCHEMA_VERSION, StreamKind,
};
use smsfleet_query::QueryConfig;
use smsfleet_testkit::{CancellationToken, TestEnv, eventually};

const WAIT: Duration = Duration::from_secs(15);

fn message(key: &str, kind: IncomingKind, text: &str, to_uid: Option<i64>) -> IncomingMessage {
    IncomingMessage {
        v: SCHEMA_VERSION,
        key: key.to_owned(),
        kind,
        sender: if kind == IncomingKind::Inbox { "admin".into() } else { "+628999000001".into() },
        receiver: if kind == IncomingKind::Inbox { String::new() } else { "1234".into() },
        text: text.to_owned(),
        smsc: "sim".to_owned(),
        to_uid,
        received_at_ms: 1_795_025_600_000,
        traceparent: None,
    }
}

async fn publish(env: &TestEnv, m: &IncomingMessage) {
    env.bus.publish(env.ns.subject(StreamKind::Incoming), &m.key, m).await.unwrap();
}

/// Asks until the answer satisfies `check` (the service may not have
/// subscribed yet, the worker may not have stored the rows yet).
async fn list(env: &TestEnv, list: IncomingList, uid: i64, check: impl Fn(&IncomingReply) -> bool) -> IncomingReply {
    let req = IncomingRequest { list, uid, src: None, dst: None, dt: None, kwd: None, limit: 0, last: None };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = env.bus.request(smsfleet_contract::services::INCOMING, &req, Duration::from_secs(5)).await;
        if let Ok(r) = &reply
            && check(r)
        {
            return r.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "never matched; last answer: {reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(r: &IncomingReply) -> usize {
    match r {
        IncomingReply::Rows(rows) => rows.len(),
        IncomingReply::Error(_) => 0,
    }
}

/// The same key published twice (once past the JetStream duplicate window,
/// simulated by a different stream message) is stored once; keywords route
/// to their owner, the rest to the sandbox, `@user` messages to the inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_keyword_and_stores_each_key_once() {
    let env = TestEnv::start().await;
    let admin = env.create_user("admin").await;
    let alice = env.create_user("alice").await;
    assert_eq!(admin.uid, 1);
    smsfleet_store::keywords::add(&env.pool, "IDOL", alice.uid).await.unwrap();
    assert!(smsfleet_store::keywords::add(&env.pool, "IDOL", admin.uid).await.is_err());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(smsfleet_query::run(env.context("query", &shutdown), QueryConfig::default()));

    let vote = message("mo:sim:1", IncomingKind::Mo, "idol I vote for \"3\"", None);
    publish(&env, &vote).await;
    // A redelivery from the upstream after the stream forgot the id: a new
    // stream message with the same key.
    let mut again = vote.clone();
    again.received_at_ms += 1_000;
    env.bus.publish(env.ns.subject(StreamKind::Incoming), "other-stream-id", &again).await.unwrap();
    publish(&env, &message("inject:7", IncomingKind::Inject, "random text", None)).await;
    publish(&env, &message("im:q:2", IncomingKind::Inbox, "hi alice", Some(alice.uid))).await;
    publish(&env, &message("im:q:2", IncomingKind::Inbox, "hi alice", Some(alice.uid))).await;

    let r = list(&env, IncomingList::In, alice.uid, |r| count(r) == 1).await;
    let IncomingReply::Rows(rows) = r else { unreachable!() };
    assert_eq!((rows[0].kwd.as_str(), rows[0].msg.as_str()), ("IDOL", "I vote for '3'"));
    assert_eq!(
        (rows[0].src.as_str(), rows[0].dst.as_str(), rows[0].dt.as_str()),
        ("+628999000001", "1234", "2026-11-18 18:13:20")
    );
    let r = list(&env, IncomingList::Sx, admin.uid, |r| count(r) == 1).await;
    let IncomingReply::Rows(rows) = r else { unreachable!() };
    assert_eq!((rows[0].kwd.as_str(), rows[0].msg.as_str()), ("", "random text"));
    let r = list(&env, IncomingList::Ix, alice.uid, |r| count(r) == 1).await;
    let IncomingReply::Rows(rows) = r else { unreachable!() };
    assert_eq!((rows[0].src.as_str(), rows[0].dst.as_str(), rows[0].msg.as_str()), ("@admin", "", "hi alice"));
    assert_eq!(list(&env, IncomingList::In, admin.uid, |_| true).await, IncomingReply::Error(501));
    assert_eq!(list(&env, IncomingList::Ix, admin.uid, |_| true).await, IncomingReply::Error(501));

    // Once every published message is acked (after its rows are written),
    // a duplicate would be in the tables: count the rows directly.
    let stream = env.bus.jetstream().get_stream(env.ns.stream_name(StreamKind::Incoming)).await.unwrap();
    let handled = eventually(WAIT, || {
        let mut stream = stream.clone();
        async move {
            let last = stream.info().await.ok()?.state.last_sequence;
            let acked = stream.consumer_info("projection").await.ok()?.ack_floor.stream_sequence;
            (acked >= last).then_some(())
        }
    })
    .await;
    assert!(handled.is_some(), "the incoming messages were not all handled");
    let (incoming,): (i64,) = sqlx::query_as("SELECT count(*) FROM incoming").fetch_one(&env.pool).await.unwrap();
    let (inbox,): (i64,) = sqlx::query_as("SELECT count(*) FROM inbox").fetch_one(&env.pool).await.unwrap();
    assert_eq!((incoming, inbox), (2, 1));

    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// The ingress answers `pv` to `@user` once the message is in the stream;
/// the first `ix` after that, with no retry, lists it (issue 12.6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_ix_after_the_publish_lists_the_message() {
    let env = TestEnv::start().await;
    let alice = env.create_user("alice").await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(smsfleet_query::run(env.context("query", &shutdown), QueryConfig::default()));
    // Once this answers, the service is subscribed.
    list(&env, IncomingList::Ix, alice.uid, |_| true).await;

    let req = IncomingRequest {
        list: IncomingList::Ix,
        uid: alice.uid,
        src: None,
        dst: None,
        dt: None,
        kwd: None,
        limit: 0,
        last: None,
    };
    let mut incomplete = Vec::new();
    for i in 1..=20 {
        publish(&env, &message(&format!("im:q{i}:2"), IncomingKind::Inbox, &format!("hi {i}"), Some(alice.uid))).await;
        let reply = env.bus.request(smsfleet_contract::services::INCOMING, &req, Duration::from_secs(5)).await.unwrap();
        if count(&reply) != i {
            incomplete.push((i, count(&reply)));
        }
    }
    assert!(incomplete.is_empty(), "(published, listed) of incomplete reads: {incomplete:?}");

    shutdown.cancel();
    task.await.unwrap().unwrap();
}
