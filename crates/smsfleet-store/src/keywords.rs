//! The `keywords` table: which account owns an incoming keyword. The query
//! role reads it to route each message; the CLI changes it.

use std::collections::HashMap;

use sqlx::PgPool;

use crate::{Result, StoreError};

/// Owners of those of `keywords` that are registered.
pub async fn owners(pool: &PgPool, keywords: &[String]) -> Result<HashMap<String, i64>> {
    if keywords.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT keyword, uid FROM keywords WHERE keyword = ANY($1)")
        .bind(keywords)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Registers `keyword` (already normalised) for `uid`. Adding it again for
/// the same owner is a no-op; another owner's keyword is a conflict.
pub async fn add(pool: &PgPool, keyword: &str, uid: i64) -> Result<()> {
    sqlx::query("INSERT INTO keywords (keyword, uid) VALUES ($1, $2) ON CONFLICT (keyword) DO NOTHING")
        .bind(keyword)
        .bind(uid)
        .execute(pool)
        .await?;
    let (owner,): (i64,) =
        sqlx::query_as("SELECT uid FROM keywords WHERE keyword = $1").bind(keyword).fetch_one(pool).await?;
    if owner != uid {
        return Err(StoreError::Conflict(format!("keyword {keyword} belongs to uid {owner}")));
    }
    Ok(())
}

/// Whether the keyword existed.
pub async fn remove(pool: &PgPool, keyword: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM keywords WHERE keyword = $1").bind(keyword).execute(pool).await?;
    Ok(done.rows_affected() > 0)
}

/// Every keyword with its owner's uid and username, by keyword.
pub async fn list(pool: &PgPool) -> Result<Vec<(String, i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT k.keyword, k.uid, a.username FROM keywords k JOIN accounts a ON a.uid = k.uid ORDER BY k.keyword",
    )
    .fetch_all(pool)
    .await?)
}
