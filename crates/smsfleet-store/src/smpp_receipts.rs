//! The `smpp_receipts` table of the `callbacks` role: the two halves of a
//! receipt owed to an SMPP customer (what the message was, from SUBMIT; how
//! it ended, from STATUS), which arrive in either order. Each half is
//! upserted in one statement; `ON CONFLICT DO UPDATE` waits for a
//! concurrent writer of the same row and sees its committed half, so
//! exactly the second writer gets the completed row back.

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::{Result, text_column};

/// What the receipt says about the message (from its submission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptTarget {
    pub smslog_id: i64,
    pub uid: i64,
    pub destination: String,
    pub sender: String,
    pub text_start: String,
    pub submitted_at: OffsetDateTime,
}

/// How the message ended (from its final status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptOutcome {
    pub smslog_id: i64,
    /// `delivered` or `failed`.
    pub status: String,
    pub done_at: OffsetDateTime,
}

/// A receipt with both halves, ready to publish.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct CompleteReceipt {
    pub smslog_id: i64,
    pub uid: i64,
    pub destination: String,
    pub sender: String,
    pub text_start: String,
    pub submitted_at: OffsetDateTime,
    pub status: String,
    pub done_at: OffsetDateTime,
}

const COMPLETE: &str = "RETURNING smslog_id, uid, destination, sender, text_start, submitted_at, status, done_at";

fn completed(rows: Vec<OptionalRow>) -> Vec<CompleteReceipt> {
    rows.into_iter().filter_map(OptionalRow::complete).collect()
}

#[derive(sqlx::FromRow)]
struct OptionalRow {
    smslog_id: i64,
    uid: Option<i64>,
    destination: Option<String>,
    sender: Option<String>,
    text_start: Option<String>,
    submitted_at: Option<OffsetDateTime>,
    status: Option<String>,
    done_at: Option<OffsetDateTime>,
}

impl OptionalRow {
    fn complete(self) -> Option<CompleteReceipt> {
        Some(CompleteReceipt {
            smslog_id: self.smslog_id,
            uid: self.uid?,
            destination: self.destination?,
            sender: self.sender?,
            text_start: self.text_start?,
            submitted_at: self.submitted_at?,
            status: self.status?,
            done_at: self.done_at?,
        })
    }
}

/// Records the submission halves (ids unique within the call); returns the
/// receipts whose outcome was already there, in no particular order.
pub async fn record_targets(pool: &PgPool, targets: &[ReceiptTarget]) -> Result<Vec<CompleteReceipt>> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = targets.iter().map(|t| t.smslog_id).collect();
    let uids: Vec<i64> = targets.iter().map(|t| t.uid).collect();
    let rows: Vec<OptionalRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO smpp_receipts (smslog_id, uid, destination, sender, text_start, submitted_at) \
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) \
         ON CONFLICT (smslog_id) DO UPDATE SET uid = EXCLUDED.uid, destination = EXCLUDED.destination, \
         sender = EXCLUDED.sender, text_start = EXCLUDED.text_start, submitted_at = EXCLUDED.submitted_at \
         {COMPLETE}"
    )))
    .bind(&ids)
    .bind(&uids)
    .bind(text_column(targets.iter().map(|t| t.destination.as_str())))
    .bind(text_column(targets.iter().map(|t| t.sender.as_str())))
    .bind(text_column(targets.iter().map(|t| t.text_start.as_str())))
    .bind(targets.iter().map(|t| t.submitted_at).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    Ok(completed(rows))
}

/// Records final statuses (ids unique within the call; the first final
/// status recorded for a message wins); returns the receipts whose
/// submission was already there.
pub async fn record_outcomes(pool: &PgPool, outcomes: &[ReceiptOutcome]) -> Result<Vec<CompleteReceipt>> {
    if outcomes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = outcomes.iter().map(|o| o.smslog_id).collect();
    let rows: Vec<OptionalRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO smpp_receipts (smslog_id, status, done_at) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[]) \
         ON CONFLICT (smslog_id) DO UPDATE SET status = COALESCE(smpp_receipts.status, EXCLUDED.status), \
         done_at = COALESCE(smpp_receipts.done_at, EXCLUDED.done_at) \
         {COMPLETE}"
    )))
    .bind(&ids)
    .bind(outcomes.iter().map(|o| o.status.clone()).collect::<Vec<_>>())
    .bind(outcomes.iter().map(|o| o.done_at).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    Ok(completed(rows))
}

/// The receipts are on the SMPP_OUT stream: forget them.
pub async fn published(pool: &PgPool, ids: &[i64]) -> Result<()> {
    sqlx::query("DELETE FROM smpp_receipts WHERE smslog_id = ANY($1)").bind(ids).execute(pool).await?;
    Ok(())
}

/// Drops halves that never met their other half (the final status of a
/// message without registered_delivery never has a target; a redelivery
/// after the receipt was published re-creates one half) once they are
/// `older_than_secs`.
pub async fn drop_orphans(pool: &PgPool, older_than_secs: f64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM smpp_receipts WHERE created_at < now() - make_interval(secs => $1)")
        .bind(older_than_secs)
        .execute(pool)
        .await?;
    Ok(r.rows_affected())
}
