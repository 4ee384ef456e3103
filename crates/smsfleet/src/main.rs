//! `smsfleet`: one binary, one subcommand per role. It only parses the
//! command line and calls the role libraries; `all` runs every role in one
//! process with private NATS and PostgreSQL for the local default.

mod cli;
mod keyword;
mod local;
mod phonebook;
mod roles;

use clap::Parser;

/// glibc malloc took ~14 % of the ingress's CPU under load in the
/// benchmark profile (many small per-request allocations across threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    smsfleet_telemetry::install_crypto_provider();
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(roles::execute(cli))
}
