//! The SCHEDULE and DISPATCH streams: charged slices of a submission on
//! their way to an upstream.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smsfleet_domain::Encoding;

use super::Destination;

/// A slice of a charged submission, ready for an upstream route. The ledger
/// cuts submissions into chunks so that several dispatcher replicas share a
/// large campaign and a redelivery repeats little work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DispatchChunk {
    pub v: u32,
    /// `<queue>.<index>`: unique, used as the JetStream message id.
    pub chunk_id: String,
    pub queue: String,
    pub uid: i64,
    pub sender: String,
    /// Text plus footer, as sent on the air.
    pub body: String,
    pub encoding: Encoding,
    pub flash: bool,
    pub segments: u32,
    pub validity_until_ms: i64,
    /// Set while the chunk waits in the scheduler.
    pub release_at_ms: Option<i64>,
    pub destinations: Vec<Destination>,
    pub traceparent: Option<String>,
}
