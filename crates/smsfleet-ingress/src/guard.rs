//! Brute-force protection: failed authentications are counted per client
//! IP, and an IP that fails too often within the window is blocked for a
//! while on every replica (the block travels on the state stream). Like
//! playSMS's firewall, a blocked IP fails every authentication, even with
//! good credentials. Unlike playSMS, a successful authentication clears
//! nothing: a guesser who also holds one valid login of its own could
//! otherwise reset its count after every few guesses and never be blocked.
//! A failure cannot be tied to the account it was aimed at (a wrong token
//! names no account), so failures only leave the count when the window
//! expires.
//! Counting is per replica, so with N replicas behind a balancer a guesser
//! gets at most N × limit tries before every replica refuses it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Failures allowed within `window`; 0 switches the guard off.
    pub limit: u32,
    pub window: Duration,
    /// How long an IP stays blocked.
    pub block_for: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        // playSMS's login_attempt_limit is 10.
        Self { limit: 10, window: Duration::from_secs(600), block_for: Duration::from_secs(3600) }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since_ms: i64,
}

/// Bound on tracked IPs, so a flood of spoofed-looking sources cannot grow
/// memory without limit; the oldest half is dropped when it is reached.
const MAX_TRACKED: usize = 100_000;

pub struct LoginGuard {
    settings: GuardSettings,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl LoginGuard {
    pub fn new(settings: GuardSettings) -> Self {
        Self { settings, failures: Mutex::new(HashMap::new()) }
    }

    pub fn enabled(&self) -> bool {
        self.settings.limit > 0
    }

    /// Records a failure at `now_ms`; returns the block's end (Unix ms) when
    /// this failure crosses the limit, so the caller can publish it.
    pub fn failed(&self, ip: IpAddr, now_ms: i64) -> Option<i64> {
        if !self.enabled() {
            return None;
        }
        let window_ms = self.settings.window.as_millis() as i64;
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            let mut since: Vec<i64> = map.values().map(|f| f.since_ms).collect();
            since.sort_unstable();
            let cutoff = since[since.len() / 2];
            map.retain(|_, f| f.since_ms > cutoff);
        }
        let entry = map.entry(ip).or_insert(Failures { count: 0, since_ms: now_ms });
        if now_ms - entry.since_ms > window_ms {
            *entry = Failures { count: 0, since_ms: now_ms };
        }
        entry.count += 1;
        if entry.count > self.settings.limit {
            map.remove(&ip);
            return Some(now_ms + self.settings.block_for.as_millis() as i64);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(limit: u32) -> LoginGuard {
        LoginGuard::new(GuardSettings { limit, window: Duration::from_secs(60), block_for: Duration::from_secs(300) })
    }

    #[test]
    fn blocks_after_the_limit_and_only_that_ip() {
        let g = guard(3);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(g.failed(a, 0), None);
        assert_eq!(g.failed(a, 1), None);
        assert_eq!(g.failed(a, 2), None);
        assert_eq!(g.failed(b, 3), None);
        assert_eq!(g.failed(a, 4), Some(300_004));
    }

    #[test]
    fn the_window_expires() {
        let g = guard(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(g.failed(a, 0), None);
        assert_eq!(g.failed(a, 1), None);
        // Outside the 60 s window the count starts again.
        assert_eq!(g.failed(a, 70_000), None);
        assert_eq!(g.failed(a, 70_001), None);
        assert!(g.failed(a, 70_002).is_some());
    }

    #[test]
    fn limit_zero_switches_it_off() {
        let g = guard(0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!((0..100).all(|i| g.failed(a, i).is_none()));
    }
}
