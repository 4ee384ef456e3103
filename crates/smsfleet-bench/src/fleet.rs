//! The system under test: one private nats-server and PostgreSQL for the
//! whole run, and per scenario a fresh fleet (own namespace, own database)
//! of `smsfleet <role>` processes with the SMSC simulator as upstream, or
//! the local default, every role and the simulator in one `smsfleet all`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use smsfleet_localinfra::{NatsServer, PostgresOptions, PostgresServer, free_port};
use tokio::process::{Child, Command};

use crate::procs::Watched;

pub struct Infra {
    pub nats: NatsServer,
    pub pg: PostgresServer,
    pub bin: PathBuf,
    /// Fleets started so far; names each fleet's namespace and database.
    fleets: u32,
    /// A 3-node nats-server cluster the next fleets use instead of `nats`
    /// (with R3 streams), for the chaos suite's leader loss.
    pub cluster: Vec<NatsServer>,
    /// Each member's (client port, cluster port), to start one again.
    pub cluster_ports: Vec<(u16, u16)>,
    _dir: tempfile::TempDir,
}

impl Infra {
    pub async fn start(bin: PathBuf, durable_postgres: bool) -> anyhow::Result<Infra> {
        let dir = tempfile::Builder::new().prefix("smsfleet-bench-").tempdir()?;
        // PostgreSQL runs as an unprivileged user when we are root.
        let _ = std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755));
        let nats = NatsServer::start(&dir.path().join("nats")).await.context("starting nats-server")?;
        let pg = PostgresServer::start(&dir.path().join("pg"), PostgresOptions { fast: !durable_postgres, port: None })
            .await
            .context("starting PostgreSQL")?;
        Ok(Infra { nats, pg, bin, fleets: 0, cluster: Vec::new(), cluster_ports: Vec::new(), _dir: dir })
    }

    /// The server list fleets connect to: the cluster's, else the one server.
    pub fn nats_url(&self) -> String {
        if self.cluster.is_empty() {
            return self.nats.url();
        }
        self.cluster.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
    }

    /// Where the servers keep their data (`nats/`, `pg/`).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    pub fn watched(&self) -> Vec<Watched> {
        let mut w = Vec::new();
        if let Some(pid) = self.nats.pid() {
            w.push(Watched { name: "nats-server".into(), pid, with_children: false });
        }
        if let Some(pid) = self.pg.pid() {
            w.push(Watched { name: "postgres".into(), pid, with_children: true });
        }
        w.push(Watched { name: "loadgen+runner".into(), pid: std::process::id(), with_children: false });
        w
    }

    pub async fn stop(self) {
        let _ = self.nats.stop().await;
        let _ = self.pg.stop().await;
    }
}

/// How a fleet's upstream and dispatchers are set up.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    pub sim_env: Vec<(&'static str, String)>,
    /// Extra route settings, e.g. `inflight=8,batch=50`.
    pub route_params: String,
    pub dispatchers: usize,
    /// Only accounts and the ingress: the ingress alone is measured, and the
    /// submit stream keeps what the absent downstream roles would consume.
    pub ingress_only: bool,
    /// Every role and the simulator in one `smsfleet all` process (the
    /// local default) on the run's servers, instead of one process each.
    pub single_process: bool,
}

impl Default for FleetSpec {
    fn default() -> Self {
        FleetSpec {
            sim_env: vec![("SMSFLEET_SIM_DLR_LATENCY_MS", "10".into())],
            route_params: "inflight=8,batch=50".into(),
            dispatchers: 1,
            ingress_only: false,
            single_process: false,
        }
    }
}

/// A child's name, role, extra environment and readiness URL.
type Started = (String, String, Vec<(String, String)>, Option<String>);

pub struct Fleet {
    pub ingress: String,
    /// The ingress's SMPP port (the `smpp` scenario binds to it).
    pub smpp_port: u16,
    pub simulator: String,
    pub token: String,
    /// Every role in one `smsfleet all` process.
    pub single_process: bool,
    pub pool: smsfleet_store::PgPool,
    bin: PathBuf,
    env: Vec<(String, String)>,
    children: Vec<(String, Child)>,
    /// Each process's admin endpoint (`/metrics`), by name.
    admin_urls: Vec<(String, String)>,
    /// How each child was started, so the chaos suite can start a killed
    /// one again.
    started: Vec<Started>,
    route: String,
    /// `smsfleet all`'s data folder (its server key; NATS and PostgreSQL
    /// are the run's).
    _data_dir: Option<tempfile::TempDir>,
}

const ROLES: [&str; 6] = ["accounts", "query", "callbacks", "ledger", "scheduler", "dlr"];

impl Fleet {
    pub async fn start(infra: &mut Infra, spec: &FleetSpec) -> anyhow::Result<Fleet> {
        infra.fleets += 1;
        let n = infra.fleets;
        let db = format!("bench_{n}");
        smsfleet_store::create_database_if_missing(&infra.pg.url("postgres"), &db).await?;
        let database_url = infra.pg.url(&db);
        let mut env = vec![
            ("NATS_URL".to_owned(), infra.nats_url()),
            ("SMSFLEET_STREAM_REPLICAS".to_owned(), if infra.cluster.is_empty() { "1" } else { "3" }.to_owned()),
            ("DATABASE_URL".to_owned(), database_url.clone()),
            ("SMSFLEET_NAMESPACE".to_owned(), format!("bench{n}")),
            ("SMSFLEET_SERVER_KEY".to_owned(), smsfleet_secrets::Secrets::generate_key()),
            ("RUST_LOG".to_owned(), std::env::var("BENCH_LOG").unwrap_or_else(|_| "error".into())),
            // The route's callback secret, so reports go through the dlr's check.
            ("SMSFLEET_CALLBACK_SECRET".to_owned(), smsfleet_secrets::Secrets::generate_key()),
        ];
        // Settings to compare between runs, passed through when set.
        for name in ["SMSFLEET_SUBMIT_PUBLISHERS"] {
            if let Ok(value) = std::env::var(name) {
                env.push((name.to_owned(), value));
            }
        }
        let (ingress_port, sim_port, dlr_port, smpp_port) = (free_port()?, free_port()?, free_port()?, free_port()?);
        let simulator = format!("http://127.0.0.1:{sim_port}");
        let dlr = format!("http://127.0.0.1:{dlr_port}");
        let route = format!(
            "name=sim,url={simulator}/submit,dlr={dlr}/dlr/sim,callback_secret_env=SMSFLEET_CALLBACK_SECRET,{}",
            spec.route_params
        );
        let mut fleet = Fleet {
            ingress: format!("http://127.0.0.1:{ingress_port}"),
            smpp_port,
            simulator,
            token: String::new(),
            single_process: spec.single_process,
            pool: smsfleet_store::connect(&database_url, 4).await?,
            bin: infra.bin.clone(),
            env,
            children: Vec::new(),
            admin_urls: Vec::new(),
            started: Vec::new(),
            route,
            _data_dir: None,
        };
        fleet.cli(&["migrate"]).await?;
        if spec.single_process {
            fleet.start_all_in_one(spec, sim_port, dlr_port, ingress_port, smpp_port).await?;
            fleet.create_bench_account().await?;
            return Ok(fleet);
        }
        let mut sim_env: Vec<(String, String)> =
            spec.sim_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        sim_env.push(("SMSFLEET_SIMULATOR_LISTEN".into(), format!("127.0.0.1:{sim_port}")));
        fleet.spawn("simulator", "simulator", &sim_env, Some(format!("http://127.0.0.1:{sim_port}/healthz"))).await?;
        let roles: &[&str] = if spec.ingress_only { &["accounts"] } else { &ROLES };
        for &role in roles {
            let extra = if role == "dlr" {
                vec![
                    ("SMSFLEET_DLR_LISTEN".to_owned(), format!("127.0.0.1:{dlr_port}")),
                    ("SMSFLEET_ROUTES".to_owned(), fleet.route.clone()),
                ]
            } else {
                Vec::new()
            };
            fleet.spawn(role, role, &extra, None).await?;
        }
        for _ in 0..if spec.ingress_only { 0 } else { spec.dispatchers } {
            fleet.spawn_dispatcher().await?;
        }
        let listen = vec![
            ("SMSFLEET_LISTEN".to_owned(), format!("127.0.0.1:{ingress_port}")),
            ("SMSFLEET_SMPP_LISTEN".to_owned(), format!("127.0.0.1:{smpp_port}")),
        ];
        fleet.spawn("ingress", "ingress", &listen, None).await?;
        fleet.create_bench_account().await?;
        Ok(fleet)
    }

    async fn create_bench_account(&mut self) -> anyhow::Result<()> {
        let out = self
            .cli(&["account", "create", "--username", "bench", "--password", "secretpass1", "--role", "user"])
            .await?;
        self.token = out.split("token=").nth(1).context("account create printed no token")?.trim().to_owned();
        self.cli(&["account", "set", "bench", "--smpp-password", crate::scenarios::SMPP_PASSWORD, "--max-binds", "8"])
            .await?;
        Ok(())
    }

    /// `smsfleet all` with the same route, simulator settings and ports as
    /// the separate processes get, so the two layouts compare.
    async fn start_all_in_one(
        &mut self,
        spec: &FleetSpec,
        sim_port: u16,
        dlr_port: u16,
        ingress_port: u16,
        smpp_port: u16,
    ) -> anyhow::Result<()> {
        let dir = tempfile::Builder::new().prefix("smsfleet-bench-all-").tempdir()?;
        let mut env: Vec<(String, String)> = spec.sim_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        env.extend([
            ("SMSFLEET_DATA_DIR".to_owned(), dir.path().display().to_string()),
            ("SMSFLEET_SIMULATOR_LISTEN".to_owned(), format!("127.0.0.1:{sim_port}")),
            ("SMSFLEET_DLR_LISTEN".to_owned(), format!("127.0.0.1:{dlr_port}")),
            ("SMSFLEET_LISTEN".to_owned(), format!("127.0.0.1:{ingress_port}")),
            ("SMSFLEET_SMPP_LISTEN".to_owned(), format!("127.0.0.1:{smpp_port}")),
            ("SMSFLEET_ROUTES".to_owned(), self.route.clone()),
        ]);
        self._data_dir = Some(dir);
        self.spawn("all", "all", &env, None).await
    }

    pub async fn spawn_dispatcher(&mut self) -> anyhow::Result<()> {
        let n = self.children.iter().filter(|(name, _)| name.starts_with("dispatcher")).count() + 1;
        let env = vec![("SMSFLEET_ROUTES".to_owned(), self.route.clone())];
        self.spawn(&format!("dispatcher-{n}"), "dispatcher", &env, None).await
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `smsfleet <args>` to completion; returns its stdout.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.command(args).output().await.with_context(|| format!("running {}", self.bin.display()))?;
        if !out.status.success() {
            bail!("smsfleet {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn spawn(
        &mut self,
        name: &str,
        role: &str,
        extra: &[(String, String)],
        ready_url: Option<String>,
    ) -> anyhow::Result<()> {
        self.started.retain(|(n, ..)| n != name);
        self.started.push((name.to_owned(), role.to_owned(), extra.to_vec(), ready_url.clone()));
        let admin = free_port()?;
        let mut cmd = self.command(&[role]);
        cmd.env("SMSFLEET_ADMIN_LISTEN", format!("127.0.0.1:{admin}"));
        if role == "all" {
            // Its welcome text (admin password, curl lines) is not the report's.
            cmd.stdout(Stdio::null());
        }
        cmd.envs(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        self.children.push((name.to_owned(), child));
        self.admin_urls.retain(|(n, _)| n != name);
        self.admin_urls.push((name.to_owned(), format!("http://127.0.0.1:{admin}")));
        let url = ready_url.unwrap_or_else(|| format!("http://127.0.0.1:{admin}/readyz"));
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some((_, c)) = self.children.last_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                bail!("{name} exited during start-up: {status}");
            }
            if Instant::now() > deadline {
                bail!("{name} not ready after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILLs the process `name` and waits for it to be gone.
    pub async fn kill9(&mut self, name: &str) -> anyhow::Result<()> {
        let at = self.children.iter().position(|(n, _)| n == name).with_context(|| format!("no process {name}"))?;
        let (_, mut child) = self.children.remove(at);
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }

    /// Starts the process `name` again as it was first started (a
    /// supervisor's restart) and waits until it is ready.
    pub async fn respawn(&mut self, name: &str) -> anyhow::Result<()> {
        let (_, role, extra, ready) =
            self.started.iter().find(|(n, ..)| n == name).cloned().with_context(|| format!("never started {name}"))?;
        self.spawn(name, &role, &extra, ready).await
    }

    /// The bus namespace of this fleet.
    pub fn namespace(&self) -> &str {
        self.env.iter().find(|(k, _)| k == "SMSFLEET_NAMESPACE").map_or("", |(_, v)| v.as_str())
    }

    pub fn watched(&self) -> Vec<Watched> {
        self.children
            .iter()
            .filter_map(|(name, c)| Some(Watched { name: name.clone(), pid: c.id()?, with_children: false }))
            .collect()
    }

    /// Every fleet process is still running (none crashed during a scenario).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, c) in &mut self.children {
            if let Ok(Some(status)) = c.try_wait() {
                bail!("{name} exited during the scenario: {status}");
            }
        }
        Ok(())
    }

    /// The Prometheus text of the process `name` (`ingress`, or `all`).
    pub async fn metrics_text(&self, name: &str) -> anyhow::Result<String> {
        let (_, base) = self.admin_urls.iter().find(|(n, _)| n == name).context("no such process")?;
        Ok(reqwest::get(format!("{base}/metrics")).await?.error_for_status()?.text().await?)
    }

    pub async fn sim_stats(&self) -> anyhow::Result<serde_json::Value> {
        Ok(reqwest::get(format!("{}/stats", self.simulator)).await?.json().await?)
    }

    pub async fn reset_sim_stats(&self) -> anyhow::Result<()> {
        reqwest::Client::new().post(format!("{}/stats/reset", self.simulator)).send().await?.error_for_status()?;
        Ok(())
    }

    /// Messages in the projection by status (0 queued .. 3 delivered).
    pub async fn delivered(&self) -> anyhow::Result<u64> {
        let counts = smsfleet_store::projection::status_counts(&self.pool, None).await?;
        Ok(counts.iter().find(|c| c.0 == 3).map(|c| c.1 as u64).unwrap_or(0))
    }

    /// Waits until `want` messages are delivered in the projection; returns
    /// when it happened, or fails after `timeout`.
    pub async fn wait_delivered(&self, want: u64, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.delivered().await?;
            if n >= want {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!("only {n} of {want} messages delivered after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(mut self) {
        for (_, c) in &mut self.children {
            let _ = c.start_kill();
        }
        for (_, c) in &mut self.children {
            let _ = c.wait().await;
        }
        self.pool.close().await;
    }
}

/// The `smsfleet` binary next to this one (same profile), unless given.
pub fn default_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .map(|d| d.join("smsfleet"))
        .unwrap_or_else(|| PathBuf::from("smsfleet"))
}
