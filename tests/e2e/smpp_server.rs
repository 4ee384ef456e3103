//! The SMPP server for customers end to end (the SMPP upstream is `smpp.rs`), with real clients the tests
//! start: smpplib (PyPI, `tests/e2e/peers/smpplib_esme.py`, installed by
//! scripts/test.sh into target/python-peers) and node-smpp (npm,
//! `tests/e2e/node/smpp_esme.js`). Binds and their refusals, the accept
//! path behind submit_sm (ids `ds` shows, charged once), throughput, and
//! receipts that wait for the customer, also across restarts.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use smsfleet_testkit::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fleet::Fleet;

const PASSWORD: &str = "secretpass1";
const SMPP_PASSWORD: &str = "smpp8pwd";

const ROK: i64 = 0x00;
const RALYBND: i64 = 0x05;
const RBINDFAIL: i64 = 0x0D;
const RINVPASWD: i64 = 0x0E;
const RTHROTTLED: i64 = 0x58;

fn python() -> String {
    std::env::var("SMSFLEET_PYTHON_PEERS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/python-peers/bin/python3").to_owned())
}

/// Runs the smpplib ESME against `port`; returns its JSON events.
async fn smpplib(port: u16, system_id: &str, password: &str, args: &[&str]) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/peers/smpplib_esme.py");
    let out = tokio::process::Command::new(python())
        .arg(script)
        .args(args)
        .args(["--port", &port.to_string(), "--system-id", system_id, "--password", password])
        .output()
        .await
        .expect("run python (scripts/test.sh installs the Python peers into target/python-peers)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "smpplib ESME failed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect()
}

fn events<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter().filter(|e| e["event"] == kind).collect()
}

/// An account with an SMPP password and the given `account set` flags;
/// returns its webservices token.
async fn smpp_account(f: &Fleet, name: &str, set: &[&str]) -> String {
    let out = f.cli(&["account", "create", "--username", name, "--password", PASSWORD, "--role", "user"]).await;
    let token = out.split("token=").nth(1).expect("token printed").trim().to_owned();
    let mut args = vec!["account", "set", name, "--smpp-password", SMPP_PASSWORD];
    args.extend_from_slice(set);
    f.cli(&args).await;
    token
}

/// Binds once as `kind`; the bind's outcome (`bound` or the refusal status).
async fn bind_outcome(f: &Fleet, user: &str, password: &str, kind: &str) -> Value {
    let ev = smpplib(f.smpp_port(), user, password, &["binds", "--kind", kind]).await;
    ev.into_iter().next().expect("one event")
}

/// Retries a bind until it gives `want` (state changes take a moment to
/// reach the ingress): `"bound"` or a refusal status.
async fn until_bind(f: &Fleet, user: &str, kind: &str, want: Value) -> Value {
    let got = eventually(Duration::from_secs(10), || async {
        let e = bind_outcome(f, user, SMPP_PASSWORD, kind).await;
        let seen = if e["event"] == "bound" { Value::from("bound") } else { e["status"].clone() };
        (seen == want).then_some(e)
    })
    .await;
    got.unwrap_or_else(|| panic!("bind of {user} never gave {want}"))
}

async fn ds_rows(f: &Fleet, user: &str, token: &str) -> Vec<Value> {
    let q = [("u", user), ("h", token), ("op", "ds"), ("c", "10000")];
    f.ws(&q).await["data"].as_array().cloned().unwrap_or_default()
}

fn resp_ids(ev: &[Value]) -> Vec<String> {
    events(ev, "resp").iter().filter(|e| e["status"] == ROK).map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_and_every_refusal_with_its_status() {
    let mut f = Fleet::start(&[]).await;
    let admin_out =
        f.cli(&["account", "create", "--username", "boss", "--password", PASSWORD, "--role", "admin"]).await;
    let admin = admin_out.split("token=").nth(1).unwrap().trim().to_owned();
    smpp_account(&f, "carol", &["--max-binds", "2"]).await;

    for kind in ["tx", "rx", "trx"] {
        until_bind(&f, "carol", kind, Value::from("bound")).await;
    }
    let wrong = bind_outcome(&f, "carol", "wrongpw1", "trx").await;
    assert_eq!(wrong["status"], RINVPASWD, "{wrong}");
    let unknown = bind_outcome(&f, "nobody", SMPP_PASSWORD, "trx").await;
    assert_eq!(unknown["status"], RINVPASWD, "{unknown}");

    // max_binds 2: the third bind held at the same time is refused.
    let three = smpplib(f.smpp_port(), "carol", SMPP_PASSWORD, &["binds", "--count", "3"]).await;
    let seen: Vec<Value> =
        three.iter().map(|e| if e["event"] == "bound" { "bound".into() } else { e["status"].clone() }).collect();
    assert_eq!(seen, vec![Value::from("bound"), "bound".into(), RALYBND.into()], "{three:?}");

    // The limit holds across replicas: two binds held on one, the next on
    // another is refused, and binds again once they are gone.
    let other = crate::fleet::port();
    let listen = format!("127.0.0.1:{other}");
    f.spawn_ingress_replica_with(&[("SMSFLEET_SMPP_LISTEN", listen.as_str())]).await;
    let port = f.smpp_port();
    let holder =
        tokio::spawn(
            async move { smpplib(port, "carol", SMPP_PASSWORD, &["binds", "--count", "2", "--hold", "8"]).await },
        );
    let refused = eventually(Duration::from_secs(8), || async {
        let e = smpplib(other, "carol", SMPP_PASSWORD, &["binds"]).await.into_iter().next()?;
        (e["status"] == RALYBND).then_some(())
    })
    .await;
    assert!(refused.is_some(), "a third bind on the other replica is refused while two are held");
    let listed = f.cli(&["smpp", "sessions"]).await;
    let carol: Vec<&str> = listed.lines().filter(|l| l.split(' ').nth(2) == Some("carol")).collect();
    assert_eq!(carol.len(), 2, "the two held binds are listed: {listed}");
    assert!(carol.iter().all(|l| l.split(' ').nth(3) == Some("trx")), "{listed}");
    let held = holder.await.unwrap();
    assert_eq!(events(&held, "bound").len(), 2, "{held:?}");
    let again = eventually(Duration::from_secs(10), || async {
        let e = smpplib(other, "carol", SMPP_PASSWORD, &["binds"]).await.into_iter().next()?;
        (e["event"] == "bound").then_some(())
    })
    .await;
    assert!(again.is_some(), "freed slots are taken again");

    // Outside the allow-list, then back inside.
    f.cli(&["account", "set", "carol", "--webservices-ip", "10.9.9.9"]).await;
    until_bind(&f, "carol", "trx", RBINDFAIL.into()).await;
    f.cli(&["account", "set", "carol", "--webservices-ip", "127.0.0.1"]).await;
    until_bind(&f, "carol", "trx", "bound".into()).await;

    // Banned.
    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "accountban"), ("data_username", "carol")]).await;
    assert_eq!(r["status"], "OK", "{r}");
    until_bind(&f, "carol", "trx", RBINDFAIL.into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_are_accepted_shown_in_ds_and_receipted_with_the_same_ids() {
    let f = Fleet::start(&[]).await;
    let token = smpp_account(&f, "dave", &[]).await;
    let ev = smpplib(
        f.smpp_port(),
        "dave",
        SMPP_PASSWORD,
        &["submit", "--count", "20", "--window", "8", "--registered", "--receipts", "20"],
    )
    .await;
    let ids = resp_ids(&ev);
    assert_eq!(ids.len(), 20, "{ev:?}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 20, "distinct ids");
    let delivers = events(&ev, "deliver");
    assert_eq!(delivers.len(), 20, "every receipt arrived: {ev:?}");
    for d in &delivers {
        assert_eq!(d["esm_class"], 4, "{d}");
        let id = d["receipted_message_id"].as_str().unwrap();
        assert!(ids.iter().any(|i| i == id), "receipt {id} is for a submitted id");
        assert!(d["text"].as_str().unwrap().starts_with(&format!("id:{id} ")), "{d}");
        assert!(d["text"].as_str().unwrap().contains("stat:DELIVRD"), "{d}");
    }
    let rows = ds_rows(&f, "dave", &token).await;
    for id in &ids {
        let row = rows
            .iter()
            .find(|r| r["smslog_id"].as_i64().map(|n| n.to_string()).as_ref() == Some(id))
            .unwrap_or_else(|| panic!("{id} not in ds"));
        assert_eq!(row["dst"], "628111000001");
        assert_eq!(row["msg"], "hello from smpplib");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_accounts_throughput_is_throttled_and_recovers() {
    let f = Fleet::start(&[]).await;
    smpp_account(&f, "erin", &["--smpp-throughput", "50"]).await;
    until_bind(&f, "erin", "tx", "bound".into()).await;
    // 200 submits within about a second at a 50/s account.
    let ev = smpplib(
        f.smpp_port(),
        "erin",
        SMPP_PASSWORD,
        &["submit", "--kind", "tx", "--count", "200", "--rate", "200", "--window", "20"],
    )
    .await;
    let resps = events(&ev, "resp");
    assert_eq!(resps.len(), 200, "every submit answered");
    let ok = resps.iter().filter(|e| e["status"] == ROK).count();
    let throttled = resps.iter().filter(|e| e["status"] == RTHROTTLED).count();
    assert_eq!(ok + throttled, 200, "only accepted or throttled: {ev:?}");
    // One second's worth at start plus what refills during the burst; the
    // window is counted generously (the burst may take up to ~2 s here).
    assert!((50..=160).contains(&ok), "accepted {ok}");
    assert!(throttled >= 40, "throttled {throttled}");
    // Within the limit, everything passes again.
    let ev = smpplib(
        f.smpp_port(),
        "erin",
        SMPP_PASSWORD,
        &["submit", "--kind", "tx", "--count", "20", "--rate", "10", "--window", "5"],
    )
    .await;
    assert_eq!(resp_ids(&ev).len(), 20, "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_submits_on_four_binds_get_distinct_ids_each_charged_once() {
    let mut f = Fleet::prepare(&[]).await;
    smsfleet_store::rates::set_default(&f.env.pool, "1".parse().unwrap()).await.unwrap();
    f.start_roles().await;
    let token = smpp_account(&f, "gina", &["--max-binds", "4"]).await;
    f.cli(&["account", "credit", "--username", "gina", "--amount", "1000"]).await;
    until_bind(&f, "gina", "tx", "bound".into()).await;
    let port = f.smpp_port();
    let runs = (0..4).map(|i| async move {
        let to = format!("62811100{i:04}");
        smpplib(
            port,
            "gina",
            SMPP_PASSWORD,
            &["submit", "--kind", "tx", "--count", "250", "--window", "64", "--to", &to],
        )
        .await
    });
    let mut set = tokio::task::JoinSet::new();
    for run in runs {
        set.spawn(run);
    }
    let all: Vec<Vec<Value>> = set.join_all().await;
    let ids: Vec<String> = all.iter().flat_map(|ev| resp_ids(ev)).collect();
    assert_eq!(ids.len(), 1000, "every submit accepted");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000, "distinct ids");
    let rows = eventually(Duration::from_secs(30), || async {
        let rows = ds_rows(&f, "gina", &token).await;
        (rows.len() >= 1000).then_some(rows)
    })
    .await
    .expect("all 1000 in ds");
    let shown: HashSet<String> = rows.iter().map(|r| r["smslog_id"].to_string()).collect();
    assert!(ids.iter().all(|id| shown.contains(id)), "every id in ds");
    let uid = smsfleet_store::accounts::by_username(&f.env.pool, "gina").await.unwrap().unwrap().uid;
    let charged = eventually(Duration::from_secs(30), || async {
        let (amount, messages) = smsfleet_store::ledger::charged_total(&f.env.pool, uid).await.ok()?;
        (messages >= 1000).then_some((amount, messages))
    })
    .await
    .expect("charged");
    assert_eq!(charged, ("1000".parse().unwrap(), 1000), "each charged once at the rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_wait_for_an_offline_customer_also_across_a_restart() {
    let mut f = Fleet::start(&[]).await;
    let token = smpp_account(&f, "hank", &[]).await;
    until_bind(&f, "hank", "tx", "bound".into()).await;
    let ev =
        smpplib(f.smpp_port(), "hank", SMPP_PASSWORD, &["submit", "--kind", "tx", "--count", "10", "--registered"])
            .await;
    let ids: HashSet<String> = resp_ids(&ev).into_iter().collect();
    assert_eq!(ids.len(), 10, "{ev:?}");
    // Delivered upstream while nobody is bound to receive.
    eventually(Duration::from_secs(30), || async {
        let rows = ds_rows(&f, "hank", &token).await;
        (rows.len() == 10 && rows.iter().all(|r| r["status"] == 3)).then_some(())
    })
    .await
    .expect("delivered");
    f.wait_consumer_idle(smsfleet_contract::StreamKind::Status, "callbacks").await;
    // Every replica that touches receipts restarts.
    f.kill9("ingress").await;
    f.kill9("callbacks").await;
    f.spawn("callbacks").await;
    f.spawn("ingress").await;
    let ev = smpplib(f.smpp_port(), "hank", SMPP_PASSWORD, &["receive", "--kind", "rx", "--count", "10"]).await;
    let got: HashSet<String> =
        events(&ev, "deliver").iter().map(|d| d["receipted_message_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(got, ids, "every receipt, each for its submit_sm_resp id");
    // Acked: a new receiver gets nothing more.
    let again = smpplib(f.smpp_port(), "hank", SMPP_PASSWORD, &["receive", "--kind", "rx", "--idle", "3"]).await;
    assert!(events(&again, "deliver").is_empty(), "{again:?}");
}

/// Submitted on one replica, received on another: the receipts go to
/// whichever replica holds the account's receiver bind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_reach_a_receiver_bound_to_another_replica() {
    let mut f = Fleet::start(&[]).await;
    smpp_account(&f, "jill", &[]).await;
    let other = crate::fleet::port();
    let listen = format!("127.0.0.1:{other}");
    f.spawn_ingress_replica_with(&[("SMSFLEET_SMPP_LISTEN", listen.as_str())]).await;
    until_bind(&f, "jill", "tx", "bound".into()).await;
    let receiver = tokio::spawn(async move {
        smpplib(other, "jill", SMPP_PASSWORD, &["receive", "--kind", "rx", "--count", "5", "--idle", "30"]).await
    });
    let ev = smpplib(f.smpp_port(), "jill", SMPP_PASSWORD, &["submit", "--kind", "tx", "--count", "5", "--registered"])
        .await;
    let ids: HashSet<String> = resp_ids(&ev).into_iter().collect();
    assert_eq!(ids.len(), 5, "{ev:?}");
    let got = receiver.await.unwrap();
    let receipts: HashSet<String> =
        events(&got, "deliver").iter().map(|d| d["receipted_message_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(receipts, ids, "{got:?}");
}

/// Long texts: in one `message_payload`, or split by the client into UDH
/// parts (each part answered with the one message's id), charged per part
/// and shown whole in `ds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_messages_whole_or_in_parts_are_one_message_charged_per_part() {
    let mut f = Fleet::prepare(&[]).await;
    smsfleet_store::rates::set_default(&f.env.pool, "1".parse().unwrap()).await.unwrap();
    f.start_roles().await;
    let token = smpp_account(&f, "mona", &[]).await;
    f.cli(&["account", "credit", "--username", "mona", "--amount", "100"]).await;
    until_bind(&f, "mona", "trx", "bound".into()).await;
    let long: String = (0..30).map(|i| format!("word{i:02} ")).collect(); // 240 characters: 2 parts
    let whole = smpplib(
        f.smpp_port(),
        "mona",
        SMPP_PASSWORD,
        &["submit", "--payload", "--text", &long, "--registered", "--receipts", "1", "--to", "628111000101"],
    )
    .await;
    let split = smpplib(
        f.smpp_port(),
        "mona",
        SMPP_PASSWORD,
        &["submit", "--split", "--text", &long, "--registered", "--receipts", "1", "--to", "628111000102"],
    )
    .await;
    assert_eq!(resp_ids(&whole).len(), 1, "{whole:?}");
    let part_ids = resp_ids(&split);
    assert_eq!(part_ids.len(), 2, "one resp per part: {split:?}");
    assert_eq!(part_ids[0], part_ids[1], "both parts carry the message's id");
    for (ev, id) in [(&whole, resp_ids(&whole)[0].clone()), (&split, part_ids[0].clone())] {
        let receipts = events(ev, "deliver");
        assert_eq!(receipts.len(), 1, "{ev:?}");
        assert_eq!(receipts[0]["receipted_message_id"], id.as_str());
    }
    let rows = ds_rows(&f, "mona", &token).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["msg"] == long.as_str()), "{rows:?}");
    let uid = smsfleet_store::accounts::by_username(&f.env.pool, "mona").await.unwrap().unwrap().uid;
    let (charged, _) = smsfleet_store::ledger::charged_total(&f.env.pool, uid).await.unwrap();
    assert_eq!(charged, "4".parse().unwrap(), "2 messages of 2 parts at 1 each");
}

/// kill -9 of the ingress in the middle of a stream of submits: every
/// submit that got a resp is delivered exactly once, charged once; those
/// that got none may have been stored (then they are sent and charged
/// once too) but never twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_ingress_mid_stream_loses_no_answered_submit_and_sends_none_twice() {
    let mut f = Fleet::prepare(&[]).await;
    smsfleet_store::rates::set_default(&f.env.pool, "1".parse().unwrap()).await.unwrap();
    f.start_roles().await;
    let token = smpp_account(&f, "nina", &[]).await;
    f.cli(&["account", "credit", "--username", "nina", "--amount", "10000"]).await;
    until_bind(&f, "nina", "tx", "bound".into()).await;
    let uid = smsfleet_store::accounts::by_username(&f.env.pool, "nina").await.unwrap().unwrap().uid;
    let port = f.smpp_port();
    let client = tokio::spawn(async move {
        smpplib(port, "nina", SMPP_PASSWORD, &["submit", "--kind", "tx", "--count", "5000", "--window", "64"]).await
    });
    let seen = eventually(Duration::from_secs(60), || async {
        let (_, n) = smsfleet_store::ledger::charged_total(&f.env.pool, uid).await.ok()?;
        (n >= 300).then_some(n)
    })
    .await
    .expect("submits flowing");
    f.kill9("ingress").await;
    let ev = client.await.unwrap();
    assert!(!events(&ev, "closed").is_empty() || seen >= 5000, "the client saw its connection die: {:?}", ev.last());
    let answered: HashSet<i64> = resp_ids(&ev).iter().map(|id| id.parse().unwrap()).collect();
    assert!(answered.len() < 5000, "killed in the middle");
    f.spawn("ingress").await;
    // Everything stored is delivered; nothing is left behind or doubled.
    f.wait_consumer_idle(smsfleet_contract::StreamKind::Submit, "ledger").await;
    let stored = eventually(Duration::from_secs(120), || async {
        let counts = smsfleet_store::projection::status_counts(&f.env.pool, Some(uid)).await.ok()?;
        let (_, charged) = smsfleet_store::ledger::charged_total(&f.env.pool, uid).await.ok()?;
        (counts.len() == 1 && counts[0].0 == 3 && counts[0].1 == charged).then_some(charged)
    })
    .await
    .expect("every stored message delivered");
    assert!(stored as usize >= answered.len(), "stored {stored} < answered {}", answered.len());
    let rows = ds_rows(&f, "nina", &token).await;
    let ids: HashSet<i64> = rows.iter().map(|r| r["smslog_id"].as_i64().unwrap()).collect();
    assert_eq!((ids.len(), rows.len()), (stored as usize, stored as usize), "each stored message once in ds");
    assert!(answered.iter().all(|id| ids.contains(id)), "every answered submit is stored and delivered");
    let stats = f.sim_stats().await;
    assert_eq!(stats["accepted"].as_u64(), Some(stored as u64), "sent once each: {stats}");
    assert_eq!(stats["duplicate_submits"].as_u64(), Some(0), "{stats}");
}

/// An MO whose keyword the account owns waits for its receiver bind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_routed_by_keyword_reaches_the_accounts_receiver() {
    let f = Fleet::start(&[]).await;
    smpp_account(&f, "lena", &[]).await;
    f.cli(&["keyword", "add", "LENA", "--user", "lena"]).await;
    let url = format!("{}/mo/sim", f.dlr);
    let q = [("from", "+628999000001"), ("to", "1234"), ("text", "LENA hello there"), ("id", "up-smpp-1")];
    let r = reqwest::Client::new().get(&url).query(&q).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ev = smpplib(f.smpp_port(), "lena", SMPP_PASSWORD, &["receive", "--kind", "rx", "--count", "1"]).await;
    let mo = events(&ev, "deliver");
    assert_eq!(mo.len(), 1, "{ev:?}");
    assert_eq!((mo[0]["esm_class"].as_i64(), mo[0]["text"].as_str()), (Some(0), Some("LENA hello there")), "{ev:?}");
    assert_eq!(mo[0]["source"], "+628999000001");
}

/// SMPP over TLS on its own port: a bind and a submit with smpplib over
/// TLS, the certificate checked against the test's CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpp_over_tls_binds_and_submits() {
    let mut f = Fleet::start(&[]).await;
    smpp_account(&f, "olga", &[]).await;
    let dir = std::env::temp_dir().join(format!("smsfleet-smpp-tls-{}-{}", std::process::id(), crate::fleet::port()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = tokio::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .await
        .expect("openssl");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let tls = crate::fleet::port();
    let listen = format!("127.0.0.1:{tls}");
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    f.spawn_ingress_replica_with(&[
        ("SMSFLEET_SMPP_TLS_LISTEN", listen.as_str()),
        ("SMSFLEET_SMPP_TLS_CERT", cert_s.as_str()),
        ("SMSFLEET_SMPP_TLS_KEY", key_s.as_str()),
    ])
    .await;
    let ev = smpplib(tls, "olga", SMPP_PASSWORD, &["submit", "--tls-ca", &cert_s, "--count", "3"]).await;
    assert_eq!(resp_ids(&ev).len(), 3, "{ev:?}");
    // The TLS port speaks nothing but TLS.
    let plain = smpplib(tls, "olga", SMPP_PASSWORD, &["binds", "--timeout", "3"]).await;
    assert!(events(&plain, "bound").is_empty(), "{plain:?}");
}

/// node-smpp (npm) as a second client: its ids and receipts agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_smpp_client_gets_ids_and_matching_receipts() {
    let f = Fleet::start(&[]).await;
    smpp_account(&f, "kate", &[]).await;
    until_bind(&f, "kate", "trx", "bound".into()).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/node");
    let out = tokio::process::Command::new("node")
        .arg("smpp_esme.js")
        .current_dir(dir)
        .env("SMSFLEET_SMPP_PORT", f.smpp_port().to_string())
        .env("SMSFLEET_USER", "kate")
        .env("SMSFLEET_PASSWORD", SMPP_PASSWORD)
        .env("SMSFLEET_COUNT", "3")
        .output()
        .await
        .expect("run node (npm ci done in tests/e2e/node?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "node failed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    let ev: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ids: HashSet<String> = resp_ids(&ev).into_iter().collect();
    assert_eq!(ids.len(), 3, "{ev:?}");
    let receipts: HashSet<String> =
        events(&ev, "deliver").iter().map(|d| d["receipted_message_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(receipts, ids, "{ev:?}");
}

/// A bound transmitter sends garbage: each gets generic_nack or an error
/// response, and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_pdus_get_nacks_and_the_server_keeps_serving() {
    let f = Fleet::start(&[]).await;
    smpp_account(&f, "ivan", &[]).await;
    until_bind(&f, "ivan", "tx", "bound".into()).await;
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", f.smpp_port())).await.unwrap();
    let pdu = |id: u32, seq: u32, body: &[u8]| {
        let mut v = Vec::new();
        v.extend_from_slice(&((16 + body.len()) as u32).to_be_bytes());
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(body);
        v
    };
    let mut bind_body = Vec::new();
    for field in ["ivan", SMPP_PASSWORD, ""] {
        bind_body.extend_from_slice(field.as_bytes());
        bind_body.push(0);
    }
    bind_body.extend_from_slice(&[0x34, 0, 0, 0]);
    tcp.write_all(&pdu(0x0000_0002, 1, &bind_body)).await.unwrap();
    assert_eq!(read_pdu(&mut tcp).await, (0x8000_0002, 0, 1), "bound as transmitter");
    // Unknown command id.
    tcp.write_all(&pdu(0x0000_0777, 2, &[])).await.unwrap();
    assert_eq!(read_pdu(&mut tcp).await, (0x8000_0000, 0x03, 2), "generic_nack ESME_RINVCMDID");
    // A submit_sm truncated in the middle of its C-strings.
    tcp.write_all(&pdu(0x0000_0004, 3, b"\0\x01\x01123")).await.unwrap();
    let (id, status, seq) = read_pdu(&mut tcp).await;
    assert!(id == 0x8000_0000 || id == 0x8000_0004, "nack or submit_sm_resp, got {id:#x}");
    assert!(status != 0 && seq == 3, "an error status for seq 3, got {status:#x}/{seq}");
    // A source_addr longer than its 21 octets.
    let mut long = vec![0u8, 1, 1];
    long.extend_from_slice(&[b'9'; 40]);
    long.push(0);
    tcp.write_all(&pdu(0x0000_0004, 4, &long)).await.unwrap();
    let (_, status, seq) = read_pdu(&mut tcp).await;
    assert!(status != 0 && seq == 4, "an error for seq 4");
    // Oversize: a length far above the maximum PDU size.
    let mut huge = Vec::new();
    huge.extend_from_slice(&(1_000_000u32).to_be_bytes());
    huge.extend_from_slice(&0x0000_0004u32.to_be_bytes());
    huge.extend_from_slice(&0u32.to_be_bytes());
    huge.extend_from_slice(&5u32.to_be_bytes());
    let _ = tcp.write_all(&huge).await;
    drop(tcp);
    // The server is alive and binds the next customer.
    until_bind(&f, "ivan", "trx", "bound".into()).await;
}

/// Reads one PDU header (and skips its body): (command_id, status, sequence).
async fn read_pdu(tcp: &mut tokio::net::TcpStream) -> (u32, u32, u32) {
    let fut = async {
        let mut head = [0u8; 16];
        tcp.read_exact(&mut head).await.unwrap();
        let word = |i: usize| u32::from_be_bytes(head[i..i + 4].try_into().unwrap());
        let mut body = vec![0u8; word(0) as usize - 16];
        tcp.read_exact(&mut body).await.unwrap();
        (word(4), word(8), word(12))
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.expect("a response within 10 s")
}
