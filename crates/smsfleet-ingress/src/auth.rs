//! playSMS authentication, from the cache only.
//!
//! Token ops: every failure is ERR 100, whatever the reason (unknown user,
//! wrong token, webservices off, IP not allowed, banned), so a caller learns
//! nothing. `get_token` checks the password, then in playSMS's order the IP
//! (106), the token's existence (104) and the webservices flag (105).

use std::net::IpAddr;
use std::sync::Arc;

use smsfleet_contract::AccountState;
use smsfleet_domain::{account, ipallow};
use smsfleet_secrets::Secrets;

use crate::cache::AccountCache;

/// Resolves `u` (a username, or an email when it looks like one).
pub fn find_user(cache: &AccountCache, u: &str) -> Option<Arc<AccountState>> {
    let u = u.trim();
    if account::looks_like_email(u)
        && let Some(a) = cache.by_email(u)
    {
        return Some(a);
    }
    cache.by_username(&account::normalize_username(u)?)
}

pub fn authenticate_token(
    cache: &AccountCache,
    secrets: &Secrets,
    u: Option<&str>,
    h: Option<&str>,
    client: IpAddr,
) -> Option<Arc<AccountState>> {
    let (u, h) = (u?, h?);
    if !account::token_shape_ok(h) {
        return None;
    }
    let claimed = find_user(cache, u)?;
    let by_token = cache.by_token_lookup(&secrets.token_lookup(h))?;
    let stored = claimed.token_lookup.as_deref()?;
    // The token must be this user's: compare in constant time as well as by uid.
    if by_token.uid != claimed.uid || !secrets.token_matches(h, stored) {
        return None;
    }
    usable(&claimed, client).then_some(claimed)
}

fn usable(a: &AccountState, client: IpAddr) -> bool {
    !a.banned && !a.deleted && a.webservices_enabled && ipallow::allows(&a.webservices_ip, client)
}

#[derive(Debug, PartialEq, Eq)]
pub enum GetTokenOutcome {
    Token(String),
    Err(u16),
}

/// `op=get_token`. The argon2 check is CPU-heavy: call it off the runtime.
pub fn get_token(
    cache: &AccountCache,
    secrets: &Secrets,
    u: Option<&str>,
    p: Option<&str>,
    client: IpAddr,
) -> GetTokenOutcome {
    let (Some(u), Some(p)) = (u, p) else { return GetTokenOutcome::Err(100) };
    if !account::password_long_enough(p) {
        return GetTokenOutcome::Err(100);
    }
    let Some(a) = find_user(cache, u) else { return GetTokenOutcome::Err(100) };
    let Some(hash) = a.password_hash.as_deref() else { return GetTokenOutcome::Err(100) };
    if a.banned || a.deleted || !smsfleet_secrets::verify_password(hash, p.trim()) {
        return GetTokenOutcome::Err(100);
    }
    if !ipallow::allows(&a.webservices_ip, client) {
        return GetTokenOutcome::Err(106);
    }
    let Some(token) = a.token_sealed.as_deref().and_then(|s| secrets.open(s)) else {
        return GetTokenOutcome::Err(104);
    };
    if !a.webservices_enabled {
        return GetTokenOutcome::Err(105);
    }
    GetTokenOutcome::Token(token)
}
