//! The `stoplist` (global, bulk code 1042) and `dnd` (per account, bulk
//! code 1732) tables, written by the accounts service and the CLI.

use sqlx::PgPool;

use crate::Result;

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

/// Adds a number to the global stop list; false when it was already there.
pub async fn add_stop(pool: &PgPool, digits: &str) -> Result<bool> {
    let inserted: Option<(String,)> =
        sqlx::query_as("INSERT INTO stoplist (number) VALUES ($1) ON CONFLICT DO NOTHING RETURNING number")
            .bind(digits)
            .fetch_optional(pool)
            .await?;
    Ok(inserted.is_some())
}
