//! The STATE stream: the last value per subject that every ingress
//! replica caches (accounts, balances, rates, stop list, groups, blocks).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smsfleet_domain::account::Role;

/// The full state of one account as every ingress replica caches it. Secrets
/// travel only in protected form: the token as a keyed hash (for lookup) and
/// sealed under the server key (for `get_token`), passwords as argon2 hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountState {
    pub v: u32,
    pub uid: i64,
    /// Increases with every change; older states are ignored.
    pub revision: i64,
    pub username: String,
    pub email: String,
    pub name: String,
    pub mobile: String,
    pub role: Role,
    pub parent_uid: Option<i64>,
    pub banned: bool,
    pub deleted: bool,
    pub webservices_enabled: bool,
    pub webservices_ip: String,
    /// Hex HMAC-SHA256 of the token under the server's lookup key.
    pub token_lookup: Option<String>,
    /// Base64 of nonce ‖ AES-256-GCM ciphertext of the token.
    pub token_sealed: Option<String>,
    /// argon2 PHC string of the playSMS password.
    pub password_hash: Option<String>,
    /// argon2 PHC string of the bulk HTTP API password.
    pub bulk_password_hash: Option<String>,
    /// playSMS offset like `+0700`.
    pub timezone: String,
    pub footer: String,
    pub sender: String,
    /// Bulk HTTP API message templates; when non-empty, every bulk message
    /// must match one (`{#var#}` stands for 1 to 30 arbitrary characters).
    #[serde(default)]
    pub templates: Vec<String>,
    /// Where delivery reports of bulk `dlr=1` messages are pushed.
    #[serde(default)]
    pub dlr_callback_url: Option<String>,
    /// argon2 PHC string of the SMPP bind password (`None`: no SMPP binds).
    #[serde(default)]
    pub smpp_password_hash: Option<String>,
    /// Binds the account may hold at once across every ingress replica.
    #[serde(default)]
    pub smpp_max_binds: u32,
    /// submit_sm per second over all the account's binds; 0 = no limit.
    #[serde(default)]
    pub smpp_throughput: u32,
}

/// One entry of the global stop list (`uid: None`, bulk code 1042) or of an
/// account's do-not-disturb list (`uid: Some`, bulk code 1732). Published
/// per entry, so the state feed keeps the latest word on each number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StopState {
    pub v: u32,
    /// Digits only, without `+`.
    pub number: String,
    pub uid: Option<i64>,
    /// `false` removes the number from the list.
    pub listed: bool,
}

/// An account's spendable credit, published by the ledger after each change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BalanceState {
    pub v: u32,
    pub uid: i64,
    pub revision: i64,
    /// Decimal string.
    pub balance: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RatePrefix {
    pub prefix: String,
    /// Decimal string, per segment.
    pub rate: String,
}

/// The rate table, one message for the whole table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RatesState {
    pub v: u32,
    pub revision: i64,
    pub default_rate: String,
    pub prefixes: Vec<RatePrefix>,
}

/// A client IP blocked after too many failed logins, on every ingress
/// replica until `until_ms` (Unix ms). `until_ms` 0 lifts the block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlockState {
    pub v: u32,
    pub ip: String,
    pub until_ms: i64,
}

/// One phonebook group with its members' numbers, published on every change
/// (last value per subject) so the ingress expands `#CODE` in `pv` from
/// memory. Bounded in size: a group has at most 20,000 members so the
/// snapshot fits NATS's default 1 MB payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupState {
    pub v: u32,
    pub uid: i64,
    pub gpid: i64,
    /// Increases with every change; older snapshots are ignored.
    pub revision: i64,
    /// Upper-case.
    pub code: String,
    pub name: String,
    /// Member numbers as stored (`+628...`, `0811...`).
    pub members: Vec<String>,
    /// The group was removed.
    pub deleted: bool,
}
