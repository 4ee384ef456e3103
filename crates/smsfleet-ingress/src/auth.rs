//! playSMS authentication, from the cache only.
//!
//! Token ops: every failure is ERR 100, whatever the reason (unknown user,
//! wrong token, webservices off, IP not allowed, banned), so a caller learns
//! nothing. `get_token` checks the password, then in playSMS's order the IP
//! (106), the token's existence (104) and the webservices flag (105).
//! [`active`] is the one rule of who may act at all, for every door.

use std::net::IpAddr;
use std::sync::Arc;

use smsfleet_contract::AccountState;
use smsfleet_domain::account::{self, Role};
use smsfleet_domain::ipallow;
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
    usable(cache, &claimed, client).then_some(claimed)
}

fn usable(cache: &AccountCache, a: &AccountState, client: IpAddr) -> bool {
    active(cache, a) && a.webservices_enabled && ipallow::allows(&a.webservices_ip, client)
}

/// Whether `a` may act at all, through any door: neither banned nor
/// removed, and, for a subuser, its parent not banned (playSMS refuses a
/// banned reseller's subusers too). The parent is looked up in the cache on
/// every call, so the parent's own ban or unban snapshot applies to all of
/// its subusers at once, on every replica.
pub fn active(cache: &AccountCache, a: &AccountState) -> bool {
    let parent_banned = || {
        a.role == Role::Subuser && a.parent_uid.and_then(|uid| cache.by_uid(uid)).is_some_and(|parent| parent.banned)
    };
    !a.banned && !a.deleted && !parent_banned()
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
    if !active(cache, &a) || !smsfleet_secrets::verify_password(hash, p.trim()) {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use smsfleet_bus::StateEvent;

    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn secrets() -> Secrets {
        Secrets::from_hex(&Secrets::generate_key()).unwrap()
    }

    fn snapshot(a: AccountState) -> StateEvent {
        StateEvent::Account(Box::new(a))
    }

    /// `reseller` (uid 3) and its subuser `sub` (uid 4, with a token).
    fn reseller_and_subuser(cache: &AccountCache, secrets: &Secrets, reseller_banned: bool, revision: i64) {
        let base = crate::test_fixtures::account();
        let reseller =
            AccountState { uid: 3, username: "reseller".into(), banned: reseller_banned, revision, ..base.clone() };
        cache.apply(snapshot(reseller));
        let sub = AccountState {
            uid: 4,
            username: "sub".into(),
            role: Role::Subuser,
            parent_uid: Some(3),
            token_lookup: Some(secrets.token_lookup(TOKEN)),
            ..base
        };
        cache.apply(snapshot(sub));
    }

    fn sub_authenticates(cache: &AccountCache, secrets: &Secrets) -> bool {
        let local = IpAddr::from([127, 0, 0, 1]);
        authenticate_token(cache, secrets, Some("sub"), Some(TOKEN), local).is_some()
    }

    #[test]
    fn a_banned_parent_shuts_out_its_subusers_until_unbanned() {
        let (cache, secrets) = (AccountCache::default(), secrets());
        reseller_and_subuser(&cache, &secrets, false, 1);
        assert!(sub_authenticates(&cache, &secrets));
        // The parent's ban arrives as a newer snapshot of the parent alone.
        let banned = AccountState { banned: true, revision: 2, ..(*cache.by_uid(3).unwrap()).clone() };
        cache.apply(snapshot(banned));
        assert!(!sub_authenticates(&cache, &secrets), "ERR 100 while the parent is banned");
        assert!(!active(&cache, &cache.by_uid(4).unwrap()), "every door asks the same rule");
        let unbanned = AccountState { banned: false, revision: 3, ..(*cache.by_uid(3).unwrap()).clone() };
        cache.apply(snapshot(unbanned));
        assert!(sub_authenticates(&cache, &secrets), "the unban applies at once");
    }

    #[test]
    fn only_subusers_answer_for_their_parent() {
        let (cache, secrets) = (AccountCache::default(), secrets());
        reseller_and_subuser(&cache, &secrets, true, 1);
        // parentset may give a user a parent; playSMS bills and bans through
        // parents of subusers only.
        let user = AccountState { uid: 5, parent_uid: Some(3), ..crate::test_fixtures::account() };
        assert!(active(&cache, &user));
        let orphan =
            AccountState { uid: 6, role: Role::Subuser, parent_uid: Some(99), ..crate::test_fixtures::account() };
        assert!(active(&cache, &orphan), "an unknown parent is not a banned one");
        let banned_itself = AccountState { banned: true, ..crate::test_fixtures::account() };
        assert!(!active(&cache, &banned_itself));
    }
}
