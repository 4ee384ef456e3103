//! Accounts: the secrets around them and the service that owns changes.
//!
//! Postgres is the source of truth; every change is published to the bus as
//! an [`AccountState`] snapshot so each ingress replica authenticates from
//! memory. Tokens are looked up by a keyed hash and, because `get_token`
//! must return the current token, also kept sealed (AES-256-GCM) under the
//! server key. Passwords are argon2 hashes. No secret is ever stored or
//! published in the clear.

mod admin;
pub mod phonebook;
mod service;

pub use admin::LOGIN_KEY_TTL;
// Kept while callers move to `smsfleet_secrets`.
pub use service::{
    AccountChanges, AccountsConfig, AccountsError, NewAccountSpec, create_account, find_account, lookup_account,
    publish_all, publish_stop, run, set_sender_approved, set_stop, to_state, update_account,
};
pub use smsfleet_secrets::{Secrets, SecretsError, generate_token, hash_password, verify_password};
