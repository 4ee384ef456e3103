//! One account for the unit tests of every API module.

use smsfleet_contract::{AccountState, SCHEMA_VERSION};
use smsfleet_domain::account::Role;

/// `alice`, a user with webservices on from 127.0.0.1, in UTC, no footer.
pub fn account() -> AccountState {
    AccountState {
        v: SCHEMA_VERSION,
        uid: 2,
        revision: 1,
        username: "alice".into(),
        email: String::new(),
        name: String::new(),
        mobile: String::new(),
        role: Role::User,
        parent_uid: None,
        banned: false,
        deleted: false,
        webservices_enabled: true,
        webservices_ip: "127.0.0.1".into(),
        token_lookup: None,
        token_sealed: None,
        password_hash: None,
        bulk_password_hash: None,
        timezone: "+0000".into(),
        footer: String::new(),
        sender: String::new(),
        templates: Vec::new(),
        dlr_callback_url: None,
        smpp_password_hash: None,
        smpp_max_binds: 2,
        smpp_throughput: 0,
    }
}
