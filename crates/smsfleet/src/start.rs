//! One way to start a role. [`RoleConfig`] names a role with its config and
//! [`RoleConfig::run`] is the only place that calls a role library; both
//! `smsfleet <role>` ([`one`]: one role per process, with its admin
//! endpoints) and `smsfleet all` (every role in one process) go through it.

use std::net::SocketAddr;

use anyhow::Context;
use smsfleet_bus::Bus;
use smsfleet_runtime::RoleContext;
use smsfleet_secrets::Secrets;
use smsfleet_store::PgPool;
use smsfleet_telemetry::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{cli, config, connect};

pub enum RoleConfig {
    Ingress(Box<smsfleet_ingress::IngressConfig>),
    Accounts(smsfleet_accounts::AccountsConfig),
    Ledger(smsfleet_ledger::LedgerConfig),
    Scheduler(smsfleet_scheduler::SchedulerConfig),
    Dispatcher(smsfleet_dispatcher::DispatcherConfig),
    Dlr(smsfleet_dlr::DlrConfig),
    Query(smsfleet_query::QueryConfig),
    Callbacks(smsfleet_callbacks::CallbacksConfig),
    Simulator(smsfleet_simulator::SimulatorConfig),
}

impl RoleConfig {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ingress(_) => "ingress",
            Self::Accounts(_) => "accounts",
            Self::Ledger(_) => "ledger",
            Self::Scheduler(_) => "scheduler",
            Self::Dispatcher(_) => "dispatcher",
            Self::Dlr(_) => "dlr",
            Self::Query(_) => "query",
            Self::Callbacks(_) => "callbacks",
            Self::Simulator(_) => "simulator",
        }
    }

    /// Runs the role until `ctx.shutdown` is cancelled or it fails.
    pub async fn run(self, ctx: RoleContext) -> anyhow::Result<()> {
        match self {
            Self::Ingress(c) => smsfleet_ingress::run(ctx, *c).await?,
            Self::Accounts(c) => smsfleet_accounts::run(ctx, c).await?,
            Self::Ledger(c) => smsfleet_ledger::run(ctx, c).await?,
            Self::Scheduler(c) => smsfleet_scheduler::run(ctx, c).await?,
            Self::Dispatcher(c) => smsfleet_dispatcher::run(ctx, c).await?,
            Self::Dlr(c) => smsfleet_dlr::run(ctx, c).await?,
            Self::Query(c) => smsfleet_query::run(ctx, c).await?,
            Self::Callbacks(c) => smsfleet_callbacks::run(ctx, c).await?,
            Self::Simulator(c) => smsfleet_simulator::run(ctx, c).await?,
        }
        Ok(())
    }
}

/// The connections and keys a process shares among the roles it runs.
#[derive(Default, Clone)]
pub struct Resources {
    pub bus: Option<Bus>,
    pub pool: Option<PgPool>,
    pub secrets: Option<Secrets>,
}

impl Resources {
    /// A context for `role`, with its own readiness flag and `listener` if
    /// it serves HTTP.
    pub fn context(
        &self,
        role: &'static str,
        readiness: &Readiness,
        shutdown: CancellationToken,
        listener: Option<TcpListener>,
    ) -> RoleContext {
        let mut ctx = RoleContext::new(role, readiness.register(role), shutdown);
        if let Some(bus) = &self.bus {
            ctx = ctx.with_bus(bus.clone());
        }
        if let Some(pool) = &self.pool {
            ctx = ctx.with_pool(pool.clone());
        }
        if let Some(secrets) = &self.secrets {
            ctx = ctx.with_secrets(secrets.clone());
        }
        if let Some(listener) = listener {
            ctx = ctx.with_listener(listener);
        }
        ctx
    }
}

/// `smsfleet <role>`: telemetry, connections, the admin endpoints, then the
/// role until Ctrl-C or SIGTERM.
pub async fn one(role: RoleConfig, wiring: Wiring) -> anyhow::Result<()> {
    let _telemetry = connect::telemetry(&format!("smsfleet-{}", role.name()))?;
    let (resources, listener) = wiring.connect(role.name()).await?;
    let shutdown = smsfleet_telemetry::shutdown_on_signal();
    let readiness = Readiness::default();
    let admin_task = match wiring.admin_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr).await.with_context(|| format!("admin listen {addr}"))?;
            Some(tokio::spawn(smsfleet_telemetry::serve_admin(l, readiness.clone(), shutdown.clone())))
        }
        None => None,
    };
    let ctx = resources.context(role.name(), &readiness, shutdown.clone(), listener);
    let result = role.run(ctx).await;
    shutdown.cancel();
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    result
}

/// What a single-role process connects to, taken from its arguments.
#[derive(Default)]
pub struct Wiring {
    bus: Option<cli::BusArgs>,
    store: Option<cli::StoreArgs>,
    /// The server key, when the role needs it.
    server_key: Option<String>,
    /// The role's own HTTP listener.
    listen: Option<SocketAddr>,
    /// /metrics, /healthz and /readyz.
    admin_listen: Option<SocketAddr>,
}

impl Wiring {
    /// The bus and the database, as most roles need.
    fn role(a: &cli::RoleArgs) -> Self {
        Self {
            bus: Some(a.bus.clone()),
            store: Some(a.store.clone()),
            admin_listen: Some(a.admin_listen),
            ..Self::default()
        }
    }

    async fn connect(&self, name: &str) -> anyhow::Result<(Resources, Option<TcpListener>)> {
        let mut resources = Resources::default();
        if let Some(b) = &self.bus {
            resources.bus = Some(connect::bus(b, name).await?);
        }
        if let Some(s) = &self.store {
            resources.pool = Some(connect::store(s, false).await?);
        }
        if let Some(key) = &self.server_key {
            resources.secrets = Some(Secrets::from_hex(key)?);
        }
        let listener = match self.listen {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| format!("listen {addr}"))?),
            None => None,
        };
        Ok((resources, listener))
    }
}

/// The role a command starts and what it connects to; `None` for the
/// commands that are not a role.
pub fn from_command(command: &cli::Command) -> anyhow::Result<Option<(RoleConfig, Wiring)>> {
    use cli::Command;
    Ok(Some(match command {
        Command::Ingress(a) => {
            let wiring = Wiring {
                bus: Some(a.bus.clone()),
                server_key: Some(a.server_key.clone()),
                listen: Some(a.http.listen),
                admin_listen: Some(a.admin_listen),
                ..Wiring::default()
            };
            (RoleConfig::Ingress(Box::new(config::ingress(&a.http)?)), wiring)
        }
        Command::Accounts(a) => {
            let key = a.server_key.clone().context("SMSFLEET_SERVER_KEY is required by the accounts role")?;
            (RoleConfig::Accounts(Default::default()), Wiring { server_key: Some(key), ..Wiring::role(a) })
        }
        Command::Ledger(a) => (RoleConfig::Ledger(Default::default()), Wiring::role(a)),
        Command::Scheduler(a) => (RoleConfig::Scheduler(Default::default()), Wiring::role(a)),
        Command::Dispatcher(a) => {
            let config = config::dispatcher(&a.routes)?
                .context("the dispatcher needs routes: set SMSFLEET_ROUTES_FILE (or SMSFLEET_ROUTES)")?;
            (RoleConfig::Dispatcher(config), Wiring::role(&a.role))
        }
        Command::Dlr(a) => {
            let routes = config::routes(&a.routes)?.unwrap_or_default();
            (
                RoleConfig::Dlr(config::dlr(&a.limits, &routes)),
                Wiring { listen: Some(a.listen), ..Wiring::role(&a.role) },
            )
        }
        Command::Query(a) => (RoleConfig::Query(Default::default()), Wiring::role(a)),
        Command::Callbacks(a) => (RoleConfig::Callbacks(Default::default()), Wiring::role(a)),
        Command::Simulator(a) => {
            let wiring = Wiring { listen: Some(a.listen), ..Wiring::default() };
            (RoleConfig::Simulator(config::simulator(&a.sim, None)), wiring)
        }
        _ => return Ok(None),
    }))
}
