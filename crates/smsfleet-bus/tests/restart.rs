#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 14.1: messages published (PubAck received) just before a graceful
//! nats-server restart reach every consumer of their stream, the lagging
//! ones included, on every server version CI runs (Debian's 2.9, whose
//! interest-retention streams dropped them, and a current one), while the
//! fan-out streams are trimmed as they go.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::pull;
use futures_util::StreamExt;
use smsfleet_bus::Bus;
use smsfleet_contract::StreamKind;
use smsfleet_testkit::{CancellationToken, PrivateNats, eventually};

type Seen = Arc<Mutex<BTreeSet<u64>>>;

/// Pulls from `durable` until `stop`, holding each batch for `pause`
/// before acking it, and records the payloads seen.
async fn consume(
    bus: Bus,
    stream: StreamKind,
    durable: &'static str,
    pause: Duration,
    seen: Seen,
    stop: CancellationToken,
) {
    let stream_name = bus.namespace().stream_name(stream);
    while !stop.is_cancelled() {
        let fetched = async {
            let stream = bus.jetstream().get_stream(&stream_name).await.ok()?;
            let consumer = stream.get_consumer::<pull::Config>(durable).await.ok()?;
            consumer.fetch().max_messages(50).expires(Duration::from_millis(500)).messages().await.ok()
        };
        let Some(mut batch) = fetched.await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut got = Vec::new();
        while let Some(Ok(m)) = batch.next().await {
            got.push(m);
        }
        tokio::time::sleep(pause).await;
        for m in got {
            if let Some(n) = std::str::from_utf8(&m.payload).ok().and_then(|s| s.parse::<u64>().ok()) {
                seen.lock().unwrap().insert(n);
            }
            let _ = m.ack_with(AckKind::Ack).await;
        }
    }
}

async fn acknowledged_publishes_survive_a_graceful_restart(stream: StreamKind) {
    let mut nats = PrivateNats::start().await;
    let ns = smsfleet_contract::Namespace::new(&format!("rs{}", rand::random::<u32>())).unwrap();
    let bus = Bus::connect(&nats.url(), ns.clone(), "restart").await.unwrap();
    bus.provision().await.unwrap();
    let stop = CancellationToken::new();
    let durables: Vec<&'static str> =
        bus.topology().consumers.iter().filter(|c| c.stream == stream).map(|c| c.durable).collect();
    let mut seen: Vec<Seen> = Vec::new();
    for (i, durable) in durables.iter().enumerate() {
        let s = Seen::default();
        // The first lags behind the others, as the ledger does under load.
        let pause = Duration::from_millis(if i == 0 { 10 } else { 1 });
        tokio::spawn(consume(bus.clone(), stream, durable, pause, s.clone(), stop.clone()));
        seen.push(s);
    }
    let trimmer = tokio::spawn(smsfleet_bus::run_trimmer(bus.clone(), stop.clone()));
    let acked = Seen::default();
    let publisher = {
        let (bus, acked) = (bus.clone(), acked.clone());
        let subject = ns.subject(stream);
        tokio::spawn(async move {
            for n in 1u64.. {
                let Ok(ack) = bus.jetstream().publish(subject.clone(), n.to_string().into()).await else { continue };
                if tokio::time::timeout(Duration::from_secs(2), ack).await.is_ok_and(|a| a.is_ok()) {
                    acked.lock().unwrap().insert(n);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    publisher.abort();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 100, "only {} publishes acknowledged", acked.len());

    let lost_by = |s: &Seen| -> Vec<u64> {
        let got = s.lock().unwrap();
        acked.iter().filter(|n| !got.contains(n)).copied().collect()
    };
    let caught_up =
        eventually(Duration::from_secs(60), || async { seen.iter().all(|s| lost_by(s).is_empty()).then_some(()) })
            .await;
    let report: Vec<String> = durables
        .iter()
        .zip(&seen)
        .map(|(d, s)| {
            let lost = lost_by(s);
            format!("{d} lost {} of {}: {:?}", lost.len(), acked.len(), &lost[..lost.len().min(10)])
        })
        .collect();
    assert!(caught_up.is_some(), "acknowledged messages were lost: {report:#?}");

    // Everything acked by all is trimmed away.
    let stream_name = ns.stream_name(stream);
    let emptied = eventually(Duration::from_secs(30), || async {
        bus.trim_acknowledged(stream).await.ok()?;
        let mut s = bus.jetstream().get_stream(&stream_name).await.ok()?;
        (s.info().await.ok()?.state.messages == 0).then_some(())
    })
    .await;
    stop.cancel();
    let _ = trimmer.await;
    assert!(emptied.is_some(), "{stream_name} still holds messages every consumer acked");
}

#[tokio::test]
async fn a_fan_out_stream_loses_nothing_acknowledged_in_a_graceful_restart() {
    acknowledged_publishes_survive_a_graceful_restart(StreamKind::Submit).await;
}

#[tokio::test]
async fn a_work_queue_loses_nothing_acknowledged_in_a_graceful_restart() {
    acknowledged_publishes_survive_a_graceful_restart(StreamKind::Dispatch).await;
}

/// A fan-out stream made by an older smsfleet with interest retention is
/// brought to limits retention at start-up: in place where the server
/// allows it, made again when empty where it does not (2.9).
#[tokio::test]
async fn an_interest_stream_from_an_older_release_is_converted() {
    use async_nats::jetstream::stream::RetentionPolicy;
    let env = smsfleet_testkit::TestEnv::start().await;
    let ns = smsfleet_contract::Namespace::new(&format!("rc{}", rand::random::<u32>())).unwrap();
    let bus = Bus::connect(&env.nats_url, ns.clone(), "convert").await.unwrap();
    bus.provision().await.unwrap();
    let name = ns.stream_name(StreamKind::Status);
    let mut config = bus.jetstream().get_stream(&name).await.unwrap().cached_info().config.clone();
    bus.jetstream().delete_stream(&name).await.unwrap();
    config.retention = RetentionPolicy::Interest;
    bus.jetstream().create_stream(config).await.unwrap();

    bus.provision().await.unwrap();
    let mut stream = bus.jetstream().get_stream(&name).await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.retention, RetentionPolicy::Limits);
    // Its durables are there again.
    for c in bus.topology().consumers.iter().filter(|c| c.stream == StreamKind::Status) {
        stream.consumer_info(c.durable).await.unwrap();
    }
}
