//! The SMPP_OUT stream: what waits for an SMPP customer's receiver bind
//! (receipts of its messages, MOs routed to it), one subject per account,
//! removed when the customer's deliver_sm_resp arrived.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smsfleet_domain::DeliveryStatus;

/// One deliver_sm for an account's RX or TRX bind, on whichever ingress
/// replica holds one. Published with `Nats-Msg-Id` = `key`, so a
/// republished receipt is stored once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmppDeliver {
    pub v: u32,
    pub uid: i64,
    /// `receipt:<smslog_id>` or `mo:<incoming key>`.
    pub key: String,
    /// deliver_sm `source_addr`: the handset.
    pub source_addr: String,
    /// deliver_sm `destination_addr`: the customer's sender (receipt) or the
    /// number the handset wrote to (MO).
    pub destination_addr: String,
    /// When it was published; the server drops it after the receipt expiry.
    pub created_at_ms: i64,
    pub body: SmppDeliverBody,
}

/// `smsfleet smpp sessions` asks every ingress replica for its live binds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmppSessionsRequest {}

/// One replica's live binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmppSessionsReply {
    /// The replica's name (its host and SMPP port).
    pub replica: String,
    pub sessions: Vec<SmppSessionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmppSessionInfo {
    pub uid: i64,
    pub system_id: String,
    /// `tx`, `rx` or `trx`.
    pub bind: String,
    pub peer: String,
    pub bound_at_ms: i64,
    pub submits: u64,
    pub throttled: u64,
    pub delivered: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SmppDeliverBody {
    /// A delivery receipt (esm_class 0x04) for a message submitted over SMPP
    /// with registered_delivery.
    Receipt {
        /// The submit_sm_resp `message_id` (decimal).
        smslog_id: i64,
        status: DeliveryStatus,
        submitted_at_ms: i64,
        done_at_ms: i64,
        /// The first 20 characters of the text, for the receipt's `text:`.
        text_start: String,
    },
    /// A handset's message routed to the account by keyword.
    Mo { text: String },
}
