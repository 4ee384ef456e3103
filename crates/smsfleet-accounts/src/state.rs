//! Account and stop-list snapshots on the state stream: what every ingress
//! replica caches. Written after Postgres, by the command handlers and at
//! start-up.

use smsfleet_bus::Bus;
use smsfleet_contract::{AccountState, SCHEMA_VERSION, StopState};
use smsfleet_domain::account::Role;
use smsfleet_store::PgPool;
use smsfleet_store::accounts::AccountRow;

use crate::error::AccountsError;

pub fn to_state(row: &AccountRow) -> AccountState {
    AccountState {
        v: SCHEMA_VERSION,
        uid: row.uid,
        revision: row.revision,
        username: row.username.clone(),
        email: row.email.clone(),
        name: row.name.clone(),
        mobile: row.mobile.clone(),
        role: Role::from_code(row.role).unwrap_or(Role::Subuser),
        parent_uid: row.parent_uid,
        banned: row.banned,
        deleted: row.deleted,
        webservices_enabled: row.webservices_enabled,
        webservices_ip: row.webservices_ip.clone(),
        token_lookup: row.token_lookup.clone(),
        token_sealed: row.token_sealed.clone(),
        password_hash: row.password_hash.clone(),
        bulk_password_hash: row.bulk_password_hash.clone(),
        timezone: row.timezone.clone(),
        footer: row.footer.clone(),
        sender: row.sender.clone(),
        templates: row.templates.clone(),
        dlr_callback_url: row.dlr_callback_url.clone(),
        smpp_password_hash: row.smpp_password_hash.clone(),
        smpp_max_binds: u32::try_from(row.smpp_max_binds).unwrap_or(0),
        smpp_throughput: u32::try_from(row.smpp_throughput).unwrap_or(0),
    }
}

pub(crate) async fn publish(bus: &Bus, row: &AccountRow) -> Result<(), AccountsError> {
    bus.publish_state(bus.namespace().account_state_subject(row.uid), &to_state(row)).await?;
    Ok(())
}

/// Publishes one stop-list (`uid` None) or do-not-disturb entry.
pub async fn publish_stop(bus: &Bus, uid: Option<i64>, digits: &str, listed: bool) -> Result<(), AccountsError> {
    let subject = match uid {
        None => bus.namespace().stop_state_subject(digits),
        Some(uid) => bus.namespace().dnd_state_subject(uid, digits),
    };
    let state = StopState { v: SCHEMA_VERSION, number: digits.to_owned(), uid, listed };
    bus.publish_state(subject, &state).await?;
    Ok(())
}

/// Republishes every account, so a fresh or purged state stream is complete.
pub async fn publish_all(bus: &Bus, pool: &PgPool) -> Result<usize, AccountsError> {
    let rows = smsfleet_store::accounts::all(pool).await?;
    for row in &rows {
        publish(bus, row).await?;
    }
    for (uid, digits) in smsfleet_store::stoplist::all_stops(pool).await? {
        publish_stop(bus, uid, &digits, true).await?;
    }
    crate::phonebook::publish_groups(pool, bus, None).await?;
    Ok(rows.len())
}
