//! Who may bind: system_id is the username, the password is the account's
//! SMPP password. Refusals, each answered before the connection closes:
//! a wrong password, an unknown system_id or a client IP blocked for failed
//! logins → ESME_RINVPASWD (counted towards the same per-IP block as the
//! HTTP logins); a banned or removed account, or a subuser of a banned
//! parent → ESME_RBINDFAIL; a client outside the account's IP allow-list →
//! ESME_RBINDFAIL; more binds than `smpp_max_binds` across every replica →
//! ESME_RALYBND.

use std::net::IpAddr;
use std::sync::Arc;

use smsfleet_contract::AccountState;
use smsfleet_domain::ipallow;
use smsfleet_smpp::rusmpp::CommandStatus;

use crate::app::App;
use crate::bulk::state::CredentialCache;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindRefusal {
    BadCredentials,
    Inactive,
    AddressNotAllowed,
    TooManyBinds,
}

impl BindRefusal {
    pub fn status(self) -> CommandStatus {
        match self {
            Self::BadCredentials => CommandStatus::EsmeRinvpaswd,
            Self::Inactive | Self::AddressNotAllowed => CommandStatus::EsmeRbindfail,
            Self::TooManyBinds => CommandStatus::EsmeRalybnd,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadCredentials => "bad_credentials",
            Self::Inactive => "inactive",
            Self::AddressNotAllowed => "address_not_allowed",
            Self::TooManyBinds => "too_many_binds",
        }
    }
}

/// The credential and account checks of a bind (the bind-count check comes
/// after, in the caller, because it takes a slot).
pub async fn check(
    app: &App,
    known: &CredentialCache,
    system_id: &str,
    password: &str,
    client: IpAddr,
) -> Result<Arc<AccountState>, BindRefusal> {
    if app.login_blocked(client) {
        return Err(BindRefusal::BadCredentials);
    }
    let outcome = credentials(app, known, system_id, password).await;
    app.record_login(client, outcome.is_ok());
    let account = outcome?;
    if !crate::auth::active(&app.cache, &account) {
        return Err(BindRefusal::Inactive);
    }
    if !ipallow::allows(&account.webservices_ip, client) {
        return Err(BindRefusal::AddressNotAllowed);
    }
    Ok(account)
}

/// The SMPP password against its argon2 hash, remembering good checks the
/// way the bulk API does (its own cache: the two passwords differ), so a
/// customer's reconnect storm does not cost an argon2 per bind.
async fn credentials(
    app: &App,
    known: &CredentialCache,
    system_id: &str,
    password: &str,
) -> Result<Arc<AccountState>, BindRefusal> {
    let account = smsfleet_domain::account::normalize_username(system_id)
        .and_then(|u| app.cache.by_username(&u))
        .ok_or(BindRefusal::BadCredentials)?;
    let hash = account.smpp_password_hash.clone().ok_or(BindRefusal::BadCredentials)?;
    let fingerprint = app.secrets.password_fingerprint(password);
    if known.contains(account.uid, account.revision, &fingerprint) {
        return Ok(account);
    }
    let password = password.to_owned();
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let ok =
        tokio::task::spawn_blocking(move || smsfleet_secrets::verify_password(&hash, &password)).await.unwrap_or(false);
    if !ok {
        return Err(BindRefusal::BadCredentials);
    }
    known.insert(account.uid, account.revision, fingerprint);
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_in_command_statuses() {
        assert_eq!(BindRefusal::BadCredentials.status(), CommandStatus::EsmeRinvpaswd);
        assert_eq!(BindRefusal::Inactive.status(), CommandStatus::EsmeRbindfail);
        assert_eq!(BindRefusal::AddressNotAllowed.status(), CommandStatus::EsmeRbindfail);
        assert_eq!(BindRefusal::TooManyBinds.status(), CommandStatus::EsmeRalybnd);
    }
}
