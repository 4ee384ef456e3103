//! The `accounts` table: account rows and every change to them (profile,
//! configuration, parent, removal, tokens, login keys, approved sender
//! IDs), owned by the accounts service. Every change bumps `revision`, so
//! the state snapshot the service publishes next supersedes the one before.

use sqlx::{AssertSqlSafe, PgPool};
use time::OffsetDateTime;

use crate::{Result, StoreError};

#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct AccountRow {
    pub uid: i64,
    pub username: String,
    pub email: String,
    pub name: String,
    pub mobile: String,
    pub role: i16,
    pub parent_uid: Option<i64>,
    pub banned: bool,
    pub deleted: bool,
    pub webservices_enabled: bool,
    pub webservices_ip: String,
    pub token_lookup: Option<String>,
    pub token_sealed: Option<String>,
    pub password_hash: Option<String>,
    pub bulk_password_hash: Option<String>,
    pub timezone: String,
    pub footer: String,
    pub sender: String,
    pub revision: i64,
    pub templates: Vec<String>,
    pub dlr_callback_url: Option<String>,
    pub smpp_password_hash: Option<String>,
    pub smpp_max_binds: i32,
    pub smpp_throughput: i32,
}

#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub username: String,
    pub email: String,
    pub name: String,
    pub mobile: String,
    pub role: i16,
    pub parent_uid: Option<i64>,
    pub webservices_enabled: bool,
    pub webservices_ip: String,
    pub token_lookup: Option<String>,
    pub token_sealed: Option<String>,
    pub password_hash: Option<String>,
    pub bulk_password_hash: Option<String>,
    pub timezone: String,
    pub footer: String,
    pub sender: String,
    pub templates: Vec<String>,
    pub dlr_callback_url: Option<String>,
    pub smpp_password_hash: Option<String>,
}

pub(crate) const COLUMNS: &str = "uid, username, email, name, mobile, role, parent_uid, banned, deleted, \
    webservices_enabled, webservices_ip, token_lookup, token_sealed, password_hash, bulk_password_hash, \
    timezone, footer, sender, revision, templates, dlr_callback_url, smpp_password_hash, smpp_max_binds, \
    smpp_throughput";

/// Creates an account and its zero balance in one transaction.
pub async fn create(pool: &PgPool, a: &NewAccount) -> Result<AccountRow> {
    let mut tx = pool.begin().await?;
    let row: AccountRow = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO accounts (username, email, name, mobile, role, parent_uid, webservices_enabled, webservices_ip, \
         token_lookup, token_sealed, password_hash, bulk_password_hash, timezone, footer, sender, templates, \
         dlr_callback_url, smpp_password_hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18) \
         RETURNING {COLUMNS}"
    )))
    .bind(&a.username)
    .bind(&a.email)
    .bind(&a.name)
    .bind(&a.mobile)
    .bind(a.role)
    .bind(a.parent_uid)
    .bind(a.webservices_enabled)
    .bind(&a.webservices_ip)
    .bind(&a.token_lookup)
    .bind(&a.token_sealed)
    .bind(&a.password_hash)
    .bind(&a.bulk_password_hash)
    .bind(&a.timezone)
    .bind(&a.footer)
    .bind(&a.sender)
    .bind(&a.templates)
    .bind(&a.dlr_callback_url)
    .bind(&a.smpp_password_hash)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(d.message().to_owned()),
        _ => StoreError::Db(e),
    })?;
    sqlx::query("INSERT INTO balances (uid, balance, revision) VALUES ($1, 0, 0)")
        .bind(row.uid)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn by_uid(pool: &PgPool, uid: i64) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!("SELECT {COLUMNS} FROM accounts WHERE uid = $1")))
        .bind(uid)
        .fetch_optional(pool)
        .await?)
}

pub async fn by_username(pool: &PgPool, username: &str) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!("SELECT {COLUMNS} FROM accounts WHERE username = $1 AND NOT deleted")))
        .bind(username)
        .fetch_optional(pool)
        .await?)
}

/// Every account, for republishing the state feed.
pub async fn all(pool: &PgPool) -> Result<Vec<AccountRow>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!("SELECT {COLUMNS} FROM accounts ORDER BY uid"))).fetch_all(pool).await?)
}

/// Switches webservices on or off (bulk code 1709 when off).
pub async fn set_webservices_enabled(pool: &PgPool, uid: i64, enabled: bool) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE accounts SET webservices_enabled = $2, revision = revision + 1 WHERE uid = $1 RETURNING {COLUMNS}"
    )))
    .bind(uid)
    .bind(enabled)
    .fetch_optional(pool)
    .await?)
}

/// Bans or unbans; the revision bump orders the state snapshots.
pub async fn set_banned(pool: &PgPool, uid: i64, banned: bool) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE accounts SET banned = $2, revision = revision + 1 WHERE uid = $1 AND NOT deleted RETURNING {COLUMNS}"
    )))
    .bind(uid)
    .bind(banned)
    .fetch_optional(pool)
    .await?)
}

/// Replaces the token; the revision bump orders the state snapshots.
pub async fn set_token(pool: &PgPool, uid: i64, lookup: &str, sealed: &str) -> Result<AccountRow> {
    sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE accounts SET token_lookup = $2, token_sealed = $3, revision = revision + 1 \
         WHERE uid = $1 AND NOT deleted RETURNING {COLUMNS}"
    )))
    .bind(uid)
    .bind(lookup)
    .bind(sealed)
    .fetch_optional(pool)
    .await?
    .ok_or(StoreError::NotFound)
}

/// A token change: a new token (its lookup hash and sealed form) or none at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUpdate {
    Set {
        lookup: String,
        sealed: String,
    },
    /// No token: webservices are unusable and `get_token` answers ERR 104.
    Clear,
}

/// Operator settings the playSMS API cannot change (playSMS keeps them
/// behind its web UI). `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountSettings {
    pub token: Option<TokenUpdate>,
    pub webservices_enabled: Option<bool>,
    pub webservices_ip: Option<String>,
    /// Sets the webservices and the bulk API password alike, as `create` does.
    pub password_hash: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub mobile: Option<String>,
    /// The SMPP bind password's hash.
    pub smpp_password_hash: Option<String>,
    pub smpp_max_binds: Option<i32>,
    pub smpp_throughput: Option<i32>,
}

/// Applies `s` to a live account; the revision bump orders the state snapshots.
pub async fn update_settings(pool: &PgPool, uid: i64, s: &AccountSettings) -> Result<AccountRow> {
    let (token_changed, lookup, sealed) = match &s.token {
        None => (false, None, None),
        Some(TokenUpdate::Clear) => (true, None, None),
        Some(TokenUpdate::Set { lookup, sealed }) => (true, Some(lookup.as_str()), Some(sealed.as_str())),
    };
    sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE accounts SET \
           token_lookup = CASE WHEN $2 THEN $3 ELSE token_lookup END, \
           token_sealed = CASE WHEN $2 THEN $4 ELSE token_sealed END, \
           webservices_enabled = COALESCE($5, webservices_enabled), \
           webservices_ip = COALESCE($6, webservices_ip), \
           password_hash = COALESCE($7, password_hash), \
           bulk_password_hash = COALESCE($7, bulk_password_hash), \
           email = COALESCE($8, email), \
           name = COALESCE($9, name), \
           mobile = COALESCE($10, mobile), \
           smpp_password_hash = COALESCE($11, smpp_password_hash), \
           smpp_max_binds = COALESCE($12, smpp_max_binds), \
           smpp_throughput = COALESCE($13, smpp_throughput), \
           revision = revision + 1 \
         WHERE uid = $1 AND NOT deleted RETURNING {COLUMNS}"
    )))
    .bind(uid)
    .bind(token_changed)
    .bind(lookup)
    .bind(sealed)
    .bind(s.webservices_enabled)
    .bind(&s.webservices_ip)
    .bind(&s.password_hash)
    .bind(&s.email)
    .bind(&s.name)
    .bind(&s.mobile)
    .bind(&s.smpp_password_hash)
    .bind(s.smpp_max_binds)
    .bind(s.smpp_throughput)
    .fetch_optional(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(d.message().to_owned()),
        _ => StoreError::Db(e),
    })?
    .ok_or(StoreError::NotFound)
}

/// `op=accountpref`. `None` keeps the stored value; `profile` holds the
/// changed fields no role reads (address, city...), merged into the stored
/// object.
#[derive(Debug, Clone, Default)]
pub struct PreferenceUpdate {
    pub name: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub password_hash: Option<String>,
    /// `data_smpp_password` (our extension), hashed.
    pub smpp_password_hash: Option<String>,
    pub profile: serde_json::Map<String, serde_json::Value>,
}

pub async fn update_preferences(pool: &PgPool, uid: i64, u: &PreferenceUpdate) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE accounts SET name = COALESCE($2, name), email = COALESCE($3, email), \
         mobile = COALESCE($4, mobile), password_hash = COALESCE($5, password_hash), \
         bulk_password_hash = COALESCE($5, bulk_password_hash), profile = profile || $6, \
         smpp_password_hash = COALESCE($7, smpp_password_hash), \
         revision = revision + 1 WHERE uid = $1 AND NOT deleted RETURNING {COLUMNS}"
    )))
    .bind(uid)
    .bind(&u.name)
    .bind(&u.email)
    .bind(&u.mobile)
    .bind(&u.password_hash)
    .bind(serde_json::Value::Object(u.profile.clone()))
    .bind(&u.smpp_password_hash)
    .fetch_optional(pool)
    .await?)
}

/// `op=accountconf`, like [`update_preferences`].
#[derive(Debug, Clone, Default)]
pub struct ConfigurationUpdate {
    pub footer: Option<String>,
    pub timezone: Option<String>,
    pub sender: Option<String>,
    pub profile: serde_json::Map<String, serde_json::Value>,
}

pub async fn update_configuration(pool: &PgPool, uid: i64, u: &ConfigurationUpdate) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE accounts SET footer = COALESCE($2, footer), timezone = COALESCE($3, timezone), \
         sender = COALESCE($4, sender), profile = profile || $5, revision = revision + 1 \
         WHERE uid = $1 AND NOT deleted RETURNING {COLUMNS}"
    )))
    .bind(uid)
    .bind(&u.footer)
    .bind(&u.timezone)
    .bind(&u.sender)
    .bind(serde_json::Value::Object(u.profile.clone()))
    .fetch_optional(pool)
    .await?)
}

/// Whether another live account already uses `email` (case-insensitive).
pub async fn email_taken(pool: &PgPool, email: &str, except_uid: Option<i64>) -> Result<bool> {
    let (taken,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE lower(email) = lower($1) AND NOT deleted \
         AND uid IS DISTINCT FROM $2)",
    )
    .bind(email)
    .bind(except_uid)
    .fetch_one(pool)
    .await?;
    Ok(taken)
}

/// Whether another live account already uses `mobile`.
pub async fn mobile_taken(pool: &PgPool, mobile: &str, except_uid: Option<i64>) -> Result<bool> {
    let (taken,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE mobile = $1 AND mobile <> '' AND NOT deleted \
         AND uid IS DISTINCT FROM $2)",
    )
    .bind(mobile)
    .bind(except_uid)
    .fetch_one(pool)
    .await?;
    Ok(taken)
}

/// Live subusers whose parent is `uid` (an account with some cannot be removed).
pub async fn live_subusers(pool: &PgPool, uid: i64) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM accounts WHERE parent_uid = $1 AND NOT deleted")
        .bind(uid)
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// Soft-deletes: history (outgoing rows, ledger entries) keeps its owner.
/// The token is dropped so that it can never authenticate again.
pub async fn remove(pool: &PgPool, uid: i64) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE accounts SET deleted = true, token_lookup = NULL, token_sealed = NULL, login_key_lookup = NULL, \
         revision = revision + 1 WHERE uid = $1 AND NOT deleted RETURNING {COLUMNS}"
    )))
    .bind(uid)
    .fetch_optional(pool)
    .await?)
}

pub async fn set_parent(pool: &PgPool, uid: i64, parent_uid: i64) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE accounts SET parent_uid = $2, revision = revision + 1 WHERE uid = $1 AND NOT deleted \
         RETURNING {COLUMNS}"
    )))
    .bind(uid)
    .bind(parent_uid)
    .fetch_optional(pool)
    .await?)
}

pub async fn approved_senders(pool: &PgPool, uid: i64) -> Result<Vec<String>> {
    let row: Option<(Vec<String>,)> =
        sqlx::query_as("SELECT approved_senders FROM accounts WHERE uid = $1").bind(uid).fetch_optional(pool).await?;
    Ok(row.map(|r| r.0).unwrap_or_default())
}

/// Adds or removes one approved sender ID; returns the list after the change.
pub async fn set_sender_approved(pool: &PgPool, uid: i64, sender: &str, approved: bool) -> Result<Vec<String>> {
    let sql = if approved {
        "UPDATE accounts SET approved_senders = array_append(array_remove(approved_senders, $2), $2) \
         WHERE uid = $1 RETURNING approved_senders"
    } else {
        "UPDATE accounts SET approved_senders = array_remove(approved_senders, $2) WHERE uid = $1 \
         RETURNING approved_senders"
    };
    let row: Option<(Vec<String>,)> = sqlx::query_as(sql).bind(uid).bind(sender).fetch_optional(pool).await?;
    Ok(row.map(|r| r.0).unwrap_or_default())
}

/// Stores a new login key (its keyed hash), replacing any earlier one.
pub async fn set_login_key(pool: &PgPool, uid: i64, lookup: &str, expires_at: OffsetDateTime) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET login_key_lookup = $2, login_key_expires_at = $3 WHERE uid = $1 AND NOT deleted",
    )
    .bind(uid)
    .bind(lookup)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes and returns the stored login key in one statement, so a key can
/// be used once even when two ws_login requests race.
pub async fn take_login_key(pool: &PgPool, uid: i64) -> Result<Option<(String, OffsetDateTime)>> {
    let row: Option<(Option<String>, Option<OffsetDateTime>)> = sqlx::query_as(
        "UPDATE accounts a SET login_key_lookup = NULL, login_key_expires_at = NULL \
         FROM (SELECT uid, login_key_lookup, login_key_expires_at FROM accounts WHERE uid = $1 FOR UPDATE) old \
         WHERE a.uid = old.uid RETURNING old.login_key_lookup, old.login_key_expires_at",
    )
    .bind(uid)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((Some(lookup), Some(expires))) => Some((lookup, expires)),
        _ => None,
    })
}

/// Which of `uids` can bind over SMPP (have an SMPP password): only their
/// final statuses can owe a receipt.
pub async fn smpp_enabled(pool: &PgPool, uids: &[i64]) -> Result<std::collections::HashSet<i64>> {
    let rows: Vec<(i64,)> =
        sqlx::query_as("SELECT uid FROM accounts WHERE uid = ANY($1) AND smpp_password_hash IS NOT NULL")
            .bind(uids)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
