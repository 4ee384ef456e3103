//! Scheduled chunks, held until due.

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::Result;

pub struct Held {
    pub chunk_id: String,
    pub queue: String,
    pub release_at: OffsetDateTime,
    pub payload: serde_json::Value,
}

/// Stores chunks; a chunk already held (redelivery) is left as it is.
pub async fn hold(pool: &PgPool, chunks: &[Held]) -> Result<()> {
    if chunks.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = chunks.iter().map(|c| c.chunk_id.as_str()).collect();
    let queues: Vec<&str> = chunks.iter().map(|c| c.queue.as_str()).collect();
    let at: Vec<OffsetDateTime> = chunks.iter().map(|c| c.release_at).collect();
    let payloads: Vec<serde_json::Value> = chunks.iter().map(|c| c.payload.clone()).collect();
    sqlx::query(
        "INSERT INTO scheduled_chunks (chunk_id, queue, release_at, payload) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[]) \
         ON CONFLICT (chunk_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&queues)
    .bind(&at)
    .bind(&payloads)
    .execute(pool)
    .await?;
    Ok(())
}

/// Chunks due at `now`, locked so that replicas do not release the same
/// chunk at once. The caller publishes them and then calls
/// [`mark_released`] in the same transaction.
pub async fn due(
    tx: &mut sqlx::PgConnection,
    now: OffsetDateTime,
    limit: i64,
) -> Result<Vec<(String, String, serde_json::Value)>> {
    Ok(sqlx::query_as(
        "SELECT chunk_id, queue, payload FROM scheduled_chunks \
         WHERE released_at IS NULL AND release_at <= $1 ORDER BY release_at LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

pub async fn mark_released(tx: &mut sqlx::PgConnection, ids: &[String], now: OffsetDateTime) -> Result<()> {
    sqlx::query("UPDATE scheduled_chunks SET released_at = $2 WHERE chunk_id = ANY($1)")
        .bind(ids)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The next release instant, so the scheduler can sleep until then.
pub async fn next_due(pool: &PgPool) -> Result<Option<OffsetDateTime>> {
    let row: Option<(OffsetDateTime,)> =
        sqlx::query_as("SELECT min(release_at) FROM scheduled_chunks WHERE released_at IS NULL HAVING count(*) > 0")
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|r| r.0))
}
