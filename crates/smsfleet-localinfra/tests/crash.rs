#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 12.2: after `kill -9` of the process that started the servers, the
//! servers must not outlive it, and the next start in the same folder must
//! succeed (recovering what the crash left behind).
//!
//! The servers are started by this same test binary re-run as a child (the
//! `child_starts_servers_and_waits` test, which does nothing unless
//! `INFRA_CHILD_DIR` is set), so the crash is a real one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smsfleet_localinfra::{NatsServer, PostgresOptions, PostgresServer};

const CHILD_DIR: &str = "INFRA_CHILD_DIR";

#[tokio::test]
async fn child_starts_servers_and_waits() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else { return };
    let dir = Path::new(&dir);
    let nats = NatsServer::start(&dir.join("nats")).await.unwrap();
    let pg = PostgresServer::start(&dir.join("pg"), PostgresOptions { fast: true, port: None }).await.unwrap();
    let pids = format!("{} {}", nats.pid().unwrap(), pg.pid().unwrap());
    std::fs::write(dir.join("pids.tmp"), pids).unwrap();
    std::fs::rename(dir.join("pids.tmp"), dir.join("pids")).unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
}

/// True while `pid` runs (a zombie waiting for a reaper counts as dead).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the servers in a child process under `dir`, kills it with
/// SIGKILL (no destructor runs) and returns the servers' pids.
fn start_servers_in_a_child_and_kill_it(dir: &Path) -> Vec<u32> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_starts_servers_and_waits", "--nocapture"])
        .env(CHILD_DIR, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = dir.join("pids");
    wait_until("the child did not start its servers", Duration::from_secs(60), || pid_file.exists());
    let pids: Vec<u32> = std::fs::read_to_string(&pid_file).unwrap().split(' ').map(|p| p.parse().unwrap()).collect();
    assert!(pids.iter().all(|&p| alive(p)));
    child.kill().unwrap();
    child.wait().unwrap();
    pids
}

#[tokio::test]
async fn servers_die_with_a_killed_parent() {
    let tmp = tempfile::tempdir().unwrap();
    let pids = start_servers_in_a_child_and_kill_it(tmp.path());
    wait_until("a server outlived its killed parent", Duration::from_secs(30), || pids.iter().all(|&p| !alive(p)));
}

#[tokio::test]
async fn the_folder_of_a_killed_parent_starts_again_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let pids = start_servers_in_a_child_and_kill_it(tmp.path());
    // At once, as a user pressing the up arrow would: the crash's leftovers
    // (a live postmaster holding postmaster.pid, a nats-server on the same
    // store) must not make this fail.
    let nats = NatsServer::start(&tmp.path().join("nats")).await.unwrap();
    let pg = PostgresServer::start(&tmp.path().join("pg"), PostgresOptions { fast: true, port: None }).await.unwrap();
    wait_until("a server of the killed parent is still running", Duration::from_secs(30), || {
        pids.iter().all(|&p| !alive(p))
    });
    nats.stop().await.unwrap();
    pg.stop().await.unwrap();
}
