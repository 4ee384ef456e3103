//! `smsfleet all`: the whole fleet in one process for a laptop or a demo.
//! Starts private NATS and PostgreSQL in the data dir unless URLs are given,
//! migrates, creates the first admin, runs every role and the SMSC simulator
//! as the default route, and prints a ready-to-paste curl line.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use smsfleet_bus::Bus;
use smsfleet_localinfra::{NatsServer, PostgresOptions, PostgresServer};
use smsfleet_secrets::Secrets;
use smsfleet_telemetry::Readiness;
use tokio::task::JoinSet;

use crate::cli::AllArgs;
use crate::start::{Resources, RoleConfig};
use crate::{config, connect};

pub async fn run_all(a: AllArgs) -> anyhow::Result<()> {
    let _telemetry = connect::telemetry("smsfleet")?;
    std::fs::create_dir_all(&a.data_dir).with_context(|| format!("creating {}", a.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&a.data_dir)?;
    let shutdown = smsfleet_telemetry::shutdown_on_signal();

    let mut nats_server = None;
    let nats_url = match &a.nats_url {
        Some(u) => u.clone(),
        None => {
            let n = NatsServer::start(&data_dir.join("nats")).await.context("starting nats-server")?;
            let url = n.url();
            tracing::info!(%url, "private nats-server started");
            nats_server = Some(n);
            url
        }
    };
    let mut pg_server = None;
    let database_url = match &a.database_url {
        Some(u) => u.clone(),
        None => {
            let pg = PostgresServer::start(&data_dir.join("pg"), PostgresOptions::default())
                .await
                .context("starting PostgreSQL")?;
            smsfleet_store::create_database_if_missing(&pg.url("postgres"), "smsfleet").await?;
            let url = pg.url("smsfleet");
            tracing::info!(%url, "private PostgreSQL started");
            pg_server = Some(pg);
            url
        }
    };
    let result = run_fleet(&a, &data_dir, &nats_url, &database_url, shutdown).await;
    if let Some(n) = nats_server {
        let _ = n.stop().await;
    }
    if let Some(pg) = pg_server {
        let _ = pg.stop().await;
    }
    result
}

fn server_key(a: &AllArgs, dir: &Path) -> anyhow::Result<Secrets> {
    if let Some(k) = &a.server_key {
        return Ok(Secrets::from_hex(k)?);
    }
    let path = dir.join("server.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(k) => k.trim().to_owned(),
        Err(_) => {
            let k = Secrets::generate_key();
            write_private(&path, &k)?;
            k
        }
    };
    Ok(Secrets::from_hex(&key)?)
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(content.as_bytes())?;
    Ok(())
}

async fn run_fleet(
    a: &AllArgs,
    data_dir: &Path,
    nats_url: &str,
    database_url: &str,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let ns = connect::namespace(&a.namespace)?;
    let bus = Bus::connect(nats_url, ns, "smsfleet-all").await?;
    bus.provision().await?;
    let pool = smsfleet_store::connect(database_url, 32).await?;
    smsfleet_store::migrate(&pool).await?;
    let secrets = server_key(a, data_dir)?;
    let admin_token = bootstrap_admin(a, &pool, &bus, &secrets).await?;

    let readiness = Readiness::default();
    let admin_listener = tokio::net::TcpListener::bind(a.admin_listen).await?;
    let mut tasks: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();
    tasks.spawn(smsfleet_telemetry_admin(admin_listener, readiness.clone(), shutdown.clone()));

    let sim_listener = tokio::net::TcpListener::bind(a.simulator_listen).await.context("simulator listen")?;
    let smpp_listener = std::net::TcpListener::bind(a.simulator_smpp_listen).context("simulator SMPP listen")?;
    let smpp_addr = smpp_listener.local_addr()?;
    let dlr_listener = tokio::net::TcpListener::bind(a.dlr_listen).await.context("dlr listen")?;
    let http_listener = tokio::net::TcpListener::bind(a.http.listen).await.context("http listen")?;
    let listen = http_listener.local_addr()?;
    let dispatcher = match config::dispatcher(&a.routes)? {
        Some(config) => config,
        None => {
            smsfleet_dispatcher::DispatcherConfig { routes: vec![local_smpp_route(smpp_addr)?], ..Default::default() }
        }
    };
    let dlr = config::dlr(&a.http.limits, &dispatcher.routes);
    let fleet = [
        (RoleConfig::Simulator(local_simulator(&a.sim, smpp_listener)), Some(sim_listener)),
        (RoleConfig::Accounts(Default::default()), None),
        (RoleConfig::Query(Default::default()), None),
        (RoleConfig::Callbacks(Default::default()), None),
        (RoleConfig::Ledger(Default::default()), None),
        (RoleConfig::Scheduler(Default::default()), None),
        (RoleConfig::Dispatcher(dispatcher), None),
        (RoleConfig::Dlr(dlr), Some(dlr_listener)),
        (RoleConfig::Ingress(Box::new(config::ingress(&a.http)?)), Some(http_listener)),
    ];
    let resources = Resources { bus: Some(bus.clone()), pool: Some(pool.clone()), secrets: Some(secrets) };
    for (role, listener) in fleet {
        let name = role.name();
        let ctx = resources.context(name, &readiness, shutdown.clone(), listener);
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let r = role.run(ctx).await;
            if r.is_err() {
                // One role failing takes the process down, as separate
                // processes would be restarted by their supervisor.
                stop.cancel();
            }
            (name, r)
        });
    }

    print_welcome(a, listen, admin_token.as_deref());
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((name, Err(e))) => {
                tracing::error!(role = name, error = %e, "role failed");
                first_error.get_or_insert(e.context(name));
            }
            Ok((name, Ok(()))) => tracing::info!(role = name, "role stopped"),
            Err(e) => {
                first_error.get_or_insert(anyhow::anyhow!("role panicked: {e}"));
            }
        }
        shutdown.cancel();
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), bus.flush()).await;
    pool.close().await;
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn smsfleet_telemetry_admin(
    listener: tokio::net::TcpListener,
    readiness: Readiness,
    shutdown: tokio_util::sync::CancellationToken,
) -> (&'static str, anyhow::Result<()>) {
    ("admin", smsfleet_telemetry::serve_admin(listener, readiness, shutdown).await.map_err(Into::into))
}

/// Creates the first admin unless it exists; returns its token.
async fn bootstrap_admin(
    a: &AllArgs,
    pool: &smsfleet_store::PgPool,
    bus: &Bus,
    secrets: &Secrets,
) -> anyhow::Result<Option<String>> {
    let username = a.admin_user.to_ascii_lowercase();
    if let Some(row) = smsfleet_accounts::lookup_account(pool, &username).await? {
        return Ok(row.token_sealed.as_deref().and_then(|s| secrets.open(s)));
    }
    let password = a.admin_password.clone().unwrap_or_else(|| smsfleet_secrets::generate_token()[..16].to_owned());
    let spec = smsfleet_accounts::NewAccountSpec {
        username: username.clone(),
        password: Some(password.clone()),
        role: smsfleet_domain::account::Role::Admin,
        email: String::new(),
        name: "Administrator".to_owned(),
        webservices_ip: "127.0.0.1, ::1".to_owned(),
        token: a.admin_token.clone(),
        timezone: "+0000".to_owned(),
        footer: String::new(),
        ..Default::default()
    };
    let (_, token) = smsfleet_accounts::create_account(pool, bus, secrets, spec).await?;
    if a.admin_password.is_none() {
        println!("first admin created: username={username} password={password}");
    }
    Ok(Some(token))
}

fn print_welcome(a: &AllArgs, listen: std::net::SocketAddr, token: Option<&str>) {
    let user = a.admin_user.to_ascii_lowercase();
    let token = token.unwrap_or("<token>");
    println!();
    println!(
        "smsfleet is running: playSMS API on http://{listen}/index.php?app=ws, metrics on http://{}/metrics",
        a.admin_listen
    );
    println!("admin: {user}  token: {token}");
    println!("give the admin credit:  smsfleet account credit ... (see README), or send free: the default rate is 0");
    println!("send an SMS:");
    println!("  curl 'http://{listen}/index.php?app=ws&u={user}&h={token}&op=pv&to=628111000001&msg=hello+world'");
    println!("delivery status:");
    println!("  curl 'http://{listen}/index.php?app=ws&u={user}&h={token}&op=ds'");
    println!("Ctrl-C stops everything.");
}

/// The built-in simulator: its HTTP side as configured, plus the fake SMSC
/// the default route binds to (same failure prefixes and report latency).
fn local_simulator(
    sim: &crate::cli::SimulatorSettings,
    smpp: std::net::TcpListener,
) -> smsfleet_simulator::SimulatorConfig {
    let mut config = config::simulator(sim, None);
    let smsc = smsfleet_simulator::SmscConfig {
        receipt_latency: config.dlr_latency,
        fail_prefixes: config.fail_prefixes.clone(),
        reject_prefixes: config.reject_prefixes.clone(),
        ..Default::default()
    };
    config.smpp = Some(smsfleet_simulator::SmppListener::new(smsc, smpp));
    config
}

/// The default route of `smsfleet all`: everything over SMPP to the
/// built-in simulator's fake SMSC, so the default path is the real protocol;
/// receipts come back on the same (TRX) binds.
fn local_smpp_route(smsc: std::net::SocketAddr) -> anyhow::Result<smsfleet_dispatcher::Route> {
    let file = format!(
        "[[route]]\nname = \"sim\"\nprotocol = \"smpp\"\n[route.smpp]\nhost = \"{}\"\nport = {}\n\
         system_id = \"smsfleet\"\nbinds = 4\nwindow = 64\n",
        smsc.ip(),
        smsc.port()
    );
    let mut routes = smsfleet_dispatcher::parse_routes_file(&file, &|_| None).map_err(anyhow::Error::msg)?;
    routes.pop().ok_or_else(|| anyhow::anyhow!("no default route"))
}
