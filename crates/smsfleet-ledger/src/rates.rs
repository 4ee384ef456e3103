//! Keeps the in-memory rate table in step with Postgres and mirrors it to
//! the state feed, so an operator's rate change reaches the ledger and
//! every ingress within one refresh period.

use std::time::Duration;

use smsfleet_bus::Bus;
use smsfleet_contract::{RatePrefix, RatesState, SCHEMA_VERSION};
use smsfleet_domain::{Credit, RateTable};
use smsfleet_store::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{LedgerError, SharedRates};

/// Sets the rate for destinations starting with `prefix` (1 to 10 digits),
/// or the default rate when `prefix` is `None`. The refresh loop publishes
/// the new table.
pub async fn set_rate(pool: &PgPool, prefix: Option<&str>, rate: rust_decimal::Decimal) -> Result<(), LedgerError> {
    if rate.is_sign_negative() {
        return Err(LedgerError::InvalidRate("rate must not be negative".to_owned()));
    }
    match prefix {
        Some(p) if !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()) => {
            smsfleet_store::rates::set_prefix(pool, p, rate).await?
        }
        Some(p) => return Err(LedgerError::InvalidRate(format!("prefix {p:?} must be 1 to 10 digits"))),
        None => smsfleet_store::rates::set_default(pool, rate).await?,
    }
    Ok(())
}

/// Reloads and republishes the table unless its revision is `known`.
/// Returns the current revision.
pub(crate) async fn refresh(
    bus: &Bus,
    pool: &PgPool,
    rates: &SharedRates,
    known: Option<i64>,
) -> Result<i64, LedgerError> {
    let revision = smsfleet_store::rates::revision(pool).await?;
    if known == Some(revision) {
        return Ok(revision);
    }
    let (default_rate, prefixes) = smsfleet_store::rates::load(pool).await?;
    let table = RateTable {
        default_rate: Credit::new(default_rate),
        prefixes: prefixes.iter().map(|(p, r)| (p.clone(), Credit::new(*r))).collect(),
    };
    // Swap the table in before publishing: the ledger must never charge by
    // an older table than the one the ingress prices with.
    *rates.write().unwrap_or_else(std::sync::PoisonError::into_inner) = table;
    let state = RatesState {
        v: SCHEMA_VERSION,
        revision,
        default_rate: default_rate.to_string(),
        prefixes: prefixes.into_iter().map(|(prefix, rate)| RatePrefix { prefix, rate: rate.to_string() }).collect(),
    };
    bus.publish_state(bus.namespace().rates_state_subject(), &state).await?;
    tracing::info!(revision, "rates published");
    Ok(revision)
}

pub(crate) async fn refresh_loop(
    bus: Bus,
    pool: PgPool,
    rates: SharedRates,
    mut revision: i64,
    every: Duration,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match refresh(&bus, &pool, &rates, Some(revision)).await {
            Ok(r) => revision = r,
            // Keep charging with the table we have; the next tick retries.
            Err(e) => tracing::warn!(error = %e, "rates refresh failed"),
        }
    }
}
