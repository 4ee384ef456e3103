//! Ledger tables. The ledger role runs these inside one transaction per
//! batch: find the parents whose credit subusers spend, lock the balances
//! involved, skip entries already written (a redelivery), write the new
//! entries and balances, commit.

use std::collections::HashMap;

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedBalance {
    pub balance: Decimal,
    pub revision: i64,
}

/// Locks the balance rows of `uids` (in uid order, so concurrent batches
/// cannot deadlock) and returns them. Unknown uids are absent.
pub async fn lock_balances(conn: &mut PgConnection, uids: &[i64]) -> Result<HashMap<i64, LockedBalance>> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let rows: Vec<(i64, Decimal, i64)> =
        sqlx::query_as("SELECT uid, balance, revision FROM balances WHERE uid = ANY($1) ORDER BY uid FOR UPDATE")
            .bind(&sorted)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|(uid, balance, revision)| (uid, LockedBalance { balance, revision })).collect())
}

/// An account with a live parent, as the ledger needs it to decide whether
/// the parent's credit is spent too (roles are playSMS status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentLink {
    pub uid: i64,
    pub role: i16,
    pub parent_uid: i64,
    pub parent_role: i16,
}

/// Those of `uids` that have a live (not removed) parent, with both roles.
pub async fn parent_links(conn: &mut PgConnection, uids: &[i64]) -> Result<Vec<ParentLink>> {
    let rows: Vec<(i64, i16, i64, i16)> = sqlx::query_as(
        "SELECT c.uid, c.role, p.uid, p.role FROM accounts c JOIN accounts p ON p.uid = c.parent_uid \
         WHERE c.uid = ANY($1) AND NOT p.deleted",
    )
    .bind(uids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(uid, role, parent_uid, parent_role)| ParentLink { uid, role, parent_uid, parent_role })
        .collect())
}

/// Refs among `refs` that already have an entry, with their kind.
pub async fn existing_entries(conn: &mut PgConnection, refs: &[String]) -> Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT ref, kind FROM ledger_entries WHERE ref = ANY($1)")
        .bind(refs)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().collect())
}

#[derive(Debug, Clone)]
pub struct NewEntry {
    pub reference: String,
    pub uid: i64,
    pub kind: &'static str,
    pub amount: Decimal,
    pub messages: i32,
}

pub async fn insert_entries(conn: &mut PgConnection, entries: &[NewEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let refs: Vec<&str> = entries.iter().map(|e| e.reference.as_str()).collect();
    let uids: Vec<i64> = entries.iter().map(|e| e.uid).collect();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind).collect();
    let amounts: Vec<Decimal> = entries.iter().map(|e| e.amount).collect();
    let messages: Vec<i32> = entries.iter().map(|e| e.messages).collect();
    sqlx::query(
        "INSERT INTO ledger_entries (ref, uid, kind, amount, messages) \
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::numeric[], $5::int[])",
    )
    .bind(&refs)
    .bind(&uids)
    .bind(&kinds)
    .bind(&amounts)
    .bind(&messages)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes new balances and returns each account's new revision.
pub async fn update_balances(conn: &mut PgConnection, balances: &[(i64, Decimal)]) -> Result<HashMap<i64, i64>> {
    if balances.is_empty() {
        return Ok(HashMap::new());
    }
    let uids: Vec<i64> = balances.iter().map(|b| b.0).collect();
    let values: Vec<Decimal> = balances.iter().map(|b| b.1).collect();
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "UPDATE balances b SET balance = n.balance, revision = b.revision + 1 \
         FROM unnest($1::bigint[], $2::numeric[]) AS n(uid, balance) WHERE b.uid = n.uid \
         RETURNING b.uid, b.revision",
    )
    .bind(&uids)
    .bind(&values)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}

pub async fn balance(pool: &PgPool, uid: i64) -> Result<Option<(Decimal, i64)>> {
    Ok(sqlx::query_as("SELECT balance, revision FROM balances WHERE uid = $1").bind(uid).fetch_optional(pool).await?)
}

pub async fn all_balances(pool: &PgPool) -> Result<Vec<(i64, Decimal, i64)>> {
    Ok(sqlx::query_as("SELECT uid, balance, revision FROM balances ORDER BY uid").fetch_all(pool).await?)
}

/// Sum of charges for an account, for tests and audits.
pub async fn charged_total(pool: &PgPool, uid: i64) -> Result<(Decimal, i64)> {
    let row: (Option<Decimal>, Option<i64>) = sqlx::query_as(
        "SELECT -sum(amount), sum(messages)::bigint FROM ledger_entries WHERE uid = $1 AND kind = 'charge'",
    )
    .bind(uid)
    .fetch_one(pool)
    .await?;
    Ok((row.0.unwrap_or_default(), row.1.unwrap_or_default()))
}
