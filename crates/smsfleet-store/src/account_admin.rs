//! Account changes made through playSMS's admin ops (and the matching CLI):
//! preferences, configuration, parent, removal, login keys, approved sender
//! IDs. Every change bumps `revision`, so the state snapshot the accounts
//! service publishes next supersedes the one before.

use sqlx::{AssertSqlSafe, PgPool};
use time::OffsetDateTime;

use crate::Result;
use crate::accounts::{AccountRow, COLUMNS};

/// `op=accountpref`. `None` keeps the stored value; `profile` holds the
/// changed fields no role reads (address, city...), merged into the stored
/// object.
#[derive(Debug, Clone, Default)]
pub struct PreferenceUpdate {
    pub name: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub password_hash: Option<String>,
    pub profile: serde_json::Map<String, serde_json::Value>,
}

pub async fn update_preferences(pool: &PgPool, uid: i64, u: &PreferenceUpdate) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE accounts SET name = COALESCE($2, name), email = COALESCE($3, email), \
         mobile = COALESCE($4, mobile), password_hash = COALESCE($5, password_hash), \
         bulk_password_hash = COALESCE($5, bulk_password_hash), profile = profile || $6, \
         revision = revision + 1 WHERE uid = $1 AND NOT deleted RETURNING {COLUMNS}"
    )))
    .bind(uid)
    .bind(&u.name)
    .bind(&u.email)
    .bind(&u.mobile)
    .bind(&u.password_hash)
    .bind(serde_json::Value::Object(u.profile.clone()))
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

/// Adds a number to the global stop list; false when it was already there.
pub async fn add_stop(pool: &PgPool, digits: &str) -> Result<bool> {
    let inserted: Option<(String,)> =
        sqlx::query_as("INSERT INTO stoplist (number) VALUES ($1) ON CONFLICT DO NOTHING RETURNING number")
            .bind(digits)
            .fetch_optional(pool)
            .await?;
    Ok(inserted.is_some())
}
