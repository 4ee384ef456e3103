//! Internal messages of `op=pv` to `@username`: they go to the other
//! user's inbox through the INCOMING stream (awaiting the PubAck), are not
//! charged and never reach `ds`; their result items keep their place among
//! the numbers' items.

use std::sync::Arc;

use smsfleet_contract::{AccountState, IncomingKind, IncomingMessage, SCHEMA_VERSION, StreamKind};
use smsfleet_domain::clock::now_ms;
use smsfleet_playsms::Node;

use crate::app::App;
use crate::cache::AccountCache;
use crate::playsms::reply::send_failed_item;

/// An internal message to another user's inbox (`@username`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxTarget {
    /// Normalised (lower-case), without the `@`; not yet checked to exist.
    pub username: String,
    /// How many numbers precede it in the request's destinations, so the
    /// result items keep the request's order.
    pub position: usize,
}

/// The `@username` targets of a `pv` that exist, each with its position
/// among the numbers. Unknown users are dropped, as playSMS does; so is
/// the sender itself (also under another spelling).
pub(super) fn resolve(
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
pub(super) async fn send(
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
                send_failed_item("")
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
pub(super) fn interleave(numbers: Vec<Node>, mut ims: Vec<(usize, Node)>) -> Vec<Node> {
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
        let resolved = resolve(&cache, &alice, &targets);
        assert_eq!(resolved.iter().map(|(p, a)| (*p, a.uid)).collect::<Vec<_>>(), vec![(1, 3)]);
    }
}
