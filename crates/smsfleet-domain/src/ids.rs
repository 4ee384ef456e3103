//! Message identifiers.
//!
//! `smslog_id` must be a 64-bit integer that is unique and increasing across
//! every ingress replica, without a database round trip on the send path. A
//! snowflake layout gives that: milliseconds since our epoch, a worker id
//! leased per replica at start-up, and a per-millisecond sequence.

use std::fmt;

use serde::{Deserialize, Serialize};

/// 2024-01-01T00:00:00Z in Unix milliseconds: ids stay small for decades.
pub const EPOCH_MS: u64 = 1_704_067_200_000;
/// Bits for the replica's worker id: 1,024 replicas at once.
pub const WORKER_BITS: u32 = 10;
/// Bits for the per-millisecond sequence: 4,096 ids per ms per replica.
pub const SEQUENCE_BITS: u32 = 12;
pub const MAX_WORKER_ID: u16 = (1 << WORKER_BITS) - 1;
const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;

/// The playSMS `smslog_id`: one per destination of an outgoing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SmsLogId(pub i64);

impl fmt::Display for SmsLogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Hands out increasing snowflake ids for one worker id.
///
/// Pure: the caller passes the current time, so tests control the clock. If
/// the clock steps back, or a burst exhausts a millisecond's sequence, the
/// generator borrows from the next millisecond instead of repeating an id.
#[derive(Debug)]
pub struct SnowflakeGenerator {
    worker_id: u16,
    last_ms: u64,
    sequence: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("worker id {0} is out of range 0..=1023")]
    WorkerOutOfRange(u16),
}

impl SnowflakeGenerator {
    pub fn new(worker_id: u16) -> Result<Self, IdError> {
        if worker_id > MAX_WORKER_ID {
            return Err(IdError::WorkerOutOfRange(worker_id));
        }
        Ok(Self { worker_id, last_ms: 0, sequence: 0 })
    }

    pub fn worker_id(&self) -> u16 {
        self.worker_id
    }

    /// The next id at wall-clock `now_unix_ms`.
    pub fn next(&mut self, now_unix_ms: u64) -> SmsLogId {
        let now = now_unix_ms.saturating_sub(EPOCH_MS);
        if now > self.last_ms {
            self.last_ms = now;
            self.sequence = 0;
        } else if self.sequence == MAX_SEQUENCE {
            self.last_ms += 1;
            self.sequence = 0;
        } else {
            self.sequence += 1;
        }
        let raw = (self.last_ms << (WORKER_BITS + SEQUENCE_BITS))
            | (u64::from(self.worker_id) << SEQUENCE_BITS)
            | self.sequence;
        // 41 bits of milliseconds keep the top bit clear for ~69 years.
        SmsLogId((raw & (i64::MAX as u64)) as i64)
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

    #[test]
    fn ids_increase_within_and_across_milliseconds() {
        let mut g = SnowflakeGenerator::new(7).unwrap();
        let t = EPOCH_MS + 1_000;
        let a = g.next(t);
        let b = g.next(t);
        let c = g.next(t + 1);
        assert!(a < b && b < c);
    }

    #[test]
    fn clock_going_back_never_repeats() {
        let mut g = SnowflakeGenerator::new(1).unwrap();
        let a = g.next(EPOCH_MS + 5_000);
        let b = g.next(EPOCH_MS + 4_000);
        assert!(b > a);
    }

    #[test]
    fn sequence_overflow_borrows_the_next_millisecond() {
        let mut g = SnowflakeGenerator::new(3).unwrap();
        let t = EPOCH_MS + 10;
        let mut last = g.next(t);
        for _ in 0..10_000 {
            let n = g.next(t);
            assert!(n > last);
            last = n;
        }
    }

    #[test]
    fn different_workers_never_collide() {
        let mut a = SnowflakeGenerator::new(1).unwrap();
        let mut b = SnowflakeGenerator::new(2).unwrap();
        let t = EPOCH_MS + 99;
        assert_ne!(a.next(t), b.next(t));
    }

    #[test]
    fn worker_id_is_bounded() {
        assert_eq!(SnowflakeGenerator::new(1024).unwrap_err(), IdError::WorkerOutOfRange(1024));
    }

    #[test]
    fn queue_code_is_32_hex() {
        let q = QueueCode::from_bytes([0xab; 16]);
        assert_eq!(q.as_str().len(), 32);
        assert_eq!(QueueCode::parse(q.as_str()), Some(q));
        assert_eq!(QueueCode::parse("xyz"), None);
    }
}
