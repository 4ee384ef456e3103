//! The ledger's service: admin credit changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `op=creditadd` / `op=creditdeduct`, answered by the ledger (the only
/// writer of balances, so an admin's change never races a charge).
/// `reference` makes a retried request a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreditChangeRequest {
    pub reference: String,
    pub uid: i64,
    /// Signed decimal string: positive adds, negative deducts.
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreditChangeReply {
    /// The balance after the change, as a decimal string.
    Balance(String),
    /// Nothing changed (unknown account, zero amount, storage failure).
    Failed,
}
