//! The STATUS stream: delivery-status changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smsfleet_domain::DeliveryStatus;

/// A change of one message's delivery status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusEvent {
    pub smslog_id: i64,
    pub uid: i64,
    pub status: DeliveryStatus,
    pub at_ms: i64,
    /// The upstream SMSC's message id, once known.
    pub upstream_id: Option<String>,
    /// Why a message failed, for operators (never shown to API clients).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusBatch {
    pub v: u32,
    /// Unique per batch; the JetStream message id.
    pub batch_id: String,
    pub events: Vec<StatusEvent>,
    /// Queues whose scheduled chunks were released (they become visible in
    /// `ds` and stop answering ERR 401).
    #[serde(default)]
    pub released_queues: Vec<String>,
}
