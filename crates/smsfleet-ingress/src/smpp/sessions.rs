//! The live binds of this replica: who is bound, as what, from where, with
//! per-bind counters; the receivers of an account for its receipts; the
//! list `smsfleet smpp sessions` gathers from every replica.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use smsfleet_contract::SmppSessionInfo;
use smsfleet_smpp::{BindKind, SessionHandle};
use tokio_util::sync::CancellationToken;

/// Counters of one bind.
#[derive(Debug, Default)]
pub struct BindStats {
    pub submits: AtomicU64,
    pub throttled: AtomicU64,
    pub delivered: AtomicU64,
}

impl BindStats {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Clone)]
pub struct BindEntry {
    pub uid: i64,
    pub system_id: String,
    pub kind: BindKind,
    pub peer: String,
    pub bound_at_ms: i64,
    pub handle: SessionHandle,
    pub stats: Arc<BindStats>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    binds: HashMap<u64, BindEntry>,
    /// One receipt pump per account with a receiver bind here.
    pumps: HashMap<i64, CancellationToken>,
    round_robin: u64,
}

/// What registering a bind asks the caller to do.
pub enum Registered {
    /// The account's first receiver here: start its pump with this token.
    StartPump(u64, CancellationToken),
    Done(u64),
}

#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, entry: BindEntry) -> Registered {
        let mut g = self.lock();
        g.next_id += 1;
        let id = g.next_id;
        let (uid, delivers) = (entry.uid, entry.kind.delivers());
        g.binds.insert(id, entry);
        if delivers && !g.pumps.contains_key(&uid) {
            let token = CancellationToken::new();
            g.pumps.insert(uid, token.clone());
            return Registered::StartPump(id, token);
        }
        Registered::Done(id)
    }

    /// Forgets a bind; stops the account's pump when it was its last receiver here.
    pub fn remove(&self, id: u64) {
        let mut g = self.lock();
        let Some(gone) = g.binds.remove(&id) else { return };
        let receivers_left = g.binds.values().any(|b| b.uid == gone.uid && b.kind.delivers());
        if !receivers_left && let Some(token) = g.pumps.remove(&gone.uid) {
            token.cancel();
        }
    }

    /// The next receiver bind of `uid` here, taken in turn.
    pub fn next_receiver(&self, uid: i64) -> Option<BindEntry> {
        let mut g = self.lock();
        let mut receivers: Vec<(&u64, &BindEntry)> =
            g.binds.iter().filter(|(_, b)| b.uid == uid && b.kind.delivers() && !b.handle.is_closed()).collect();
        if receivers.is_empty() {
            return None;
        }
        receivers.sort_by_key(|(id, _)| **id);
        let pick = receivers[(g.round_robin as usize) % receivers.len()].1.clone();
        g.round_robin = g.round_robin.wrapping_add(1);
        Some(pick)
    }

    pub fn list(&self) -> Vec<SmppSessionInfo> {
        let g = self.lock();
        let mut out: Vec<SmppSessionInfo> = g
            .binds
            .values()
            .map(|b| SmppSessionInfo {
                uid: b.uid,
                system_id: b.system_id.clone(),
                bind: b.kind.as_str().to_owned(),
                peer: b.peer.clone(),
                bound_at_ms: b.bound_at_ms,
                submits: b.stats.submits.load(Ordering::Relaxed),
                throttled: b.stats.throttled.load(Ordering::Relaxed),
                delivered: b.stats.delivered.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by_key(|s| (s.uid, s.bound_at_ms));
        out
    }

    /// Every bind, for shutdown.
    pub fn handles(&self) -> Vec<SessionHandle> {
        self.lock().binds.values().map(|b| b.handle.clone()).collect()
    }
}
