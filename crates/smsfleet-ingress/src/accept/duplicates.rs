//! The duplicate check (the bulk API's 1041): the same account, number and
//! text within a window. Per ingress replica: a duplicate sent through
//! another replica is not caught.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct DuplicateWindow {
    window: Duration,
    capacity: usize,
    seen: Mutex<HashMap<u64, Instant>>,
}

impl DuplicateWindow {
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self { window, capacity, seen: Mutex::new(HashMap::new()) }
    }

    fn key(uid: i64, destination: &str, text: &str) -> u64 {
        let mut h = DefaultHasher::new();
        (uid, destination, text).hash(&mut h);
        h.finish()
    }

    /// True if the same send was recorded within the window; otherwise
    /// records it (at `now`) and returns false.
    pub fn check_and_record(&self, uid: i64, destination: &str, text: &str, now: Instant) -> bool {
        if self.window.is_zero() {
            return false;
        }
        let key = Self::key(uid, destination, text);
        let Ok(mut seen) = self.seen.lock() else { return false };
        if let Some(at) = seen.get(&key)
            && now.duration_since(*at) < self.window
        {
            return true;
        }
        if seen.len() >= self.capacity {
            let window = self.window;
            seen.retain(|_, at| now.duration_since(*at) < window);
            if seen.len() >= self.capacity {
                seen.clear();
            }
        }
        seen.insert(key, now);
        false
    }

    /// Undoes a record when the send did not happen after all.
    pub fn forget(&self, uid: i64, destination: &str, text: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(&Self::key(uid, destination, text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_window() {
        let w = DuplicateWindow::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        assert!(!w.check_and_record(1, "91999", "hi", t0));
        assert!(w.check_and_record(1, "91999", "hi", t0 + Duration::from_secs(59)));
        assert!(!w.check_and_record(2, "91999", "hi", t0));
        assert!(!w.check_and_record(1, "91998", "hi", t0));
        assert!(!w.check_and_record(1, "91999", "hi!", t0));
        assert!(!w.check_and_record(1, "91999", "hi", t0 + Duration::from_secs(61)));
        w.forget(1, "91999", "hi");
        assert!(!w.check_and_record(1, "91999", "hi", t0 + Duration::from_secs(62)));
        let off = DuplicateWindow::new(Duration::ZERO, 3);
        assert!(!off.check_and_record(1, "1", "x", t0));
        assert!(!off.check_and_record(1, "1", "x", t0));
    }
}
