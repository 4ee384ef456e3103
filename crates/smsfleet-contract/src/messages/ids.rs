//! The IDS stream: id counters, advanced by compare-and-set.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The value of an id counter (`<ns>.ids.smslog`): the first id no replica
/// has taken yet. A replica takes the block `next..next + size` by
/// publishing `next + size` with "expected last subject sequence" set to
/// the sequence it read, so two replicas can never take the same block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IdCounter {
    pub v: u32,
    pub next: i64,
}
