//! Services answered by the query role: `ds`, `cr`, phonebook, `query`
//! and the incoming lists.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
