//! Tables of the `callbacks` role: who wants a delivery-report callback
//! (`callback_targets`) and which final statuses wait to be pushed
//! (`callback_outbox`). A callback is due when both rows exist.

use std::collections::HashMap;

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::Result;

/// One callback ready to be POSTed.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct DueCallback {
    pub smslog_id: i64,
    pub status: String,
    pub done_at: OffsetDateTime,
    pub attempts: i32,
    pub destination: String,
    pub url: String,
}

/// The callback URL of each of `uids` that has one.
pub async fn callback_urls(pool: &PgPool, uids: &[i64]) -> Result<HashMap<i64, String>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT uid, dlr_callback_url FROM accounts \
         WHERE uid = ANY($1) AND dlr_callback_url IS NOT NULL AND dlr_callback_url <> ''",
    )
    .bind(uids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Records targets; a redelivered submission changes nothing.
pub async fn insert_targets(
    pool: &PgPool,
    ids: &[i64],
    uids: &[i64],
    destinations: &[String],
    urls: &[String],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO callback_targets (smslog_id, uid, destination, url) \
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(ids)
    .bind(uids)
    .bind(destinations)
    .bind(urls)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records final statuses; the first one recorded for a message wins.
pub async fn insert_outcomes(
    pool: &PgPool,
    ids: &[i64],
    statuses: &[String],
    done_at: &[OffsetDateTime],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO callback_outbox (smslog_id, status, done_at) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[]) ON CONFLICT DO NOTHING",
    )
    .bind(ids)
    .bind(statuses)
    .bind(done_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Claims up to `limit` due callbacks for `lease_secs` (their `next_at`
/// moves past the lease, so another replica skips them meanwhile, and a
/// crashed sender's claims come due again).
pub async fn claim_due(pool: &PgPool, limit: i64, lease_secs: f64) -> Result<Vec<DueCallback>> {
    Ok(sqlx::query_as(
        "WITH due AS ( \
             SELECT o.smslog_id FROM callback_outbox o JOIN callback_targets t USING (smslog_id) \
             WHERE o.next_at <= now() ORDER BY o.next_at LIMIT $1 FOR UPDATE OF o SKIP LOCKED) \
         UPDATE callback_outbox o SET next_at = now() + make_interval(secs => $2) \
         FROM due, callback_targets t \
         WHERE o.smslog_id = due.smslog_id AND t.smslog_id = o.smslog_id \
         RETURNING o.smslog_id, o.status, o.done_at, o.attempts, t.destination, t.url",
    )
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(pool)
    .await?)
}

/// The receiver answered 2xx: the callback is done.
pub async fn complete(pool: &PgPool, smslog_id: i64) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM callback_outbox WHERE smslog_id = $1").bind(smslog_id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM callback_targets WHERE smslog_id = $1").bind(smslog_id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The receiver failed: try again after `delay_secs`.
pub async fn retry_later(pool: &PgPool, smslog_id: i64, attempts: i32, delay_secs: f64) -> Result<()> {
    sqlx::query(
        "UPDATE callback_outbox SET attempts = $2, next_at = now() + make_interval(secs => $3) WHERE smslog_id = $1",
    )
    .bind(smslog_id)
    .bind(attempts)
    .bind(delay_secs)
    .execute(pool)
    .await?;
    Ok(())
}

/// Drops outbox rows that never got a target (final statuses of `dlr=0`
/// messages of accounts with a callback URL) once they are `older_than_secs`.
pub async fn drop_orphans(pool: &PgPool, older_than_secs: f64) -> Result<u64> {
    let r = sqlx::query(
        "DELETE FROM callback_outbox o WHERE o.done_at < now() - make_interval(secs => $1) \
         AND NOT EXISTS (SELECT 1 FROM callback_targets t WHERE t.smslog_id = o.smslog_id)",
    )
    .bind(older_than_secs)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// How many callbacks are pending (for tests and metrics).
pub async fn pending(pool: &PgPool) -> Result<Vec<(i64, i32)>> {
    Ok(sqlx::query_as("SELECT smslog_id, attempts FROM callback_outbox ORDER BY smslog_id").fetch_all(pool).await?)
}

/// Whether a push target exists for the message (it does only for
/// `dlr=1` messages of an account with a callback URL).
pub async fn has_target(pool: &PgPool, smslog_id: i64) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM callback_targets WHERE smslog_id = $1)")
        .bind(smslog_id)
        .fetch_one(pool)
        .await?)
}
