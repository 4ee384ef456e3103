//! The INCOMING stream: received messages (MO, inject, `@user`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where an incoming message came from, which decides how it is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncomingKind {
    /// From a handset, reported by an upstream's MO callback: routed by keyword.
    Mo,
    /// Injected by an admin (`op=inject`): routed like an MO.
    Inject,
    /// An internal message (`pv` to `@user`): straight to that user's inbox.
    Inbox,
}

/// One received message, stored on the INCOMING stream before the sender
/// (an upstream, an admin, a `pv` caller) gets its answer. The query role
/// routes it into `in`/`sx` (by keyword) or `ix` (inbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncomingMessage {
    pub v: u32,
    /// Unique per message and the JetStream message id: `mo:<route>:<upstream
    /// id>`, `inject:<smslog id>`, `im:<queue>:<uid>`. The projection stores it
    /// under a unique constraint, so a retry or redelivery adds nothing.
    pub key: String,
    pub kind: IncomingKind,
    /// The sending number (`mo`, `inject`) or the sending user's username
    /// without `@` (`inbox`).
    pub sender: String,
    /// The number it was sent to; empty when unknown and for `inbox`.
    pub receiver: String,
    /// The full text, keyword included.
    pub text: String,
    /// The route or SMSC it came in on; empty when not known.
    pub smsc: String,
    /// `inbox` only: the uid whose inbox receives it.
    pub to_uid: Option<i64>,
    pub received_at_ms: i64,
    /// W3C `traceparent` of the request that received it.
    pub traceparent: Option<String>,
}
