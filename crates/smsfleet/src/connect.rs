//! Connections and telemetry every command opens the same way.

use anyhow::Context;
use smsfleet_bus::Bus;
use smsfleet_contract::Namespace;
use smsfleet_store::PgPool;

use crate::cli;

pub fn telemetry(service: &str) -> anyhow::Result<smsfleet_telemetry::TelemetryGuard> {
    smsfleet_telemetry::init(service).map_err(|e| anyhow::anyhow!("telemetry: {e}"))
}

pub fn namespace(name: &str) -> anyhow::Result<Namespace> {
    Namespace::new(name).with_context(|| format!("namespace {name:?}: use lower-case letters, digits and _"))
}

/// Connects and provisions the contract's streams, so a command run before
/// any role still finds them.
pub async fn bus(a: &cli::BusArgs, name: &str) -> anyhow::Result<Bus> {
    let bus = Bus::connect(&a.nats_url, namespace(&a.namespace)?, &format!("smsfleet-{name}"))
        .await?
        .with_stream_replicas(usize::from(a.stream_replicas))?;
    bus.provision().await?;
    Ok(bus)
}

/// A pool sized by the arguments (roles) or a small one (`small`: one-shot
/// operator commands).
pub async fn store(a: &cli::StoreArgs, small: bool) -> anyhow::Result<PgPool> {
    let max = if small { 2 } else { a.db_max_connections };
    Ok(smsfleet_store::connect(&a.database_url, max).await?)
}
