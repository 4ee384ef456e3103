//! Who is asking: token authentication for every op but `get_token` and
//! `ws_login`. A blocked client fails whatever it sends; each outcome feeds
//! the brute-force guard.

use std::net::IpAddr;
use std::sync::Arc;

use smsfleet_contract::AccountState;
use smsfleet_domain::account::Role;
use smsfleet_playsms::Params;

use super::error::ApiError;
use crate::app::App;
use crate::auth;

const ERR_AUTH: u16 = 100;
const ERR_ADMIN: u16 = 600;

/// The caller's account from `u` and `h`; ERR 100 otherwise.
pub(crate) fn user(app: &App, p: &Params, client: IpAddr) -> Result<Arc<AccountState>, ApiError> {
    authenticate(app, p, client).ok_or(ApiError::new(ERR_AUTH))
}

/// Admin ops: token authentication plus the admin role (ERR 600 otherwise).
pub(crate) fn admin(app: &App, p: &Params, client: IpAddr) -> Result<Arc<AccountState>, ApiError> {
    authenticate(app, p, client).filter(|a| a.role == Role::Admin).ok_or(ApiError::new(ERR_ADMIN))
}

fn authenticate(app: &App, p: &Params, client: IpAddr) -> Option<Arc<AccountState>> {
    if app.login_blocked(client) {
        return None;
    }
    let found = auth::authenticate_token(&app.cache, &app.secrets, p.get("u"), p.get("h"), client);
    app.record_login(client, found.is_some());
    found
}
