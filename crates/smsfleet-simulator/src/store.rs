//! The ref → accepted-message map that makes `/submit` idempotent and backs `/messages/{ref}`.
//!
//! Bound: at most [`REF_CAPACITY`] refs are remembered. The map is split into shards so that
//! concurrent submits rarely contend, and each shard keeps two generations: when the current one
//! holds half the shard's share it becomes the previous one and the old previous one is dropped.
//! So between `REF_CAPACITY / 2` and `REF_CAPACITY` of the most recently accepted refs are always
//! remembered; a ref older than that is treated as new if submitted again. Each entry packs
//! `to`, `from` and `text` into one allocation and keeps the upstream id as a number, because at
//! two million entries per-field `String`s would double the memory.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use smsfleet_domain::Encoding;

use crate::protocol::{MessageView, SubmitMessage};

/// How many refs the simulator remembers at most (see the module comment).
pub const REF_CAPACITY: usize = 2_000_000;

const SHARDS: usize = 64;
const GENERATION_LEN: usize = REF_CAPACITY / SHARDS / 2;

/// Makes upstream ids unique across every simulator started in this process, even after
/// `/stats/reset`, so a test can never confuse two messages.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

struct Stored {
    seq: u64,
    submits: u32,
    encoding: Encoding,
    flash: bool,
    to_len: usize,
    from_len: usize,
    /// `to`, then `from`, then `text`.
    packed: Box<str>,
}

#[derive(Default)]
struct Shard {
    current: HashMap<Box<str>, Stored>,
    previous: HashMap<Box<str>, Stored>,
}

impl Shard {
    fn get_mut(&mut self, reference: &str) -> Option<&mut Stored> {
        if self.current.contains_key(reference) {
            return self.current.get_mut(reference);
        }
        self.previous.get_mut(reference)
    }

    fn get(&self, reference: &str) -> Option<&Stored> {
        self.current.get(reference).or_else(|| self.previous.get(reference))
    }
}

/// Outcome of offering one message to the store.
pub(crate) enum Offer {
    /// First time this ref was seen: it is now accepted under `id`.
    New { id: String },
    /// The ref was accepted earlier; `id` is the id it got then.
    Duplicate { id: String },
    /// Not seen before and refused by screening; nothing was stored.
    Rejected { reason: &'static str },
}

pub(crate) struct RefStore {
    prefix: String,
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl RefStore {
    pub(crate) fn new() -> Self {
        Self {
            prefix: format!("sim{:08x}", rand::random::<u32>()),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    fn id_of(&self, seq: u64) -> String {
        format!("{}-{seq}", self.prefix)
    }

    fn shard(&self, reference: &str) -> std::sync::MutexGuard<'_, Shard> {
        // A shard index below SHARDS always fits usize; the hash is only used to spread load.
        let index = (self.hasher.hash_one(reference) % SHARDS as u64) as usize;
        lock(&self.shards[index])
    }

    /// Looks the ref up and, if unseen and not `rejected`, accepts it — all in one short
    /// critical section so two concurrent submits of the same ref cannot both be accepted.
    pub(crate) fn offer(&self, msg: &SubmitMessage<'_>, rejected: Option<&'static str>) -> Offer {
        let mut retired = None;
        let offer = {
            let mut shard = self.shard(&msg.reference);
            if let Some(stored) = shard.get_mut(msg.reference.as_ref()) {
                stored.submits = stored.submits.saturating_add(1);
                let seq = stored.seq;
                drop(shard);
                return Offer::Duplicate { id: self.id_of(seq) };
            }
            if let Some(reason) = rejected {
                return Offer::Rejected { reason };
            }
            let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
            let mut packed = String::with_capacity(msg.to.len() + msg.from.len() + msg.text.len());
            packed.push_str(&msg.to);
            packed.push_str(&msg.from);
            packed.push_str(&msg.text);
            if shard.current.len() >= GENERATION_LEN {
                let full = std::mem::take(&mut shard.current);
                retired = Some(std::mem::replace(&mut shard.previous, full));
            }
            shard.current.insert(
                msg.reference.as_ref().into(),
                Stored {
                    seq,
                    submits: 1,
                    encoding: msg.encoding,
                    flash: msg.flash,
                    to_len: msg.to.len(),
                    from_len: msg.from.len(),
                    packed: packed.into_boxed_str(),
                },
            );
            Offer::New { id: self.id_of(seq) }
        };
        // Freeing a retired generation walks tens of thousands of entries; do it unlocked.
        drop(retired);
        offer
    }

    /// Serializes what was accepted for `reference`, or `None` if it is not remembered.
    pub(crate) fn view(&self, reference: &str) -> Option<Vec<u8>> {
        let shard = self.shard(reference);
        let stored = shard.get(reference)?;
        let (to, rest) = stored.packed.split_at(stored.to_len);
        let (from, text) = rest.split_at(stored.from_len);
        serde_json::to_vec(&MessageView {
            reference,
            id: self.id_of(stored.seq),
            to,
            from,
            text,
            encoding: stored.encoding,
            flash: stored.flash,
            submits: stored.submits,
        })
        .ok()
    }

    pub(crate) fn clear(&self) {
        for shard in &self.shards {
            let old = std::mem::take(&mut *lock(shard));
            drop(old);
        }
    }
}

/// Nothing panics while holding these locks, but if something ever did the data is still
/// consistent (every update is a single insert or increment), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Monotonic counters behind `GET /stats`. `submits = accepted + rejected + duplicate_submits`.
#[derive(Default)]
pub(crate) struct Counters {
    pub submits: AtomicU64,
    /// Submit calls, each with one or more messages.
    pub submit_requests: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub duplicate_submits: AtomicU64,
    /// Reports with status `delivered` that a receiver acknowledged with 2xx.
    pub delivered_reports: AtomicU64,
    /// Reports with status `failed` that a receiver acknowledged with 2xx.
    pub failed_reports: AtomicU64,
    /// Every report POST attempt, retries included.
    pub report_posts: AtomicU64,
    /// Attempts that got a non-2xx answer or no answer.
    pub report_post_failures: AtomicU64,
    /// Reports accepted but not yet acknowledged or abandoned. A gauge: reset leaves it alone,
    /// because zeroing it while reports are in flight would make it wrap below zero.
    pub pending_reports: AtomicU64,
}

impl Counters {
    pub(crate) fn reset(&self) {
        for counter in [
            &self.submits,
            &self.submit_requests,
            &self.accepted,
            &self.rejected,
            &self.duplicate_submits,
            &self.delivered_reports,
            &self.failed_reports,
            &self.report_posts,
            &self.report_post_failures,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    if n > 0 {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

pub(crate) fn sub(counter: &AtomicU64, n: usize) {
    if n > 0 {
        counter.fetch_sub(n as u64, Ordering::Relaxed);
    }
}
