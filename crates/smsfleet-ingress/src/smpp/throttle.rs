//! Per-account submit_sm throughput on this replica: a token bucket that
//! holds one second's worth of submits and refills at the account's
//! `smpp_throughput` per second. A submit that finds it empty is answered
//! ESME_RTHROTTLED (nothing else happens), and the client's next tries
//! succeed as soon as tokens are back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<i64, Bucket>>,
}

impl Throttle {
    /// Takes one submit of account `uid` at `now` under a limit of
    /// `per_sec` (0 = none); false when over it.
    pub fn admit(&self, uid: i64, per_sec: u32, now: Instant) -> bool {
        if per_sec == 0 {
            return true;
        }
        let rate = f64::from(per_sec);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(uid).or_insert(Bucket { tokens: rate, at: now });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_above_the_rate_is_cut_and_the_account_recovers() {
        let t = Throttle::default();
        let start = Instant::now();
        // 200 submits within one second at 50/s: the first 50 pass.
        let passed = (0..200).filter(|i| t.admit(7, 50, start + Duration::from_millis(*i))).count();
        assert!((50..=60).contains(&passed), "{passed}");
        // Another account is not affected.
        assert!(t.admit(8, 50, start));
        // A second later the bucket is full again.
        let later = start + Duration::from_secs(2);
        assert_eq!((0..50).filter(|_| t.admit(7, 50, later)).count(), 50);
        assert!(!t.admit(7, 50, later));
    }

    #[test]
    fn zero_means_no_limit() {
        let t = Throttle::default();
        let now = Instant::now();
        assert!((0..10_000).all(|_| t.admit(1, 0, now)));
    }
}
