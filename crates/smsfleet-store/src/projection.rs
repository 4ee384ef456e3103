//! The query projection: outgoing messages and their queues, written in
//! batches from the submit and status streams, read by `ds`.

use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use time::OffsetDateTime;

use crate::{Result, text_column};

pub struct OutgoingRow {
    pub smslog_id: i64,
    pub uid: i64,
    pub queue: String,
    pub src: String,
    pub dst: String,
    pub msg: String,
    pub footer: String,
    pub dt: OffsetDateTime,
}

pub struct QueueRow {
    pub queue: String,
    pub uid: i64,
    pub created_at: OffsetDateTime,
    pub scheduled_at: Option<OffsetDateTime>,
}

/// Inserts submitted messages as pending. A status that arrived first (a
/// skeleton row) keeps its status; the message fields are filled in. A
/// release that arrived first (a placeholder queue, see [`release_queues`])
/// stays released and gets its owner. Callers pass at most one row per
/// `queue` and per `smslog_id`.
pub async fn insert_submitted(pool: &PgPool, queues: &[QueueRow], rows: &[OutgoingRow]) -> Result<()> {
    let mut tx = pool.begin().await?;
    if !queues.is_empty() {
        let q: Vec<&str> = queues.iter().map(|r| r.queue.as_str()).collect();
        let uid: Vec<i64> = queues.iter().map(|r| r.uid).collect();
        let created: Vec<OffsetDateTime> = queues.iter().map(|r| r.created_at).collect();
        let sched: Vec<Option<OffsetDateTime>> = queues.iter().map(|r| r.scheduled_at).collect();
        sqlx::query(
            "INSERT INTO queues (queue, uid, created_at, scheduled_at, released) \
             SELECT q, u, c, s, s IS NULL FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::timestamptz[]) AS t(q, u, c, s) \
             ON CONFLICT (queue) DO UPDATE SET uid = excluded.uid, created_at = excluded.created_at, \
               scheduled_at = excluded.scheduled_at \
             WHERE queues.uid = $5",
        )
        .bind(&q)
        .bind(&uid)
        .bind(&created)
        .bind(&sched)
        .bind(PLACEHOLDER_UID)
        .execute(&mut *tx)
        .await?;
    }
    if !rows.is_empty() {
        let ids: Vec<i64> = rows.iter().map(|r| r.smslog_id).collect();
        let uids: Vec<i64> = rows.iter().map(|r| r.uid).collect();
        let queues: Vec<&str> = rows.iter().map(|r| r.queue.as_str()).collect();
        let src = text_column(rows.iter().map(|r| r.src.as_str()));
        let dst = text_column(rows.iter().map(|r| r.dst.as_str()));
        let msg = text_column(rows.iter().map(|r| r.msg.as_str()));
        let footer = text_column(rows.iter().map(|r| r.footer.as_str()));
        let dt: Vec<OffsetDateTime> = rows.iter().map(|r| r.dt).collect();
        sqlx::query(
            "INSERT INTO outgoing (smslog_id, uid, queue, src, dst, msg, footer, dt, updated_at, status, status_rank) \
             SELECT id, uid, q, s, d, m, f, dt, dt, 0, 0 \
             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[]) \
               AS t(id, uid, q, s, d, m, f, dt) \
             ON CONFLICT (smslog_id) DO UPDATE SET uid = excluded.uid, queue = excluded.queue, src = excluded.src, \
               dst = excluded.dst, msg = excluded.msg, footer = excluded.footer, dt = excluded.dt",
        )
        .bind(&ids)
        .bind(&uids)
        .bind(&queues)
        .bind(&src)
        .bind(&dst)
        .bind(&msg)
        .bind(&footer)
        .bind(&dt)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub struct StatusRow {
    pub smslog_id: i64,
    pub uid: i64,
    pub status: i16,
    pub rank: i16,
    pub at: OffsetDateTime,
    pub upstream_id: Option<String>,
    pub reason: Option<String>,
}

/// Applies status changes; a lower-ranked status never overwrites a
/// higher one, so events may arrive in any order. Callers pass at most one
/// row per `smslog_id`.
pub async fn apply_status(pool: &PgPool, rows: &[StatusRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.smslog_id).collect();
    let uids: Vec<i64> = rows.iter().map(|r| r.uid).collect();
    let status: Vec<i16> = rows.iter().map(|r| r.status).collect();
    let rank: Vec<i16> = rows.iter().map(|r| r.rank).collect();
    let at: Vec<OffsetDateTime> = rows.iter().map(|r| r.at).collect();
    let up: Vec<Option<String>> = rows.iter().map(|r| r.upstream_id.clone()).collect();
    let reason: Vec<Option<String>> = rows.iter().map(|r| r.reason.clone()).collect();
    sqlx::query(
        "INSERT INTO outgoing AS o (smslog_id, uid, updated_at, status, status_rank, upstream_id, reason) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::smallint[], $5::smallint[], $6::text[], $7::text[]) \
         ON CONFLICT (smslog_id) DO UPDATE SET \
           status = CASE WHEN excluded.status_rank > o.status_rank THEN excluded.status ELSE o.status END, \
           updated_at = CASE WHEN excluded.status_rank > o.status_rank THEN excluded.updated_at ELSE o.updated_at END, \
           status_rank = GREATEST(o.status_rank, excluded.status_rank), \
           upstream_id = COALESCE(o.upstream_id, excluded.upstream_id), \
           reason = COALESCE(excluded.reason, o.reason)",
    )
    .bind(&ids)
    .bind(&uids)
    .bind(&at)
    .bind(&status)
    .bind(&rank)
    .bind(&up)
    .bind(&reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Owner of a queue row created by a release that overtook its submission;
/// no account has uid 0, so `ds` never shows it.
const PLACEHOLDER_UID: i64 = 0;

/// Marks queues released. The submit and status streams are consumed
/// independently, so after a backlog a release can arrive before the queue
/// is projected; a plain UPDATE would then be lost and the queue would answer
/// ERR 401 forever. A placeholder row keeps the release until the submission
/// fills it in.
pub async fn release_queues(pool: &PgPool, queues: &[String]) -> Result<()> {
    if queues.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO queues (queue, uid, created_at, scheduled_at, released) \
         SELECT DISTINCT q, $2::bigint, now(), NULL::timestamptz, true FROM unnest($1::text[]) AS t(q) \
         ON CONFLICT (queue) DO UPDATE SET released = true",
    )
    .bind(queues)
    .bind(PLACEHOLDER_UID)
    .execute(pool)
    .await?;
    Ok(())
}

/// `op=ds` filters, already interpreted (see the query role).
#[derive(Debug, Clone, Default)]
pub struct DsFilter {
    pub uid: i64,
    pub smslog_id: Option<i64>,
    pub queue: Option<String>,
    pub src: Option<String>,
    /// LIKE pattern for the destination.
    pub dst_like: Option<String>,
    /// LIKE pattern for the datetime text.
    pub dt_like: Option<String>,
    pub after_id: Option<i64>,
    pub limit: i64,
}

pub struct DsRecord {
    pub smslog_id: i64,
    pub src: String,
    pub dst: String,
    pub msg: String,
    pub dt: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub status: i16,
}

/// Where a queue stands when `ds` by queue lists nothing: what tells
/// playSMS's ERR 400, 401 and 402 apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    /// Not one of the caller's queues (ERR 400).
    Unknown,
    /// Not released yet, or released but its messages not projected yet
    /// (ERR 401): the caller will see them.
    Pending,
    /// Released with its messages projected, none of which matched (ERR 402).
    Done,
}

/// One `ds` read: the matching rows, and when there are none and the
/// filter names a queue, that queue's state.
pub struct DsRead {
    pub records: Vec<DsRecord>,
    pub queue: Option<QueueState>,
}

/// Reads the rows and the queue's state from one snapshot, so a
/// submission committed between the two can never look like a queue that
/// was processed without messages (a false ERR 402).
pub async fn ds_read(pool: &PgPool, f: &DsFilter) -> Result<DsRead> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let records = ds_rows(&mut tx, f).await?;
    let queue = match &f.queue {
        Some(queue) if records.is_empty() => Some(queue_state(&mut tx, f.uid, queue).await?),
        _ => None,
    };
    tx.commit().await?;
    Ok(DsRead { records, queue })
}

async fn ds_rows(conn: &mut PgConnection, f: &DsFilter) -> Result<Vec<DsRecord>> {
    let mut sql = String::from(
        "SELECT o.smslog_id, o.src, o.dst, o.msg, o.dt, o.updated_at, o.status FROM outgoing o \
         JOIN queues q ON q.queue = o.queue WHERE o.uid = $1 AND q.released",
    );
    let mut n = 1;
    let mut next = || {
        n += 1;
        n
    };
    if f.smslog_id.is_some() {
        sql += &format!(" AND o.smslog_id = ${}", next());
    }
    if f.queue.is_some() {
        sql += &format!(" AND o.queue = ${}", next());
    }
    if f.src.is_some() {
        sql += &format!(" AND o.src = ${}", next());
    }
    match (&f.dst_like, &f.dt_like) {
        // playSMS ORs the two keyword filters; clients rely on that.
        (Some(_), Some(_)) => {
            let a = next();
            let b = next();
            sql += &format!(
                " AND (o.dst LIKE ${a} ESCAPE '\\' OR to_char(o.dt AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') LIKE ${b} ESCAPE '\\')"
            );
        }
        (Some(_), None) => sql += &format!(" AND o.dst LIKE ${} ESCAPE '\\'", next()),
        (None, Some(_)) => {
            sql +=
                &format!(" AND to_char(o.dt AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') LIKE ${} ESCAPE '\\'", next())
        }
        (None, None) => {}
    }
    if f.after_id.is_some() {
        sql += &format!(" AND o.smslog_id > ${}", next());
    }
    sql += &format!(" ORDER BY o.dt DESC, o.smslog_id DESC LIMIT ${}", next());
    let mut q = sqlx::query_as::<
        _,
        (i64, Option<String>, Option<String>, Option<String>, Option<OffsetDateTime>, OffsetDateTime, i16),
    >(AssertSqlSafe(sql))
    .bind(f.uid);
    if let Some(v) = f.smslog_id {
        q = q.bind(v);
    }
    if let Some(v) = &f.queue {
        q = q.bind(v);
    }
    if let Some(v) = &f.src {
        q = q.bind(v);
    }
    if let Some(v) = &f.dst_like {
        q = q.bind(v);
    }
    if let Some(v) = &f.dt_like {
        q = q.bind(v);
    }
    if let Some(v) = f.after_id {
        q = q.bind(v);
    }
    q = q.bind(f.limit);
    let rows = q.fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|(smslog_id, src, dst, msg, dt, updated_at, status)| DsRecord {
            smslog_id,
            src: src.unwrap_or_default(),
            dst: dst.unwrap_or_default(),
            msg: msg.unwrap_or_default(),
            dt: dt.unwrap_or(updated_at),
            updated_at,
            status,
        })
        .collect())
}

/// Only the caller's own queues are found. A release can be projected
/// before its submission (a placeholder row, see [`release_queues`]), so
/// "done" also needs the queue's messages to be there.
async fn queue_state(conn: &mut PgConnection, uid: i64, queue: &str) -> Result<QueueState> {
    let row: Option<(bool, bool)> = sqlx::query_as(
        "SELECT q.released, EXISTS (SELECT 1 FROM outgoing o WHERE o.queue = q.queue AND o.uid = q.uid) \
         FROM queues q WHERE q.queue = $1 AND q.uid = $2",
    )
    .bind(queue)
    .bind(uid)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        None => QueueState::Unknown,
        Some((true, true)) => QueueState::Done,
        Some(_) => QueueState::Pending,
    })
}

/// Status counts of an account, for tests and the benchmark.
/// Every destination shown delivered (status 3), for the chaos suite's
/// check that everything answered OK arrived.
pub async fn delivered_destinations(pool: &PgPool) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT dst FROM outgoing WHERE status = 3 AND dst IS NOT NULL").fetch_all(pool).await?)
}

pub async fn status_counts(pool: &PgPool, uid: Option<i64>) -> Result<Vec<(i16, i64)>> {
    Ok(sqlx::query_as(
        "SELECT status, count(*) FROM outgoing WHERE ($1::bigint IS NULL OR uid = $1) AND queue IS NOT NULL GROUP BY status ORDER BY status",
    )
    .bind(uid)
    .fetch_all(pool)
    .await?)
}

/// The newest outgoing id of an account (`op=query`'s `user_outgoing`); 0
/// when none. The largest id, as playSMS's auto-increment gives, but among
/// ids up to `newest_bound` (2^53 − 1) first: snowflake ids stored before
/// issue 12.4 are larger than every id issued since.
pub async fn last_outgoing_id(pool: &PgPool, uid: i64, newest_bound: i64) -> Result<i64> {
    let (id,): (Option<i64>,) = sqlx::query_as(
        "SELECT COALESCE((SELECT max(smslog_id) FROM outgoing WHERE uid = $1 AND smslog_id <= $2), \
                         (SELECT max(smslog_id) FROM outgoing WHERE uid = $1))",
    )
    .bind(uid)
    .bind(newest_bound)
    .fetch_one(pool)
    .await?;
    Ok(id.unwrap_or(0))
}

/// The largest stored `smslog_id` that is at most `bound` (0 when none):
/// the id counter must stay above it.
pub async fn largest_smslog_id_up_to(pool: &PgPool, bound: i64) -> Result<i64> {
    let (id,): (Option<i64>,) =
        sqlx::query_as("SELECT max(smslog_id) FROM outgoing WHERE smslog_id <= $1").bind(bound).fetch_one(pool).await?;
    Ok(id.unwrap_or(0))
}
