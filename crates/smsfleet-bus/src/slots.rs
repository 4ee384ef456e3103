//! Fleet-wide named slots: at most N holders of a pool, however many
//! replicas run (the SMPP binds of a route; an account's `max_binds`).
//!
//! The same mechanism as the worker-id lease (`lease.rs`): slot `n` of pool
//! `p` is a message on `<ns>.lease.slot.<p>.<n>` in the LEASE stream, whose
//! messages expire after its max age (30 s). Taking a slot publishes with
//! "expected last subject sequence 0", refused while another holder's lease
//! is alive; the holder renews with the sequence it last wrote. Released
//! slots are purged so another replica can take them at once.
//!
//! A holder that cannot renew in time loses the slot: [`SlotLease::held`]
//! turns `false` from the moment another replica could take it (less a
//! margin), and the owner must stop using what the slot guards.

use std::time::Duration;

use smsfleet_contract::StreamKind;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{Bus, BusError};

const RENEW_EVERY: Duration = Duration::from_secs(10);
const RETRY_EVERY: Duration = Duration::from_secs(1);
const SAFETY_MARGIN: Duration = Duration::from_secs(5);

/// A pool name: NATS subject tokens, no wildcards or spaces.
fn valid_pool(pool: &str) -> bool {
    !pool.is_empty()
        && pool
            .split('.')
            .all(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// One held slot of a pool, renewed in the background until dropped or
/// released.
pub struct SlotLease {
    pool: String,
    slot: u32,
    usable_until: watch::Receiver<Option<Instant>>,
    keeper: tokio::task::JoinHandle<()>,
    bus: Bus,
}

impl std::fmt::Debug for SlotLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotLease").field("pool", &self.pool).field("slot", &self.slot).finish_non_exhaustive()
    }
}

impl SlotLease {
    /// Takes a free slot of `pool` (of `slots`), trying them in order from
    /// a random start; `Ok(None)` when all are held elsewhere.
    pub async fn acquire(bus: &Bus, pool: &str, slots: u32) -> Result<Option<SlotLease>, BusError> {
        if !valid_pool(pool) {
            return Err(BusError::Publish(format!("slot pool {pool:?} is not a subject token")));
        }
        if slots == 0 || !bus.is_connected() {
            return Ok(None);
        }
        let life = lease_life(bus);
        let start = rand::random::<u32>() % slots;
        for i in 0..slots {
            let slot = (start + i) % slots;
            if let Ok((until, sequence)) = take(bus, pool, slot, 0, life).await {
                tracing::info!(pool, slot, "slot lease taken");
                let (tx, rx) = watch::channel(Some(until));
                let keeper = tokio::spawn(keep(bus.clone(), pool.to_owned(), slot, sequence, tx, life));
                return Ok(Some(SlotLease { pool: pool.to_owned(), slot, usable_until: rx, keeper, bus: bus.clone() }));
            }
        }
        Ok(None)
    }

    pub fn slot(&self) -> u32 {
        self.slot
    }

    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// Whether the slot is still ours now (checked against its life, so a
    /// stuck keeper cannot leave a lost slot in use).
    pub fn held(&self) -> bool {
        self.usable_until.borrow().is_some_and(|u| Instant::now() < u)
    }

    /// Resolves once the slot is lost (renewals failed past its life).
    pub async fn lost(&self) {
        let mut rx = self.usable_until.clone();
        loop {
            let until = *rx.borrow_and_update();
            match until {
                None => return,
                Some(u) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(u) => {
                            if rx.borrow().is_none_or(|now| now <= u) {
                                return;
                            }
                        }
                        changed = rx.changed() => if changed.is_err() { return },
                    }
                }
            }
        }
    }

    /// Gives the slot back at once (purges its subject); dropping the lease
    /// instead frees it when it expires.
    pub async fn release(self) {
        self.keeper.abort();
        let name = self.bus.ns.stream_name(StreamKind::Lease);
        let subject = self.bus.ns.slot_subject(&self.pool, self.slot);
        match self.bus.js.get_stream_no_info(&name).await {
            Ok(stream) => {
                if let Err(e) = stream.purge().filter(subject).await {
                    tracing::warn!(pool = %self.pool, slot = self.slot, error = %e, "slot release failed; it expires");
                }
            }
            Err(e) => tracing::warn!(error = %e, "slot release: no lease stream"),
        }
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

fn lease_life(bus: &Bus) -> Duration {
    let secs = bus.topology().stream(StreamKind::Lease).map(|s| s.max_age_secs).unwrap_or(30);
    Duration::from_secs(secs)
}

async fn take(bus: &Bus, pool: &str, slot: u32, expected: u64, life: Duration) -> Result<(Instant, u64), BusError> {
    let sent = Instant::now();
    let published = bus.publish_expecting(bus.ns.slot_subject(pool, slot), expected).await?;
    Ok((sent + life.saturating_sub(SAFETY_MARGIN), published.sequence))
}

/// Renews until it cannot; then reports the loss (the owner drops the
/// lease and may acquire again).
async fn keep(
    bus: Bus,
    pool: String,
    slot: u32,
    mut sequence: u64,
    tx: watch::Sender<Option<Instant>>,
    life: Duration,
) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let deadline = (*tx.borrow()).unwrap_or_else(Instant::now);
        let renewed = loop {
            match tokio::time::timeout_at(deadline, take(&bus, &pool, slot, sequence, life)).await {
                Ok(Ok(r)) => break Some(r),
                Ok(Err(e)) => tracing::warn!(%pool, slot, error = %e, "slot renewal failed, retrying"),
                Err(_) => break None,
            }
            if Instant::now() + RETRY_EVERY >= deadline {
                break None;
            }
            tokio::time::sleep(RETRY_EVERY).await;
        };
        match renewed {
            Some((until, seq)) => {
                sequence = seq;
                tx.send_replace(Some(until));
            }
            None => {
                tracing::error!(%pool, slot, "slot lease lost");
                tx.send_replace(None);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_pool;

    #[test]
    fn pool_names_are_subject_tokens() {
        assert!(valid_pool("smpp.carrier-1"));
        assert!(valid_pool("binds.acct_7"));
        for bad in ["", "a..b", "a.*", "a >", "a b", ".a"] {
            assert!(!valid_pool(bad), "{bad}");
        }
    }
}
