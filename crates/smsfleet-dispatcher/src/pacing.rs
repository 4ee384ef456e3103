//! Per-route token bucket. A message over the rate waits; it is never
//! dropped, because every message in a chunk has already been charged.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// Holds up to one second's worth of tokens, so an idle route may burst
    /// that much and no more.
    pub fn new(mps: u32) -> Self {
        let rate = f64::from(mps.max(1));
        Self { rate, state: Mutex::new((rate, Instant::now())) }
    }

    /// Takes `n` tokens, sleeping until they have accrued. Tokens are taken
    /// up front (the balance may go negative), so waiters queue fairly and a
    /// batch larger than the burst still goes out at the configured rate.
    pub async fn take(&self, n: usize) {
        let wait = {
            let mut state = self.state.lock().await;
            let now = Instant::now();
            let (tokens, last) = *state;
            let refilled = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.rate);
            let left = refilled - n as f64;
            *state = (left, now);
            if left >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-left / self.rate) }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_instead_of_dropping() {
        let bucket = TokenBucket::new(100);
        let start = Instant::now();
        bucket.take(100).await; // the burst
        assert!(start.elapsed() < Duration::from_millis(1));
        bucket.take(50).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(499) && waited <= Duration::from_millis(510), "{waited:?}");
        bucket.take(200).await;
        assert!(start.elapsed() >= Duration::from_millis(2490), "{:?}", start.elapsed());
    }
}
