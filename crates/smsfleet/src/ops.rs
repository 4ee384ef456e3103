//! The operator commands: migrations, accounts, credit, rates, the stop and
//! do-not-disturb lists, sender IDs and IP blocks. Each one goes through the
//! same library function the roles use, then prints one line.

use anyhow::{Context, bail};
use smsfleet_domain::account::Role;
use smsfleet_secrets::Secrets;

use crate::cli::{self, Command};
use crate::connect;

/// Runs `command` if it is an operator command; gives it back otherwise.
pub async fn execute(command: Command) -> anyhow::Result<Option<Command>> {
    let done: anyhow::Result<()> = match command {
        Command::Migrate(s) => {
            let _t = connect::telemetry("smsfleet-migrate")?;
            let pool = connect::store(&s, true).await?;
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
            let pool = connect::store(&a.store, true).await?;
            let list = smsfleet_accounts::set_sender_approved(&pool, &a.username, &a.sender, approved).await?;
            println!("approved sender IDs of {}: {}", a.username, list.join(", "));
            Ok(())
        }
        Command::Unblock(a) => {
            let bus = connect::bus(&a.bus, "cli").await?;
            let ip = a.ip.to_string();
            let state =
                smsfleet_contract::BlockState { v: smsfleet_contract::SCHEMA_VERSION, ip: ip.clone(), until_ms: 0 };
            bus.publish_state(bus.namespace().block_state_subject(&ip), &state).await?;
            println!("{ip} unblocked on every ingress replica");
            Ok(())
        }
        Command::Smpp { command: cli::SmppCommand::Sessions(a) } => {
            let bus = connect::bus(&a.bus, "cli").await?;
            let wait = std::time::Duration::from_millis(a.wait_ms);
            let mut replies = bus
                .gather(smsfleet_contract::services::SMPP_SESSIONS, &smsfleet_contract::SmppSessionsRequest {}, wait)
                .await?;
            replies.sort_by(|a, b| a.replica.cmp(&b.replica));
            println!("replica uid system_id bind peer bound_at_ms submits throttled delivered");
            for r in &replies {
                for s in &r.sessions {
                    println!(
                        "{} {} {} {} {} {} {} {} {}",
                        r.replica,
                        s.uid,
                        s.system_id,
                        s.bind,
                        s.peer,
                        s.bound_at_ms,
                        s.submits,
                        s.throttled,
                        s.delivered
                    );
                }
            }
            Ok(())
        }
        Command::Phonebook { command } => crate::phonebook::execute(command).await,
        Command::Keyword { command } => crate::keyword::run(command).await,
        Command::Routes { command: cli::RoutesCommand::Check { file } } => {
            let routes = smsfleet_dispatcher::load_routes_file(&file)?;
            for r in &routes {
                let protocol = match &r.protocol {
                    smsfleet_dispatcher::Protocol::Sim(_) => "sim",
                    smsfleet_dispatcher::Protocol::Http(_) => "http",
                    smsfleet_dispatcher::Protocol::Smpp(_) => "smpp",
                };
                let prefixes = if r.prefixes.is_empty() { "(default)".to_owned() } else { r.prefixes.join(",") };
                let failover: Vec<&str> = r.failover.iter().map(|f| f.as_str()).collect();
                println!("{} {protocol} prefixes={prefixes} failover={}", r.name, failover.join(","));
            }
            println!("{}: {} routes, ok", file.display(), routes.len());
            Ok(())
        }
        Command::Rate { command: cli::RateCommand::Set(a) } => {
            let pool = connect::store(&a.store, true).await?;
            let rate: rust_decimal::Decimal = a.rate.parse().context("rate must be a decimal number")?;
            smsfleet_ledger::set_rate(&pool, a.prefix.as_deref(), rate).await?;
            println!("rate set; the ledger publishes it within seconds");
            Ok(())
        }
        other => return Ok(Some(other)),
    };
    done.map(|()| None)
}

async fn stop_command(command: cli::StopCommand, dnd: bool) -> anyhow::Result<()> {
    let (a, listed) = match command {
        cli::StopCommand::Add(a) => (a, true),
        cli::StopCommand::Remove(a) => (a, false),
    };
    let bus = connect::bus(&a.bus, "cli").await?;
    bus.provision().await?;
    let pool = connect::store(&a.store, true).await?;
    let uid = if dnd {
        let name = a.username.context("--username is required for dnd")?;
        Some(smsfleet_accounts::find_account(&pool, &name).await?.uid)
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
            let bus = connect::bus(&a.bus, "cli").await?;
            bus.provision().await?;
            let pool = connect::store(&a.store, true).await?;
            let secrets = Secrets::from_hex(&a.server_key)?;
            let role = match a.role.as_str() {
                "admin" => Role::Admin,
                "user" => Role::User,
                "subuser" => Role::Subuser,
                other => bail!("role {other:?}: use admin, user or subuser"),
            };
            if let Some(callback) = a.dlr_callback_url.as_deref().filter(|c| !c.is_empty()) {
                smsfleet_domain::callback::CallbackSpec::parse(callback)
                    .with_context(|| format!("--dlr-callback-url {callback:?}"))?;
            }
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
            let bus = connect::bus(&a.bus, "cli").await?;
            let pool = connect::store(&a.store, true).await?;
            let amount: rust_decimal::Decimal = a.amount.parse().context("amount must be a decimal number")?;
            let row = smsfleet_accounts::find_account(&pool, &a.username).await?;
            let reference = format!("cli:{}:{}", row.uid, smsfleet_domain::clock::now_ms());
            let balance = smsfleet_ledger::adjust_credit(&pool, &bus, &reference, row.uid, amount).await?;
            println!("username={} balance={balance}", row.username);
            Ok(())
        }
        cli::AccountCommand::Set(a) => {
            let a = *a;
            let bus = connect::bus(&a.bus, "cli").await?;
            let pool = connect::store(&a.store, true).await?;
            let secrets = Secrets::from_hex(&a.server_key)?;
            let changes = smsfleet_accounts::AccountChanges {
                token: a.token,
                webservices_enabled: a.webservices.map(|w| w == cli::OnOff::On),
                webservices_ip: a.webservices_ip,
                password: a.password,
                email: a.email,
                name: a.name,
                mobile: a.mobile,
                smpp_password: a.smpp_password,
                smpp_max_binds: a.max_binds,
                smpp_throughput: a.smpp_throughput,
            };
            let row = smsfleet_accounts::update_account(&pool, &bus, &secrets, &a.username, changes).await?;
            println!("uid={} username={} revision={}", row.uid, row.username, row.revision);
            Ok(())
        }
    }
}
