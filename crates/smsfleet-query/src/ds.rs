//! `op=ds`: the playSMS outgoing-status query, with playSMS's own filter
//! semantics (including its oddities: the `dst` prefix cut and `dst`/`dt`
//! being OR-ed, see the reference section 5), but with user input bound as
//! LIKE patterns instead of pasted into SQL.

use smsfleet_contract::{DsReply, DsRequest, DsRow};
use smsfleet_domain::schedule::format_playsms;
use smsfleet_store::PgPool;
use smsfleet_store::projection::{self as store, DsFilter, DsRead, DsRecord, QueueState};

/// playSMS's page size when `c` is 0 or empty.
const DEFAULT_ROWS: i64 = 100;

/// ERR codes of an empty `ds` answer.
const ERR_NOTHING: u16 = 400;
const ERR_QUEUE_PENDING: u16 = 401;
const ERR_QUEUE_DONE: u16 = 402;

/// Interprets a request the way playSMS does.
pub fn ds_filter(req: &DsRequest, max_rows: i64) -> DsFilter {
    let max_rows = max_rows.max(1);
    let limit = match i64::from(req.limit) {
        0 => DEFAULT_ROWS.min(max_rows),
        n if n <= max_rows => n,
        _ => max_rows,
    };
    DsFilter {
        uid: req.uid,
        smslog_id: req.smslog_id,
        queue: non_empty(&req.queue),
        src: non_empty(&req.src),
        dst_like: non_empty(&req.dst).and_then(|d| dst_pattern(&d)),
        dt_like: non_empty(&req.dt).map(|dt| format!("%{}%", escape_like(&dt))),
        after_id: req.last,
        limit,
    }
}

/// playSMS assumes a local number starts with `0` and anything else starts
/// with a 3-character country code, cuts that off and matches the rest as a
/// suffix, so `628111000012` and `08111000012` find the same message.
pub(crate) fn dst_pattern(dst: &str) -> Option<String> {
    let cut = if dst.starts_with('0') { 1 } else { 3 };
    let rest: String = dst.chars().skip(cut).collect();
    (!rest.is_empty()).then(|| format!("%{}", escape_like(&rest)))
}

/// Makes user text literal inside a LIKE pattern (`ESCAPE '\'`).
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// PHP treats an empty parameter as absent.
pub(crate) fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned)
}

fn to_row(r: DsRecord) -> DsRow {
    DsRow {
        smslog_id: r.smslog_id,
        src: r.src,
        dst: r.dst,
        // playSMS runs str_replace('"', "'", p_msg) on every item.
        msg: r.msg.replace('"', "'"),
        dt: format_playsms(r.dt),
        update: format_playsms(r.updated_at),
        status: r.status,
    }
}

/// Answers one `ds` request. Never fails: a database error is logged and
/// reported as the generic ERR 400, so one bad moment does not take the
/// service down or leak internals to the client.
#[tracing::instrument(skip_all, fields(uid = req.uid))]
pub async fn ds_reply(pool: &PgPool, req: &DsRequest, max_rows: i64) -> DsReply {
    match store::ds_read(pool, &ds_filter(req, max_rows)).await {
        Ok(read) => answer(read),
        Err(e) => {
            tracing::error!(error = %e, "ds query failed");
            DsReply::Error(ERR_NOTHING)
        }
    }
}

/// Rows if any matched; otherwise the error that says why. Only the
/// caller's own queues are looked up, so another account's queue is
/// indistinguishable from an unknown one.
fn answer(read: DsRead) -> DsReply {
    if !read.records.is_empty() {
        return DsReply::Rows(read.records.into_iter().map(to_row).collect());
    }
    DsReply::Error(match read.queue {
        Some(QueueState::Pending) => ERR_QUEUE_PENDING,
        Some(QueueState::Done) => ERR_QUEUE_DONE,
        Some(QueueState::Unknown) | None => ERR_NOTHING,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn req() -> DsRequest {
        DsRequest { uid: 5, queue: None, src: None, dst: None, dt: None, smslog_id: None, limit: 0, last: None }
    }

    #[test]
    fn dst_drops_a_leading_zero_or_a_country_code() {
        // The reference's prose says `%8111000012` here, but its own rule
        // (and transcript 114: `99901` → `%01`) cuts three characters.
        let f = ds_filter(&DsRequest { dst: Some("628111000012".into()), ..req() }, 10_000);
        assert_eq!(f.dst_like.as_deref(), Some("%111000012"));
        let f = ds_filter(&DsRequest { dst: Some("08111000012".into()), ..req() }, 10_000);
        assert_eq!(f.dst_like.as_deref(), Some("%8111000012"));
        let f = ds_filter(&DsRequest { dst: Some("99901".into()), ..req() }, 10_000);
        assert_eq!(f.dst_like.as_deref(), Some("%01"));
        assert_eq!(ds_filter(&DsRequest { dst: Some("628".into()), ..req() }, 10_000).dst_like, None);
        assert_eq!(ds_filter(&DsRequest { dst: Some("0".into()), ..req() }, 10_000).dst_like, None);
        assert_eq!(ds_filter(&DsRequest { dst: Some(String::new()), ..req() }, 10_000).dst_like, None);
    }

    #[test]
    fn like_metacharacters_are_literal() {
        let f = ds_filter(&DsRequest { dst: Some("62%1_\\".into()), dt: Some("2026-11_%".into()), ..req() }, 100);
        assert_eq!(f.dst_like.as_deref(), Some("%1\\_\\\\"));
        assert_eq!(f.dt_like.as_deref(), Some("%2026-11\\_\\%%"));
    }

    #[test]
    fn exact_filters_pass_through() {
        let f = ds_filter(
            &DsRequest {
                queue: Some("abc".into()),
                src: Some("1234".into()),
                smslog_id: Some(9),
                last: Some(3),
                ..req()
            },
            10_000,
        );
        assert_eq!((f.uid, f.queue.as_deref(), f.src.as_deref()), (5, Some("abc"), Some("1234")));
        assert_eq!((f.smslog_id, f.after_id, f.dt_like, f.dst_like), (Some(9), Some(3), None, None));
        let f = ds_filter(&DsRequest { queue: Some(String::new()), src: Some(String::new()), ..req() }, 10_000);
        assert_eq!((f.queue, f.src), (None, None));
    }

    #[test]
    fn limit_defaults_and_caps() {
        let limit = |c| ds_filter(&DsRequest { limit: c, ..req() }, 10_000).limit;
        assert_eq!(limit(0), 100);
        assert_eq!(limit(1), 1);
        assert_eq!(limit(10_000), 10_000);
        assert_eq!(limit(10_001), 10_000);
        assert_eq!(limit(u32::MAX), 10_000);
    }

    #[test]
    fn an_empty_answer_says_why() {
        let empty = |queue| answer(DsRead { records: vec![], queue });
        assert_eq!(empty(None), DsReply::Error(400));
        assert_eq!(empty(Some(QueueState::Unknown)), DsReply::Error(400));
        assert_eq!(empty(Some(QueueState::Pending)), DsReply::Error(401));
        assert_eq!(empty(Some(QueueState::Done)), DsReply::Error(402));
    }

    #[test]
    fn rows_use_playsms_quotes_and_datetimes() {
        let t = time::macros::datetime!(2026-11-23 01:21:32 UTC);
        let row = to_row(DsRecord {
            smslog_id: 12,
            src: "1234".into(),
            dst: "628111000012".into(),
            msg: r#"say "hi""#.into(),
            dt: t,
            updated_at: t + time::Duration::seconds(1),
            status: 3,
        });
        assert_eq!(row.msg, "say 'hi'");
        assert_eq!((row.dt.as_str(), row.update.as_str()), ("2026-11-23 01:21:32", "2026-11-23 01:21:33"));
    }
}
