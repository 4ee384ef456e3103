//! Runs the fleet as separate `smsfleet` processes against the test
//! harness's NATS and PostgreSQL, one process per role, so the tests see
//! what production sees: roles talking only over the bus and the database.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use smsfleet_testkit::TestEnv;
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_smsfleet");

pub struct Fleet {
    pub env: TestEnv,
    pub server_key: String,
    pub ingress: String,
    pub simulator: String,
    pub dlr: String,
    procs: HashMap<&'static str, Child>,
    extra: Vec<Child>,
    ports: HashMap<&'static str, u16>,
    pub sim_args: Vec<(String, String)>,
    /// Extra environment of the ingress (e.g. `SMSFLEET_BULK_*`).
    pub ingress_env: Vec<(String, String)>,
    /// Extra environment of the dispatcher and the dlr role (the same
    /// routes); with `SMSFLEET_ROUTES_FILE`
    /// in it, the default simulator route is not set.
    pub dispatcher_env: Vec<(String, String)>,
    /// Each role's admin port (`/metrics`, `/readyz`).
    pub admin_ports: HashMap<&'static str, u16>,
}

/// A port for a role to listen on. Not an ephemeral port (32768+): those
/// are also handed out for the many outgoing connections the fleet makes,
/// so one could be taken between our pick and the role's bind. Ports come
/// from a counter, so no two roles of this test process get the same one.
pub fn port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ =
        NEXT.compare_exchange(0, 20_000 + (std::process::id() % 1_000) as u16 * 10, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let p = NEXT.fetch_add(1, Ordering::SeqCst);
        let p = if p >= 32_000 { 20_000 + p % 12_000 } else { p };
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

impl Fleet {
    /// Starts every role and the simulator; `sim_env` tunes the simulator.
    pub async fn start(sim_env: &[(&str, &str)]) -> Fleet {
        let mut fleet = Fleet::prepare(sim_env).await;
        fleet.start_roles().await;
        fleet
    }

    pub async fn start_roles(&mut self) {
        for role in
            ["simulator", "accounts", "query", "callbacks", "ledger", "scheduler", "dispatcher", "dlr", "ingress"]
        {
            self.spawn(role).await;
        }
    }

    /// A fleet with its database and bus ready but no process started yet.
    pub async fn prepare(sim_env: &[(&str, &str)]) -> Fleet {
        let env = TestEnv::start().await;
        let mut ports = HashMap::new();
        for p in ["ingress", "dlr", "simulator", "smpp"] {
            ports.insert(p, port());
        }
        Fleet {
            server_key: smsfleet_secrets::Secrets::generate_key(),
            ingress: format!("http://127.0.0.1:{}", ports["ingress"]),
            simulator: format!("http://127.0.0.1:{}", ports["simulator"]),
            dlr: format!("http://127.0.0.1:{}", ports["dlr"]),
            env,
            procs: HashMap::new(),
            extra: Vec::new(),
            ports,
            sim_args: sim_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ingress_env: Vec::new(),
            dispatcher_env: Vec::new(),
            admin_ports: HashMap::new(),
        }
    }

    fn common(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", std::env::var("E2E_LOG").unwrap_or_else(|_| "warn".into()))
            .env("NATS_URL", &self.env.nats_url)
            .env("DATABASE_URL", &self.env.database_url)
            .env("SMSFLEET_NAMESPACE", self.env.ns.as_str())
            .env("SMSFLEET_SERVER_KEY", &self.server_key)
            // Only the ingress this harness names gets an SMPP port: the
            // default 2775 would collide between tests.
            .env("SMSFLEET_SMPP_LISTEN", "off")
            .stdin(Stdio::null())
            .kill_on_drop(true);
    }

    /// The dispatcher's routes: `dispatcher_env`, else the simulator route.
    fn routes(&self, cmd: &mut Command) {
        if !self.dispatcher_env.iter().any(|(k, _)| k == "SMSFLEET_ROUTES_FILE") {
            cmd.env(
                "SMSFLEET_ROUTES",
                format!("name=sim,url={}/submit,dlr={}/dlr/sim,inflight=8,batch=50", self.simulator, self.dlr),
            );
        }
        for (k, v) in &self.dispatcher_env {
            cmd.env(k, v);
        }
    }

    /// Starts (or restarts) one role and waits until it reports ready.
    pub async fn spawn(&mut self, role: &'static str) {
        let admin = port();
        let mut cmd = Command::new(BIN);
        cmd.arg(role);
        self.common(&mut cmd);
        cmd.env("SMSFLEET_ADMIN_LISTEN", format!("127.0.0.1:{admin}"));
        match role {
            "ingress" => {
                cmd.env("SMSFLEET_LISTEN", format!("127.0.0.1:{}", self.ports["ingress"]));
                cmd.env("SMSFLEET_SMPP_LISTEN", format!("127.0.0.1:{}", self.ports["smpp"]));
                for (k, v) in &self.ingress_env {
                    cmd.env(k, v);
                }
            }
            "dlr" => {
                cmd.env("SMSFLEET_DLR_LISTEN", format!("127.0.0.1:{}", self.ports["dlr"]));
                // The same routes (and the secrets they name) as the dispatcher.
                self.routes(&mut cmd);
            }
            "simulator" => {
                cmd.env("SMSFLEET_SIMULATOR_LISTEN", format!("127.0.0.1:{}", self.ports["simulator"]));
                for (k, v) in &self.sim_args {
                    cmd.env(k, v);
                }
            }
            "dispatcher" => self.routes(&mut cmd),
            _ => {}
        }
        let child = cmd.spawn().expect("spawn smsfleet");
        self.procs.insert(role, child);
        self.admin_ports.insert(role, admin);
        let ready_url = if role == "simulator" {
            format!("{}/healthz", self.simulator)
        } else {
            format!("http://127.0.0.1:{admin}/readyz")
        };
        let client = reqwest::Client::new();
        let ok = smsfleet_testkit::eventually(Duration::from_secs(120), || {
            let client = client.clone();
            let url = ready_url.clone();
            async move { client.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
        assert!(ok.is_some(), "{role} did not become ready");
    }

    /// Starts another ingress replica on its own port; returns its base URL.
    pub async fn spawn_ingress_replica(&mut self) -> String {
        self.spawn_ingress_replica_with(&[]).await
    }

    /// Another ingress replica with extra environment.
    pub async fn spawn_ingress_replica_with(&mut self, env: &[(&str, &str)]) -> String {
        let (http, admin) = (port(), port());
        let mut cmd = Command::new(BIN);
        cmd.arg("ingress");
        self.common(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env("SMSFLEET_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
            .env("SMSFLEET_LISTEN", format!("127.0.0.1:{http}"));
        let child = cmd.spawn().expect("spawn ingress replica");
        self.extra.push(child);
        let ready = format!("http://127.0.0.1:{admin}/readyz");
        let ok = smsfleet_testkit::eventually(Duration::from_secs(120), || {
            let url = ready.clone();
            async move { reqwest::get(&url).await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
        assert!(ok.is_some(), "ingress replica did not become ready");
        format!("http://127.0.0.1:{http}")
    }

    /// The process id of a running role.
    pub fn pid(&self, role: &'static str) -> Option<u32> {
        self.procs.get(role).and_then(Child::id)
    }

    /// A role's Prometheus metrics text.
    pub async fn metrics(&self, role: &'static str) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.admin_ports[role]);
        reqwest::get(url).await.expect("metrics").text().await.expect("metrics text")
    }

    /// Starts a process of our binary with the fleet's connections (and
    /// `env`), kept until the fleet is dropped.
    pub fn spawn_extra(&mut self, args: &[&str], env: &[(&str, &str)]) {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        self.common(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.extra.push(cmd.spawn().expect("spawn smsfleet"));
    }

    /// SIGKILL: no shutdown hook runs, in-flight work is simply lost.
    pub async fn kill9(&mut self, role: &'static str) {
        if let Some(mut child) = self.procs.remove(role) {
            child.start_kill().expect("kill");
            let _ = child.wait().await;
        }
    }

    /// Runs `smsfleet <args>` to completion and returns its stdout.
    pub async fn cli(&self, args: &[&str]) -> String {
        match self.try_cli(args).await {
            Ok(out) => out,
            Err(err) => panic!("smsfleet {args:?} failed: {err}"),
        }
    }

    /// Like `cli`, but a failing command is an `Err` with its stderr.
    pub async fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        self.common(&mut cmd);
        let out = cmd.output().await.expect("run cli");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Creates a user with webservices on from 127.0.0.1 and returns its token.
    pub async fn user(&self, name: &str) -> String {
        let out =
            self.cli(&["account", "create", "--username", name, "--password", "secretpass1", "--role", "user"]).await;
        out.split("token=").nth(1).expect("token printed").trim().to_owned()
    }

    pub async fn ws(&self, query: &[(&str, &str)]) -> serde_json::Value {
        self.ws_at(&self.ingress, query).await
    }

    pub async fn ws_at(&self, base: &str, query: &[(&str, &str)]) -> serde_json::Value {
        let url = format!("{base}/index.php?app=ws");
        let resp = reqwest::Client::new().get(url).query(query).send().await.expect("request");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("json")
    }

    /// A bulk API GET (`path` like `/bulksms/bulksms`); returns the text body.
    pub async fn bulk(&self, path: &str, query: &[(&str, &str)]) -> String {
        self.bulk_at(&self.ingress, path, query).await
    }

    pub async fn bulk_at(&self, base: &str, path: &str, query: &[(&str, &str)]) -> String {
        let resp = reqwest::Client::new().get(format!("{base}{path}")).query(query).send().await.expect("request");
        assert_eq!(resp.status(), 200, "the bulk API always answers 200");
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
        resp.text().await.expect("text")
    }

    pub fn ingress_port(&self) -> u16 {
        self.ports["ingress"]
    }

    /// The SMPP port of the main ingress.
    pub fn smpp_port(&self) -> u16 {
        self.ports["smpp"]
    }

    pub async fn sim_stats(&self) -> serde_json::Value {
        reqwest::get(format!("{}/stats", self.simulator)).await.expect("stats").json().await.expect("json")
    }

    /// Waits until the durable `consumer` of `kind` has been handed and has
    /// acked everything its stream holds: whatever that role does with the
    /// messages so far is done, so a test can assert that something did
    /// not happen without sleeping.
    pub async fn wait_consumer_idle(&self, kind: smsfleet_contract::StreamKind, consumer: &str) {
        let js = self.env.bus.jetstream().clone();
        let stream = self.env.ns.stream_name(kind);
        let idle = smsfleet_testkit::eventually(Duration::from_secs(30), || {
            let (js, stream) = (js.clone(), stream.clone());
            async move {
                let stream = js.get_stream(stream).await.ok()?;
                let mut c: async_nats::jetstream::consumer::PullConsumer = stream.get_consumer(consumer).await.ok()?;
                let info = c.info().await.ok()?;
                (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
            }
        })
        .await;
        assert!(idle.is_some(), "{consumer} on {kind:?} never caught up");
    }
}
