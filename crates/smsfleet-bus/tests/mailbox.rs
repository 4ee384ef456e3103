#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Mailboxes and broadcast services against a real nats-server: a
//! mailbox hands its messages out in order, keeps what was handed back,
//! and is shared by its readers; every replica answers a broadcast.

use std::time::Duration;

use smsfleet_bus::MailboxSpec;
use smsfleet_contract::{
    Namespace, SCHEMA_VERSION, SmppDeliver, SmppDeliverBody, SmppSessionsReply, SmppSessionsRequest, StreamKind,
    services,
};
use smsfleet_testkit::{CancellationToken, TestEnv};

fn mo(uid: i64, n: u32) -> SmppDeliver {
    SmppDeliver {
        v: SCHEMA_VERSION,
        uid,
        key: format!("mo:t:{n}"),
        source_addr: "628".into(),
        destination_addr: "1234".into(),
        created_at_ms: 0,
        body: SmppDeliverBody::Mo { text: format!("text {n}") },
    }
}

fn spec(ns: &Namespace, uid: i64) -> MailboxSpec {
    MailboxSpec {
        stream: StreamKind::SmppOut,
        durable: Namespace::smpp_out_durable(uid),
        filter_subject: ns.smpp_out_subject(uid),
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 16,
    }
}

fn text(d: &SmppDeliver) -> String {
    match &d.body {
        SmppDeliverBody::Mo { text } => text.clone(),
        SmppDeliverBody::Receipt { .. } => String::new(),
    }
}

#[tokio::test]
async fn a_mailbox_keeps_its_messages_until_acked_and_only_its_own() {
    let env = TestEnv::start().await;
    for n in 0..3 {
        let m = mo(7, n);
        env.bus.publish(env.ns.smpp_out_subject(7), &m.key, &m).await.unwrap();
    }
    let other = mo(8, 9);
    env.bus.publish(env.ns.smpp_out_subject(8), &other.key, &other).await.unwrap();
    let mut mailbox = env.bus.mailbox::<SmppDeliver>(&spec(&env.ns, 7)).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(tokio::time::timeout(Duration::from_secs(10), mailbox.next()).await.unwrap().unwrap().unwrap());
    }
    let texts: Vec<String> = got.iter().map(|l| text(&l.delivery.body)).collect();
    assert_eq!(texts, ["text 0", "text 1", "text 2"], "in order, the other account's not among them");
    got[0].ack().await.unwrap();
    got[2].ack().await.unwrap();
    got[1].retry_after(Duration::from_millis(10)).await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(10), mailbox.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((text(&again.delivery.body).as_str(), again.delivery.delivered), ("text 1", 2), "handed back");
    again.ack().await.unwrap();
    // A second reader (another replica) of the same mailbox sees nothing left.
    drop(mailbox);
    let mut reader = env.bus.mailbox::<SmppDeliver>(&spec(&env.ns, 7)).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(500), reader.next()).await.is_err(), "all acked");
    assert_eq!(reader.waiting().await.unwrap(), 0);
}

#[tokio::test]
async fn every_replica_answers_a_broadcast_service() {
    let env = TestEnv::start().await;
    let stop = CancellationToken::new();
    for name in ["a", "b"] {
        let (bus, stop) = (env.bus.clone(), stop.clone());
        tokio::spawn(smsfleet_bus::serve_requests(bus, services::SMPP_SESSIONS, stop, move |_req| async move {
            SmppSessionsReply { replica: name.to_owned(), sessions: vec![] }
        }));
    }
    // The subscriptions are up once a gather sees both.
    let mut replicas = Vec::new();
    for _ in 0..50 {
        let replies =
            env.bus.gather(services::SMPP_SESSIONS, &SmppSessionsRequest {}, Duration::from_millis(300)).await.unwrap();
        replicas = replies.into_iter().map(|r| r.replica).collect::<Vec<_>>();
        replicas.sort();
        if replicas.len() == 2 {
            break;
        }
    }
    assert_eq!(replicas, ["a", "b"]);
    stop.cancel();
}
