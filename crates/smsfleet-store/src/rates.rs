//! The rate table and the default rate.

use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::Result;

pub async fn load(pool: &PgPool) -> Result<(Decimal, Vec<(String, Decimal)>)> {
    let default: Option<(String,)> =
        sqlx::query_as("SELECT value FROM settings WHERE key = 'default_rate'").fetch_optional(pool).await?;
    let default_rate = default.and_then(|(v,)| v.parse().ok()).unwrap_or_default();
    let prefixes: Vec<(String, Decimal)> =
        sqlx::query_as("SELECT prefix, rate FROM rates ORDER BY prefix").fetch_all(pool).await?;
    Ok((default_rate, prefixes))
}

pub async fn set_default(pool: &PgPool, rate: Decimal) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ('default_rate', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(rate.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn set_prefix(pool: &PgPool, prefix: &str, rate: Decimal) -> Result<()> {
    sqlx::query(
        "INSERT INTO rates (prefix, rate) VALUES ($1, $2) ON CONFLICT (prefix) DO UPDATE SET rate = excluded.rate",
    )
    .bind(prefix)
    .bind(rate)
    .execute(pool)
    .await?;
    Ok(())
}

/// A revision for the rates snapshot: changes whenever the table changes.
pub async fn revision(pool: &PgPool) -> Result<i64> {
    let row: (i64,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM rates) + coalesce((SELECT max(xmin::text::bigint) FROM rates), 0) \
         + coalesce((SELECT xmin::text::bigint FROM settings WHERE key = 'default_rate'), 0)",
    )
    .fetch_one(pool)
    .await?;
    Ok(row.0)
}
