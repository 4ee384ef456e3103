//! Starting roles: telemetry, connections, provisioning, the admin
//! endpoints, then the role itself until Ctrl-C or SIGTERM.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, bail};
use smsfleet_accounts::Secrets;
use smsfleet_bus::Bus;
use smsfleet_contract::Namespace;
use smsfleet_store::PgPool;
use smsfleet_telemetry::Readiness;
use tokio_util::sync::CancellationToken;

use crate::cli::{self, Cli, Command};
use crate::local;

pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::All(args) => local::run_all(args).await,
        Command::Ingress(a) => {
            let _t = init("smsfleet-ingress")?;
            let bus = connect_bus(&a.bus, "ingress").await?;
            let secrets = Secrets::from_hex(&a.server_key)?;
            let listener = tokio::net::TcpListener::bind(a.http.listen).await?;
            serve_role(a.admin_listen, |readiness, shutdown| async move {
                smsfleet_ingress::run(
                    bus,
                    secrets,
                    ingress_config(&a.http),
                    listener,
                    readiness.register("ingress"),
                    shutdown,
                )
                .await
                .map_err(anyhow::Error::from)
            })
            .await
        }
        Command::Ledger(a) => {
            let _t = init("smsfleet-ledger")?;
            let (bus, pool) = connect_all(&a, "ledger").await?;
            serve_role(a.admin_listen, |r, s| async move {
                smsfleet_ledger::run(bus, pool, Default::default(), r.register("ledger"), s).await.map_err(Into::into)
            })
            .await
        }
        Command::Scheduler(a) => {
            let _t = init("smsfleet-scheduler")?;
            let (bus, pool) = connect_all(&a, "scheduler").await?;
            serve_role(a.admin_listen, |r, s| async move {
                smsfleet_scheduler::run(bus, pool, Default::default(), r.register("scheduler"), s)
                    .await
                    .map_err(Into::into)
            })
            .await
        }
        Command::Dispatcher(a) => {
            let _t = init("smsfleet-dispatcher")?;
            let (bus, pool) = connect_all(&a.role, "dispatcher").await?;
            let config = dispatcher_config(&a.routes)?;
            serve_role(a.role.admin_listen, |r, s| async move {
                smsfleet_dispatcher::run(bus, pool, config, r.register("dispatcher"), s).await.map_err(Into::into)
            })
            .await
        }
        Command::Dlr(a) => {
            let _t = init("smsfleet-dlr")?;
            let (bus, pool) = connect_all(&a.role, "dlr").await?;
            let listener = tokio::net::TcpListener::bind(a.listen).await?;
            serve_role(a.role.admin_listen, |r, s| async move {
                smsfleet_dlr::run(bus, pool, Default::default(), listener, r.register("dlr"), s)
                    .await
                    .map_err(Into::into)
            })
            .await
        }
        Command::Query(a) => {
            let _t = init("smsfleet-query")?;
            let (bus, pool) = connect_all(&a, "query").await?;
            serve_role(a.admin_listen, |r, s| async move {
                smsfleet_query::run(bus, pool, Default::default(), r.register("query"), s).await.map_err(Into::into)
            })
            .await
        }
        Command::Callbacks(a) => {
            let _t = init("smsfleet-callbacks")?;
            let (bus, pool) = connect_all(&a, "callbacks").await?;
            serve_role(a.admin_listen, |r, s| async move {
                smsfleet_callbacks::run(bus, pool, Default::default(), r.register("callbacks"), s)
                    .await
                    .map_err(Into::into)
            })
            .await
        }
        Command::Accounts(a) => {
            let _t = init("smsfleet-accounts")?;
            let (bus, pool) = connect_all(&a, "accounts").await?;
            let key = a.server_key.clone().context("SMSFLEET_SERVER_KEY is required by the accounts role")?;
            let secrets = Secrets::from_hex(&key)?;
            serve_role(a.admin_listen, |r, s| async move {
                smsfleet_accounts::run(bus, pool, secrets, r.register("accounts"), s).await.map_err(Into::into)
            })
            .await
        }
        Command::Simulator(a) => {
            let _t = init("smsfleet-simulator")?;
            let listener = tokio::net::TcpListener::bind(a.listen).await?;
            let shutdown = smsfleet_telemetry::shutdown_on_signal();
            let config = simulator_config(&a.sim, None);
            smsfleet_simulator::run(config, listener, async move { shutdown.cancelled().await }).await?;
            Ok(())
        }
        Command::Migrate(s) => {
            let _t = init("smsfleet-migrate")?;
            let pool = smsfleet_store::connect(&s.database_url, 2).await?;
            smsfleet_store::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Account { command } => account_command(command).await,
        Command::Stoplist { command } => stop_command(command, false).await,
        Command::Dnd { command } => stop_command(command, true).await,
        Command::Sender { command } => {
            let (a, approved) = match command {
                cli::SenderCommand::Add(a) => (a, true),
                cli::SenderCommand::Remove(a) => (a, false),
            };
            let pool = smsfleet_store::connect(&a.store.database_url, 2).await?;
            let list = smsfleet_accounts::set_sender_approved(&pool, &a.username, &a.sender, approved).await?;
            println!("approved sender IDs of {}: {}", a.username, list.join(", "));
            Ok(())
        }
        Command::Unblock(a) => {
            let bus = connect_bus(&a.bus, "cli").await?;
            let ip = a.ip.to_string();
            let state =
                smsfleet_contract::BlockState { v: smsfleet_contract::SCHEMA_VERSION, ip: ip.clone(), until_ms: 0 };
            bus.publish_state(bus.namespace().block_state_subject(&ip), &state).await?;
            println!("{ip} unblocked on every ingress replica");
            Ok(())
        }
        Command::Phonebook { command } => crate::phonebook::execute(command).await,
        Command::Keyword { command } => crate::keyword::run(command).await,
        Command::Rate { command: cli::RateCommand::Set(a) } => {
            let pool = smsfleet_store::connect(&a.store.database_url, 2).await?;
            let rate: rust_decimal::Decimal = a.rate.parse().context("rate must be a decimal number")?;
            if rate.is_sign_negative() {
                bail!("rate must not be negative");
            }
            match &a.prefix {
                Some(p) if !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()) => {
                    smsfleet_store::rates::set_prefix(&pool, p, rate).await?
                }
                Some(p) => bail!("prefix {p:?} must be 1 to 10 digits"),
                None => smsfleet_store::rates::set_default(&pool, rate).await?,
            }
            println!("rate set; the ledger publishes it within seconds");
            Ok(())
        }
    }
}

async fn stop_command(command: cli::StopCommand, dnd: bool) -> anyhow::Result<()> {
    let (a, listed) = match command {
        cli::StopCommand::Add(a) => (a, true),
        cli::StopCommand::Remove(a) => (a, false),
    };
    let bus = connect_bus(&a.bus, "cli").await?;
    bus.provision().await?;
    let pool = smsfleet_store::connect(&a.store.database_url, 2).await?;
    let uid = if dnd {
        let name = a.username.context("--username is required for dnd")?;
        let row = smsfleet_store::accounts::by_username(&pool, &name.to_ascii_lowercase())
            .await?
            .with_context(|| format!("no account {name:?}"))?;
        Some(row.uid)
    } else {
        None
    };
    let digits = smsfleet_accounts::set_stop(&pool, &bus, uid, &a.number, listed).await?;
    println!("number={digits} listed={listed}");
    Ok(())
}

async fn account_command(command: cli::AccountCommand) -> anyhow::Result<()> {
    match command {
        cli::AccountCommand::Create(a) => {
            let a = *a;
            let bus = connect_bus(&a.bus, "cli").await?;
            bus.provision().await?;
            let pool = smsfleet_store::connect(&a.store.database_url, 2).await?;
            let secrets = Secrets::from_hex(&a.server_key)?;
            let role = match a.role.as_str() {
                "admin" => 2,
                "user" => 3,
                "subuser" => 4,
                other => bail!("role {other:?}: use admin, user or subuser"),
            };
            let spec = smsfleet_accounts::NewAccountSpec {
                username: a.username,
                password: a.password,
                role,
                email: a.email,
                name: String::new(),
                webservices_ip: a.ip,
                token: a.token,
                timezone: a.timezone,
                footer: a.footer,
                templates: a.templates,
                dlr_callback_url: a.dlr_callback_url,
            };
            let (row, token) = smsfleet_accounts::create_account(&pool, &bus, &secrets, spec).await?;
            println!("uid={} username={} token={token}", row.uid, row.username);
            Ok(())
        }
        cli::AccountCommand::Credit(a) => {
            let bus = connect_bus(&a.bus, "cli").await?;
            let pool = smsfleet_store::connect(&a.store.database_url, 2).await?;
            let amount: rust_decimal::Decimal = a.amount.parse().context("amount must be a decimal number")?;
            let row = smsfleet_store::accounts::by_username(&pool, &a.username.to_ascii_lowercase())
                .await?
                .with_context(|| format!("no account {:?}", a.username))?;
            let reference = format!("cli:{}:{}", row.uid, time_ms());
            let balance = smsfleet_ledger::adjust_credit(&pool, &bus, &reference, row.uid, amount).await?;
            println!("username={} balance={balance}", row.username);
            Ok(())
        }
        cli::AccountCommand::Set(a) => {
            let a = *a;
            let bus = connect_bus(&a.bus, "cli").await?;
            let pool = smsfleet_store::connect(&a.store.database_url, 2).await?;
            let secrets = Secrets::from_hex(&a.server_key)?;
            let changes = smsfleet_accounts::AccountChanges {
                token: a.token,
                webservices_enabled: a.webservices.map(|w| w == cli::OnOff::On),
                webservices_ip: a.webservices_ip,
                password: a.password,
                email: a.email,
                name: a.name,
                mobile: a.mobile,
            };
            let row = smsfleet_accounts::update_account(&pool, &bus, &secrets, &a.username, changes).await?;
            println!("uid={} username={} revision={}", row.uid, row.username, row.revision);
            Ok(())
        }
    }
}

fn time_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

fn init(service: &str) -> anyhow::Result<smsfleet_telemetry::TelemetryGuard> {
    smsfleet_telemetry::init(service).map_err(|e| anyhow::anyhow!("telemetry: {e}"))
}

pub fn namespace(name: &str) -> anyhow::Result<Namespace> {
    Namespace::new(name).with_context(|| format!("namespace {name:?}: use lower-case letters, digits and _"))
}

pub async fn connect_bus(a: &cli::BusArgs, name: &str) -> anyhow::Result<Bus> {
    let bus = Bus::connect(&a.nats_url, namespace(&a.namespace)?, &format!("smsfleet-{name}")).await?;
    bus.provision().await?;
    Ok(bus)
}

async fn connect_all(a: &cli::RoleArgs, name: &str) -> anyhow::Result<(Bus, PgPool)> {
    let bus = connect_bus(&a.bus, name).await?;
    let pool = smsfleet_store::connect(&a.store.database_url, a.store.db_max_connections).await?;
    Ok((bus, pool))
}

pub fn ingress_config(s: &cli::IngressSettings) -> smsfleet_ingress::IngressConfig {
    smsfleet_ingress::IngressConfig {
        max_destinations: s.max_destinations,
        max_segments: s.max_parts,
        default_sender: s.default_sender.clone(),
        validity: Duration::from_secs(s.validity_hours * 3600),
        bulk: smsfleet_ingress::BulkSettings {
            ip_blacklist: s.bulk_ip_blacklist.clone(),
            spam_patterns: s
                .bulk_spam_patterns
                .split('|')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            duplicate_window: Duration::from_secs(s.bulk_duplicate_window_secs),
        },
        login_guard: smsfleet_ingress::GuardSettings {
            limit: s.login_attempt_limit,
            window: Duration::from_secs(s.login_window_secs),
            block_for: Duration::from_secs(s.login_block_secs),
        },
        web_root: s.web_root.clone(),
        trusted_proxies: s.trusted_proxies.clone(),
        ..Default::default()
    }
}

pub fn dispatcher_config(routes: &str) -> anyhow::Result<smsfleet_dispatcher::DispatcherConfig> {
    let routes = smsfleet_dispatcher::parse_routes(routes)?;
    if routes.is_empty() {
        bail!("at least one route is needed (SMSFLEET_ROUTES)");
    }
    Ok(smsfleet_dispatcher::DispatcherConfig { routes, ..Default::default() })
}

pub fn simulator_config(s: &cli::SimulatorSettings, dlr_url: Option<String>) -> smsfleet_simulator::SimulatorConfig {
    let list = |v: &str| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    smsfleet_simulator::SimulatorConfig {
        dlr_url,
        dlr_latency: Duration::from_millis(s.sim_dlr_latency_ms),
        fail_prefixes: list(&s.sim_fail_prefixes),
        reject_prefixes: list(&s.sim_reject_prefixes),
        max_mps: (s.sim_max_mps > 0).then_some(s.sim_max_mps),
        per_connection_mps: (s.sim_per_connection_mps > 0).then_some(s.sim_per_connection_mps),
        ..Default::default()
    }
}

/// Serves the admin endpoints and runs `role` until a signal.
async fn serve_role<F, Fut>(admin: std::net::SocketAddr, role: F) -> anyhow::Result<()>
where
    F: FnOnce(Readiness, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let shutdown = smsfleet_telemetry::shutdown_on_signal();
    let readiness = Readiness::default();
    let admin_listener = tokio::net::TcpListener::bind(admin).await.with_context(|| format!("admin listen {admin}"))?;
    let admin_task = tokio::spawn(smsfleet_telemetry::serve_admin(admin_listener, readiness.clone(), shutdown.clone()));
    let result = role(readiness, shutdown.clone()).await;
    shutdown.cancel();
    let _ = admin_task.await;
    result
}
