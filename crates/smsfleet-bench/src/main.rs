//! smsfleet-bench: starts a private nats-server and PostgreSQL, runs the
//! benchmark scenarios against fleets of separate `smsfleet <role>`
//! processes, and writes `report.json`, `report.md` and `chart.png`.
//! `scripts/bench.sh` is the documented way to run it; docs/benchmark.md
//! describes the method.

mod chaos;
mod fleet;
mod procs;
mod report;
mod scenarios;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The allocator `smsfleet` uses, so the ceiling-http server (this binary)
/// runs the same stack as the ingress.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "smsfleet-bench", about = "The smsfleet benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Tiny counts (seconds in all): CI runs this so the benchmark cannot rot.
    #[arg(long)]
    smoke: bool,
    /// Runs only these scenarios (repeatable); default all, in order.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Where `<timestamp>/report.*` goes.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// The `smsfleet` binary; default: next to this one.
    #[arg(long, env = "SMSFLEET_BIN")]
    bin: Option<PathBuf>,
    /// PostgreSQL with fsync on (default off, like the test harness).
    #[arg(long)]
    durable_postgres: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Internal: the fixed-body HTTP server of the ceiling-http scenario.
    ServeFixed {
        #[arg(long)]
        listen: String,
    },
    /// The chaos suite: one fault per scenario under a steady load; writes
    /// the table and fails on any lost, duplicated or wrongly charged
    /// message (`scripts/chaos.sh`).
    Chaos {
        /// The CI form: kill -9 of the roles holding work, one NATS restart.
        #[arg(long)]
        short: bool,
        /// Only the scenarios whose name contains this (repeatable).
        #[arg(long = "only")]
        only: Vec<String>,
        /// Load clients (about 40 requests/s each).
        #[arg(long, default_value_t = 4)]
        clients: u64,
        /// Where the Markdown table (and `.json` beside it) goes.
        #[arg(long, default_value = "bench-results/chaos.md")]
        table: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Some(Command::ServeFixed { listen }) => runtime.block_on(scenarios::serve_fixed(&listen)),
        Some(Command::Chaos { short, only, clients, table }) => {
            let bin = cli.bin.clone().unwrap_or_else(fleet::default_bin);
            runtime.block_on(chaos_suite(bin, short, &only, clients, &table))
        }
        None => runtime.block_on(bench(cli)),
    }
}

async fn bench(cli: Cli) -> anyhow::Result<()> {
    let sizes = if cli.smoke { scenarios::Sizes::smoke() } else { scenarios::Sizes::full() };
    let names: Vec<String> = if cli.scenarios.is_empty() {
        scenarios::ALL.iter().map(|s| (*s).to_owned()).collect()
    } else {
        cli.scenarios.clone()
    };
    let names = scenarios::with_ceilings(names);
    for n in &names {
        anyhow::ensure!(
            scenarios::ALL.contains(&n.as_str()),
            "unknown scenario {n:?}; known: {}",
            scenarios::ALL.join(", ")
        );
    }
    let bin = cli.bin.clone().unwrap_or_else(fleet::default_bin);
    anyhow::ensure!(bin.exists(), "{} not found: build it (cargo build -p smsfleet) or pass --bin", bin.display());
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour][minute][second]Z"))
        .unwrap_or_else(|_| "run".into());
    let dir = cli.out.join(&stamp);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let build = if bin.components().any(|c| c.as_os_str() == "release") { "release" } else { "debug" };
    let mut infra = fleet::Infra::start(bin, cli.durable_postgres).await?;
    let mut ceilings = scenarios::Ceilings::default();
    let mut results = Vec::new();
    for name in &names {
        eprintln!("== {name}");
        let r = scenarios::run_scenario(name, &mut infra, &sizes, &mut ceilings).await;
        match &r.error {
            Some(e) => eprintln!("   FAILED: {e}"),
            None => eprintln!("   {}", serde_json::to_string(&r.metrics).unwrap_or_default()),
        }
        results.push(r);
    }
    infra.stop().await;

    let report = report::Report {
        started_at: stamp,
        mode: if cli.smoke { "smoke" } else { "full" },
        build,
        machine: report::Machine::detect(),
        sizes,
        scenarios: results,
    };
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    let md = report::markdown(&report);
    std::fs::write(dir.join("report.md"), &md)?;
    if let Err(e) = report::chart(&report, &dir.join("chart.png")) {
        eprintln!("chart not drawn: {e}");
    }
    println!("{md}");
    println!("report: {}", dir.display());
    let failed: Vec<&str> = report.scenarios.iter().filter(|s| s.error.is_some()).map(|s| s.name.as_str()).collect();
    anyhow::ensure!(failed.is_empty(), "scenarios failed: {}", failed.join(", "));
    Ok(())
}

async fn chaos_suite(
    bin: PathBuf,
    short: bool,
    only: &[String],
    clients: u64,
    table: &std::path::Path,
) -> anyhow::Result<()> {
    anyhow::ensure!(bin.exists(), "{} not found: build it (cargo build -p smsfleet) or pass --bin", bin.display());
    let faults: Vec<chaos::Fault> = if short { chaos::short() } else { chaos::full() }
        .into_iter()
        .filter(|f| only.is_empty() || only.iter().any(|o| f.name().contains(o.as_str())))
        .collect();
    let mut infra = fleet::Infra::start(bin, false).await?;
    let rows = chaos::run(&mut infra, &faults, clients).await;
    infra.stop().await;
    let md = chaos::table(&rows);
    if let Some(dir) = table.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(table, &md)?;
    std::fs::write(table.with_extension("json"), serde_json::to_vec_pretty(&rows)?)?;
    println!("{md}");
    chaos::verdict(&rows)
}
