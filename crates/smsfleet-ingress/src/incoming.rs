//! Incoming-message ops: `inject` (admin), the `in` / `ix` / `sx` lists, and
//! the internal messages of `pv` to `@username`.
//!
//! Writes (inject, IMs) are published to the INCOMING stream, awaiting the
//! PubAck, and routed into Postgres by the query role; the lists are read
//! from the query role over request/reply. Nothing here waits on Postgres.

use std::net::IpAddr;
use std::sync::Arc;

use smsfleet_contract::{
    AccountRole, AccountState, IncomingKind, IncomingList, IncomingMessage, IncomingReply, IncomingRequest,
    SCHEMA_VERSION, StreamKind,
};
use smsfleet_playsms::{Node, Params, envelope};

use crate::App;
use crate::cache::AccountCache;
use crate::now_ms;
use crate::playsms::{authenticate, authenticate_admin, failed_item, int_param, now_ts};
use crate::pv::InboxTarget;

/// ERR codes of these ops.
const ERR_AUTH: u16 = 100;
const ERR_EMPTY: u16 = 501;
const ERR_ADMIN: u16 = 600;
const ERR_INJECT: u16 = 601;
const ERR_INJECT_EMPTY: u16 = 602;

/// `op=inject`: an admin hands in a message as if a handset had sent it;
/// it is routed by keyword like an MO.
pub(crate) async fn op_inject(app: &App, p: &Params, client: IpAddr) -> Node {
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(ERR_ADMIN, now_ts());
    }
    let (Some(from), Some(msg)) = (p.get_nonempty("from"), p.get_nonempty("msg")) else {
        return envelope::err(ERR_INJECT_EMPTY, now_ts());
    };
    let Some(id) = app.next_ids(1).and_then(|ids| ids.first().copied()) else {
        return envelope::err(ERR_INJECT, now_ts());
    };
    let message = IncomingMessage {
        v: SCHEMA_VERSION,
        key: format!("inject:{}", id.0),
        kind: IncomingKind::Inject,
        sender: from.to_owned(),
        receiver: p.get_nonempty("recvnum").unwrap_or("").to_owned(),
        text: msg.to_owned(),
        smsc: p.get_nonempty("smsc").unwrap_or("").to_owned(),
        to_uid: None,
        received_at_ms: now_ms(),
        traceparent: smsfleet_telemetry::current_traceparent(),
    };
    match app.bus.publish(app.bus.namespace().subject(StreamKind::Incoming), &message.key, &message).await {
        Ok(_) => {
            metrics::counter!("smsfleet_ingress_incoming_published_total", "kind" => "inject").increment(1);
            envelope::ok(vec![], now_ts())
        }
        Err(e) => {
            tracing::error!(error = %e, "inject not stored");
            envelope::err(ERR_INJECT, now_ts())
        }
    }
}

/// `op=in` / `op=ix` / `op=sx`. `sx` shows every account's unhandled
/// messages, so only admins may read it (others get the empty-list 501,
/// as in playSMS).
pub(crate) async fn op_list(app: &App, p: &Params, client: IpAddr, list: IncomingList) -> Node {
    let Some(account) = authenticate(app, p, client) else { return envelope::err(ERR_AUTH, now_ts()) };
    if list == IncomingList::Sx && account.role != AccountRole::Admin {
        return envelope::err(ERR_EMPTY, now_ts());
    }
    let text = |key: &str| p.get_nonempty(key).map(str::to_owned);
    let req = IncomingRequest {
        list,
        uid: account.uid,
        src: text("src"),
        dst: text("dst"),
        dt: text("dt"),
        kwd: if list == IncomingList::In { text("kwd") } else { None },
        limit: int_param(p, "c").map(|c| c.clamp(0, i64::from(u32::MAX)) as u32).unwrap_or(0),
        last: int_param(p, "last"),
    };
    let reply: Result<IncomingReply, _> =
        app.bus.request(app.bus.namespace().incoming_service(), &req, app.query_timeout).await;
    match reply {
        Ok(IncomingReply::Rows(rows)) => {
            let items = rows
                .into_iter()
                .map(|r| {
                    let item = Node::map().with("id", r.id).with("src", r.src).with("dst", r.dst);
                    if list == IncomingList::In {
                        item.with("kwd", r.kwd).with("msg", r.msg).with("dt", r.dt).with("status", 1i64)
                    } else {
                        item.with("msg", r.msg).with("dt", r.dt)
                    }
                })
                .collect();
            envelope::list(items, now_ts())
        }
        Ok(IncomingReply::Error(code)) => envelope::err(code, now_ts()),
        Err(e) => {
            tracing::error!(error = %e, ?list, "incoming query failed");
            envelope::err(ERR_EMPTY, now_ts())
        }
    }
}

/// The `@username` targets of a `pv` that exist, each with its position
/// among the numbers. Unknown users are dropped, as playSMS does; so is
/// the sender itself (also under another spelling).
pub(crate) fn resolve_inbox(
    cache: &AccountCache,
    sender: &AccountState,
    targets: &[InboxTarget],
) -> Vec<(usize, Arc<AccountState>)> {
    targets
        .iter()
        .filter_map(|t| cache.by_username(&t.username).map(|a| (t.position, a)))
        .filter(|(_, a)| a.uid != sender.uid)
        .collect()
}

/// Publishes one inbox message per target and returns each target's result
/// item with its position. IMs are not charged and never reach `ds`.
pub(crate) async fn send_ims(
    app: &App,
    sender: &AccountState,
    queue: &str,
    text: &str,
    targets: &[(usize, Arc<AccountState>)],
) -> Vec<(usize, Node)> {
    let subject = app.bus.namespace().subject(StreamKind::Incoming);
    let mut items = Vec::with_capacity(targets.len());
    for (position, target) in targets {
        let message = IncomingMessage {
            v: SCHEMA_VERSION,
            key: format!("im:{queue}:{}", target.uid),
            kind: IncomingKind::Inbox,
            sender: sender.username.clone(),
            receiver: String::new(),
            text: text.to_owned(),
            smsc: String::new(),
            to_uid: Some(target.uid),
            received_at_ms: now_ms(),
            traceparent: smsfleet_telemetry::current_traceparent(),
        };
        let item = match app.bus.publish(subject.clone(), &message.key, &message).await {
            Ok(_) => {
                metrics::counter!("smsfleet_ingress_incoming_published_total", "kind" => "inbox").increment(1);
                im_item(queue, &target.username)
            }
            Err(e) => {
                tracing::error!(error = %e, to = %target.username, "inbox message not stored");
                failed_item("")
            }
        };
        items.push((*position, item));
    }
    items
}

/// playSMS's item for an IM: no `smslog_id`, `to` with its `@`.
fn im_item(queue: &str, username: &str) -> Node {
    Node::map()
        .with("status", "OK")
        .with("error", "0")
        .with("smslog_id", Node::Null)
        .with("queue", queue)
        .with("to", format!("@{username}"))
}

/// Puts the IM items among the numbers' items where they stood in `to`.
pub(crate) fn interleave(numbers: Vec<Node>, mut ims: Vec<(usize, Node)>) -> Vec<Node> {
    ims.sort_by_key(|(position, _)| *position);
    let mut ims = ims.into_iter().peekable();
    let mut out = Vec::with_capacity(numbers.len() + ims.len());
    for (index, item) in numbers.into_iter().enumerate() {
        while let Some((_, im)) = ims.next_if(|(position, _)| *position <= index) {
            out.push(im);
        }
        out.push(item);
    }
    out.extend(ims.map(|(_, im)| im));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn im_items_keep_their_place_among_the_numbers() {
        let n = |s: &str| Node::from(s);
        let out = interleave(vec![n("a"), n("b")], vec![(2, n("@z")), (0, n("@x")), (1, n("@y"))]);
        assert_eq!(out, vec![n("@x"), n("a"), n("@y"), n("b"), n("@z")]);
        assert_eq!(interleave(vec![], vec![(0, n("@x"))]), vec![n("@x")]);
        assert_eq!(interleave(vec![n("a")], vec![]), vec![n("a")]);
    }

    #[test]
    fn im_item_has_a_null_smslog_id() {
        assert_eq!(
            smsfleet_playsms::render::to_json(&im_item("q1", "bob")),
            r#"{"status":"OK","error":"0","smslog_id":null,"queue":"q1","to":"@bob"}"#
        );
    }

    #[test]
    fn unknown_users_and_self_are_dropped() {
        let cache = AccountCache::default();
        let alice = crate::test_fixtures::account();
        let bob = AccountState { uid: 3, username: "bob".into(), ..crate::test_fixtures::account() };
        cache.apply(smsfleet_bus::StateEvent::Account(Box::new(alice.clone())));
        cache.apply(smsfleet_bus::StateEvent::Account(Box::new(bob)));
        let targets = [
            InboxTarget { username: "bob".into(), position: 1 },
            InboxTarget { username: "nobody".into(), position: 1 },
            InboxTarget { username: "alice".into(), position: 2 },
        ];
        let resolved = resolve_inbox(&cache, &alice, &targets);
        assert_eq!(resolved.iter().map(|(p, a)| (*p, a.uid)).collect::<Vec<_>>(), vec![(1, 3)]);
    }
}
