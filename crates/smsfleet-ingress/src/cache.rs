//! The in-memory view of accounts, balances and rates that the send path
//! authenticates and prices from. It is fed by the bus state feed (every
//! replica sees a change within milliseconds) and never reads Postgres.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use rust_decimal::Decimal;
use smsfleet_bus::StateEvent;
use smsfleet_contract::{AccountState, GroupState};
use smsfleet_domain::{Credit, RateTable};

#[derive(Default)]
struct Inner {
    by_uid: HashMap<i64, Arc<AccountState>>,
    by_username: HashMap<String, i64>,
    by_email: HashMap<String, i64>,
    by_token: HashMap<String, i64>,
    balances: HashMap<i64, (i64, Credit)>,
    rates: Arc<RateTable>,
    rates_revision: i64,
    /// Global stop list, digits only.
    stop: HashSet<String>,
    /// Per-account do-not-disturb lists, digits only.
    dnd: HashSet<(i64, String)>,
    /// Client IPs blocked after too many failed logins, until Unix ms.
    blocked: HashMap<IpAddr, i64>,
    /// Phonebook groups per account by gpid, for `#CODE` in `pv`. Removed
    /// groups stay as tombstones so a late, older snapshot cannot revive them.
    groups: HashMap<i64, BTreeMap<i64, Arc<GroupState>>>,
}

#[derive(Clone, Default)]
pub struct AccountCache {
    inner: Arc<RwLock<Inner>>,
}

impl AccountCache {
    pub fn apply(&self, event: StateEvent) {
        let Ok(mut g) = self.inner.write() else { return };
        match event {
            StateEvent::Account(a) => g.put_account(*a),
            StateEvent::Balance(b) => {
                let Ok(balance) = Decimal::from_str(&b.balance) else { return };
                let newer = g.balances.get(&b.uid).is_none_or(|(rev, _)| b.revision >= *rev);
                if newer {
                    g.balances.insert(b.uid, (b.revision, Credit::new(balance)));
                }
            }
            StateEvent::Stop(e) => match (e.uid, e.listed) {
                (None, true) => {
                    g.stop.insert(e.number);
                }
                (None, false) => {
                    g.stop.remove(&e.number);
                }
                (Some(uid), true) => {
                    g.dnd.insert((uid, e.number));
                }
                (Some(uid), false) => {
                    g.dnd.remove(&(uid, e.number));
                }
            },
            StateEvent::Block(b) => {
                let Ok(ip) = b.ip.parse::<IpAddr>() else { return };
                if b.until_ms > 0 {
                    g.blocked.insert(ip, b.until_ms);
                } else {
                    g.blocked.remove(&ip);
                }
            }
            StateEvent::Group(group) => {
                let of_user = g.groups.entry(group.uid).or_default();
                if of_user.get(&group.gpid).is_none_or(|old| group.revision >= old.revision) {
                    of_user.insert(group.gpid, Arc::new(group));
                }
            }
            StateEvent::Rates(r) => {
                if r.revision < g.rates_revision && g.rates_revision != 0 {
                    return;
                }
                let default_rate = Credit::from_str(&r.default_rate).unwrap_or_default();
                let prefixes = r
                    .prefixes
                    .iter()
                    .filter_map(|p| Some((p.prefix.clone(), Credit::from_str(&p.rate).ok()?)))
                    .collect();
                g.rates = Arc::new(RateTable { default_rate, prefixes });
                g.rates_revision = r.revision;
            }
        }
    }

    pub fn by_uid(&self, uid: i64) -> Option<Arc<AccountState>> {
        self.inner.read().ok()?.by_uid.get(&uid).cloned()
    }

    pub fn by_username(&self, username: &str) -> Option<Arc<AccountState>> {
        let g = self.inner.read().ok()?;
        g.by_username.get(username).and_then(|uid| g.by_uid.get(uid)).cloned()
    }

    pub fn by_email(&self, email: &str) -> Option<Arc<AccountState>> {
        let g = self.inner.read().ok()?;
        g.by_email.get(&email.to_ascii_lowercase()).and_then(|uid| g.by_uid.get(uid)).cloned()
    }

    pub fn by_token_lookup(&self, lookup: &str) -> Option<Arc<AccountState>> {
        let g = self.inner.read().ok()?;
        g.by_token.get(lookup).and_then(|uid| g.by_uid.get(uid)).cloned()
    }

    pub fn balance(&self, uid: i64) -> Credit {
        self.inner.read().ok().and_then(|g| g.balances.get(&uid).map(|b| b.1)).unwrap_or_default()
    }

    /// Lowers the local view right after an accepted send, so a burst from
    /// one account cannot overspend by much before the ledger's next balance
    /// arrives. The ledger stays the authority.
    pub fn spend(&self, uid: i64, amount: Credit) {
        if let Ok(mut g) = self.inner.write()
            && let Some(b) = g.balances.get_mut(&uid)
        {
            b.1 = b.1 - amount;
        }
    }

    /// Whether `digits` is on the global stop list.
    pub fn stopped(&self, digits: &str) -> bool {
        self.inner.read().is_ok_and(|g| g.stop.contains(digits))
    }

    /// Whether `digits` is on account `uid`'s do-not-disturb list.
    pub fn do_not_disturb(&self, uid: i64, digits: &str) -> bool {
        self.inner.read().is_ok_and(|g| g.dnd.contains(&(uid, digits.to_owned())))
    }

    /// Whether `ip` is blocked at `now_ms` (brute-force protection).
    pub fn blocked(&self, ip: IpAddr, now_ms: i64) -> bool {
        self.inner.read().is_ok_and(|g| g.blocked.get(&ip).is_some_and(|until| *until > now_ms))
    }

    /// Member numbers of `uid`'s group whose code or name is `name`, compared
    /// case-insensitively and exactly, as playSMS 1.4.7 does (`#FAM` does
    /// not find FAMILY). A code match wins over a name match; among equal
    /// names the oldest group wins.
    pub fn group_members(&self, uid: i64, name: &str) -> Option<Vec<String>> {
        let g = self.inner.read().ok()?;
        let live = || g.groups.get(&uid).into_iter().flat_map(|m| m.values()).filter(|s| !s.deleted);
        let wanted = name.to_lowercase();
        live()
            .find(|s| s.code.eq_ignore_ascii_case(name))
            .or_else(|| live().find(|s| s.name.to_lowercase() == wanted))
            .map(|s| s.members.clone())
    }

    pub fn rates(&self) -> Arc<RateTable> {
        self.inner.read().map(|g| g.rates.clone()).unwrap_or_default()
    }
}

impl Inner {
    fn put_account(&mut self, a: AccountState) {
        if let Some(old) = self.by_uid.get(&a.uid) {
            if old.revision > a.revision {
                return;
            }
            let old = old.clone();
            self.by_username.remove(&old.username);
            self.by_email.remove(&old.email.to_ascii_lowercase());
            if let Some(t) = &old.token_lookup {
                self.by_token.remove(t);
            }
        }
        if a.deleted {
            self.by_uid.remove(&a.uid);
            return;
        }
        self.by_username.insert(a.username.clone(), a.uid);
        if !a.email.is_empty() {
            self.by_email.insert(a.email.to_ascii_lowercase(), a.uid);
        }
        if let Some(t) = &a.token_lookup {
            self.by_token.insert(t.clone(), a.uid);
        }
        self.by_uid.insert(a.uid, Arc::new(a));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(gpid: i64, revision: i64, code: &str, name: &str, members: &[&str], deleted: bool) -> StateEvent {
        StateEvent::Group(GroupState {
            v: 1,
            uid: 2,
            gpid,
            revision,
            code: code.to_owned(),
            name: name.to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            deleted,
        })
    }

    #[test]
    fn groups_match_code_or_name_exactly_ignoring_case() {
        let cache = AccountCache::default();
        cache.apply(group(1, 1, "FRIENDS", "Friends", &["+628111000101", "08111000102"], false));
        cache.apply(group(2, 1, "FAMILY", "Family", &[], false));
        cache.apply(group(3, 1, "WORK", "Office Mates", &["628111000103"], false));
        let friends = Some(vec!["+628111000101".to_owned(), "08111000102".to_owned()]);
        assert_eq!(cache.group_members(2, "FRIENDS"), friends);
        assert_eq!(cache.group_members(2, "friends"), friends);
        assert_eq!(cache.group_members(2, "office mates"), Some(vec!["628111000103".to_owned()]));
        assert_eq!(cache.group_members(2, "FAMILY"), Some(vec![]));
        assert_eq!(cache.group_members(2, "FAM"), None);
        assert_eq!(cache.group_members(3, "FRIENDS"), None, "another account's group");
    }

    #[test]
    fn newer_snapshots_replace_older_and_removal_sticks() {
        let cache = AccountCache::default();
        cache.apply(group(1, 2, "FRIENDS", "Friends", &["1"], false));
        cache.apply(group(1, 1, "FRIENDS", "Friends", &["old"], false));
        assert_eq!(cache.group_members(2, "FRIENDS"), Some(vec!["1".to_owned()]));
        cache.apply(group(1, 3, "FRIENDS", "Friends", &["1", "2"], false));
        assert_eq!(cache.group_members(2, "FRIENDS").map(|m| m.len()), Some(2));
        cache.apply(group(1, 4, "FRIENDS", "Friends", &[], true));
        assert_eq!(cache.group_members(2, "FRIENDS"), None);
        cache.apply(group(1, 3, "FRIENDS", "Friends", &["1", "2"], false));
        assert_eq!(cache.group_members(2, "FRIENDS"), None, "an older snapshot after the removal");
    }

    #[test]
    fn a_code_match_wins_over_a_name_match() {
        let cache = AccountCache::default();
        cache.apply(group(1, 1, "A1", "TEAM", &["1"], false));
        cache.apply(group(2, 1, "TEAM", "Second", &["2"], false));
        assert_eq!(cache.group_members(2, "team"), Some(vec!["2".to_owned()]));
    }
}
