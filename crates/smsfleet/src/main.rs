//! `smsfleet`: one binary, one subcommand per role plus the operator
//! commands. `all` runs every role in one process with private NATS and
//! PostgreSQL for the local default.
//!
//! Modules: `cli` (the command line), `config` (settings into role
//! configs), `connect` (bus, database, telemetry), `start` (the one way a
//! role is started), `local` (`smsfleet all`), `ops` with `phonebook` and
//! `keyword` (operator commands).

mod cli;
mod config;
mod connect;
mod keyword;
mod local;
mod ops;
mod phonebook;
mod start;

use clap::Parser;

/// glibc malloc took ~14 % of the ingress's CPU under load in the
/// benchmark profile (many small per-request allocations across threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    smsfleet_telemetry::install_crypto_provider();
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(execute(cli.command))
}

async fn execute(command: cli::Command) -> anyhow::Result<()> {
    if let cli::Command::All(args) = command {
        return local::run_all(args).await;
    }
    if let Some((role, wiring)) = start::from_command(&command)? {
        return start::one(role, wiring).await;
    }
    match ops::execute(command).await? {
        None => Ok(()),
        Some(other) => anyhow::bail!("unhandled command {other:?}"),
    }
}
