//! Accounts, owned by the accounts service.

use sqlx::{AssertSqlSafe, PgPool};

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
}

pub(crate) const COLUMNS: &str = "uid, username, email, name, mobile, role, parent_uid, banned, deleted, \
    webservices_enabled, webservices_ip, token_lookup, token_sealed, password_hash, bulk_password_hash, \
    timezone, footer, sender, revision, templates, dlr_callback_url";

/// Creates an account and its zero balance in one transaction.
pub async fn create(pool: &PgPool, a: &NewAccount) -> Result<AccountRow> {
    let mut tx = pool.begin().await?;
    let row: AccountRow = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO accounts (username, email, name, mobile, role, parent_uid, webservices_enabled, webservices_ip, \
         token_lookup, token_sealed, password_hash, bulk_password_hash, timezone, footer, sender, templates, \
         dlr_callback_url) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17) RETURNING {COLUMNS}"
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

/// Adds (or removes) a number on the global stop list (bulk code 1042).
pub async fn set_stopped(pool: &PgPool, digits: &str, listed: bool) -> Result<()> {
    if listed {
        sqlx::query("INSERT INTO stoplist (number) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(digits)
            .execute(pool)
            .await?;
    } else {
        sqlx::query("DELETE FROM stoplist WHERE number = $1").bind(digits).execute(pool).await?;
    }
    Ok(())
}

/// Adds (or removes) a number on an account's do-not-disturb list (bulk code 1732).
pub async fn set_dnd(pool: &PgPool, uid: i64, digits: &str, listed: bool) -> Result<()> {
    if listed {
        sqlx::query("INSERT INTO dnd (uid, number) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(uid)
            .bind(digits)
            .execute(pool)
            .await?;
    } else {
        sqlx::query("DELETE FROM dnd WHERE uid = $1 AND number = $2").bind(uid).bind(digits).execute(pool).await?;
    }
    Ok(())
}

/// Every stop-list entry (`uid` None) and do-not-disturb entry, for republishing.
pub async fn all_stops(pool: &PgPool) -> Result<Vec<(Option<i64>, String)>> {
    let stop: Vec<(String,)> = sqlx::query_as("SELECT number FROM stoplist").fetch_all(pool).await?;
    let dnd: Vec<(i64, String)> = sqlx::query_as("SELECT uid, number FROM dnd").fetch_all(pool).await?;
    Ok(stop.into_iter().map(|(n,)| (None, n)).chain(dnd.into_iter().map(|(u, n)| (Some(u), n))).collect())
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
    .fetch_optional(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(d.message().to_owned()),
        _ => StoreError::Db(e),
    })?
    .ok_or(StoreError::NotFound)
}
