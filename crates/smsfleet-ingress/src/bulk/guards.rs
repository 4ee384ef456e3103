//! The bulk API's guards before a request is interpreted: the global IP
//! blacklist (16), the password check with its cache of good passwords
//! (1703), the account's state (1709) and its IP allow-list (18).

use std::net::IpAddr;
use std::sync::Arc;

use smsfleet_contract::AccountState;
use smsfleet_domain::ipallow;

use super::codes as code;
use super::request::Required;
use super::state::BulkSettings;
use crate::app::App;

/// 16 when the client is on the global blacklist.
pub fn blacklisted(settings: &BulkSettings, client: IpAddr) -> bool {
    let blacklist = &settings.ip_blacklist;
    !blacklist.trim().is_empty() && ipallow::allows(blacklist, client)
}

/// 1703 for an unknown user or wrong password; 1709 for an account that may
/// not send (banned, removed, a subuser of a banned parent, webservices
/// off); 18 for a client outside the account's allow-list.
pub(crate) async fn authenticate(app: &App, r: &Required, client: IpAddr) -> Result<Arc<AccountState>, u16> {
    if app.login_blocked(client) {
        return Err(code::BAD_CREDENTIALS);
    }
    let outcome = check_credentials(app, r, client).await;
    app.record_login(client, !matches!(outcome, Err(code::BAD_CREDENTIALS)));
    outcome
}

async fn check_credentials(app: &App, r: &Required, client: IpAddr) -> Result<Arc<AccountState>, u16> {
    let account = crate::auth::find_user(&app.cache, &r.username).ok_or(code::BAD_CREDENTIALS)?;
    let hash = account.bulk_password_hash.clone().ok_or(code::BAD_CREDENTIALS)?;
    let fingerprint = app.secrets.password_fingerprint(&r.password);
    if !app.bulk.credentials.contains(account.uid, account.revision, &fingerprint) {
        let password = r.password.clone();
        // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
        let ok = tokio::task::spawn_blocking(move || smsfleet_secrets::verify_password(&hash, &password))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(code::BAD_CREDENTIALS);
        }
        app.bulk.credentials.insert(account.uid, account.revision, fingerprint);
    }
    if !crate::auth::active(&app.cache, &account) || !account.webservices_enabled {
        return Err(code::USER_VALIDATION);
    }
    if !ipallow::allows(&account.webservices_ip, client) {
        return Err(code::IP_NOT_WHITELISTED);
    }
    Ok(account)
}
