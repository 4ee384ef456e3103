//! Message identifiers.
//!
//! `smslog_id` must be unique and increasing across every ingress replica,
//! without a round trip on the send path, and small enough for every client
//! to hold: JavaScript's `JSON.parse` reads numbers as doubles, and playSMS
//! stores remote ids in narrow integer columns, so every id is at most
//! 2^53 − 1 ([`MAX_ID`]). Time bits cannot give that at our rate (53 bits of
//! milliseconds, worker and sequence cap a replica near 128 k ids/s), so a
//! replica leases *blocks* of consecutive ids from one counter on the bus
//! and hands them out from memory. This module is the block arithmetic; the
//! counter lives in `smsfleet-bus` (`id_blocks.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest id a JSON client can hold exactly (2^53 − 1).
pub const MAX_ID: i64 = (1 << 53) - 1;
/// The counter's value before any block was taken: ids start at 1, since
/// playSMS reads 0 as "none".
pub const FIRST_ID: i64 = 1;
/// Block sizes: about one second of this replica's ids, within these bounds.
pub const MIN_BLOCK: u64 = 1_000;
pub const MAX_BLOCK: u64 = 1_000_000;
/// Blocks older than this are replaced (their rest skipped), so a quiet
/// replica's ids do not fall behind the others' by more than a few seconds.
pub const BLOCK_LIFE_MS: u64 = 2_000;

/// The playSMS `smslog_id`: one per destination of an outgoing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SmsLogId(pub i64);

impl fmt::Display for SmsLogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// The counter cannot move past [`MAX_ID`]: at a million ids a second
    /// that takes 285 years, so it means a corrupted counter.
    #[error("the id counter is at {0}: no ids are left below 2^53")]
    Exhausted(i64),
}

/// Consecutive ids `first..end` one replica may issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdBlock {
    pub first: i64,
    pub end: i64,
}

impl IdBlock {
    /// The block of `size` ids starting at the counter's value `next`; the
    /// counter's new value is the block's `end`. Cut short at [`MAX_ID`].
    pub fn claim(next: i64, size: u64) -> Result<IdBlock, IdError> {
        let first = next.max(FIRST_ID);
        if first > MAX_ID {
            return Err(IdError::Exhausted(next));
        }
        let size = i64::try_from(size.max(1)).unwrap_or(MAX_ID);
        let end = first.saturating_add(size).min(MAX_ID + 1);
        Ok(IdBlock { first, end })
    }

    pub fn len(&self) -> u64 {
        (self.end - self.first).max(0) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The ids one replica holds: the block it issues from and the next one,
/// taken ahead so that a request never waits for the counter.
///
/// Pure: the caller passes the time and performs the claims. Ids come out
/// increasing, since every block claimed later lies above every earlier one;
/// ids left in a block that is dropped (at a restart) are simply never used.
#[derive(Debug)]
pub struct IdAllocator {
    current: IdBlock,
    /// The next id of `current` to issue.
    cursor: i64,
    next: Option<IdBlock>,
    /// Ids issued since the last block was sized, and when that was.
    issued_since_sizing: u64,
    sized_at_ms: Option<u64>,
    /// The largest request that found too few ids: the next block must
    /// hold it.
    wanted: u64,
    /// When the newest block held was added.
    newest_at_ms: u64,
}

impl Default for IdAllocator {
    fn default() -> Self {
        let empty = IdBlock { first: FIRST_ID, end: FIRST_ID };
        Self {
            current: empty,
            cursor: FIRST_ID,
            next: None,
            issued_since_sizing: 0,
            sized_at_ms: None,
            wanted: 0,
            newest_at_ms: 0,
        }
    }
}

impl IdAllocator {
    /// `n` increasing ids, or `None` (nothing taken) when the blocks held
    /// have fewer; the caller then claims a block ([`IdAllocator::wants_block`]).
    pub fn take(&mut self, n: usize) -> Option<Vec<SmsLogId>> {
        let n64 = n as u64;
        if self.available() < n64 {
            self.wanted = self.wanted.max(n64);
            return None;
        }
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.left() == 0 {
                self.advance()?;
            }
            let count = ((n - out.len()) as i64).min(self.current.end - self.cursor);
            out.extend((self.cursor..self.cursor + count).map(SmsLogId));
            self.cursor += count;
        }
        self.issued_since_sizing += n64;
        Some(out)
    }

    /// Ids left in the blocks held.
    pub fn available(&self) -> u64 {
        self.left() + self.next.map(|b| b.len()).unwrap_or(0)
    }

    fn left(&self) -> u64 {
        (self.current.end - self.cursor).max(0) as u64
    }

    /// Moves on to the next block; `None` if there is none.
    fn advance(&mut self) -> Option<()> {
        let next = self.next.take()?;
        self.current = next;
        self.cursor = next.first;
        Some(())
    }

    /// A block should be claimed at `now_ms`: none is waiting and the
    /// current one is half used, a request found too few ids, or the blocks
    /// held are older than [`BLOCK_LIFE_MS`].
    pub fn wants_block(&self, now_ms: u64) -> bool {
        let half_used = self.next.is_none() && self.left() * 2 <= self.current.len();
        half_used || self.wanted > self.available() || self.stale(now_ms)
    }

    fn stale(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.newest_at_ms) > BLOCK_LIFE_MS
    }

    /// The size of the block to claim at `now_ms`: about one second of ids
    /// at the rate since the last claim, within [`MIN_BLOCK`]..[`MAX_BLOCK`],
    /// and never smaller than a request that is waiting.
    pub fn block_size(&mut self, now_ms: u64) -> u64 {
        let per_second = match self.sized_at_ms {
            Some(at) => self.issued_since_sizing.saturating_mul(1_000) / now_ms.saturating_sub(at).max(1),
            None => 0,
        };
        self.issued_since_sizing = 0;
        self.sized_at_ms = Some(now_ms);
        per_second.clamp(MIN_BLOCK, MAX_BLOCK).max(self.wanted)
    }

    /// Adds a block claimed at `now_ms`: current if the current one is used
    /// up or the blocks held are stale, else next. A block claimed for a
    /// large waiting request replaces a waiting next block. The ids of a
    /// replaced block are skipped.
    pub fn add_block(&mut self, block: IdBlock, now_ms: u64) {
        if self.stale(now_ms) {
            self.next = None;
            self.cursor = self.current.end;
        }
        self.newest_at_ms = now_ms;
        if self.left() == 0 {
            let _ = self.advance();
        }
        if self.left() == 0 {
            self.current = block;
            self.cursor = block.first;
        } else {
            self.next = Some(block);
        }
        if self.available() >= self.wanted {
            self.wanted = 0;
        }
    }
}

/// The playSMS queue code: 32 lowercase hex characters, one per request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueueCode(String);

impl QueueCode {
    /// Builds a code from 16 random bytes supplied by the caller.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut s = String::with_capacity(32);
        for b in bytes {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        Self(s)
    }

    /// Accepts a code read back from storage or a request parameter.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(first: i64, len: u64) -> IdBlock {
        IdBlock::claim(first, len).unwrap()
    }

    #[test]
    fn a_claim_is_the_next_ids_and_stays_below_two_to_the_53() {
        assert_eq!(block(0, 1_000), IdBlock { first: 1, end: 1_001 });
        assert_eq!(block(5_000, 10).len(), 10);
        let last = block(MAX_ID - 2, 1_000);
        assert_eq!((last.first, last.end), (MAX_ID - 2, MAX_ID + 1));
        assert_eq!(IdBlock::claim(MAX_ID + 1, 1), Err(IdError::Exhausted(MAX_ID + 1)));
    }

    #[test]
    fn ids_come_from_the_current_block_then_the_next() {
        let mut a = IdAllocator::default();
        assert!(a.wants_block(0));
        assert_eq!(a.take(1), None);
        a.add_block(block(1, 4), 0);
        assert!(!a.wants_block(0));
        assert_eq!(a.take(2).unwrap(), vec![SmsLogId(1), SmsLogId(2)]);
        // Half used: the next block is wanted.
        assert!(a.wants_block(0));
        a.add_block(block(100, 4), 0);
        assert!(!a.wants_block(0));
        let ids: Vec<i64> = a.take(4).unwrap().into_iter().map(|i| i.0).collect();
        assert_eq!(ids, vec![3, 4, 100, 101]);
        assert_eq!(a.available(), 2);
    }

    #[test]
    fn a_request_larger_than_what_is_held_takes_nothing_and_sizes_the_next_block() {
        let mut a = IdAllocator::default();
        a.add_block(block(1, 1_000), 0);
        assert_eq!(a.take(5_000), None);
        assert_eq!(a.available(), 1_000);
        assert!(a.wants_block(0));
        let size = a.block_size(0);
        assert_eq!(size, 5_000);
        a.add_block(block(2_000, size), 0);
        let ids = a.take(5_000).unwrap();
        assert_eq!(ids.len(), 5_000);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn blocks_hold_about_a_second_of_ids_within_bounds() {
        let mut a = IdAllocator::default();
        assert_eq!(a.block_size(10_000), MIN_BLOCK);
        a.add_block(block(1, 1_000_000), 0);
        a.take(50_000).unwrap();
        // 50,000 ids in 100 ms: 500,000 a second.
        assert_eq!(a.block_size(10_100), 500_000);
        a.take(200_000).unwrap();
        assert_eq!(a.block_size(10_110), MAX_BLOCK);
        assert_eq!(a.block_size(20_000), MIN_BLOCK);
    }

    #[test]
    fn stale_blocks_are_replaced_so_a_quiet_replica_keeps_up() {
        let mut a = IdAllocator::default();
        a.add_block(block(1, 1_000), 10_000);
        assert_eq!(a.take(1).unwrap(), vec![SmsLogId(1)]);
        assert!(!a.wants_block(10_000 + BLOCK_LIFE_MS));
        assert!(a.wants_block(10_001 + BLOCK_LIFE_MS));
        // Issued from the old block until the new one is there, then from it.
        assert_eq!(a.take(1).unwrap(), vec![SmsLogId(2)]);
        a.add_block(block(50_000, 1_000), 10_001 + BLOCK_LIFE_MS);
        assert_eq!(a.take(1).unwrap(), vec![SmsLogId(50_000)]);
        assert_eq!(a.available(), 999);
        assert!(!a.wants_block(10_001 + BLOCK_LIFE_MS));
    }

    #[test]
    fn ids_are_exact_as_json_doubles() {
        for id in [FIRST_ID, 123_456_789, MAX_ID - 1, MAX_ID] {
            let json = serde_json::to_string(&SmsLogId(id)).unwrap();
            let read: f64 = serde_json::from_str(&json).unwrap();
            assert_eq!(read as i64, id);
        }
    }

    #[test]
    fn queue_code_is_32_hex() {
        let q = QueueCode::from_bytes([0xab; 16]);
        assert_eq!(q.as_str().len(), 32);
        assert_eq!(QueueCode::parse(q.as_str()), Some(q));
        assert_eq!(QueueCode::parse("xyz"), None);
    }
}
