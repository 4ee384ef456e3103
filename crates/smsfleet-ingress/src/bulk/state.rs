//! The bulk API's settings and per-replica state, shared through the app
//! state (a leaf: it imports no handler).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// Settings of the bulk API (from `SMSFLEET_BULK_*`).
#[derive(Debug, Clone, Default)]
pub struct BulkSettings {
    /// Global client-IP blacklist, `domain::ipallow` syntax; empty = off.
    pub ip_blacklist: String,
    /// Case-insensitive substrings that make a message spam (1028).
    pub spam_patterns: Vec<String>,
    /// Same account, destination and text within this window is 1041; zero = off.
    pub duplicate_window: Duration,
}

/// Successful argon2 checks, keyed by (uid, account revision, keyed
/// password fingerprint): argon2 costs tens of milliseconds of CPU and would
/// otherwise cap the request rate. A changed account (new revision) or
/// another password misses the cache; wrong passwords are never cached.
pub struct CredentialCache {
    capacity: usize,
    ok: Mutex<HashSet<(i64, i64, String)>>,
}

impl CredentialCache {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, ok: Mutex::new(Default::default()) }
    }

    pub fn contains(&self, uid: i64, revision: i64, fingerprint: &str) -> bool {
        self.ok.lock().is_ok_and(|s| s.contains(&(uid, revision, fingerprint.to_owned())))
    }

    pub fn insert(&self, uid: i64, revision: i64, fingerprint: String) {
        if let Ok(mut s) = self.ok.lock() {
            if s.len() >= self.capacity {
                s.clear();
            }
            s.insert((uid, revision, fingerprint));
        }
    }
}

/// Per-replica bulk API state (the duplicate window is the accept path's).
pub struct BulkState {
    pub settings: BulkSettings,
    pub credentials: CredentialCache,
}

impl BulkState {
    pub fn new(settings: BulkSettings) -> Self {
        Self { credentials: CredentialCache::new(10_000), settings }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_cache_is_bounded() {
        let c = CredentialCache::new(2);
        c.insert(1, 1, "a".into());
        assert!(c.contains(1, 1, "a"));
        assert!(!c.contains(1, 2, "a"));
        c.insert(2, 1, "b".into());
        c.insert(3, 1, "c".into());
        assert!(!c.contains(1, 1, "a"));
        assert!(c.contains(3, 1, "c"));
    }
}
