//! Accounts: the secrets around them and the service that owns changes.
//!
//! Postgres is the source of truth; every change is published to the bus as
//! an [`AccountState`] snapshot so each ingress replica authenticates from
//! memory. Tokens are looked up by a keyed hash and, because `get_token`
//! must return the current token, also kept sealed (AES-256-GCM) under the
//! server key. Passwords are argon2 hashes. No secret is ever stored or
//! published in the clear.

mod admin;
mod error;
pub mod phonebook;
mod service;
mod state;

pub use admin::LOGIN_KEY_TTL;
pub use error::AccountsError;
pub use service::{
    AccountChanges, AccountsConfig, NewAccountSpec, create_account, find_account, lookup_account, run,
    set_sender_approved, set_stop, update_account,
};
pub use state::{publish_all, publish_stop, to_state};
