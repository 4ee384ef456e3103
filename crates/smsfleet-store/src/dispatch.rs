//! The dispatcher's per-message log: claimed before the upstream call,
//! then sent (with one upstream id per part, in `dispatch_part`) or failed.
//! It is what makes a redelivered chunk safe, and what delivery reports are
//! matched against.

use std::collections::HashMap;

use sqlx::PgPool;

use crate::Result;

pub const CLAIMED: i16 = 0;
pub const SENT: i16 = 1;
pub const FAILED: i16 = 2;

/// What an earlier attempt left for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prior {
    /// Claimed now, never tried before.
    Fresh,
    /// Claimed by an attempt whose outcome is unknown (it crashed or timed
    /// out after sending). `attempts` counts the claims so far.
    Unconfirmed {
        attempts: i32,
    },
    /// Sent; the upstream's ids, one per part in sending order.
    Sent {
        upstream_ids: Vec<String>,
    },
    Failed,
}

/// Claims `items` (`smslog_id`, `uid`) for `route`.
pub async fn claim(pool: &PgPool, route: &str, items: &[(i64, i64)]) -> Result<HashMap<i64, Prior>> {
    let ids: Vec<i64> = items.iter().map(|i| i.0).collect();
    let uids: Vec<i64> = items.iter().map(|i| i.1).collect();
    let fresh: Vec<(i64,)> = sqlx::query_as(
        "INSERT INTO dispatch_log (smslog_id, uid, route, state) \
         SELECT id, uid, $3, 0 FROM unnest($1::bigint[], $2::bigint[]) AS t(id, uid) \
         ON CONFLICT (smslog_id) DO NOTHING RETURNING smslog_id",
    )
    .bind(&ids)
    .bind(&uids)
    .bind(route)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<i64, Prior> = fresh.into_iter().map(|(id,)| (id, Prior::Fresh)).collect();
    if out.len() < ids.len() {
        let rest: Vec<i64> = ids.iter().copied().filter(|id| !out.contains_key(id)).collect();
        let rows: Vec<(i64, i16, Option<Vec<String>>, i32)> = sqlx::query_as(
            "UPDATE dispatch_log d SET attempts = attempts + CASE WHEN state = 0 THEN 1 ELSE 0 END, updated_at = now() \
             WHERE smslog_id = ANY($1) RETURNING smslog_id, state, \
             (SELECT array_agg(p.upstream_id ORDER BY p.part) FROM dispatch_part p WHERE p.smslog_id = d.smslog_id), \
             attempts",
        )
        .bind(&rest)
        .fetch_all(pool)
        .await?;
        for (id, state, upstream_ids, attempts) in rows {
            let prior = match (state, upstream_ids) {
                (SENT, Some(upstream_ids)) if !upstream_ids.is_empty() => Prior::Sent { upstream_ids },
                (FAILED, _) => Prior::Failed,
                _ => Prior::Unconfirmed { attempts },
            };
            out.insert(id, prior);
        }
    }
    Ok(out)
}

/// Marks `sent` (`smslog_id`, upstream id of each part) as sent. One
/// statement, so a message is never `SENT` without its ids; a resend that
/// got the ids again (a de-duplicating upstream) overwrites them.
pub async fn record_sent(pool: &PgPool, sent: &[(i64, Vec<String>)]) -> Result<()> {
    if sent.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = sent.iter().map(|s| s.0).collect();
    let mut part_ids = Vec::new();
    let mut parts: Vec<i16> = Vec::new();
    let mut upstream: Vec<&str> = Vec::new();
    for (id, upstream_ids) in sent {
        for (part, upstream_id) in upstream_ids.iter().enumerate() {
            part_ids.push(*id);
            parts.push(i16::try_from(part).unwrap_or(i16::MAX));
            upstream.push(upstream_id.as_str());
        }
    }
    sqlx::query(
        "WITH sent AS ( \
           UPDATE dispatch_log SET state = 1, updated_at = now() WHERE smslog_id = ANY($1) RETURNING smslog_id, route, uid \
         ) \
         INSERT INTO dispatch_part (smslog_id, part, route, upstream_id, uid) \
         SELECT t.id, t.part, sent.route, t.up, sent.uid \
         FROM unnest($2::bigint[], $3::smallint[], $4::text[]) AS t(id, part, up) JOIN sent ON sent.smslog_id = t.id \
         ON CONFLICT (smslog_id, part) DO UPDATE SET upstream_id = excluded.upstream_id",
    )
    .bind(&ids)
    .bind(&part_ids)
    .bind(&parts)
    .bind(&upstream)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn record_failed(pool: &PgPool, ids: &[i64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE dispatch_log SET state = 2, updated_at = now() WHERE smslog_id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// Moves unsettled claims to `route` before a failover send, so the upstream
/// ids recorded for them (and the reports matched by them) belong to the
/// route that really took them.
pub async fn reroute(pool: &PgPool, ids: &[i64], route: &str) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE dispatch_log SET route = $2, updated_at = now() WHERE smslog_id = ANY($1) AND state = 0")
        .bind(ids)
        .bind(route)
        .execute(pool)
        .await?;
    Ok(())
}

/// Drops claims for messages that certainly did not reach the upstream
/// (the connection was refused), so a retry starts clean.
pub async fn release(pool: &PgPool, ids: &[i64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM dispatch_log WHERE smslog_id = ANY($1) AND state = 0").bind(ids).execute(pool).await?;
    Ok(())
}

/// Matches upstream ids (of any part) of `route` to (`smslog_id`, `uid`).
pub async fn lookup_upstream(
    pool: &PgPool,
    route: &str,
    upstream_ids: &[String],
) -> Result<HashMap<String, (i64, i64)>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT upstream_id, smslog_id, uid FROM dispatch_part WHERE route = $1 AND upstream_id = ANY($2)",
    )
    .bind(route)
    .bind(upstream_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(u, id, uid)| (u, (id, uid))).collect())
}

/// The dispatch-log state (`CLAIMED`, `SENT`, `FAILED`) of each of `ids`
/// that has a row; for operators and tests checking what a crash left.
pub async fn states(pool: &PgPool, ids: &[i64]) -> Result<HashMap<i64, i16>> {
    let rows: Vec<(i64, i16)> = sqlx::query_as("SELECT smslog_id, state FROM dispatch_log WHERE smslog_id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().collect())
}
