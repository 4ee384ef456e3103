//! Leased blocks of `smslog_id`s: JSON-safe ids (at most 2^53 − 1), unique
//! and increasing across ingress replicas, with no round trip per request.
//!
//! One counter subject (`<ns>.ids.smslog` on the IDS stream, kept forever)
//! holds the first id no block has taken. A replica takes a block by reading
//! the counter and publishing its new value with "expected last subject
//! sequence" (as the slot leases do), so the server refuses the second
//! of two replicas racing for the same block; the loser reads again. The
//! replica issues ids from memory ([`IdAllocator`]) and claims the next block
//! in the background once its current one is half used, sized to about one
//! second of its traffic, so ids from different replicas stay roughly in
//! time order. A restart starts from a fresh block; ids left in the old one
//! are never used. No id is issued without a block: while the counter cannot
//! be reached and the blocks held are used up, requests get `None`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use smsfleet_contract::{IdCounter, SCHEMA_VERSION, StreamKind};
use smsfleet_domain::ids::{BLOCK_LIFE_MS, FIRST_ID, IdAllocator, IdBlock};
use smsfleet_domain::{SmsLogId, clock::now_ms};
use tokio::sync::{Notify, watch};

use crate::publish::{encode, headers_for};
use crate::{Bus, BusError};

/// How long a request may wait for a block being claimed (a burst that used
/// up the prefetched one) before it is answered with the temporary error.
const WAIT_FOR_BLOCK: Duration = Duration::from_secs(2);
/// Pause between claims while the counter cannot be reached.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// Compare-and-set attempts per claim; each refusal means another replica
/// took a block in between, so a few always suffice.
const CAS_ATTEMPTS: usize = 20;

/// The outcome of the keeper's last claim, for requests waiting on it.
#[derive(Debug, Clone, Copy, Default)]
struct Claimed {
    /// Counts claims, so a waiter sees each one.
    generation: u64,
    /// The last claim failed: waiting is pointless until one succeeds.
    failed: bool,
}

struct Shared {
    allocator: Mutex<IdAllocator>,
    wake_keeper: Notify,
    claimed: watch::Sender<Claimed>,
}

/// Hands out ids from the blocks this replica holds; cheap to clone into
/// every request handler.
#[derive(Clone)]
pub struct IdIssuer(Arc<Shared>);

impl IdIssuer {
    /// `n` new increasing ids. Waits (at most [`WAIT_FOR_BLOCK`]) only when a
    /// burst has used up the prefetched block; `None` when no block can be
    /// had (NATS unreachable): nothing may be stored then.
    pub async fn next_ids(&self, n: usize) -> Option<Vec<SmsLogId>> {
        let mut claimed = self.0.claimed.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT_FOR_BLOCK;
        loop {
            let failed = claimed.borrow_and_update().failed;
            if let Some(ids) = self.try_next_ids(n) {
                return Some(ids);
            }
            if failed {
                return None;
            }
            match tokio::time::timeout_at(deadline, claimed.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// `n` ids from the blocks held, without waiting.
    pub fn try_next_ids(&self, n: usize) -> Option<Vec<SmsLogId>> {
        let mut allocator = self.0.allocator.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let ids = allocator.take(n);
        if allocator.wants_block(now_ms() as u64) {
            self.0.wake_keeper.notify_one();
        }
        ids
    }
}

/// This replica's id blocks; claims new ones for as long as it lives.
pub struct IdBlocks {
    issuer: IdIssuer,
    keeper: tokio::task::JoinHandle<()>,
}

impl IdBlocks {
    /// Claims the first block (so that a start without NATS fails loudly),
    /// then keeps claiming in the background.
    pub async fn start(bus: &Bus) -> Result<IdBlocks, BusError> {
        let mut allocator = IdAllocator::default();
        let first = claim(bus, allocator.block_size(now_ms() as u64)).await?;
        tracing::info!(first = first.first, end = first.end, "first smslog_id block claimed");
        allocator.add_block(first, now_ms() as u64);
        let shared = Arc::new(Shared {
            allocator: Mutex::new(allocator),
            wake_keeper: Notify::new(),
            claimed: watch::channel(Claimed::default()).0,
        });
        let keeper = tokio::spawn(keep(bus.clone(), shared.clone()));
        Ok(IdBlocks { issuer: IdIssuer(shared), keeper })
    }

    pub fn issuer(&self) -> IdIssuer {
        self.issuer.clone()
    }
}

impl Drop for IdBlocks {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Claims a block whenever the allocator wants one: woken by requests, and
/// every [`BLOCK_LIFE_MS`] so that a quiet replica's block stays fresh.
async fn keep(bus: Bus, shared: Arc<Shared>) {
    loop {
        let size = {
            let mut allocator = shared.allocator.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = now_ms() as u64;
            allocator.wants_block(now).then(|| allocator.block_size(now))
        };
        let Some(size) = size else {
            tokio::select! {
                () = shared.wake_keeper.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(BLOCK_LIFE_MS)) => {}
            }
            continue;
        };
        match claim(&bus, size).await {
            Ok(block) => {
                tracing::debug!(first = block.first, end = block.end, "smslog_id block claimed");
                metrics::counter!("smsfleet_id_blocks_claimed_total").increment(1);
                shared
                    .allocator
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .add_block(block, now_ms() as u64);
                shared.claimed.send_modify(|c| *c = Claimed { generation: c.generation + 1, failed: false });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim an smslog_id block; ids run out when the held ones are used");
                metrics::counter!("smsfleet_id_block_claim_failures_total").increment(1);
                shared.claimed.send_modify(|c| *c = Claimed { generation: c.generation + 1, failed: true });
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    }
}

/// The counter's last sequence on its subject (0: never written) and value.
async fn read_counter(bus: &Bus) -> Result<(u64, i64), BusError> {
    let name = bus.ns.stream_name(StreamKind::Ids);
    let stream =
        bus.js.get_stream_no_info(&name).await.map_err(|e| BusError::Consume(format!("stream {name}: {e}")))?;
    match stream.get_last_raw_message_by_subject(&bus.ns.id_counter_subject()).await {
        Ok(message) => {
            let counter: IdCounter = serde_json::from_slice(&message.payload)
                .map_err(|e| BusError::Codec { schema: "id_counter", detail: e.to_string() })?;
            Ok((message.sequence, counter.next))
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok((0, FIRST_ID)),
        Err(e) => Err(BusError::Consume(format!("id counter: {e}"))),
    }
}

/// Moves the counter from the value read at `sequence` to `next`; `false`
/// when another replica moved it first.
async fn advance_counter(bus: &Bus, sequence: u64, next: i64) -> Result<bool, BusError> {
    let counter = IdCounter { v: SCHEMA_VERSION, next };
    let message = PublishMessage::build()
        .payload(encode(&counter)?)
        .headers(headers_for(&counter))
        .expected_last_subject_sequence(sequence);
    let refused = |kind: PublishErrorKind| kind == PublishErrorKind::WrongLastSequence;
    let pending = match bus.js.send_publish(bus.ns.id_counter_subject(), message).await {
        Ok(pending) => pending,
        Err(e) if refused(e.kind()) => return Ok(false),
        Err(e) => return Err(BusError::Publish(e.to_string())),
    };
    match pending.await {
        Ok(_) => Ok(true),
        Err(e) if refused(e.kind()) => Ok(false),
        Err(e) => Err(BusError::Publish(e.to_string())),
    }
}

/// Takes the next `size` ids from the counter.
async fn claim(bus: &Bus, size: u64) -> Result<IdBlock, BusError> {
    // Publishes to a server that is not there would only wait out their
    // timeouts (and be sent later, when they no longer matter).
    if !bus.is_connected() {
        return Err(BusError::Publish("not connected to NATS".to_owned()));
    }
    for _ in 0..CAS_ATTEMPTS {
        let (sequence, next) = read_counter(bus).await?;
        let block = IdBlock::claim(next, size).map_err(|e| BusError::Publish(e.to_string()))?;
        if advance_counter(bus, sequence, block.end).await? {
            return Ok(block);
        }
    }
    Err(BusError::Publish(format!("the id counter moved {CAS_ATTEMPTS} times while claiming a block")))
}

/// Raises the counter so that every id issued from now on is above
/// `largest_used` (ids already stored when the counter itself was lost,
/// e.g. with the NATS data). Does nothing when it is already above.
pub async fn raise_id_counter(bus: &Bus, largest_used: i64) -> Result<(), BusError> {
    for _ in 0..CAS_ATTEMPTS {
        let (sequence, next) = read_counter(bus).await?;
        if next > largest_used {
            return Ok(());
        }
        if advance_counter(bus, sequence, largest_used + 1).await? {
            tracing::warn!(from = next, to = largest_used + 1, "smslog_id counter raised above the stored ids");
            return Ok(());
        }
    }
    Err(BusError::Publish(format!("the id counter moved {CAS_ATTEMPTS} times while raising it")))
}
