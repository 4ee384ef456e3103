//! The chaos suite (issue 14): a fleet of separate `smsfleet <role>`
//! processes under a steady `pv` load while one fault is injected per
//! scenario, then a check of what every client was told against what
//! happened: lost (answered OK, never delivered), sent twice or sent
//! unasked (the simulator accepted more than was answered OK), and charge
//! mismatches (messages charged against messages answered OK).
//! `scripts/chaos.sh` runs it; `--short` is the CI form. It fails on a
//! lost, duplicated or wrongly charged message, never on a timing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use smsfleet_localinfra::{NatsServer, PostgresOptions, PostgresServer};

use crate::fleet::{Fleet, FleetSpec, Infra};

/// Lets the load run this long before the fault and after recovery.
const STEADY: Duration = Duration::from_secs(5);
/// How long everything answered OK may take to be delivered after the fault.
const SETTLE: Duration = Duration::from_secs(180);

/// A stop flag the load tasks poll.
#[derive(Clone, Default)]
struct Stop(Arc<AtomicBool>);

impl Stop {
    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// One fault.
#[derive(Debug, Clone)]
pub enum Fault {
    /// SIGKILL of a fleet process, started again (as a supervisor would).
    Kill9(&'static str),
    /// nats-server stopped (SIGTERM, or SIGKILL), down for a while, started again on its store.
    Nats { kill: bool, down: Duration },
    /// PostgreSQL stopped (fast shutdown), down for a while, started again.
    Postgres { down: Duration },
    /// On a 3-node cluster with R3 streams: SIGKILL of the SUBMIT
    /// stream's leader, started again after a while.
    SubmitLeader { down: Duration },
}

impl Fault {
    pub fn name(&self) -> String {
        match self {
            Fault::Kill9(role) => format!("kill -9 {role}"),
            Fault::Nats { kill: false, down } if down.is_zero() => "nats-server restart".to_owned(),
            Fault::Nats { kill: true, down } if down.is_zero() => "nats-server kill -9".to_owned(),
            Fault::Nats { kill, down } => {
                format!("nats-server {} and {} s outage", if *kill { "kill -9" } else { "stop" }, down.as_secs())
            }
            Fault::Postgres { down } if down.is_zero() => "PostgreSQL restart".to_owned(),
            Fault::Postgres { down } => format!("PostgreSQL {} s outage", down.as_secs()),
            Fault::SubmitLeader { down } => {
                format!("3-node cluster, R3: kill -9 of the SUBMIT leader, back after {} s", down.as_secs())
            }
        }
    }
}

/// Every fault of the full table, in order.
pub fn full() -> Vec<Fault> {
    let mut faults: Vec<Fault> =
        ["ingress", "accounts", "ledger", "scheduler", "dispatcher-1", "dlr", "query", "callbacks"]
            .into_iter()
            .map(Fault::Kill9)
            .collect();
    faults.extend([
        Fault::Nats { kill: false, down: Duration::ZERO },
        Fault::Nats { kill: true, down: Duration::ZERO },
        Fault::Nats { kill: false, down: Duration::from_secs(30) },
        Fault::Postgres { down: Duration::ZERO },
        Fault::Postgres { down: Duration::from_secs(10) },
        Fault::Postgres { down: Duration::from_secs(60) },
        Fault::SubmitLeader { down: Duration::from_secs(10) },
    ]);
    faults
}

/// The CI form: kill -9 of each role that holds work in flight, and one
/// graceful NATS restart.
pub fn short() -> Vec<Fault> {
    vec![
        Fault::Kill9("ingress"),
        Fault::Kill9("ledger"),
        Fault::Kill9("dispatcher-1"),
        Fault::Kill9("dlr"),
        Fault::Kill9("query"),
        Fault::Nats { kill: false, down: Duration::ZERO },
    ]
}

/// One row of the table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub accepted: u64,
    pub errors: BTreeMap<String, u64>,
    pub lost: u64,
    /// Accepted by the upstream beyond what was answered OK and the
    /// unanswered requests that were stored after all: sent twice, or sent
    /// although the client was told it failed.
    pub sent_twice: u64,
    /// Submits the dispatcher repeated after a crash left their outcome
    /// unknown, which the upstream de-duplicated by reference (the
    /// simulator route's `resend=true`): not sent twice on the air.
    pub resubmits_deduplicated: u64,
    pub charge_mismatches: u64,
    pub self_recovered: bool,
    /// The longest time without an OK answer from the fault on (its
    /// restart included); `None` when no OK came after the fault was over.
    pub recovery_s: Option<f64>,
    pub note: Option<String>,
}

impl Outcome {
    pub fn clean(&self) -> bool {
        self.note.is_none() && self.lost == 0 && self.sent_twice == 0 && self.charge_mismatches == 0
    }
}

/// What the clients were told.
#[derive(Default)]
struct Told {
    /// Destinations answered OK.
    accepted: BTreeSet<u64>,
    /// Destinations whose request got no answer at all (the connection was
    /// cut, e.g. by kill -9 of the ingress, or timed out): the client cannot
    /// know whether they were stored, so each may be sent (and charged)
    /// once, never more.
    in_doubt: BTreeSet<u64>,
    errors: BTreeMap<String, u64>,
    /// When each OK came (for the recovery time).
    ok_times: Vec<Instant>,
}

fn pv_url(ingress: &str, token: &str, n: u64) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("app", "ws")
        .append_pair("u", "bench")
        .append_pair("h", token)
        .append_pair("op", "pv")
        .append_pair("msg", "chaos")
        .append_pair("to", &format!("628{n:09}"))
        .finish();
    format!("{ingress}/index.php?{q}")
}

/// The answer's class: `OK`, `ERR <code>`, an HTTP status, or a transport error.
fn classify(result: Result<(u16, String), reqwest::Error>) -> String {
    match result {
        Ok((200, body)) => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let item = v.get("data").and_then(|d| d.get(0)).unwrap_or(&v);
            match (item.get("status").and_then(|s| s.as_str()), item.get("error").and_then(|e| e.as_str())) {
                (Some("OK"), _) => "OK".to_owned(),
                (_, Some(code)) => format!("ERR {code}"),
                _ => "unreadable".to_owned(),
            }
        }
        Ok((status, _)) => format!("HTTP {status}"),
        Err(e) if e.is_timeout() => "timeout".to_owned(),
        Err(_) => "connection".to_owned(),
    }
}

/// `connections` clients sending one-destination `pv`s, each to a number
/// no other request uses, until `stop`.
fn start_load(
    ingress: String,
    token: String,
    connections: u64,
    told: Arc<Mutex<Told>>,
    stop: Stop,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..connections)
        .map(|c| {
            let (ingress, token, told, stop) = (ingress.clone(), token.clone(), told.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
                let mut i = 0u64;
                while !stop.is_set() {
                    let n = c * 100_000_000 + i;
                    i += 1;
                    let sent = http.get(pv_url(&ingress, &token, n)).send().await;
                    let answer = match sent {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            r.text().await.map(|body| (status, body))
                        }
                        Err(e) => Err(e),
                    };
                    let class = classify(answer);
                    let ok = class == "OK";
                    {
                        let mut t = told.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if ok {
                            t.accepted.insert(n);
                            t.ok_times.push(Instant::now());
                        } else {
                            if class == "connection" || class == "timeout" {
                                t.in_doubt.insert(n);
                            }
                            *t.errors.entry(class).or_default() += 1;
                        }
                    }
                    if !ok {
                        // A refused client backs off a little, as real ones do.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    // A steady, modest load: about 40 requests/s per client.
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            })
        })
        .collect()
}

/// Waits for a TCP port to stop accepting connections.
async fn wait_port_closed(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signal(pid: Option<u32>, sig: Signal) -> anyhow::Result<()> {
    let pid = pid.context("server has no pid")?;
    kill(Pid::from_raw(i32::try_from(pid)?), sig).context("signalling the server")?;
    Ok(())
}

/// Injects `fault`; returns when everything is back (the server or process running again).
async fn inject(fault: &Fault, infra: &mut Infra, fleet: &mut Fleet) -> anyhow::Result<()> {
    match fault {
        Fault::Kill9(name) => {
            fleet.kill9(name).await?;
            fleet.respawn(name).await
        }
        Fault::Nats { kill: hard, down } => {
            let port = infra.nats.port();
            signal(infra.nats.pid(), if *hard { Signal::SIGKILL } else { Signal::SIGTERM })?;
            wait_port_closed(port).await;
            tokio::time::sleep(*down).await;
            let again = NatsServer::start_on(&infra.dir().join("nats"), port).await?;
            drop(std::mem::replace(&mut infra.nats, again));
            Ok(())
        }
        Fault::SubmitLeader { down } => kill_submit_leader(infra, fleet, *down).await,
        Fault::Postgres { down } => {
            let port = infra.pg.port();
            // Fast shutdown: clients are disconnected, as in an operator's restart.
            signal(infra.pg.pid(), Signal::SIGINT)?;
            wait_port_closed(port).await;
            tokio::time::sleep(*down).await;
            let opts = PostgresOptions { fast: true, port: Some(port) };
            let again = PostgresServer::start(&infra.dir().join("pg"), opts).await?;
            drop(std::mem::replace(&mut infra.pg, again));
            Ok(())
        }
    }
}

/// Member `i` of the cluster, on its ports and store, routed to the others.
async fn start_member(infra: &Infra, i: usize) -> anyhow::Result<NatsServer> {
    let (port, cluster_port) = infra.cluster_ports[i];
    let routes: Vec<u16> = infra.cluster_ports.iter().filter(|(p, _)| *p != port).map(|(_, c)| *c).collect();
    let dir = infra.dir().join(format!("cluster-{i}"));
    Ok(NatsServer::start_clustered(&dir, port, &format!("n{i}"), cluster_port, &routes).await?)
}

/// Starts a 3-node cluster for the next fleets and waits until JetStream
/// has a meta leader.
async fn start_cluster(infra: &mut Infra) -> anyhow::Result<()> {
    infra.cluster_ports = (0..3)
        .map(|_| Ok((smsfleet_localinfra::free_port()?, smsfleet_localinfra::free_port()?)))
        .collect::<anyhow::Result<_>>()?;
    for i in 0..3 {
        let member = start_member(infra, i).await?;
        infra.cluster.push(member);
    }
    let js = async_nats::jetstream::new(async_nats::connect(infra.cluster[0].url()).await?);
    let mut last = String::new();
    for _ in 0..600 {
        // An R3 stream can be made only once the cluster has a meta leader.
        let probe = async_nats::jetstream::stream::Config {
            name: "CHAOS_PROBE".to_owned(),
            subjects: vec!["chaos.probe".to_owned()],
            num_replicas: 3,
            ..Default::default()
        };
        match js.get_or_create_stream(probe).await {
            Ok(_) => {
                js.delete_stream("CHAOS_PROBE").await?;
                return Ok(());
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the cluster elected no JetStream meta leader ({last})")
}

/// SIGKILLs the member leading the fleet's SUBMIT stream, keeps it down
/// for `down`, starts it again on its store.
async fn kill_submit_leader(infra: &mut Infra, fleet: &Fleet, down: Duration) -> anyhow::Result<()> {
    // Any member will do: the client learns the others from it.
    let js = async_nats::jetstream::new(async_nats::connect(infra.cluster[0].url()).await?);
    let name = format!("{}_SUBMIT", fleet.namespace().to_ascii_uppercase());
    let info = js.get_stream(&name).await?.info().await?.clone();
    let leader = info.cluster.as_ref().and_then(|c| c.leader.clone()).context("SUBMIT has no leader")?;
    let i: usize = leader.trim_start_matches('n').parse().context("a leader we did not name")?;
    let (port, pid) = (infra.cluster[i].port(), infra.cluster[i].pid());
    signal(pid, Signal::SIGKILL)?;
    wait_port_closed(port).await;
    tokio::time::sleep(down).await;
    let again = start_member(infra, i).await?;
    drop(std::mem::replace(&mut infra.cluster[i], again));
    Ok(())
}

/// Destinations delivered in the projection.
async fn delivered(fleet: &Fleet) -> anyhow::Result<BTreeSet<u64>> {
    let rows = smsfleet_store::projection::delivered_destinations(&fleet.pool).await?;
    Ok(rows.into_iter().filter_map(|to| to.strip_prefix("628").and_then(|n| n.parse().ok())).collect())
}

/// One scenario on a fresh fleet.
pub async fn run_one(infra: &mut Infra, fault: &Fault, connections: u64) -> anyhow::Result<Outcome> {
    let clustered = matches!(fault, Fault::SubmitLeader { .. });
    if clustered {
        start_cluster(infra).await?;
    }
    let outcome = run_on_fleet(infra, fault, connections).await;
    for member in infra.cluster.drain(..) {
        let _ = member.stop().await;
    }
    outcome
}

async fn run_on_fleet(infra: &mut Infra, fault: &Fault, connections: u64) -> anyhow::Result<Outcome> {
    let mut fleet = Fleet::start(infra, &FleetSpec::default()).await?;
    fleet.reset_sim_stats().await?;
    let told = Arc::new(Mutex::new(Told::default()));
    let stop = Stop::default();
    let load = start_load(fleet.ingress.clone(), fleet.token.clone(), connections, told.clone(), stop.clone());
    tokio::time::sleep(STEADY).await;
    let fault_at = Instant::now();
    inject(fault, infra, &mut fleet).await.with_context(|| format!("injecting {}", fault.name()))?;
    let back = Instant::now();
    tokio::time::sleep(STEADY * 2).await;
    stop.set();
    for task in load {
        let _ = task.await;
    }
    let told = std::mem::take(&mut *told.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let recovery_s = longest_gap(&told.ok_times, fault_at, back);

    // Everything answered OK must be delivered; wait for it (not timed).
    let deadline = Instant::now() + SETTLE;
    // Also until everything the upstream took is delivered, so that the
    // unanswered requests that were stored after all are all in `seen`.
    let sim_accepted_now = |stats: &serde_json::Value| stats.get("accepted").and_then(serde_json::Value::as_u64);
    let mut seen = delivered(&fleet).await?;
    let mut stats = fleet.sim_stats().await?;
    while (!told.accepted.is_subset(&seen) || (seen.len() as u64) < sim_accepted_now(&stats).unwrap_or(0))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
        seen = delivered(&fleet).await?;
        stats = fleet.sim_stats().await?;
    }
    let lost = told.accepted.difference(&seen).count() as u64;
    let sim_accepted = sim_accepted_now(&stats).unwrap_or(0);
    let duplicates = stats.get("duplicate_submits").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let accepted = told.accepted.len() as u64;
    // Requests that got no answer and were stored after all: sent and
    // charged once is right for them (the client was told nothing).
    let stored_in_doubt = told.in_doubt.intersection(&seen).count() as u64;
    let uid = smsfleet_store::accounts::by_username(&fleet.pool, "bench").await?.context("no bench account")?.uid;
    let (_, charged) = smsfleet_store::ledger::charged_total(&fleet.pool, uid).await?;
    let charged = u64::try_from(charged).unwrap_or(0);
    fleet.check_alive()?;
    fleet.stop().await;
    Ok(Outcome {
        scenario: fault.name(),
        accepted,
        errors: told.errors,
        lost,
        sent_twice: sim_accepted.saturating_sub(accepted + stored_in_doubt),
        resubmits_deduplicated: duplicates,
        charge_mismatches: charged.abs_diff(accepted + stored_in_doubt),
        self_recovered: recovery_s.is_some() && lost == 0,
        recovery_s,
        note: None,
    })
}

/// The longest pause between OK answers from the last one before `fault_at`
/// on, if one came after `back` at all.
fn longest_gap(ok_times: &[Instant], fault_at: Instant, back: Instant) -> Option<f64> {
    ok_times.iter().any(|t| *t >= back).then_some(())?;
    let start = ok_times.iter().rev().find(|t| **t < fault_at).copied().unwrap_or(fault_at);
    let mut times: Vec<Instant> = ok_times.iter().copied().filter(|t| *t >= start).collect();
    times.sort();
    times.windows(2).map(|w| w[1].duration_since(w[0]).as_secs_f64()).reduce(f64::max)
}

/// Runs every fault; a scenario that could not run is a row with a note.
pub async fn run(infra: &mut Infra, faults: &[Fault], connections: u64) -> Vec<Outcome> {
    let mut rows = Vec::new();
    for fault in faults {
        eprintln!("chaos: {} ...", fault.name());
        let row = match run_one(infra, fault, connections).await {
            Ok(row) => row,
            Err(e) => Outcome { scenario: fault.name(), note: Some(format!("{e:#}")), ..Default::default() },
        };
        eprintln!("chaos: {row:?}");
        rows.push(row);
    }
    rows
}

/// The table as Markdown.
pub fn table(rows: &[Outcome]) -> String {
    let mut out = String::from(
        "| scenario | accepted | errors by code | lost | sent twice | charge mismatches | self-recovered | recovery (longest time without an OK) | resubmits de-duplicated upstream |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let errors = if r.errors.is_empty() {
            "none".to_owned()
        } else {
            r.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
        };
        let recovery = r.recovery_s.map_or("-".to_owned(), |s| format!("{s:.1} s"));
        let recovered = if r.self_recovered { "yes" } else { "no" };
        // The longest time no client got an OK.
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.scenario,
            r.accepted,
            errors,
            r.lost,
            r.sent_twice,
            r.charge_mismatches,
            recovered,
            recovery,
            r.resubmits_deduplicated
        ));
        if let Some(note) = &r.note {
            out.push_str(&format!("| ↳ could not run: {} | | | | | | | | |\n", note.replace('|', "/")));
        }
    }
    out
}

/// Fails unless every row is clean (never on a timing).
pub fn verdict(rows: &[Outcome]) -> anyhow::Result<()> {
    let bad: Vec<&str> = rows.iter().filter(|r| !r.clean()).map(|r| r.scenario.as_str()).collect();
    if !bad.is_empty() {
        bail!("lost, duplicated or wrongly charged messages (or a scenario that did not run): {}", bad.join(", "));
    }
    ensure!(!rows.is_empty(), "no scenario ran");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_the_longest_pause_between_oks_from_the_fault_on() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let oks = [at(0), at(100), at(200), at(1_700), at(1_800), at(1_850)];
        // The fault at 250 ms, over at 1,000 ms: 200 → 1,700 without an OK.
        assert_eq!(longest_gap(&oks, at(250), at(1_000)), Some(1.5));
        // No OK after the fault was over: not recovered.
        assert_eq!(longest_gap(&oks, at(250), at(2_000)), None);
    }

    #[test]
    fn answers_are_classified_by_their_code() {
        let ok = r#"{"data":[{"status":"OK","error":"0","smslog_id":1}]}"#;
        let err = r#"{"status":"ERR","error":"200","error_string":"x"}"#;
        assert_eq!(classify(Ok((200, ok.to_owned()))), "OK");
        assert_eq!(classify(Ok((200, err.to_owned()))), "ERR 200");
        assert_eq!(classify(Ok((503, String::new()))), "HTTP 503");
    }

    #[test]
    fn a_dirty_row_fails_the_verdict() {
        let clean = Outcome { scenario: "a".into(), accepted: 5, self_recovered: true, ..Default::default() };
        assert!(verdict(std::slice::from_ref(&clean)).is_ok());
        let lost = Outcome { lost: 1, ..clean.clone() };
        assert!(verdict(&[clean.clone(), lost]).is_err());
        let skipped = Outcome { note: Some("could not start".into()), ..clean };
        assert!(verdict(&[skipped]).is_err());
        assert!(table(&[]).starts_with("| scenario |"));
    }
}
