//! Incoming messages: the `incoming` table (keyword-routed
//! and sandbox messages, `op=in` / `op=sx`) and the `inbox` table (internal
//! messages, `op=ix`). Written by the query role's routing worker; every
//! insert is keyed by the stream message's unique key, so a redelivery
//! changes nothing.

use sqlx::{AssertSqlSafe, PgPool};
use time::OffsetDateTime;

use crate::{Result, text_column};

/// A routed MO or injected message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncoming {
    pub msg_key: String,
    pub uid: i64,
    pub sender: String,
    pub receiver: String,
    /// Empty when no keyword matched.
    pub keyword: String,
    /// The text after the keyword, or the whole text when unhandled.
    pub message: String,
    pub raw: String,
    pub smsc: String,
    pub received_at: OffsetDateTime,
    pub handled: bool,
}

/// An internal message for one user's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInboxMessage {
    pub msg_key: String,
    pub uid: i64,
    pub sender: String,
    pub receiver: String,
    pub msg: String,
    pub received_at: OffsetDateTime,
}

/// Inserts both kinds in one transaction; rows whose key exists are
/// skipped. Returns how many rows were new.
pub async fn insert(pool: &PgPool, incoming: &[NewIncoming], inbox: &[NewInboxMessage]) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let mut added = 0;
    if !incoming.is_empty() {
        let key: Vec<&str> = incoming.iter().map(|r| r.msg_key.as_str()).collect();
        let uid: Vec<i64> = incoming.iter().map(|r| r.uid).collect();
        let sender = text_column(incoming.iter().map(|r| r.sender.as_str()));
        let receiver = text_column(incoming.iter().map(|r| r.receiver.as_str()));
        let keyword = text_column(incoming.iter().map(|r| r.keyword.as_str()));
        let message = text_column(incoming.iter().map(|r| r.message.as_str()));
        let raw = text_column(incoming.iter().map(|r| r.raw.as_str()));
        let smsc: Vec<&str> = incoming.iter().map(|r| r.smsc.as_str()).collect();
        let at: Vec<OffsetDateTime> = incoming.iter().map(|r| r.received_at).collect();
        let handled: Vec<bool> = incoming.iter().map(|r| r.handled).collect();
        let done = sqlx::query(
            "INSERT INTO incoming (msg_key, uid, sender, receiver, keyword, message, raw, smsc, received_at, handled) \
             SELECT k, u, s, r, kw, m, raw, smsc, at, h FROM unnest($1::text[], $2::bigint[], $3::text[], \
               $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::bool[]) \
               WITH ORDINALITY AS t(k, u, s, r, kw, m, raw, smsc, at, h, ord) ORDER BY ord \
             ON CONFLICT (msg_key) DO NOTHING",
        )
        .bind(&key)
        .bind(&uid)
        .bind(&sender)
        .bind(&receiver)
        .bind(&keyword)
        .bind(&message)
        .bind(&raw)
        .bind(&smsc)
        .bind(&at)
        .bind(&handled)
        .execute(&mut *tx)
        .await?;
        added += done.rows_affected();
    }
    if !inbox.is_empty() {
        let key: Vec<&str> = inbox.iter().map(|r| r.msg_key.as_str()).collect();
        let uid: Vec<i64> = inbox.iter().map(|r| r.uid).collect();
        let sender = text_column(inbox.iter().map(|r| r.sender.as_str()));
        let receiver = text_column(inbox.iter().map(|r| r.receiver.as_str()));
        let msg = text_column(inbox.iter().map(|r| r.msg.as_str()));
        let at: Vec<OffsetDateTime> = inbox.iter().map(|r| r.received_at).collect();
        let done = sqlx::query(
            "INSERT INTO inbox (msg_key, uid, sender, receiver, msg, received_at) \
             SELECT k, u, s, r, m, at FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
               $6::timestamptz[]) WITH ORDINALITY AS t(k, u, s, r, m, at, ord) ORDER BY ord \
             ON CONFLICT (msg_key) DO NOTHING",
        )
        .bind(&key)
        .bind(&uid)
        .bind(&sender)
        .bind(&receiver)
        .bind(&msg)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        added += done.rows_affected();
    }
    tx.commit().await?;
    Ok(added)
}

/// Which rows a list request reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncomingScope {
    /// `op=in`: one account's keyword-handled messages, optionally one keyword.
    Handled { uid: i64, keyword: Option<String> },
    /// `op=sx`: every unhandled message.
    Unhandled,
    /// `op=ix`: one account's inbox.
    Inbox { uid: i64 },
}

/// `in` / `ix` / `sx` filters, already interpreted (see the query role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingFilter {
    pub scope: IncomingScope,
    /// LIKE pattern for the sender.
    pub sender_like: Option<String>,
    /// Exact receiver.
    pub receiver: Option<String>,
    /// LIKE pattern for the datetime text.
    pub dt_like: Option<String>,
    pub after_id: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRecord {
    pub in_id: i64,
    pub sender: String,
    pub receiver: String,
    pub keyword: String,
    /// After the keyword (`in`), whole text (`sx`), or the inbox message.
    pub msg: String,
    pub received_at: OffsetDateTime,
}

const DT_TEXT: &str = "to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')";

pub async fn list(pool: &PgPool, f: &IncomingFilter) -> Result<Vec<IncomingRecord>> {
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let mut sql = match &f.scope {
        IncomingScope::Handled { keyword, .. } => {
            let mut s = format!(
                "SELECT in_id, sender, receiver, keyword, message, received_at FROM incoming \
                 WHERE uid = ${} AND handled AND keyword <> ''",
                next()
            );
            if keyword.is_some() {
                s += &format!(" AND keyword = ${}", next());
            }
            s
        }
        IncomingScope::Unhandled => {
            "SELECT in_id, sender, receiver, keyword, raw, received_at FROM incoming WHERE NOT handled".to_owned()
        }
        IncomingScope::Inbox { .. } => format!(
            "SELECT in_id, sender, receiver, '' AS keyword, msg, received_at FROM inbox WHERE uid = ${} AND NOT deleted",
            next()
        ),
    };
    match (&f.sender_like, &f.dt_like) {
        // playSMS ORs its LIKE filters, as in ds.
        (Some(_), Some(_)) => {
            let (a, b) = (next(), next());
            sql += &format!(" AND (sender LIKE ${a} ESCAPE '\\' OR {DT_TEXT} LIKE ${b} ESCAPE '\\')");
        }
        (Some(_), None) => sql += &format!(" AND sender LIKE ${} ESCAPE '\\'", next()),
        (None, Some(_)) => sql += &format!(" AND {DT_TEXT} LIKE ${} ESCAPE '\\'", next()),
        (None, None) => {}
    }
    if f.receiver.is_some() {
        sql += &format!(" AND receiver = ${}", next());
    }
    if f.after_id.is_some() {
        sql += &format!(" AND in_id > ${}", next());
    }
    sql += &format!(" ORDER BY received_at DESC, in_id DESC LIMIT ${}", next());

    let mut q = sqlx::query_as::<_, (i64, String, String, String, String, OffsetDateTime)>(AssertSqlSafe(sql));
    match &f.scope {
        IncomingScope::Handled { uid, keyword } => {
            q = q.bind(*uid);
            if let Some(k) = keyword {
                q = q.bind(k.clone());
            }
        }
        IncomingScope::Unhandled => {}
        IncomingScope::Inbox { uid } => q = q.bind(*uid),
    }
    if let Some(v) = &f.sender_like {
        q = q.bind(v.clone());
    }
    if let Some(v) = &f.dt_like {
        q = q.bind(v.clone());
    }
    if let Some(v) = &f.receiver {
        q = q.bind(v.clone());
    }
    if let Some(v) = f.after_id {
        q = q.bind(v);
    }
    q = q.bind(f.limit);
    let rows = q.fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(in_id, sender, receiver, keyword, msg, received_at)| IncomingRecord {
            in_id,
            sender,
            receiver,
            keyword,
            msg,
            received_at,
        })
        .collect())
}

/// `op=query`'s `user_inbox` and `user_incoming`: the newest inbox id and
/// the newest id of the account's handled incoming messages (0 when none).
pub async fn last_ids(pool: &PgPool, uid: i64) -> Result<(i64, i64)> {
    let (inbox, incoming): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT max(in_id) FROM inbox WHERE uid = $1 AND NOT deleted), \
                (SELECT max(in_id) FROM incoming WHERE uid = $1 AND handled)",
    )
    .bind(uid)
    .fetch_one(pool)
    .await?;
    Ok((inbox.unwrap_or(0), incoming.unwrap_or(0)))
}
