//! The DLR stream: delivery reports as upstreams sent them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DlrOutcome {
    Delivered,
    Failed,
}

/// One delivery report as an upstream sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DlrReport {
    pub upstream_id: String,
    pub outcome: DlrOutcome,
    pub error_code: Option<String>,
    pub done_at_ms: Option<i64>,
}

/// Reports received in one callback, stored before the upstream gets its
/// 200 so that none is lost if the matcher is down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DlrBatch {
    pub v: u32,
    pub batch_id: String,
    pub route: String,
    pub received_at_ms: i64,
    pub reports: Vec<DlrReport>,
}
