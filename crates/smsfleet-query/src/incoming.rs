//! Incoming messages: the routing worker on the INCOMING stream and the
//! `in` / `ix` / `sx` service.
//!
//! Routing follows playSMS's `recvsms_process`: the first word of an MO or
//! injected text, upper-cased, is looked up among the registered keywords;
//! its owner gets the message as handled (`in`, text after the keyword),
//! anything else lands unhandled in the first admin's sandbox (`sx`). An
//! internal message (`pv` to `@user`) goes straight to that user's inbox
//! (`ix`). Rows are keyed by the message's unique key, so redelivery is a
//! no-op. A handled MO of an account with an SMPP password is also queued
//! for the account's SMPP receiver binds (SMPP_OUT).

use std::collections::HashMap;

use smsfleet_bus::{Bus, Delivery, HandlerError};
use smsfleet_contract::{
    IncomingKind, IncomingList, IncomingMessage, IncomingReply, IncomingRequest, IncomingRow, SCHEMA_VERSION,
    SmppDeliver, SmppDeliverBody,
};
use smsfleet_domain::keyword::{keyword_key, split_keyword};
use smsfleet_domain::schedule::format_playsms;
use smsfleet_store::PgPool;
use smsfleet_store::incoming::{
    self as store, IncomingFilter, IncomingRecord, IncomingScope, NewInboxMessage, NewIncoming,
};
use time::OffsetDateTime;

use crate::ds::{dst_pattern, escape_like, non_empty};

/// Where unhandled messages go: playSMS gives them to uid 1, the first admin.
pub const SANDBOX_UID: i64 = 1;

/// playSMS's page size when `c` is 0 or empty.
const DEFAULT_ROWS: i64 = 100;
/// The only error of an empty list.
const ERR_EMPTY: u16 = 501;

/// Where one message is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    Incoming(NewIncoming),
    Inbox(NewInboxMessage),
    /// Cannot be stored (an inbox message without a target).
    Invalid(&'static str),
}

fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Decides where `msg` goes, given the owners of the keywords involved.
pub fn route(msg: &IncomingMessage, owners: &HashMap<String, i64>) -> Routed {
    let received_at = at(msg.received_at_ms);
    match msg.kind {
        IncomingKind::Inbox => match msg.to_uid {
            Some(uid) => Routed::Inbox(NewInboxMessage {
                msg_key: msg.key.clone(),
                uid,
                sender: format!("@{}", msg.sender),
                receiver: String::new(),
                msg: msg.text.clone(),
                received_at,
            }),
            None => Routed::Invalid("inbox message without to_uid"),
        },
        IncomingKind::Mo | IncomingKind::Inject => {
            let (keyword, rest) = split_keyword(&msg.text);
            let (uid, keyword, message, handled) = match owners.get(&keyword) {
                Some(&owner) if !keyword.is_empty() => (owner, keyword, rest.to_owned(), true),
                _ => (SANDBOX_UID, String::new(), msg.text.clone(), false),
            };
            Routed::Incoming(NewIncoming {
                msg_key: msg.key.clone(),
                uid,
                sender: msg.sender.clone(),
                receiver: msg.receiver.clone(),
                keyword,
                message,
                raw: msg.text.clone(),
                smsc: msg.smsc.clone(),
                received_at,
                handled,
            })
        }
    }
}

/// Routes and stores one pulled batch in one transaction.
pub async fn handle_incoming(
    pool: PgPool,
    bus: Bus,
    batch: Vec<Delivery<IncomingMessage>>,
) -> Result<(), HandlerError> {
    let mut keywords: Vec<String> = batch
        .iter()
        .filter(|d| d.body.kind != IncomingKind::Inbox)
        .map(|d| split_keyword(&d.body.text).0)
        .filter(|k| !k.is_empty())
        .collect();
    keywords.sort();
    keywords.dedup();
    let owners =
        smsfleet_store::keywords::owners(&pool, &keywords).await.map_err(|e| HandlerError::Transient(e.to_string()))?;
    let (mut incoming, mut inbox): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
    for d in &batch {
        match route(&d.body, &owners) {
            Routed::Incoming(r) => incoming.push(r),
            Routed::Inbox(r) => inbox.push(r),
            Routed::Invalid(why) if batch.len() == 1 => return Err(HandlerError::Permanent(why.to_owned())),
            // Retried alone, so only the bad message is dead-lettered.
            Routed::Invalid(why) => return Err(HandlerError::Transient(why.to_owned())),
        }
    }
    // A batch may hold one key twice (a publish retried after the
    // duplicate window); keep the first, in stream order, so ids follow
    // arrival order.
    let mut seen = std::collections::HashSet::new();
    incoming.retain(|r: &smsfleet_store::incoming::NewIncoming| seen.insert(r.msg_key.clone()));
    let mut seen = std::collections::HashSet::new();
    inbox.retain(|r: &smsfleet_store::incoming::NewInboxMessage| seen.insert(r.msg_key.clone()));
    let added = store::insert(&pool, &incoming, &inbox).await.map_err(|e| HandlerError::Transient(e.to_string()))?;
    metrics::counter!("smsfleet_query_incoming_stored_total").increment(added);
    to_smpp_customers(&pool, &bus, &incoming).await
}

/// Handled MOs of accounts that bind over SMPP also wait for the account's
/// receiver binds on SMPP_OUT (`mo:<msg_key>`, so a redelivered batch is
/// stored once), in the batch's order. The full text goes, keyword included.
async fn to_smpp_customers(pool: &PgPool, bus: &Bus, incoming: &[NewIncoming]) -> Result<(), HandlerError> {
    let handled: Vec<&NewIncoming> = incoming.iter().filter(|r| r.handled).collect();
    if handled.is_empty() {
        return Ok(());
    }
    let uids: Vec<i64> = handled.iter().map(|r| r.uid).collect();
    let smpp = smsfleet_store::accounts::smpp_enabled(pool, &uids).await.map_err(HandlerError::transient)?;
    let now = smsfleet_domain::clock::now_ms();
    let items: Vec<(String, String, SmppDeliver)> = handled
        .into_iter()
        .filter(|r| smpp.contains(&r.uid))
        .map(|r| {
            let key = format!("mo:{}", r.msg_key);
            let deliver = SmppDeliver {
                v: SCHEMA_VERSION,
                uid: r.uid,
                key: key.clone(),
                source_addr: r.sender.clone(),
                destination_addr: r.receiver.clone(),
                created_at_ms: now,
                body: SmppDeliverBody::Mo { text: r.raw.clone() },
            };
            (bus.namespace().smpp_out_subject(r.uid), key, deliver)
        })
        .collect();
    if !items.is_empty() {
        bus.publish_all(items).await.map_err(HandlerError::transient)?;
    }
    Ok(())
}

/// Interprets a request the way playSMS does (reference section 6).
pub fn incoming_filter(req: &IncomingRequest, max_rows: i64) -> IncomingFilter {
    let max_rows = max_rows.max(1);
    let limit = match i64::from(req.limit) {
        0 => DEFAULT_ROWS.min(max_rows),
        n => n.min(max_rows),
    };
    let scope = match req.list {
        // Keywords are stored upper-case and match whatever case `kwd` has.
        IncomingList::In => {
            IncomingScope::Handled { uid: req.uid, keyword: non_empty(&req.kwd).map(|k| keyword_key(&k)) }
        }
        IncomingList::Ix => IncomingScope::Inbox { uid: req.uid },
        IncomingList::Sx => IncomingScope::Unhandled,
    };
    IncomingFilter {
        scope,
        // playSMS applies ds's `dst` cut to `src` here.
        sender_like: non_empty(&req.src).and_then(|s| dst_pattern(&s)),
        receiver: non_empty(&req.dst),
        dt_like: non_empty(&req.dt).map(|dt| format!("%{}%", escape_like(&dt))),
        after_id: req.last,
        limit,
    }
}

fn to_row(r: IncomingRecord) -> IncomingRow {
    IncomingRow {
        id: r.in_id,
        src: r.sender,
        dst: r.receiver,
        kwd: r.keyword,
        // playSMS replaces `"` with `'` in every listed message.
        msg: r.msg.replace('"', "'"),
        dt: format_playsms(r.received_at),
    }
}

/// Answers one `in` / `ix` / `sx` request. A database error is logged and
/// answered as the empty-list ERR 501.
#[tracing::instrument(skip_all, fields(uid = req.uid, list = ?req.list))]
pub async fn incoming_reply(pool: &PgPool, req: &IncomingRequest, max_rows: i64) -> IncomingReply {
    match store::list(pool, &incoming_filter(req, max_rows)).await {
        Ok(rows) if rows.is_empty() => IncomingReply::Error(ERR_EMPTY),
        Ok(rows) => IncomingReply::Rows(rows.into_iter().map(to_row).collect()),
        Err(e) => {
            tracing::error!(error = %e, "incoming query failed");
            IncomingReply::Error(ERR_EMPTY)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use smsfleet_contract::SCHEMA_VERSION;

    fn msg(kind: IncomingKind, text: &str) -> IncomingMessage {
        IncomingMessage {
            v: SCHEMA_VERSION,
            key: "mo:sim:1".into(),
            kind,
            sender: "+628999000001".into(),
            receiver: "1234".into(),
            text: text.into(),
            smsc: "sim".into(),
            to_uid: None,
            received_at_ms: 1_795_025_600_000,
            traceparent: None,
        }
    }

    fn owners() -> HashMap<String, i64> {
        HashMap::from([("IDOL".to_owned(), 2)])
    }

    #[test]
    fn an_owned_keyword_goes_to_its_owner() {
        let Routed::Incoming(r) = route(&msg(IncomingKind::Mo, "idol I vote for #3"), &owners()) else { panic!() };
        assert_eq!((r.uid, r.keyword.as_str(), r.message.as_str(), r.handled), (2, "IDOL", "I vote for #3", true));
        assert_eq!(
            (r.raw.as_str(), r.sender.as_str(), r.receiver.as_str()),
            ("idol I vote for #3", "+628999000001", "1234")
        );
        assert_eq!(r.received_at, time::macros::datetime!(2026-11-18 18:13:20 UTC));
    }

    #[test]
    fn anything_else_goes_to_the_sandbox_whole() {
        for text in ["random text no keyword", "", "IDOLS vote"] {
            let Routed::Incoming(r) = route(&msg(IncomingKind::Inject, text), &owners()) else { panic!() };
            assert_eq!((r.uid, r.keyword.as_str(), r.message.as_str(), r.handled), (SANDBOX_UID, "", text, false));
        }
    }

    #[test]
    fn inbox_messages_carry_the_sender_username() {
        let mut m = msg(IncomingKind::Inbox, "IDOL hi");
        m.sender = "admin".into();
        assert_eq!(route(&m, &owners()), Routed::Invalid("inbox message without to_uid"));
        m.to_uid = Some(3);
        let Routed::Inbox(r) = route(&m, &owners()) else { panic!() };
        assert_eq!((r.uid, r.sender.as_str(), r.receiver.as_str(), r.msg.as_str()), (3, "@admin", "", "IDOL hi"));
    }

    fn req(list: IncomingList) -> IncomingRequest {
        IncomingRequest { list, uid: 2, src: None, dst: None, dt: None, kwd: None, limit: 0, last: None }
    }

    #[test]
    fn filters_follow_playsms() {
        let f = incoming_filter(
            &IncomingRequest {
                src: Some("08999000002".into()),
                dst: Some("1234".into()),
                dt: Some("2026-11_".into()),
                kwd: Some("IDOL".into()),
                last: Some(1),
                ..req(IncomingList::In)
            },
            10_000,
        );
        assert_eq!(f.scope, IncomingScope::Handled { uid: 2, keyword: Some("IDOL".into()) });
        // Issue 12.13: `kwd` matches regardless of case.
        let vote = incoming_filter(&IncomingRequest { kwd: Some("vote".into()), ..req(IncomingList::In) }, 10_000);
        assert_eq!(vote.scope, IncomingScope::Handled { uid: 2, keyword: Some("VOTE".into()) });
        assert_eq!(f.sender_like.as_deref(), Some("%8999000002"));
        assert_eq!(f.receiver.as_deref(), Some("1234"));
        assert_eq!(f.dt_like.as_deref(), Some("%2026-11\\_%"));
        assert_eq!((f.after_id, f.limit), (Some(1), 100));
        let f = incoming_filter(&IncomingRequest { src: Some("628999000003".into()), ..req(IncomingList::Sx) }, 50);
        assert_eq!((f.scope, f.sender_like.as_deref(), f.limit), (IncomingScope::Unhandled, Some("%999000003"), 50));
        let f = incoming_filter(
            &IncomingRequest { src: Some(String::new()), kwd: Some("X".into()), limit: 7, ..req(IncomingList::Ix) },
            10_000,
        );
        assert_eq!((f.scope, f.sender_like, f.limit), (IncomingScope::Inbox { uid: 2 }, None, 7));
        assert_eq!(
            incoming_filter(&IncomingRequest { limit: u32::MAX, ..req(IncomingList::In) }, 10_000).limit,
            10_000
        );
    }

    #[test]
    fn rows_replace_double_quotes() {
        let row = to_row(IncomingRecord {
            in_id: 2,
            sender: "@admin".into(),
            receiver: String::new(),
            keyword: String::new(),
            msg: r#"inbox "quoted" msg"#.into(),
            received_at: time::macros::datetime!(2026-11-22 18:22:19 UTC),
        });
        assert_eq!((row.msg.as_str(), row.dt.as_str()), ("inbox 'quoted' msg", "2026-11-22 18:22:19"));
    }
}
