//! Test harness: real nats-server and PostgreSQL, never mocks.
//!
//! Servers come from `SMSFLEET_TEST_NATS_URL` / `SMSFLEET_TEST_DATABASE_URL`
//! when set (a database URL whose database is used as the admin
//! connection); otherwise one private nats-server and one PostgreSQL are
//! started per test process in a temp dir on free ports, and stopped when
//! the process exits. Every [`TestEnv`] gets its own bus namespace and its
//! own freshly migrated database, so tests run in parallel without seeing
//! each other.

#![allow(clippy::expect_used)] // a harness that cannot start should stop the test loudly

use std::os::unix::process::CommandExt;
use std::sync::OnceLock;

use smsfleet_bus::Bus;
use smsfleet_contract::Namespace;
use smsfleet_localinfra::{NatsServer, PostgresOptions, PostgresServer};
use smsfleet_runtime::RoleContext;
use smsfleet_store::PgPool;
use smsfleet_telemetry::ReadyFlag;

pub use tokio_util::sync::CancellationToken;

struct Servers {
    nats_url: String,
    /// URL of a database we can run CREATE DATABASE on, minus the db name.
    pg_base: String,
}

static SERVERS: OnceLock<Servers> = OnceLock::new();
static KEEP: OnceLock<std::sync::Mutex<Vec<Box<dyn std::any::Any + Send>>>> = OnceLock::new();

fn servers() -> &'static Servers {
    SERVERS.get_or_init(|| {
        // Servers live on a runtime of their own so they outlive any single
        // #[tokio::test] runtime.
        std::thread::spawn(start_servers).join().expect("starting test servers panicked")
    })
}

fn start_servers() -> Servers {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let nats_url = std::env::var("SMSFLEET_TEST_NATS_URL").ok();
    let pg_url = std::env::var("SMSFLEET_TEST_DATABASE_URL").ok();
    let dir = tempfile::Builder::new().prefix("smsfleet-test-").tempdir().expect("tempdir");
    let mut groups = Vec::new();
    let nats_url = match nats_url {
        Some(u) => u,
        None => {
            let nats = rt.block_on(NatsServer::start(&dir.path().join("nats"))).expect("start nats-server");
            let url = nats.url();
            groups.extend(nats.pid());
            keep(Box::new(nats));
            url
        }
    };
    let pg_base = match pg_url {
        Some(u) => u.rsplit_once('/').map(|(base, _)| base.to_owned()).unwrap_or(u),
        None => {
            let pg = rt
                .block_on(PostgresServer::start(&dir.path().join("pg"), PostgresOptions { fast: true, port: None }))
                .expect("start postgres");
            let base = pg.url("postgres").rsplit_once('/').map(|(b, _)| b.to_owned()).expect("url");
            groups.extend(pg.pid());
            keep(Box::new(pg));
            base
        }
    };
    reap_after_exit(&groups, dir.path());
    keep(Box::new(dir));
    // The runtime must stay alive while the child processes are watched.
    keep(Box::new(rt));
    Servers { nats_url, pg_base }
}

/// Statics are never dropped, so the servers would outlive the test
/// process but for their watchdogs (see `smsfleet-localinfra`), which stop
/// them once our pid is gone. A tiny shell then waits for their process
/// groups to end (at most 30 s) and removes their temp dir.
fn reap_after_exit(groups: &[u32], dir: &std::path::Path) {
    let waits: String = groups
        .iter()
        .map(|g| format!("i=0; while kill -0 -{g} 2>/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i+1)); done; "))
        .collect();
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {waits} rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    let spawned = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(e) = spawned {
        eprintln!("cannot start the test-server reaper: {e}");
    }
}

fn keep(b: Box<dyn std::any::Any + Send>) {
    KEEP.get_or_init(Default::default).lock().expect("lock").push(b);
}

/// One isolated slice of the shared servers.
pub struct TestEnv {
    pub nats_url: String,
    pub database_url: String,
    pub ns: Namespace,
    pub bus: Bus,
    pub pool: PgPool,
}

impl TestEnv {
    /// What a role under test is started with: this environment's bus and
    /// database, a readiness flag of its own, and `shutdown`.
    pub fn context(&self, role: &'static str, shutdown: &CancellationToken) -> RoleContext {
        RoleContext::new(role, ReadyFlag::default(), shutdown.clone())
            .with_bus(self.bus.clone())
            .with_pool(self.pool.clone())
    }

    pub async fn start() -> TestEnv {
        smsfleet_telemetry::install_crypto_provider();
        let s = servers();
        let tag: u64 = rand::random::<u64>() % 1_000_000_000_000;
        let ns = Namespace::new(&format!("t{tag}")).expect("namespace");
        let db = format!("smsfleet_t{tag}");
        smsfleet_store::create_database_if_missing(&format!("{}/postgres", s.pg_base), &db)
            .await
            .expect("create test database");
        let database_url = format!("{}/{db}", s.pg_base);
        let pool = smsfleet_store::connect(&database_url, 10).await.expect("connect test database");
        smsfleet_store::migrate(&pool).await.expect("migrate");
        let bus = Bus::connect(&s.nats_url, ns.clone(), "smsfleet-test").await.expect("connect nats");
        bus.provision().await.expect("provision");
        TestEnv { nats_url: s.nats_url.clone(), database_url, ns, bus, pool }
    }
}

impl TestEnv {
    /// A plain user (webservices from 127.0.0.1, UTC) with a zero balance.
    pub async fn create_user(&self, username: &str) -> smsfleet_store::accounts::AccountRow {
        let new = smsfleet_store::accounts::NewAccount {
            username: username.into(),
            role: 3,
            webservices_ip: "127.0.0.1".into(),
            timezone: "+0000".into(),
            ..Default::default()
        };
        smsfleet_store::accounts::create(&self.pool, &new).await.expect("create test account")
    }
}

/// A nats-server of one test's own, for outages: it can be stopped and
/// started again on the same port and store, so clients reconnect to it.
pub struct PrivateNats {
    dir: tempfile::TempDir,
    port: u16,
    server: Option<NatsServer>,
}

impl PrivateNats {
    pub async fn start() -> PrivateNats {
        let dir = tempfile::Builder::new().prefix("smsfleet-nats-").tempdir().expect("tempdir");
        let server = NatsServer::start(dir.path()).await.expect("start nats-server");
        PrivateNats { port: server.port(), server: Some(server), dir }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server gracefully (SIGTERM), as an operator's restart does.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("stop nats-server");
        }
    }

    /// Starts it again on the same port and store.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.server = Some(NatsServer::start_on(self.dir.path(), self.port).await.expect("restart nats-server"));
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
