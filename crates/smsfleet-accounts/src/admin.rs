//! playSMS's admin ops that change accounts: accountadd, accountremove,
//! parentset, accountpref, accountconf, loginkeyset (and ws_login, which
//! consumes the key), and the stoplist op. Each validates, writes Postgres,
//! then publishes the account's new state so every ingress replica sees it.
//! Refusals say what went wrong ([`AccountError`]); the ingress turns them
//! into playSMS's codes and `info` texts.

use smsfleet_bus::Bus;
use smsfleet_contract::{AccountReply, ConfigurationChanges, NewAccountCommand, PreferenceChanges};
use smsfleet_domain::account::{self, AccountError, Role};
use smsfleet_domain::{Msisdn, ipallow};
use smsfleet_store::PgPool;
use smsfleet_store::accounts::{self as store, AccountRow, ConfigurationUpdate, NewAccount, PreferenceUpdate};
use time::{Duration, OffsetDateTime};

use crate::state::{publish, to_state};
use smsfleet_secrets::{Secrets, generate_token, hash_password};

/// A login key is for a link opened at once; an unused one expires.
pub const LOGIN_KEY_TTL: Duration = Duration::hours(1);

/// The bootstrap admin: playSMS's uid 1, which cannot be banned or removed.
const FIRST_ADMIN_UID: i64 = 1;

/// A new account's row with its secrets in the only forms ever stored: the
/// token as a keyed lookup hash and sealed under the server key, the
/// password as one argon2 hash for both APIs. Every way of creating an
/// account goes through here.
pub(crate) fn with_secrets(
    profile: NewAccount,
    secrets: &Secrets,
    token: Option<&str>,
    password_hash: Option<String>,
) -> NewAccount {
    NewAccount {
        token_lookup: token.map(|t| secrets.token_lookup(t)),
        token_sealed: token.map(|t| secrets.seal(t)),
        bulk_password_hash: password_hash.clone(),
        password_hash,
        ..profile
    }
}

/// Hashes an SMPP bind password after checking SMPP 3.4's limit; `None`
/// for no password given.
pub(crate) async fn smpp_password_hash(password: Option<&str>) -> Result<Option<String>, AccountError> {
    let Some(p) = password else { return Ok(None) };
    if !account::smpp_password_acceptable(p) {
        return Err(AccountError::InvalidSmppPassword);
    }
    let p = p.to_owned();
    match tokio::task::spawn_blocking(move || hash_password(&p)).await {
        Ok(Ok(h)) => Ok(Some(h)),
        _ => Err(AccountError::StorageFailure),
    }
}

fn refused(e: AccountError) -> AccountReply {
    AccountReply::Refused(e)
}

async fn live_account(pool: &PgPool, username: &str) -> Result<Option<AccountRow>, smsfleet_store::StoreError> {
    match account::normalize_username(username) {
        Some(name) => store::by_username(pool, &name).await,
        None => Ok(None),
    }
}

/// Publishes the changed row and answers with it.
async fn changed(bus: &Bus, row: &AccountRow, info: String, token: Option<String>) -> AccountReply {
    if let Err(e) = publish(bus, row).await {
        // Stored; replicas catch up at the accounts role's next republish.
        tracing::error!(error = %e, uid = row.uid, "account state not published");
    }
    AccountReply::Done { info, account: Some(Box::new(to_state(row))), token }
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// `op=accountadd`: 603 when a required field is missing, 604 with an
/// `info` when validation fails.
pub async fn add(pool: &PgPool, bus: &Bus, secrets: &Secrets, cmd: &NewAccountCommand) -> AccountReply {
    let required = [&cmd.status, &cmd.username, &cmd.password, &cmd.name, &cmd.email];
    if required.iter().any(|f| f.trim().is_empty()) {
        return refused(AccountError::MissingField);
    }
    // playSMS checks the password before anything else.
    if !account::new_password_acceptable(&cmd.password) {
        return refused(AccountError::PasswordTooShort);
    }
    let raw_username = cmd.username.trim();
    let Some(username) = account::normalize_username(raw_username) else {
        return refused(AccountError::InvalidUsername { username: raw_username.to_owned() });
    };
    let email = cmd.email.trim();
    if !account::email_valid(email) {
        return refused(AccountError::InvalidEmail { email: email.to_owned() });
    }
    let checks = async {
        if store::by_username(pool, &username).await?.is_some() {
            return Ok(Some(AccountError::UsernameTaken { username: username.clone() }));
        }
        if store::email_taken(pool, email, None).await? {
            return Ok(Some(AccountError::EmailTaken { email: email.to_owned() }));
        }
        let mobile = cmd.mobile.trim();
        if !mobile.is_empty() && store::mobile_taken(pool, mobile, None).await? {
            return Ok(Some(AccountError::MobileTaken { mobile: mobile.to_owned() }));
        }
        Ok::<_, smsfleet_store::StoreError>(None)
    };
    match checks.await {
        Ok(Some(e)) => return refused(e),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "accountadd checks failed");
            return refused(AccountError::StorageFailure);
        }
    }
    let role = Role::from_code_lenient(&cmd.status);
    // A subuser keeps its parent only when the parent is an admin or a user;
    // otherwise it hangs off the first admin (playSMS's default_parent).
    let parent_uid = if role == Role::Subuser {
        let parent = match live_account(pool, &cmd.parent).await {
            Ok(p) => p.filter(|p| p.role == 2 || p.role == 3),
            Err(e) => {
                tracing::error!(error = %e, "parent lookup failed");
                None
            }
        };
        Some(parent.map(|p| p.uid).unwrap_or(FIRST_ADMIN_UID))
    } else {
        None
    };
    let webservices_ip = non_empty(&cmd.webservices_ip).unwrap_or_else(|| "127.0.0.1".to_owned());
    if !ipallow::is_valid_list(&webservices_ip) {
        return refused(AccountError::InvalidIpList { list: webservices_ip });
    }
    let token = match non_empty(&cmd.token) {
        Some(t) if t.eq_ignore_ascii_case("auto") => Some(generate_token()),
        Some(t) if account::token_shape_ok(&t) => Some(t),
        Some(_) => return refused(AccountError::InvalidToken),
        None => None,
    };
    let smpp_password_hash = match smpp_password_hash(non_empty(&cmd.smpp_password).as_deref()).await {
        Ok(h) => h,
        Err(e) => return refused(e),
    };
    let password = cmd.password.trim().to_owned();
    let password_hash = match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(Ok(h)) => h,
        _ => return refused(AccountError::StorageFailure),
    };
    let footer = match &cmd.footer {
        Some(f) if !f.trim().is_empty() => f.trim().to_owned(),
        _ => account::default_footer(&username),
    };
    let profile = NewAccount {
        username: username.clone(),
        email: email.to_owned(),
        name: cmd.name.trim().to_owned(),
        mobile: cmd.mobile.trim().to_owned(),
        role: role.code(),
        parent_uid,
        webservices_enabled: cmd.webservices_enabled,
        webservices_ip,
        timezone: if cmd.timezone.trim().is_empty() { "+0000".to_owned() } else { cmd.timezone.trim().to_owned() },
        footer,
        smpp_password_hash,
        ..NewAccount::default()
    };
    let new = with_secrets(profile, secrets, token.as_deref(), Some(password_hash));
    match store::create(pool, &new).await {
        // We send no email; this is playSMS's text on a server without mail.
        Ok(row) => {
            changed(bus, &row, format!("Account has been added but failed to send email (username: {username})"), token)
                .await
        }
        Err(smsfleet_store::StoreError::Conflict(_)) => refused(AccountError::UsernameTaken { username }),
        Err(e) => {
            tracing::error!(error = %e, "accountadd failed");
            refused(AccountError::StorageFailure)
        }
    }
}

/// `op=accountremove`: 605 unknown; 606 for the first admin or an account
/// that still has subusers.
pub async fn remove(pool: &PgPool, bus: &Bus, username: &str) -> AccountReply {
    let row = match live_account(pool, username).await {
        Ok(Some(row)) => row,
        Ok(None) => return refused(AccountError::UnknownAccount),
        Err(e) => {
            tracing::error!(error = %e, "account lookup failed");
            return refused(AccountError::StorageFailure);
        }
    };
    if row.uid == FIRST_ADMIN_UID {
        return refused(AccountError::Immune { username: row.username });
    }
    match store::live_subusers(pool, row.uid).await {
        Ok(0) => {}
        Ok(_) => {
            return refused(AccountError::HasSubusers);
        }
        Err(e) => {
            tracing::error!(error = %e, "subuser count failed");
            return refused(AccountError::StorageFailure);
        }
    }
    match store::remove(pool, row.uid).await {
        Ok(Some(removed)) => {
            changed(bus, &removed, format!("Account has been removed (username: {})", row.username), None).await
        }
        Ok(None) => refused(AccountError::UnknownAccount),
        Err(e) => {
            tracing::error!(error = %e, "accountremove failed");
            refused(AccountError::StorageFailure)
        }
    }
}

/// `op=parentset`: 607 when either account is unknown, 608 when the parent
/// may not be one or the change fails.
pub async fn set_parent(pool: &PgPool, bus: &Bus, username: &str, parent: &str) -> AccountReply {
    let (child, parent) = match (live_account(pool, username).await, live_account(pool, parent).await) {
        (Ok(Some(c)), Ok(Some(p))) => (c, p),
        (Ok(_), Ok(_)) => return refused(AccountError::UnknownAccount),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "account lookup failed");
            return refused(AccountError::StorageFailure);
        }
    };
    // playSMS sets only a user (status 3) as parent: an admin or a subuser
    // as parent is ERR 608, as is an account its own parent.
    let parent_may_adopt = Role::from_code(parent.role).is_some_and(Role::may_be_set_as_parent);
    if child.uid == parent.uid || !parent_may_adopt {
        return refused(AccountError::NotAllowed);
    }
    match store::set_parent(pool, child.uid, parent.uid).await {
        Ok(Some(row)) => changed(bus, &row, String::new(), None).await,
        Ok(None) => refused(AccountError::UnknownAccount),
        Err(e) => {
            tracing::error!(error = %e, "parentset failed");
            refused(AccountError::StorageFailure)
        }
    }
}

fn profile_entry(map: &mut serde_json::Map<String, serde_json::Value>, key: &str, value: &Option<String>) {
    if let Some(v) = non_empty(value) {
        map.insert(key.to_owned(), serde_json::Value::String(v));
    }
}

/// `op=accountpref`: 615 for an unknown user or nothing to set, 616 with an
/// `info` when a value is refused.
pub async fn preferences(pool: &PgPool, bus: &Bus, username: &str, c: &PreferenceChanges) -> AccountReply {
    let row = match live_account(pool, username).await {
        Ok(Some(row)) => row,
        Ok(None) => return refused(AccountError::UnknownAccount),
        Err(e) => {
            tracing::error!(error = %e, "account lookup failed");
            return refused(AccountError::StorageFailure);
        }
    };
    let mut update = PreferenceUpdate {
        name: non_empty(&c.name),
        email: non_empty(&c.email),
        mobile: non_empty(&c.mobile),
        ..Default::default()
    };
    profile_entry(&mut update.profile, "address", &c.address);
    profile_entry(&mut update.profile, "city", &c.city);
    profile_entry(&mut update.profile, "state", &c.state);
    profile_entry(&mut update.profile, "country", &c.country);
    profile_entry(&mut update.profile, "zipcode", &c.zipcode);
    let password = non_empty(&c.password);
    let smpp_password = non_empty(&c.smpp_password);
    let nothing = update.name.is_none() && update.email.is_none() && update.mobile.is_none();
    if nothing && password.is_none() && smpp_password.is_none() && update.profile.is_empty() {
        return refused(AccountError::NothingToChange);
    }
    if let Some(email) = &update.email {
        if !account::email_valid(email) {
            return refused(AccountError::InvalidEmail { email: email.clone() });
        }
        match store::email_taken(pool, email, Some(row.uid)).await {
            Ok(false) => {}
            Ok(true) => return refused(AccountError::EmailTaken { email: email.clone() }),
            Err(_) => return refused(AccountError::StorageFailure),
        }
    }
    if let Some(mobile) = &update.mobile {
        match store::mobile_taken(pool, mobile, Some(row.uid)).await {
            Ok(false) => {}
            Ok(true) => return refused(AccountError::MobileTaken { mobile: mobile.clone() }),
            Err(_) => return refused(AccountError::StorageFailure),
        }
    }
    if let Some(p) = password.clone() {
        if !account::new_password_acceptable(&p) {
            return refused(AccountError::PasswordTooShort);
        }
        match tokio::task::spawn_blocking(move || hash_password(&p)).await {
            Ok(Ok(h)) => update.password_hash = Some(h),
            _ => return refused(AccountError::StorageFailure),
        }
    }
    match smpp_password_hash(smpp_password.as_deref()).await {
        Ok(h) => update.smpp_password_hash = h,
        Err(e) => return refused(e),
    }
    let info = if password.is_some() {
        "Preferences have been saved and password updated"
    } else {
        "Preferences have been saved"
    };
    match store::update_preferences(pool, row.uid, &update).await {
        Ok(Some(row)) => changed(bus, &row, info.to_owned(), None).await,
        Ok(None) => refused(AccountError::UnknownAccount),
        Err(e) => {
            tracing::error!(error = %e, "accountpref failed");
            refused(AccountError::StorageFailure)
        }
    }
}

/// `op=accountconf`: 617 for an unknown user or nothing to set (a value
/// counts when it is non-empty, so `"0"` does), 618 with an `info` when a
/// value is refused. `data_sender` must be a sender ID an operator approved
/// for the account (`smsfleet sender add`), as playSMS's sender ID feature
/// requires.
pub async fn configuration(pool: &PgPool, bus: &Bus, username: &str, c: &ConfigurationChanges) -> AccountReply {
    let row = match live_account(pool, username).await {
        Ok(Some(row)) => row,
        Ok(None) => return refused(AccountError::UnknownAccount),
        Err(e) => {
            tracing::error!(error = %e, "account lookup failed");
            return refused(AccountError::StorageFailure);
        }
    };
    let set = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let mut update = ConfigurationUpdate {
        footer: set(&c.footer).map(|f| f.trim().to_owned()),
        timezone: set(&c.timezone).map(|t| t.trim().to_owned()),
        sender: set(&c.sender).map(|s| s.trim().to_owned()),
        ..Default::default()
    };
    for (key, value) in [
        ("language", &c.language),
        ("fwd_to_inbox", &c.fwd_to_inbox),
        ("fwd_to_email", &c.fwd_to_email),
        ("fwd_to_mobile", &c.fwd_to_mobile),
        ("local_length", &c.local_length),
        ("replace_zero", &c.replace_zero),
    ] {
        if let Some(v) = set(value) {
            update.profile.insert(key.to_owned(), serde_json::Value::String(v));
        }
    }
    if update.footer.is_none() && update.timezone.is_none() && update.sender.is_none() && update.profile.is_empty() {
        return refused(AccountError::NothingToChange);
    }
    if let Some(tz) = &update.timezone
        && smsfleet_domain::schedule::parse_offset(tz).is_none()
    {
        return refused(AccountError::InvalidTimezone);
    }
    if update.footer.as_deref().is_some_and(|f| f.chars().count() > 30) {
        return refused(AccountError::FooterTooLong);
    }
    if let Some(len) = update.profile.get("local_length").and_then(|v| v.as_str())
        && len.parse::<u8>().is_err()
    {
        return refused(AccountError::InvalidLocalLength);
    }
    if let Some(sender) = &update.sender {
        let approved = match store::approved_senders(pool, row.uid).await {
            Ok(list) => list,
            Err(_) => return refused(AccountError::StorageFailure),
        };
        if !approved.iter().any(|a| a == sender) || !account::sender_id_shape_ok(sender) {
            return refused(AccountError::SenderNotApproved);
        }
    }
    match store::update_configuration(pool, row.uid, &update).await {
        Ok(Some(row)) => changed(bus, &row, "User configuration has been saved".to_owned(), None).await,
        Ok(None) => refused(AccountError::UnknownAccount),
        Err(e) => {
            tracing::error!(error = %e, "accountconf failed");
            refused(AccountError::StorageFailure)
        }
    }
}

fn login_key_lookup(secrets: &Secrets, key: &str) -> String {
    // A separate domain from tokens, so a login key can never be a token.
    secrets.token_lookup(&format!("login_key:{key}"))
}

/// `op=loginkeyset`: 625 missing (checked by the ingress), 626 for an
/// unknown user or a failed write (playSMS dies with a database error for
/// an unknown user). The key is stored only as a keyed hash.
pub async fn set_login_key(pool: &PgPool, secrets: &Secrets, username: &str) -> AccountReply {
    let row = match live_account(pool, username).await {
        Ok(Some(row)) => row,
        Ok(None) => return refused(AccountError::UnknownAccount),
        Err(e) => {
            tracing::error!(error = %e, "account lookup failed");
            return refused(AccountError::StorageFailure);
        }
    };
    let key = generate_token();
    let expires = OffsetDateTime::now_utc() + LOGIN_KEY_TTL;
    match store::set_login_key(pool, row.uid, &login_key_lookup(secrets, &key), expires).await {
        Ok(true) => AccountReply::LoginKey { login_key: key },
        Ok(false) => refused(AccountError::UnknownAccount),
        Err(e) => {
            tracing::error!(error = %e, "loginkeyset failed");
            refused(AccountError::StorageFailure)
        }
    }
}

/// `op=ws_login`: the stored key is removed first (single use), then
/// compared in constant time. The caller answers the same redirect either
/// way; the outcome is only logged and counted.
pub async fn use_login_key(pool: &PgPool, secrets: &Secrets, username: &str, key: &str) -> AccountReply {
    let Ok(Some(row)) = live_account(pool, username).await else { return refused(AccountError::LoginRefused) };
    let stored = match store::take_login_key(pool, row.uid).await {
        Ok(Some(stored)) => stored,
        _ => return refused(AccountError::LoginRefused),
    };
    let (lookup, expires) = stored;
    let fresh = OffsetDateTime::now_utc() < expires;
    let usable = !row.banned && account::token_shape_ok(key);
    if fresh && usable && secrets.token_matches(&format!("login_key:{key}"), &lookup) {
        AccountReply::Done { info: String::new(), account: None, token: None }
    } else {
        refused(AccountError::LoginRefused)
    }
}

/// `op=stoplist`: adds to the global stop list; ERR 627 when the number is
/// already there. Numbers are compared as digits, so `+628…` after `628…`
/// is a duplicate too.
pub async fn add_stop(pool: &PgPool, bus: &Bus, number: &str) -> AccountReply {
    let Some(n) = Msisdn::clean(number) else { return refused(AccountError::InvalidNumber) };
    let digits = n.digits().to_owned();
    match smsfleet_store::stoplist::add_stop(pool, &digits).await {
        Ok(true) => {
            if let Err(e) = crate::state::publish_stop(bus, None, &digits, true).await {
                tracing::error!(error = %e, "stop-list entry not published");
            }
            AccountReply::Stopped { number: digits }
        }
        Ok(false) => refused(AccountError::AlreadyListed),
        Err(e) => {
            tracing::error!(error = %e, "stoplist insert failed");
            refused(AccountError::StorageFailure)
        }
    }
}
