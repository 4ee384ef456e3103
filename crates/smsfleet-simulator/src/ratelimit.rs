//! Token-bucket pacing of accepted messages, globally and per TCP connection.
//!
//! A real SMSC throttles by answering slowly, not by refusing, and the dispatcher's throughput
//! tests depend on that; so a request over the limit is told how long to sleep before its
//! messages are accepted. The bucket is a GCRA (one timestamp per bucket): a burst of a tenth of a
//! second's worth of messages goes through at once, after that messages are spaced `1/rate`
//! apart. Reservations are made in a short std mutex critical section and never held across the
//! sleep.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Per-connection buckets idle this long are forgotten; the peer has very likely gone.
const IDLE_FORGET: Duration = Duration::from_secs(60);

struct Gcra {
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time of the next message if traffic were perfectly spaced.
    tat: Instant,
}

impl Gcra {
    fn new(rate: u32, now: Instant) -> Self {
        let interval = Duration::from_secs(1) / rate.max(1);
        let burst = (rate / 10).max(1);
        Self { interval, tolerance: interval * burst, tat: now }
    }

    /// Reserves `n` messages and returns how long the caller must wait before sending them.
    fn reserve(&mut self, n: u32, now: Instant) -> Duration {
        let start = self.tat.max(now);
        self.tat = start + self.interval * n;
        let allowed_at = self.tat.checked_sub(self.tolerance).unwrap_or(now);
        allowed_at.saturating_duration_since(now)
    }
}

pub(crate) struct RateLimits {
    global: Option<Mutex<Gcra>>,
    per_connection: Option<(u32, Mutex<Connections>)>,
}

struct Connections {
    buckets: HashMap<SocketAddr, Gcra>,
    prune_above: usize,
}

impl RateLimits {
    pub(crate) fn new(max_mps: Option<u32>, per_connection_mps: Option<u32>) -> Self {
        let now = Instant::now();
        Self {
            global: max_mps.map(|rate| Mutex::new(Gcra::new(rate, now))),
            per_connection: per_connection_mps
                .map(|rate| (rate, Mutex::new(Connections { buckets: HashMap::new(), prune_above: 1024 }))),
        }
    }

    pub(crate) fn is_unlimited(&self) -> bool {
        self.global.is_none() && self.per_connection.is_none()
    }

    /// How long a request carrying `n` messages from `peer` must wait; the slower bucket wins.
    pub(crate) fn reserve(&self, peer: SocketAddr, n: usize) -> Duration {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        if let Some(global) = &self.global {
            wait = wait.max(lock(global).reserve(n, now));
        }
        if let Some((rate, connections)) = &self.per_connection {
            let mut connections = lock(connections);
            if connections.buckets.len() > connections.prune_above {
                connections.buckets.retain(|_, bucket| bucket.tat + IDLE_FORGET > now);
                connections.prune_above = (connections.buckets.len() * 2).max(1024);
            }
            let bucket = connections.buckets.entry(peer).or_insert_with(|| Gcra::new(*rate, now));
            wait = wait.max(bucket.reserve(n, now));
        }
        wait
    }
}

/// A bucket is a timestamp; a panic elsewhere cannot leave it half-updated, so ignore poison.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_spacing() {
        let now = Instant::now();
        let mut bucket = Gcra::new(50, now);
        // Burst of 5 (a tenth of a second at 50/s) passes at once.
        for _ in 0..5 {
            assert_eq!(bucket.reserve(1, now), Duration::ZERO);
        }
        assert_eq!(bucket.reserve(1, now), Duration::from_millis(20));
        // 100 messages at once: 95 beyond the burst, 20 ms each.
        let mut fresh = Gcra::new(50, now);
        assert_eq!(fresh.reserve(100, now), Duration::from_millis(1900));
    }
}
