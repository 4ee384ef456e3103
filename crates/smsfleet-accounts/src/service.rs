//! The accounts service: publishes every account's state at start-up and
//! applies account commands (`set_token` today; the admin ops later),
//! always writing Postgres first and then the state snapshot.

use std::time::Duration;

use smsfleet_bus::{Bus, serve_requests};
use smsfleet_contract::{AccountCommand, AccountReply, services};
use smsfleet_domain::account::{AccountError, Role};
use smsfleet_runtime::RoleContext;
use smsfleet_store::PgPool;
use smsfleet_store::accounts::{AccountRow, AccountSettings, NewAccount, TokenUpdate};

use crate::admin::{self, with_secrets};
use crate::error::AccountsError;
use crate::state::{publish, publish_all, publish_stop, to_state};
use smsfleet_secrets::{Secrets, generate_token, hash_password};

/// Writes a stop-list or do-not-disturb entry to Postgres, then publishes it.
pub async fn set_stop(
    pool: &PgPool,
    bus: &Bus,
    uid: Option<i64>,
    number: &str,
    listed: bool,
) -> Result<String, AccountsError> {
    let n = smsfleet_domain::Msisdn::strict(number)
        .ok_or_else(|| AccountsError::Invalid(format!("number {number:?} (optional +, 5 to 15 digits)")))?;
    let digits = n.digits().to_owned();
    match uid {
        None => smsfleet_store::stoplist::set_stopped(pool, &digits, listed).await?,
        Some(uid) => smsfleet_store::stoplist::set_dnd(pool, uid, &digits, listed).await?,
    }
    publish_stop(bus, uid, &digits, listed).await?;
    Ok(digits)
}

/// What an operator gives to create an account from the CLI.
#[derive(Debug, Clone, Default)]
pub struct NewAccountSpec {
    pub username: String,
    pub password: Option<String>,
    pub role: Role,
    pub email: String,
    pub name: String,
    /// Webservices allow-list; the account gets webservices on.
    pub webservices_ip: String,
    /// Use this token instead of generating one.
    pub token: Option<String>,
    pub timezone: String,
    pub footer: String,
    /// Bulk API templates (`{#var#}` placeholders).
    pub templates: Vec<String>,
    /// Bulk API delivery-report callback URL.
    pub dlr_callback_url: Option<String>,
}

/// Creates an account with webservices enabled and a token (an extension:
/// playSMS can only do this in its web UI). Returns the row and the token.
pub async fn create_account(
    pool: &PgPool,
    bus: &Bus,
    secrets: &Secrets,
    spec: NewAccountSpec,
) -> Result<(AccountRow, String), AccountsError> {
    let username = smsfleet_domain::account::normalize_username(&spec.username)
        .ok_or_else(|| AccountsError::Invalid(format!("username {:?}", spec.username)))?;
    let token = spec.token.clone().unwrap_or_else(generate_token);
    if !smsfleet_domain::account::token_shape_ok(&token) {
        return Err(AccountsError::Invalid("token must be alphanumeric".to_owned()));
    }
    if !smsfleet_domain::ipallow::is_valid_list(&spec.webservices_ip) {
        return Err(AccountsError::Invalid(format!("IP allow-list {:?}", spec.webservices_ip)));
    }
    let password_hash = match &spec.password {
        Some(p) => Some(hash_password(p)?),
        None => None,
    };
    let profile = NewAccount {
        username: username.clone(),
        email: spec.email,
        name: if spec.name.is_empty() { username.clone() } else { spec.name },
        role: spec.role.code(),
        webservices_enabled: true,
        webservices_ip: spec.webservices_ip,
        timezone: if spec.timezone.is_empty() { "+0000".to_owned() } else { spec.timezone },
        footer: spec.footer,
        templates: spec.templates,
        dlr_callback_url: spec.dlr_callback_url,
        ..NewAccount::default()
    };
    let new = with_secrets(profile, secrets, Some(&token), password_hash);
    let row = smsfleet_store::accounts::create(pool, &new).await?;
    publish(bus, &row).await?;
    Ok((row, token))
}

async fn handle(pool: PgPool, bus: Bus, secrets: Secrets, cmd: AccountCommand) -> AccountReply {
    match cmd {
        AccountCommand::SetToken { uid } => {
            let token = generate_token();
            let stored =
                smsfleet_store::accounts::set_token(&pool, uid, &secrets.token_lookup(&token), &secrets.seal(&token))
                    .await;
            match stored {
                Ok(row) => {
                    if let Err(e) = publish(&bus, &row).await {
                        // The token is stored; replicas will see it at the next republish.
                        tracing::error!(error = %e, uid, "account state not published");
                    }
                    AccountReply::Token { token, account: Box::new(to_state(&row)) }
                }
                Err(e) => {
                    tracing::error!(error = %e, uid, "set_token failed");
                    AccountReply::Refused(AccountError::StorageFailure)
                }
            }
        }
        AccountCommand::SetBanned { username, banned } => set_banned(&pool, &bus, &username, banned).await,
        AccountCommand::Add(cmd) => admin::add(&pool, &bus, &secrets, &cmd).await,
        AccountCommand::Remove { username } => admin::remove(&pool, &bus, &username).await,
        AccountCommand::SetParent { username, parent } => admin::set_parent(&pool, &bus, &username, &parent).await,
        AccountCommand::Preferences { username, changes } => admin::preferences(&pool, &bus, &username, &changes).await,
        AccountCommand::Configuration { username, changes } => {
            admin::configuration(&pool, &bus, &username, &changes).await
        }
        AccountCommand::SetLoginKey { username } => admin::set_login_key(&pool, &secrets, &username).await,
        AccountCommand::UseLoginKey { username, login_key } => {
            admin::use_login_key(&pool, &secrets, &username, &login_key).await
        }
        AccountCommand::AddStop { number } => admin::add_stop(&pool, &bus, &number).await,
    }
}

/// The first account (uid 1, the bootstrap admin) cannot be banned, and an
/// account that is not banned cannot be unbanned. Banning twice is OK.
async fn set_banned(pool: &PgPool, bus: &Bus, username: &str, banned: bool) -> AccountReply {
    let unknown = AccountReply::Refused(AccountError::UnknownAccount);
    let failed = AccountReply::Refused(AccountError::StorageFailure);
    let Some(name) = smsfleet_domain::account::normalize_username(username) else {
        return unknown;
    };
    let row = match smsfleet_store::accounts::by_username(pool, &name).await {
        Ok(Some(row)) => row,
        Ok(None) => return unknown,
        Err(e) => {
            tracing::error!(error = %e, "account lookup failed");
            return failed;
        }
    };
    if (banned && row.uid == 1) || (!banned && !row.banned) {
        return AccountReply::Refused(AccountError::NotAllowed);
    }
    match smsfleet_store::accounts::set_banned(pool, row.uid, banned).await {
        Ok(Some(row)) => {
            if let Err(e) = publish(bus, &row).await {
                tracing::error!(error = %e, uid = row.uid, "account state not published");
            }
            AccountReply::Account(Box::new(to_state(&row)))
        }
        Ok(None) => unknown,
        Err(e) => {
            tracing::error!(error = %e, "ban update failed");
            failed
        }
    }
}

/// The accounts role has nothing to tune yet; the struct keeps its start
/// the same shape as every other role's.
#[derive(Debug, Clone, Default)]
pub struct AccountsConfig {}

/// Runs the accounts service until `shutdown`.
pub async fn run(ctx: RoleContext, _config: AccountsConfig) -> Result<(), AccountsError> {
    let (bus, pool, secrets) = (ctx.bus()?, ctx.pool()?, ctx.secrets()?);
    let RoleContext { ready, shutdown, .. } = ctx;
    let n = publish_all(&bus, &pool).await?;
    tracing::info!(accounts = n, "account states published");
    ready.set(true);
    let (p, b, s) = (pool.clone(), bus.clone(), secrets.clone());
    serve_requests(bus.clone(), services::ACCOUNTS, shutdown.clone(), move |cmd| {
        handle(p.clone(), b.clone(), s.clone(), cmd)
    })
    .await?;
    let _ = tokio::time::timeout(Duration::from_secs(2), bus.flush()).await;
    Ok(())
}

/// Approves (or withdraws) a sender ID for an account, so `accountconf`
/// may set it as the account's sender.
pub async fn set_sender_approved(
    pool: &PgPool,
    username: &str,
    sender: &str,
    approved: bool,
) -> Result<Vec<String>, AccountsError> {
    if approved && !smsfleet_domain::account::sender_id_shape_ok(sender) {
        return Err(AccountsError::Invalid(format!(
            "sender ID {sender:?} (up to 11 letters/digits, or a number of up to 16 digits)"
        )));
    }
    let row = find_account(pool, username).await?;
    Ok(smsfleet_store::accounts::set_sender_approved(pool, row.uid, sender, approved).await?)
}

/// The live account an operator names (case-insensitive).
pub async fn find_account(pool: &PgPool, username: &str) -> Result<AccountRow, AccountsError> {
    lookup_account(pool, username).await?.ok_or_else(|| AccountsError::Invalid(format!("no account {username:?}")))
}

/// Like [`find_account`], `None` when there is no such account.
pub async fn lookup_account(pool: &PgPool, username: &str) -> Result<Option<AccountRow>, AccountsError> {
    let name = smsfleet_domain::account::normalize_username(username)
        .ok_or_else(|| AccountsError::Invalid(format!("username {username:?}")))?;
    Ok(smsfleet_store::accounts::by_username(pool, &name).await?)
}

/// What an operator may change on an existing account from the CLI; `None`
/// keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct AccountChanges {
    /// A new token; `Some("")` removes it (get_token then answers ERR 104).
    pub token: Option<String>,
    pub webservices_enabled: Option<bool>,
    /// Webservices IP allow-list: single IPs, CIDR ranges or wildcards, comma-separated.
    pub webservices_ip: Option<String>,
    pub password: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub mobile: Option<String>,
    /// The SMPP bind password (at most 8 characters).
    pub smpp_password: Option<String>,
    /// Binds at once across every ingress replica.
    pub smpp_max_binds: Option<u32>,
    /// submit_sm per second over all binds; 0 = no limit.
    pub smpp_throughput: Option<u32>,
}

/// Changes settings playSMS keeps behind its web UI (token, webservices flag
/// and IP list, password, contact fields): writes Postgres, then publishes
/// the new state so every ingress replica uses it within milliseconds.
pub async fn update_account(
    pool: &PgPool,
    bus: &Bus,
    secrets: &Secrets,
    username: &str,
    changes: AccountChanges,
) -> Result<AccountRow, AccountsError> {
    let name = smsfleet_domain::account::normalize_username(username)
        .ok_or_else(|| AccountsError::Invalid(format!("username {username:?}")))?;
    let row = smsfleet_store::accounts::by_username(pool, &name)
        .await?
        .ok_or_else(|| AccountsError::Invalid(format!("no account {name:?}")))?;
    let token = match changes.token.as_deref() {
        None => None,
        Some("") => Some(TokenUpdate::Clear),
        Some(t) if smsfleet_domain::account::token_shape_ok(t) => {
            Some(TokenUpdate::Set { lookup: secrets.token_lookup(t), sealed: secrets.seal(t) })
        }
        Some(_) => return Err(AccountsError::Invalid("token must be alphanumeric".to_owned())),
    };
    if let Some(ip) = &changes.webservices_ip
        && !smsfleet_domain::ipallow::is_valid_list(ip)
    {
        return Err(AccountsError::Invalid(format!("IP allow-list {ip:?}")));
    }
    let password_hash = match &changes.password {
        Some(p) => Some(hash_password(p)?),
        None => None,
    };
    let smpp_password_hash = crate::admin::smpp_password_hash(changes.smpp_password.as_deref())
        .await
        .map_err(|e| AccountsError::Invalid(e.to_string()))?;
    let count = |n: Option<u32>, what: &str| {
        n.map(|n| i32::try_from(n).map_err(|_| AccountsError::Invalid(format!("{what} {n} is too large")))).transpose()
    };
    let settings = AccountSettings {
        smpp_password_hash,
        smpp_max_binds: count(changes.smpp_max_binds, "max binds")?,
        smpp_throughput: count(changes.smpp_throughput, "SMPP throughput")?,
        token,
        webservices_enabled: changes.webservices_enabled,
        webservices_ip: changes.webservices_ip,
        password_hash,
        email: changes.email,
        name: changes.name,
        mobile: changes.mobile,
    };
    let row = smsfleet_store::accounts::update_settings(pool, row.uid, &settings).await?;
    publish(bus, &row).await?;
    Ok(row)
}
