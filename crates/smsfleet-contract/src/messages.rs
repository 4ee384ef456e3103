//! Message payloads. All are JSON; timestamps are Unix milliseconds and
//! money is a decimal string, so a consumer in any language reads them
//! without a date or float library surprise.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smsfleet_domain::{DeliveryStatus, Encoding};

/// Which HTTP API accepted a submission; the status pusher and `ds` use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    Playsms,
    Bulk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoding {
    Gsm7,
    Ucs2,
    Latin1,
}

impl From<Encoding> for TextEncoding {
    fn from(e: Encoding) -> Self {
        match e {
            Encoding::Gsm7 => Self::Gsm7,
            Encoding::Ucs2 => Self::Ucs2,
            Encoding::Latin1 => Self::Latin1,
        }
    }
}

impl From<TextEncoding> for Encoding {
    fn from(e: TextEncoding) -> Self {
        match e {
            TextEncoding::Gsm7 => Self::Gsm7,
            TextEncoding::Ucs2 => Self::Ucs2,
            TextEncoding::Latin1 => Self::Latin1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Sent,
    Failed,
    Delivered,
}

impl From<DeliveryStatus> for Status {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Sent => Self::Sent,
            DeliveryStatus::Failed => Self::Failed,
            DeliveryStatus::Delivered => Self::Delivered,
        }
    }
}

impl From<Status> for DeliveryStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => Self::Pending,
            Status::Sent => Self::Sent,
            Status::Failed => Self::Failed,
            Status::Delivered => Self::Delivered,
        }
    }
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
    pub encoding: TextEncoding,
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
}

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
    pub encoding: TextEncoding,
    pub flash: bool,
    pub segments: u32,
    pub validity_until_ms: i64,
    /// Set while the chunk waits in the scheduler.
    pub release_at_ms: Option<i64>,
    pub destinations: Vec<Destination>,
    pub traceparent: Option<String>,
}

/// A change of one message's delivery status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusEvent {
    pub smslog_id: i64,
    pub uid: i64,
    pub status: Status,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    Admin,
    User,
    Subuser,
}

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
    pub role: AccountRole,
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

/// `op=ds` as the ingress forwards it to the query service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DsRequest {
    pub uid: i64,
    pub queue: Option<String>,
    pub src: Option<String>,
    pub dst: Option<String>,
    pub dt: Option<String>,
    pub smslog_id: Option<i64>,
    pub limit: u32,
    pub last: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DsRow {
    pub smslog_id: i64,
    pub src: String,
    pub dst: String,
    pub msg: String,
    pub dt: String,
    pub update: String,
    pub status: i16,
}

/// A query answer: rows, or a playSMS error code (400, 401, 402).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DsReply {
    Rows(Vec<DsRow>),
    Error(u16),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreditRequest {
    pub uid: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreditReply {
    /// Decimal string.
    pub balance: String,
}

/// Account-changing commands the ingress sends to the accounts service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum AccountCommand {
    /// Replace the caller's webservices token (`op=set_token`).
    SetToken { uid: i64 },
    /// Ban or unban an account (`op=accountban` / `op=accountunban`); the
    /// caller has already been checked to be an admin.
    SetBanned { username: String, banned: bool },
    /// `op=accountadd`. Fields are as the admin sent them; the service
    /// validates. The `webservices_*` and `token` fields are smsfleet's
    /// extension: playSMS can only set them in its web UI.
    Add(Box<NewAccountCommand>),
    /// `op=accountremove`.
    Remove { username: String },
    /// `op=parentset`.
    SetParent { username: String, parent: String },
    /// `op=accountpref`: each `Some` field replaces the stored value.
    Preferences { username: String, changes: PreferenceChanges },
    /// `op=accountconf`: each `Some` field replaces the stored value.
    Configuration { username: String, changes: ConfigurationChanges },
    /// `op=loginkeyset`: a new single-use key for `op=ws_login`.
    SetLoginKey { username: String },
    /// `op=ws_login`: consumes the stored key whatever the outcome.
    UseLoginKey { username: String, login_key: String },
    /// `op=stoplist`: adds a number to the global stop list.
    AddStop { number: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NewAccountCommand {
    /// `data_status` as sent: 2 admin, 3 user, anything else a subuser.
    pub status: String,
    pub username: String,
    pub password: String,
    pub name: String,
    pub email: String,
    /// Username of the parent (subusers only).
    pub parent: String,
    pub mobile: String,
    pub footer: Option<String>,
    pub timezone: String,
    pub language: String,
    /// Extension: switch webservices on for the new account.
    #[serde(default)]
    pub webservices_enabled: bool,
    /// Extension: the webservices IP allow-list (default `127.0.0.1`).
    #[serde(default)]
    pub webservices_ip: Option<String>,
    /// Extension: the webservices token; `auto` generates one.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PreferenceChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub password: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub zipcode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigurationChanges {
    pub footer: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub fwd_to_inbox: Option<String>,
    pub fwd_to_email: Option<String>,
    pub fwd_to_mobile: Option<String>,
    pub local_length: Option<String>,
    pub replace_zero: Option<String>,
    pub sender: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountReply {
    /// The new token and the account state that carries it, so the asking
    /// ingress can apply it before answering.
    Token { token: String, account: Box<AccountState> },
    /// The changed account, applied by the asking ingress before it answers.
    Account(Box<AccountState>),
    /// A playSMS error code.
    Error(u16),
    /// A playSMS error code with the `info` text playSMS puts next to it.
    Refused { code: u16, info: String },
    /// Done; `info` is playSMS's message (empty for ops that have none).
    /// `account` is the changed account, applied by the asking ingress
    /// before it answers; `token` is set when `accountadd` made one.
    Done {
        info: String,
        account: Option<Box<AccountState>>,
        #[serde(default)]
        token: Option<String>,
    },
    /// A new login key (`op=loginkeyset`).
    LoginKey { login_key: String },
    /// A number (digits) newly on the stop list, applied by the asking
    /// ingress before it answers.
    Stopped { number: String },
}

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

/// `op=query`: the newest ids of the caller's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LastIdsRequest {
    pub uid: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LastIdsReply {
    pub user_inbox: i64,
    pub user_incoming: i64,
    pub user_outgoing: i64,
}

/// A client IP blocked after too many failed logins, on every ingress
/// replica until `until_ms` (Unix ms). `until_ms` 0 lifts the block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlockState {
    pub v: u32,
    pub ip: String,
    pub until_ms: i64,
}

// ---- Phonebook ----------------------------------------------------------

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

/// `op=get_contact` / `op=get_contact_group` as the ingress forwards them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "search", rename_all = "snake_case")]
pub enum PhonebookRequest {
    Contacts { uid: i64, keyword: String, limit: u32 },
    Groups { uid: i64, keyword: String, limit: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContactItem {
    pub pid: i64,
    pub p_desc: String,
    pub p_num: String,
    pub email: String,
    pub tags: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupItem {
    pub gpid: i64,
    pub group_name: String,
    pub code: String,
    pub flag_sender: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhonebookReply {
    Contacts(Vec<ContactItem>),
    Groups(Vec<GroupItem>),
    /// The lookup failed (logged by the query role).
    Unavailable,
}

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
    /// id>`, `inject:<snowflake>`, `im:<queue>:<uid>`. The projection stores it
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

/// Which incoming list a request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncomingList {
    /// `op=in`: the caller's messages handled by one of its keywords.
    In,
    /// `op=ix`: the caller's inbox.
    Ix,
    /// `op=sx`: every unhandled message (admins only; the ingress checks).
    Sx,
}

/// `op=in` / `op=ix` / `op=sx` as the ingress forwards them to the query service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncomingRequest {
    pub list: IncomingList,
    pub uid: i64,
    pub src: Option<String>,
    pub dst: Option<String>,
    pub dt: Option<String>,
    /// `in` only.
    pub kwd: Option<String>,
    /// 0 means playSMS's default (100).
    pub limit: u32,
    pub last: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncomingRow {
    pub id: i64,
    pub src: String,
    pub dst: String,
    /// Empty for `ix` and `sx`.
    pub kwd: String,
    /// Text after the keyword (`in`) or the whole text (`ix`, `sx`), with
    /// `"` replaced by `'`.
    pub msg: String,
    pub dt: String,
}

/// Rows, or a playSMS error code (501).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncomingReply {
    Rows(Vec<IncomingRow>),
    Error(u16),
}

/// Any message carried on the bus that has a schema in `proto/schemas`.
pub trait BusMessage: Serialize + for<'de> Deserialize<'de> + JsonSchema {
    /// Schema file stem, e.g. `submit_batch`.
    const SCHEMA: &'static str;

    /// The trace context the payload itself carries, used when it is
    /// published outside the span that created it (a batching task, a
    /// scheduler releasing it hours later).
    fn trace_parent(&self) -> Option<&str> {
        None
    }
}

macro_rules! bus_message {
    ($($t:ty => $name:literal),* $(,)?) => {
        $(impl BusMessage for $t { const SCHEMA: &'static str = $name; })*
    };
}

impl BusMessage for SubmitBatch {
    const SCHEMA: &'static str = "submit_batch";
    fn trace_parent(&self) -> Option<&str> {
        self.submissions.iter().find_map(|s| s.traceparent.as_deref())
    }
}

impl BusMessage for IncomingMessage {
    const SCHEMA: &'static str = "incoming_message";
    fn trace_parent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }
}

impl BusMessage for DispatchChunk {
    const SCHEMA: &'static str = "dispatch_chunk";
    fn trace_parent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }
}

bus_message! {
    StatusBatch => "status_batch",
    DlrBatch => "dlr_batch",
    AccountState => "account_state",
    BalanceState => "balance_state",
    RatesState => "rates_state",
    StopState => "stop_state",
    DsRequest => "ds_request",
    DsReply => "ds_reply",
    CreditRequest => "credit_request",
    CreditReply => "credit_reply",
    AccountCommand => "account_command",
    AccountReply => "account_reply",
    CreditChangeRequest => "credit_change_request",
    CreditChangeReply => "credit_change_reply",
    LastIdsRequest => "last_ids_request",
    LastIdsReply => "last_ids_reply",
    BlockState => "block_state",
    GroupState => "group_state",
    PhonebookRequest => "phonebook_request",
    PhonebookReply => "phonebook_reply",
    IncomingRequest => "incoming_request",
    IncomingReply => "incoming_reply",
}

/// Every schema, for the proto check and the generator.
pub fn all_schemas() -> Vec<(&'static str, schemars::Schema)> {
    fn s<T: BusMessage>() -> (&'static str, schemars::Schema) {
        (T::SCHEMA, schemars::schema_for!(T))
    }
    vec![
        s::<SubmitBatch>(),
        s::<DispatchChunk>(),
        s::<StatusBatch>(),
        s::<DlrBatch>(),
        s::<AccountState>(),
        s::<BalanceState>(),
        s::<RatesState>(),
        s::<StopState>(),
        s::<DsRequest>(),
        s::<DsReply>(),
        s::<CreditRequest>(),
        s::<CreditReply>(),
        s::<AccountCommand>(),
        s::<AccountReply>(),
        s::<CreditChangeRequest>(),
        s::<CreditChangeReply>(),
        s::<LastIdsRequest>(),
        s::<LastIdsReply>(),
        s::<BlockState>(),
        s::<GroupState>(),
        s::<PhonebookRequest>(),
        s::<PhonebookReply>(),
        s::<IncomingMessage>(),
        s::<IncomingRequest>(),
        s::<IncomingReply>(),
    ]
}
