//! The accounts service: account-changing commands from the ingress.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smsfleet_domain::account::AccountError;

use super::AccountState;

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
    /// Extension: the SMPP bind password (at most 8 characters).
    #[serde(default)]
    pub smpp_password: Option<String>,
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
    /// Extension: the SMPP bind password (at most 8 characters).
    #[serde(default)]
    pub smpp_password: Option<String>,
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
    /// What went wrong; each front door renders it in its own codes (the
    /// playSMS ones are in the ingress's `account_errors.rs`).
    Refused(AccountError),
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
