//! The SUBMIT stream: what the ingress accepted, published before the
//! client hears OK.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smsfleet_domain::Encoding;

/// Which door accepted a submission; the status pusher and `ds` use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    Playsms,
    Bulk,
    /// submit_sm on the SMPP server; `dlr_requested` is registered_delivery.
    Smpp,
}

/// One destination of a submission, with its `smslog_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Destination {
    pub smslog_id: i64,
    /// The cleaned number as echoed to the client.
    pub to: String,
}

/// One accepted API request: a text for one or more destinations. The
/// ingress publishes it before answering OK, so it is the durable record of
/// what the client was promised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Submission {
    /// The playSMS queue code; unique per request.
    pub queue: String,
    pub uid: i64,
    pub api: Api,
    pub sender: String,
    /// The text without footer.
    pub text: String,
    /// Appended on the air, never shown in `ds` (`""` or `" @alice"`).
    pub footer: String,
    pub encoding: Encoding,
    pub flash: bool,
    /// Parts per destination for text plus footer.
    pub segments: u32,
    /// playSMS `type` as given (`text`, `flash`, ...).
    pub msg_type: String,
    /// The client asked for delivery reports to be pushed (bulk API `dlr=1`).
    pub dlr_requested: bool,
    pub accepted_at_ms: i64,
    /// Release instant for a scheduled message; `None` sends now.
    pub schedule_at_ms: Option<i64>,
    /// After this instant the dispatcher gives up and marks it failed.
    pub validity_until_ms: i64,
    pub destinations: Vec<Destination>,
    /// W3C `traceparent` of the HTTP request that accepted it.
    pub traceparent: Option<String>,
}

/// What the ingress publishes: the submissions accepted during one publish
/// round trip. Batching amortises JetStream acks under load (group commit);
/// under light load a batch holds a single submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubmitBatch {
    pub v: u32,
    pub batch_id: String,
    pub submissions: Vec<Submission>,
    /// Unix ms after which the ingress stops waiting for this batch to be
    /// stored and answers its requests with an error. The ledger fails a
    /// batch the stream received later (a publish buffered through an
    /// outage), so an error answer never turns into a send. `None` (older
    /// payloads, tools) means no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<i64>,
}
