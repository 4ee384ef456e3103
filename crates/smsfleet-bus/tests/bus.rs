#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The bus layer against a real nats-server: de-duplication, retry,
//! dead-lettering, id blocks, worker-id leases and the state feed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smsfleet_bus::{HandlerError, IdBlocks, Progress, StateEvent, StateFeed, WorkerConfig, run_worker};
use smsfleet_contract::{BalanceState, SCHEMA_VERSION, StatusBatch, StreamKind};
use smsfleet_testkit::{CancellationToken, PrivateNats, TestEnv, eventually};

fn batch(id: &str) -> StatusBatch {
    StatusBatch { v: SCHEMA_VERSION, batch_id: id.to_owned(), events: vec![], released_queues: vec![id.to_owned()] }
}

#[tokio::test]
async fn same_message_id_is_stored_once() {
    let env = TestEnv::start().await;
    let subject = env.ns.subject(StreamKind::Status);
    let a = env.bus.publish(subject.clone(), "x1", &batch("x1")).await.unwrap();
    let b = env.bus.publish(subject.clone(), "x1", &batch("x1")).await.unwrap();
    assert!(!a.duplicate);
    assert!(b.duplicate);
    assert_eq!(a.sequence, b.sequence);
}

/// A message id from outside input (a route name in a URL) with CR/LF used
/// to panic inside async-nats; it is an error now, and a batch with one bad
/// id stores none of its messages.
#[tokio::test]
async fn a_message_id_that_cannot_be_a_header_is_an_error_not_a_panic() {
    let env = TestEnv::start().await;
    let subject = env.ns.subject(StreamKind::Status);
    let bad = "mo:a\r\nX:1:x";
    let err = env.bus.publish(subject.clone(), bad, &batch("b")).await.unwrap_err();
    assert!(matches!(err, smsfleet_bus::BusError::Codec { .. }), "{err}");
    let items = vec![(subject.clone(), "good".to_owned(), batch("good")), (subject, bad.to_owned(), batch("bad"))];
    assert!(env.bus.publish_all(items).await.is_err());
    let mut stream = env.bus.jetstream().get_stream(env.ns.stream_name(StreamKind::Status)).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 0);
}

#[tokio::test]
async fn transient_failures_are_retried_and_poison_is_dead_lettered() {
    let env = TestEnv::start().await;
    let subject = env.ns.subject(StreamKind::Status);
    env.bus.publish(subject.clone(), "retry", &batch("retry")).await.unwrap();
    env.bus.publish(subject.clone(), "poison", &batch("poison")).await.unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let (a, d) = (attempts.clone(), done.clone());
    let worker = tokio::spawn(run_worker(
        env.bus.clone(),
        WorkerConfig {
            stream: StreamKind::Status,
            durable: "projection",
            batch: 10,
            concurrency: 1,
            max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
        },
        shutdown.clone(),
        move |items: Vec<smsfleet_bus::Delivery<StatusBatch>>| {
            let (a, d) = (a.clone(), d.clone());
            async move {
                for item in &items {
                    if item.body.batch_id == "poison" {
                        return Err(HandlerError::Permanent("cannot ever work".into()));
                    }
                    if a.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Err(HandlerError::Transient("first try fails".into()));
                    }
                }
                d.fetch_add(items.len(), Ordering::SeqCst);
                Ok(())
            }
        },
    ));
    let retried =
        eventually(Duration::from_secs(15), || async { (done.load(Ordering::SeqCst) >= 1).then_some(()) }).await;
    assert!(retried.is_some(), "the transient failure was not retried");
    let dead_name = env.ns.stream_name(StreamKind::Dead);
    let dead_count = eventually(Duration::from_secs(10), || {
        let (js, name) = (env.bus.jetstream().clone(), dead_name.clone());
        async move {
            let mut dead = js.get_stream(name).await.ok()?;
            let n = dead.info().await.ok()?.state.messages;
            (n == 1).then_some(n)
        }
    })
    .await;
    assert_eq!(dead_count, Some(1));
    shutdown.cancel();
    worker.await.unwrap().unwrap();
}

/// Issue 14.14: a handler waiting on another worker's record (`NotYet`)
/// is retried like a transient failure, never dead-lettered for it.
#[tokio::test]
async fn not_yet_is_retried_until_the_handler_takes_it() {
    let env = TestEnv::start().await;
    let subject = env.ns.subject(StreamKind::Status);
    env.bus.publish(subject, "later", &batch("later")).await.unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let a = attempts.clone();
    let config = WorkerConfig {
        stream: StreamKind::Status,
        durable: "projection",
        batch: 10,
        concurrency: 1,
        max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
    };
    let worker = tokio::spawn(run_worker(
        env.bus.clone(),
        config,
        shutdown.clone(),
        move |_: Vec<smsfleet_bus::Delivery<StatusBatch>>| {
            let a = a.clone();
            async move {
                if a.fetch_add(1, Ordering::SeqCst) < 2 {
                    return Err(HandlerError::NotYet("the record is not there yet".into()));
                }
                Ok(())
            }
        },
    ));
    let taken =
        eventually(Duration::from_secs(15), || async { (attempts.load(Ordering::SeqCst) >= 3).then_some(()) }).await;
    assert!(taken.is_some(), "not retried");
    let through = env
        .bus
        .wait_consumer_through(
            StreamKind::Status,
            "projection",
            1,
            tokio::time::Instant::now() + Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(through, Progress::Through);
    let mut dead = env.bus.jetstream().get_stream(env.ns.stream_name(StreamKind::Dead)).await.unwrap();
    assert_eq!(dead.info().await.unwrap().state.messages, 0);
    shutdown.cancel();
    worker.await.unwrap().unwrap();
}

/// The read barrier's basis: a durable is "through" a sequence only once
/// the handler of every message up to it has returned and been acked.
#[tokio::test]
async fn a_consumer_is_through_a_sequence_only_after_its_handler_finished() {
    let env = TestEnv::start().await;
    let subject = env.ns.subject(StreamKind::Status);
    assert_eq!(env.bus.stream_last_sequence(StreamKind::Status).await.unwrap(), 0);
    env.bus.publish(subject.clone(), "a", &batch("a")).await.unwrap();
    env.bus.publish(subject, "b", &batch("b")).await.unwrap();
    let last = env.bus.stream_last_sequence(StreamKind::Status).await.unwrap();
    assert_eq!(last, 2);

    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let shutdown = CancellationToken::new();
    let g = gate.clone();
    let worker = tokio::spawn(run_worker(
        env.bus.clone(),
        WorkerConfig {
            stream: StreamKind::Status,
            durable: "projection",
            batch: 10,
            concurrency: 1,
            max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
        },
        shutdown.clone(),
        move |_items: Vec<smsfleet_bus::Delivery<StatusBatch>>| {
            let g = g.clone();
            async move {
                g.acquire().await.map_err(HandlerError::transient)?.forget();
                Ok(())
            }
        },
    ));
    let soon = || tokio::time::Instant::now() + Duration::from_millis(500);
    // The consumer exists once the worker started; until the gate opens
    // nothing is acked.
    let behind = eventually(Duration::from_secs(10), || async {
        env.bus.wait_consumer_through(StreamKind::Status, "projection", last, soon()).await.ok()
    })
    .await;
    assert_eq!(behind, Some(Progress::Behind));
    gate.add_permits(100);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let through = env.bus.wait_consumer_through(StreamKind::Status, "projection", last, deadline).await.unwrap();
    assert_eq!(through, Progress::Through);
    shutdown.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unknown_schema_version_is_dead_lettered_unseen() {
    let env = TestEnv::start().await;
    let subject = env.ns.subject(StreamKind::Status);
    let future = StatusBatch { v: SCHEMA_VERSION + 1, ..batch("future") };
    env.bus.publish(subject.clone(), "future", &future).await.unwrap();
    env.bus.publish(subject.clone(), "known", &batch("known")).await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let shutdown = CancellationToken::new();
    let s = seen.clone();
    let worker = tokio::spawn(run_worker(
        env.bus.clone(),
        WorkerConfig {
            stream: StreamKind::Status,
            durable: "projection",
            batch: 10,
            concurrency: 1,
            max_batch_bytes: smsfleet_bus::DEFAULT_BATCH_BYTES,
        },
        shutdown.clone(),
        move |items: Vec<smsfleet_bus::Delivery<StatusBatch>>| {
            let s = s.clone();
            async move {
                s.lock().unwrap().extend(items.into_iter().map(|d| d.body.batch_id));
                Ok(())
            }
        },
    ));
    let dead_name = env.ns.stream_name(StreamKind::Dead);
    let dead_count = eventually(Duration::from_secs(10), || {
        let (js, name) = (env.bus.jetstream().clone(), dead_name.clone());
        async move {
            let mut dead = js.get_stream(name).await.ok()?;
            let n = dead.info().await.ok()?.state.messages;
            (n == 1).then_some(n)
        }
    })
    .await;
    assert_eq!(dead_count, Some(1));
    // Both were pulled in order, so once `known` is handled `future` has
    // been decided: it never reached the handler.
    let known = eventually(Duration::from_secs(10), || async {
        seen.lock().unwrap().contains(&"known".to_owned()).then_some(())
    })
    .await;
    assert!(known.is_some());
    assert_eq!(*seen.lock().unwrap(), vec!["known".to_owned()]);
    shutdown.cancel();
    worker.await.unwrap().unwrap();
}

/// Issue 12.4: three replicas issuing ids at once (small requests and ones
/// larger than a first block) get unique, increasing ids that a JSON client
/// reading numbers as doubles holds exactly; a replica started afterwards
/// issues none of them again.
#[tokio::test]
async fn id_blocks_of_three_replicas_are_unique_json_safe_and_not_reissued_after_a_restart() {
    let env = TestEnv::start().await;
    let mut replicas = Vec::new();
    for r in 0..3 {
        let bus = smsfleet_bus::Bus::connect(&env.nats_url, env.ns.clone(), &format!("replica-{r}")).await.unwrap();
        replicas.push(IdBlocks::start(&bus).await.unwrap());
    }
    let mut tasks = Vec::new();
    for (r, blocks) in replicas.iter().enumerate() {
        for t in 0..4 {
            let issuer = blocks.issuer();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..300usize {
                    let n = if i % 100 == 99 { 5_000 } else { 1 + (i * 7 + t + r) % 40 };
                    let got = issuer.next_ids(n).await.expect("ids while NATS is up");
                    assert_eq!(got.len(), n);
                    ids.extend(got.into_iter().map(|id| id.0));
                }
                (r, ids)
            }));
        }
    }
    let mut all = Vec::new();
    for task in tasks {
        let (_, ids) = task.await.unwrap();
        // Each caller sees its replica's ids in increasing order.
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        all.extend(ids);
    }
    let issued = all.len();
    let json = serde_json::to_string(&all).unwrap();
    let as_doubles: Vec<f64> = serde_json::from_str(&json).unwrap();
    assert!(all.iter().zip(&as_doubles).all(|(id, d)| *d as i64 == *id && *id <= smsfleet_domain::ids::MAX_ID));
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), issued, "an id was issued twice");
    let largest = *all.last().unwrap();

    drop(replicas);
    let bus = smsfleet_bus::Bus::connect(&env.nats_url, env.ns.clone(), "restarted").await.unwrap();
    let restarted = IdBlocks::start(&bus).await.unwrap();
    let first = restarted.issuer().next_ids(1).await.unwrap()[0].0;
    assert!(first > largest, "a restarted replica reissued {first} (largest before: {largest})");

    // A counter lost with the NATS data is raised above the stored ids.
    smsfleet_bus::raise_id_counter(&bus, 40_000_000).await.unwrap();
    smsfleet_bus::raise_id_counter(&bus, 10).await.unwrap();
    let after = IdBlocks::start(&bus).await.unwrap().issuer().next_ids(1).await.unwrap()[0].0;
    assert!(after > 40_000_000, "{after}");
}

/// A quiet replica does not keep issuing ids from an old block while a
/// busy one moves the counter on: its block is replaced once it is older
/// than a couple of seconds, so ids stay roughly in time order.
#[tokio::test]
async fn a_quiet_replicas_ids_catch_up_with_a_busy_ones() {
    let env = TestEnv::start().await;
    let quiet_bus = smsfleet_bus::Bus::connect(&env.nats_url, env.ns.clone(), "quiet").await.unwrap();
    let quiet = IdBlocks::start(&quiet_bus).await.unwrap();
    let busy = IdBlocks::start(&env.bus).await.unwrap();
    let first_quiet = quiet.issuer().next_ids(1).await.unwrap()[0];
    let busy_last = *busy.issuer().next_ids(20_000).await.unwrap().last().unwrap();
    assert!(busy_last > first_quiet);
    let caught_up = eventually(Duration::from_secs(15), || async {
        let id = quiet.issuer().next_ids(1).await?[0];
        (id > busy_last).then_some(id)
    })
    .await;
    assert!(caught_up.is_some(), "the quiet replica still issues ids below {busy_last:?}");
}

/// No id is issued without a block: once NATS is gone and the blocks held
/// are used up, requests get none (promptly, not after a hang), and ids
/// come again, above the earlier ones, when NATS is back.
#[tokio::test]
async fn no_ids_without_a_block_while_nats_is_down() {
    let mut nats = PrivateNats::start().await;
    let ns = smsfleet_contract::Namespace::new("idsoutage").unwrap();
    let bus = smsfleet_bus::Bus::connect(&nats.url(), ns, "ids-outage").await.unwrap();
    bus.provision().await.unwrap();
    let blocks = IdBlocks::start(&bus).await.unwrap();
    let issuer = blocks.issuer();
    let before = issuer.next_ids(10).await.unwrap();
    nats.stop().await;
    let refused =
        eventually(Duration::from_secs(30), || async { issuer.next_ids(500).await.is_none().then_some(()) }).await;
    assert!(refused.is_some(), "ids were issued without a block");
    nats.restart().await;
    let again = eventually(Duration::from_secs(30), || async { issuer.next_ids(1).await }).await;
    assert!(again.unwrap()[0] > *before.last().unwrap());
}

#[tokio::test]
async fn state_feed_replays_last_values_then_follows() {
    let env = TestEnv::start().await;
    let subject = env.ns.balance_state_subject(7);
    for rev in 1..=3 {
        let b = BalanceState { v: SCHEMA_VERSION, uid: 7, revision: rev, balance: format!("{rev}") };
        env.bus.publish_state(subject.clone(), &b).await.unwrap();
    }
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let mut feed = StateFeed::start(&env.bus, move |e| {
        if let StateEvent::Balance(b) = e {
            s.lock().unwrap().push(b.revision);
        }
    })
    .await
    .unwrap();
    feed.wait_caught_up(Duration::from_secs(10)).await.unwrap();
    // Only the last value per subject is replayed.
    assert_eq!(*seen.lock().unwrap(), vec![3]);
    let b = BalanceState { v: SCHEMA_VERSION, uid: 7, revision: 4, balance: "4".into() };
    env.bus.publish_state(subject, &b).await.unwrap();
    let followed =
        eventually(Duration::from_secs(5), || async { (seen.lock().unwrap().last() == Some(&4)).then_some(()) }).await;
    assert!(followed.is_some());
}

/// Issue 12.1: the feed must report caught-up on every fresh start, even
/// when the snapshots are republished during its replay (as the accounts
/// role does at its own start-up), so that no replayed message need carry a
/// pending count of 0.
#[tokio::test]
async fn state_feed_catches_up_on_fifty_fresh_starts_while_snapshots_are_republished() {
    const SUBJECTS: i64 = 2;
    let env = TestEnv::start().await;
    let snapshot = |uid: i64, revision: i64| BalanceState { v: SCHEMA_VERSION, uid, revision, balance: "1".into() };
    let mut failed = Vec::new();
    for start in 1..=50 {
        // A fresh namespace per start, as a fresh `smsfleet all` has.
        let ns = smsfleet_contract::Namespace::new(&format!("{}s{start}", env.ns.as_str())).unwrap();
        let bus = smsfleet_bus::Bus::connect(&env.nats_url, ns.clone(), "feed-start").await.unwrap();
        bus.provision().await.unwrap();
        for uid in 0..SUBJECTS {
            bus.publish_state(ns.balance_state_subject(uid), &snapshot(uid, 0)).await.unwrap();
        }
        let mut feed = StateFeed::start(&bus, |_| {}).await.unwrap();
        tokio::time::sleep(Duration::from_millis(start as u64 % 5)).await;
        for uid in 0..SUBJECTS {
            bus.publish_state(ns.balance_state_subject(uid), &snapshot(uid, 1)).await.unwrap();
        }
        if feed.wait_caught_up(Duration::from_secs(3)).await.is_err() {
            failed.push(start);
        }
    }
    assert!(failed.is_empty(), "these of 50 fresh starts did not catch up: {failed:?}");
}

fn fresh_namespace() -> smsfleet_contract::Namespace {
    smsfleet_contract::Namespace::new(&format!("r{}", rand::random::<u64>() % 1_000_000_000_000)).unwrap()
}

#[tokio::test]
async fn streams_get_the_configured_replica_count() {
    let env = TestEnv::start().await;
    let ns = fresh_namespace();
    let bus = smsfleet_bus::Bus::connect(&env.nats_url, ns.clone(), "test").await.unwrap();
    let bus = bus.with_stream_replicas(1).unwrap();
    bus.provision().await.unwrap();
    let mut stream = bus.jetstream().get_stream(ns.stream_name(StreamKind::Submit)).await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.num_replicas, 1);
    // Provisioning again with the same count changes nothing and succeeds.
    bus.provision().await.unwrap();
}

#[tokio::test]
async fn three_replicas_on_one_server_is_a_clear_error() {
    let env = TestEnv::start().await;
    // New streams…
    let bus = smsfleet_bus::Bus::connect(&env.nats_url, fresh_namespace(), "test").await.unwrap();
    let err = bus.with_stream_replicas(3).unwrap().provision().await.unwrap_err().to_string();
    assert!(err.contains("SMSFLEET_STREAM_REPLICAS=3 needs a JetStream cluster of at least 3 servers"), "{err}");
    // …and raising the replicas of existing ones (the test env's, R1).
    let bus = smsfleet_bus::Bus::connect(&env.nats_url, env.ns.clone(), "test").await.unwrap();
    let err = bus.with_stream_replicas(3).unwrap().provision().await.unwrap_err().to_string();
    assert!(err.contains("needs a JetStream cluster of at least 3 servers"), "{err}");
    // Out of JetStream's range before any server is asked.
    for bad in [0, 6] {
        let bus = smsfleet_bus::Bus::connect(&env.nats_url, env.ns.clone(), "test").await.unwrap();
        assert!(bus.with_stream_replicas(bad).is_err());
    }
}

/// Three nats-servers forming one JetStream cluster on free local ports,
/// stopped (and their store removed) when dropped.
struct Cluster {
    children: Vec<std::process::Child>,
    dir: std::path::PathBuf,
    url: String,
}

impl Cluster {
    fn start() -> Cluster {
        let free_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("smsfleet-cluster-{}", rand::random::<u64>()));
        let (client, route): (Vec<u16>, Vec<u16>) = (0..3).map(|_| (free_port(), free_port())).unzip();
        let routes: Vec<String> = route.iter().map(|p| format!("nats-route://127.0.0.1:{p}")).collect();
        let mut children = Vec::new();
        for i in 0..3 {
            let store = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&store).unwrap();
            let conf = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: {:?} }}\n\
                 cluster {{ name: smsfleet-test, listen: 127.0.0.1:{}, routes: [{}] }}\n",
                client[i],
                store.display().to_string(),
                route[i],
                routes.join(", ")
            );
            let conf_path = dir.join(format!("n{i}.conf"));
            std::fs::write(&conf_path, conf).unwrap();
            let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
                .into_iter()
                .find(|p| std::path::Path::new(p).exists())
                .unwrap_or("nats-server");
            children.push(
                std::process::Command::new(bin)
                    .arg("-c")
                    .arg(&conf_path)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
            );
        }
        let url = client.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
        Cluster { children, dir, url }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// On a real 3-node cluster (reached through the server list), R1 streams
/// are raised to R3 and keep a copy on every node.
#[tokio::test]
async fn a_three_node_cluster_gets_streams_with_three_replicas() {
    let cluster = Cluster::start();
    let ns = fresh_namespace();
    // The meta leader takes a moment to be elected after the servers start.
    let provisioned = eventually(Duration::from_secs(20), || async {
        let bus = smsfleet_bus::Bus::connect(&cluster.url, ns.clone(), "test").await.ok()?;
        bus.provision().await.ok()?;
        Some(bus)
    })
    .await;
    let bus = provisioned.expect("R1 provisioning on the cluster");
    let bus = bus.with_stream_replicas(3).unwrap();
    bus.provision().await.unwrap();
    let copies = eventually(Duration::from_secs(20), || async {
        let mut stream = bus.jetstream().get_stream(ns.stream_name(StreamKind::Submit)).await.ok()?;
        let info = stream.info().await.ok()?;
        let followers = info.cluster.as_ref().map_or(0, |c| c.replicas.len());
        (info.config.num_replicas == 3 && followers == 2).then_some(followers + 1)
    })
    .await;
    assert_eq!(copies, Some(3));
    // A role started without the setting keeps the cluster's copies.
    let plain = smsfleet_bus::Bus::connect(&cluster.url, ns.clone(), "test").await.unwrap();
    plain.provision().await.unwrap();
    let mut stream = plain.jetstream().get_stream(ns.stream_name(StreamKind::Submit)).await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.num_replicas, 3);
}
