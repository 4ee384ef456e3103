#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The ledger against real NATS and Postgres: exactly-once charging under
//! redelivery, rejection on insufficient credit, routing of future sends
//! to the scheduler, and idempotent credit top-ups.

use std::str::FromStr;
use std::time::Duration;

use smsfleet_domain::clock::now_ms;

use rust_decimal::Decimal;
use smsfleet_contract::{
    Api, BalanceState, DeliveryStatus, Destination, DispatchChunk, Encoding, RatesState, StatusBatch, StreamKind,
    Submission, SubmitBatch,
};
use smsfleet_ledger::{LedgerConfig, adjust_credit};
use smsfleet_testkit::{CancellationToken, TestEnv, eventually};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// An account with `credit`, and a default rate of 0.5 per segment.
async fn account(env: &TestEnv, credit: &str) -> i64 {
    let acc = env.create_user("alice").await;
    adjust_credit(&env.pool, &env.bus, "topup:1", acc.uid, d(credit)).await.unwrap();
    smsfleet_store::rates::set_default(&env.pool, d("0.5")).await.unwrap();
    acc.uid
}

fn submission(queue: &str, uid: i64, destinations: usize, segments: u32) -> Submission {
    Submission {
        queue: queue.into(),
        uid,
        api: Api::Playsms,
        sender: "ACME".into(),
        text: "hello".into(),
        footer: " @alice".into(),
        encoding: Encoding::Gsm7,
        flash: false,
        segments,
        msg_type: "text".into(),
        dlr_requested: false,
        accepted_at_ms: now_ms(),
        schedule_at_ms: None,
        validity_until_ms: now_ms() + 86_400_000,
        destinations: (0..destinations)
            .map(|i| Destination { smslog_id: 1000 + i as i64, to: format!("62811000{i}") })
            .collect(),
        traceparent: None,
    }
}

fn start(env: &TestEnv, chunk_size: usize) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let token = CancellationToken::new();
    let cfg = LedgerConfig { chunk_size, ..Default::default() };
    let run = smsfleet_ledger::run(env.context("ledger", &token), cfg);
    let handle = tokio::spawn(async move { run.await.unwrap() });
    (token, handle)
}

async fn publish_submit(env: &TestEnv, msg_id: &str, submissions: Vec<Submission>) -> u64 {
    publish_submit_by(env, msg_id, submissions, None).await
}

/// A batch the ingress stops waiting for at `deadline_ms`.
async fn publish_submit_by(env: &TestEnv, msg_id: &str, submissions: Vec<Submission>, deadline_ms: Option<i64>) -> u64 {
    let batch = SubmitBatch { v: 1, batch_id: msg_id.into(), submissions, deadline_ms };
    env.bus.publish(env.ns.subject(StreamKind::Submit), msg_id, &batch).await.unwrap().sequence
}

/// Waits until the ledger has acked the Submit stream up to `seq`.
async fn ledger_acked(env: &TestEnv, seq: u64) {
    let stream = env.bus.jetstream().get_stream(env.ns.stream_name(StreamKind::Submit)).await.unwrap();
    let done = eventually(Duration::from_secs(10), || {
        let stream = stream.clone();
        async move {
            let info = stream.consumer_info("ledger").await.ok()?;
            (info.ack_floor.stream_sequence >= seq).then_some(())
        }
    })
    .await;
    assert!(done.is_some(), "ledger did not ack the submit stream up to {seq}");
}

async fn stream_messages(env: &TestEnv, kind: StreamKind) -> u64 {
    let mut stream = env.bus.jetstream().get_stream(env.ns.stream_name(kind)).await.unwrap();
    stream.info().await.unwrap().state.messages
}

async fn last_on<T: serde::de::DeserializeOwned>(env: &TestEnv, kind: StreamKind, subject: &str) -> T {
    let stream = env.bus.jetstream().get_stream(env.ns.stream_name(kind)).await.unwrap();
    let msg = stream.get_last_raw_message_by_subject(subject).await.unwrap();
    serde_json::from_slice(&msg.payload).unwrap()
}

async fn wait_balance_state(env: &TestEnv, uid: i64, balance: &str) -> BalanceState {
    let subject = env.ns.balance_state_subject(uid);
    let found = eventually(Duration::from_secs(5), || {
        let subject = subject.clone();
        async move {
            let s: BalanceState = last_on(env, StreamKind::State, &subject).await;
            (d(&s.balance) == d(balance)).then_some(s)
        }
    })
    .await;
    found.unwrap_or_else(|| panic!("balance state never became {balance}"))
}

#[tokio::test]
async fn charges_once_under_redelivery_and_dispatches_chunks() {
    let env = TestEnv::start().await;
    let uid = account(&env, "10").await;
    let (token, handle) = start(&env, 2);

    // 3 destinations × 2 segments × 0.5 = 3.0, cut into chunks of 2 and 1.
    let sub = submission("Q1", uid, 3, 2);
    publish_submit(&env, "b1", vec![sub.clone()]).await;
    // The same batch again under another message id, as after a redelivery
    // that JetStream's duplicate window cannot catch.
    let seq = publish_submit(&env, "b2", vec![sub.clone()]).await;
    ledger_acked(&env, seq).await;

    assert_eq!(smsfleet_store::ledger::charged_total(&env.pool, uid).await.unwrap(), (d("3"), 3));
    let (balance, _) = smsfleet_store::ledger::balance(&env.pool, uid).await.unwrap().unwrap();
    assert_eq!(balance, d("7"));
    assert_eq!(stream_messages(&env, StreamKind::Dispatch).await, 2);
    assert_eq!(stream_messages(&env, StreamKind::Schedule).await, 0);

    let dispatch = env.bus.jetstream().get_stream(env.ns.stream_name(StreamKind::Dispatch)).await.unwrap();
    let first: DispatchChunk = serde_json::from_slice(&dispatch.get_raw_message(1).await.unwrap().payload).unwrap();
    let second: DispatchChunk = serde_json::from_slice(&dispatch.get_raw_message(2).await.unwrap().payload).unwrap();
    assert_eq!((first.chunk_id.as_str(), first.destinations.len()), ("Q1.0", 2));
    assert_eq!((second.chunk_id.as_str(), second.destinations.len()), ("Q1.1", 1));
    assert_eq!(first.body, "hello @alice");
    assert_eq!(first.release_at_ms, None);

    wait_balance_state(&env, uid, "7").await;
    let rates: RatesState = last_on(&env, StreamKind::State, &env.ns.rates_state_subject()).await;
    assert_eq!(d(&rates.default_rate), d("0.5"));

    // Two submissions of one account in one batch: only the first fits.
    let seq = publish_submit(&env, "b3", vec![submission("Q2", uid, 4, 2), submission("Q3", uid, 4, 2)]).await;
    ledger_acked(&env, seq).await;
    assert_eq!(smsfleet_store::ledger::charged_total(&env.pool, uid).await.unwrap(), (d("7"), 7));
    wait_balance_state(&env, uid, "3").await;
    let rejected: StatusBatch = last_on(&env, StreamKind::Status, &env.ns.subject(StreamKind::Status)).await;
    assert_eq!(rejected.batch_id, "rejected.Q3");

    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
}

async fn balance_of(env: &TestEnv, uid: i64) -> Decimal {
    smsfleet_store::ledger::balance(&env.pool, uid).await.unwrap().unwrap().0
}

/// Issue 12.8, reseller billing as in playSMS: a subuser's send is charged
/// to the subuser and its parent alike, exactly once under redelivery, and
/// refused when the parent's credit cannot cover it.
#[tokio::test]
async fn a_subuser_charge_counts_against_its_parent_exactly_once() {
    let env = TestEnv::start().await;
    let parent = account(&env, "10").await;
    let bob = smsfleet_store::accounts::NewAccount {
        username: "bob".into(),
        role: 4,
        parent_uid: Some(parent),
        timezone: "+0000".into(),
        ..Default::default()
    };
    let sub = smsfleet_store::accounts::create(&env.pool, &bob).await.unwrap().uid;
    adjust_credit(&env.pool, &env.bus, "topup:bob", sub, d("100")).await.unwrap();
    let (token, handle) = start(&env, 100);

    // 3 destinations × 2 segments × 0.5 = 3.0, from both balances, once.
    let first = submission("QS1", sub, 3, 2);
    publish_submit(&env, "b1", vec![first.clone()]).await;
    let seq = publish_submit(&env, "b2", vec![first]).await;
    ledger_acked(&env, seq).await;
    assert_eq!((balance_of(&env, sub).await, balance_of(&env, parent).await), (d("97"), d("7")));
    assert_eq!(smsfleet_store::ledger::charged_total(&env.pool, sub).await.unwrap(), (d("3"), 3));
    wait_balance_state(&env, parent, "7").await;
    wait_balance_state(&env, sub, "97").await;

    // 8 destinations × 2 segments × 0.5 = 8: the subuser could pay, its parent cannot.
    let seq = publish_submit(&env, "b3", vec![submission("QS2", sub, 8, 2)]).await;
    ledger_acked(&env, seq).await;
    assert_eq!((balance_of(&env, sub).await, balance_of(&env, parent).await), (d("97"), d("7")));
    let rejected: StatusBatch = last_on(&env, StreamKind::Status, &env.ns.subject(StreamKind::Status)).await;
    assert_eq!(rejected.batch_id, "rejected.QS2");

    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
}

#[tokio::test]
async fn insufficient_credit_is_rejected_with_a_failed_status() {
    let env = TestEnv::start().await;
    let uid = account(&env, "1").await;
    let (token, handle) = start(&env, 100);

    let seq = publish_submit(&env, "b1", vec![submission("Q9", uid, 2, 2)]).await;
    ledger_acked(&env, seq).await;

    assert_eq!(smsfleet_store::ledger::charged_total(&env.pool, uid).await.unwrap(), (Decimal::ZERO, 0));
    let (balance, _) = smsfleet_store::ledger::balance(&env.pool, uid).await.unwrap().unwrap();
    assert_eq!(balance, d("1"));
    assert_eq!(stream_messages(&env, StreamKind::Dispatch).await, 0);
    assert_eq!(stream_messages(&env, StreamKind::Status).await, 1);
    let status: StatusBatch = last_on(&env, StreamKind::Status, &env.ns.subject(StreamKind::Status)).await;
    assert_eq!(status.batch_id, "rejected.Q9");
    assert!(status.released_queues.is_empty());
    assert_eq!(status.events.len(), 2);
    for e in &status.events {
        assert_eq!((e.uid, e.status, e.reason.as_deref()), (uid, DeliveryStatus::Failed, Some("insufficient credit")));
    }

    // A redelivery repeats the outcome without a second status message.
    let seq = publish_submit(&env, "b2", vec![submission("Q9", uid, 2, 2)]).await;
    ledger_acked(&env, seq).await;
    assert_eq!(stream_messages(&env, StreamKind::Status).await, 1);

    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
}

/// Issue 14.2: a batch the stream stored after the ingress answered its
/// requests with an error (a publish buffered through an outage) is failed:
/// not charged, not sent, whatever the balance.
#[tokio::test]
async fn a_batch_stored_after_its_deadline_is_failed_not_charged_nor_sent() {
    let env = TestEnv::start().await;
    let uid = account(&env, "100").await;
    let (token, handle) = start(&env, 100);

    let seq = publish_submit_by(&env, "late", vec![submission("QL", uid, 2, 1)], Some(now_ms() - 1)).await;
    ledger_acked(&env, seq).await;
    assert_eq!(smsfleet_store::ledger::charged_total(&env.pool, uid).await.unwrap(), (Decimal::ZERO, 0));
    let (balance, _) = smsfleet_store::ledger::balance(&env.pool, uid).await.unwrap().unwrap();
    assert_eq!(balance, d("100"));
    assert_eq!(stream_messages(&env, StreamKind::Dispatch).await, 0);
    assert_eq!(stream_messages(&env, StreamKind::Schedule).await, 0);
    let status: StatusBatch = last_on(&env, StreamKind::Status, &env.ns.subject(StreamKind::Status)).await;
    assert_eq!(status.batch_id, "rejected.QL");
    assert_eq!(status.events.len(), 2);
    for e in &status.events {
        assert_eq!(e.status, DeliveryStatus::Failed);
        assert!(e.reason.as_deref().is_some_and(|r| r.contains("answered with an error")), "{:?}", e.reason);
    }

    // A batch stored before its deadline is charged and sent as usual.
    let seq = publish_submit_by(&env, "on-time", vec![submission("QT", uid, 2, 1)], Some(now_ms() + 60_000)).await;
    ledger_acked(&env, seq).await;
    assert_eq!(smsfleet_store::ledger::charged_total(&env.pool, uid).await.unwrap(), (d("1"), 2));
    assert_eq!(stream_messages(&env, StreamKind::Dispatch).await, 1);

    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
}

#[tokio::test]
async fn future_sends_go_to_the_scheduler() {
    let env = TestEnv::start().await;
    let uid = account(&env, "10").await;
    let (token, handle) = start(&env, 100);

    let mut sub = submission("Q5", uid, 1, 1);
    sub.schedule_at_ms = Some(now_ms() + 3_600_000);
    let seq = publish_submit(&env, "b1", vec![sub.clone()]).await;
    ledger_acked(&env, seq).await;

    assert_eq!(stream_messages(&env, StreamKind::Dispatch).await, 0);
    assert_eq!(stream_messages(&env, StreamKind::Schedule).await, 1);
    let chunk: DispatchChunk = last_on(&env, StreamKind::Schedule, &env.ns.subject(StreamKind::Schedule)).await;
    assert_eq!(chunk.release_at_ms, sub.schedule_at_ms);
    assert_eq!(smsfleet_store::ledger::charged_total(&env.pool, uid).await.unwrap(), (d("0.5"), 1));

    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
}

#[tokio::test]
async fn credit_adjustments_are_idempotent_by_reference() {
    let env = TestEnv::start().await;
    let uid = account(&env, "10").await;
    // Same reference as the set-up top-up: no change.
    assert_eq!(adjust_credit(&env.pool, &env.bus, "topup:1", uid, d("10")).await.unwrap(), d("10"));
    assert_eq!(adjust_credit(&env.pool, &env.bus, "deduct:1", uid, d("-2.5")).await.unwrap(), d("7.5"));
    assert_eq!(adjust_credit(&env.pool, &env.bus, "deduct:1", uid, d("-2.5")).await.unwrap(), d("7.5"));
    let (balance, revision) = smsfleet_store::ledger::balance(&env.pool, uid).await.unwrap().unwrap();
    assert_eq!((balance, revision), (d("7.5"), 2));
    let state = wait_balance_state(&env, uid, "7.5").await;
    assert_eq!(state.revision, 2);
    assert!(adjust_credit(&env.pool, &env.bus, "x", 999_999, d("1")).await.is_err());
}

/// Issue 12.9: amounts are kept to playSMS's three decimals, halves away
/// from zero; one that rounds to nothing changes nothing.
#[tokio::test]
async fn credit_adjustments_round_to_three_decimals() {
    let env = TestEnv::start().await;
    let uid = account(&env, "10").await;
    assert_eq!(adjust_credit(&env.pool, &env.bus, "a", uid, d("0.12345")).await.unwrap(), d("10.123"));
    assert_eq!(adjust_credit(&env.pool, &env.bus, "b", uid, d("0.0005")).await.unwrap(), d("10.124"));
    assert_eq!(adjust_credit(&env.pool, &env.bus, "c", uid, d("-1.0005")).await.unwrap(), d("9.123"));
    assert!(adjust_credit(&env.pool, &env.bus, "d", uid, d("0.0004")).await.is_err());
    let (balance, _) = smsfleet_store::ledger::balance(&env.pool, uid).await.unwrap().unwrap();
    assert_eq!(balance, d("9.123"));
}
