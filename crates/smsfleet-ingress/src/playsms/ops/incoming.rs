//! Incoming-message ops: `inject` (admin) and the `in` / `ix` / `sx` lists.
//!
//! An inject is published to the INCOMING stream, awaiting the PubAck, and
//! routed into Postgres by the query role; the lists are read from the
//! query role over request/reply. Nothing here waits on Postgres.

use std::net::IpAddr;

use smsfleet_contract::{
    IncomingKind, IncomingList, IncomingMessage, IncomingReply, IncomingRequest, IncomingRow, SCHEMA_VERSION,
    StreamKind,
};
use smsfleet_domain::account::Role;
use smsfleet_domain::clock::now_ms;
use smsfleet_playsms::{Node, Params};

use super::{int_param, limit_param};
use crate::app::App;
use crate::playsms::caller;
use crate::playsms::error::ApiError;
use crate::playsms::reply::Payload;

/// ERR codes of these ops.
const ERR_EMPTY: u16 = 501;
const ERR_INJECT: u16 = 601;
const ERR_INJECT_EMPTY: u16 = 602;

/// `op=inject`: an admin hands in a message as if a handset had sent it;
/// it is routed by keyword like an MO.
pub(crate) async fn inject(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    caller::admin(app, p, client)?;
    let (Some(from), Some(msg)) = (p.get_nonempty("from"), p.get_nonempty("msg")) else {
        return Err(ApiError::new(ERR_INJECT_EMPTY));
    };
    let id = app.ids.next_ids(1).await.and_then(|ids| ids.first().copied()).ok_or(ApiError::new(ERR_INJECT))?;
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
            Ok(Payload::ok())
        }
        Err(e) => {
            tracing::error!(error = %e, "inject not stored");
            Err(ApiError::new(ERR_INJECT))
        }
    }
}

/// `op=in` / `op=ix` / `op=sx`. `sx` shows every account's unhandled
/// messages, so only admins may read it (others get the empty-list 501,
/// as in playSMS).
pub(crate) async fn list(app: &App, p: &Params, client: IpAddr, list: IncomingList) -> Result<Payload, ApiError> {
    let account = caller::user(app, p, client)?;
    if list == IncomingList::Sx && account.role != Role::Admin {
        return Err(ApiError::new(ERR_EMPTY));
    }
    let text = |key: &str| p.get_nonempty(key).map(str::to_owned);
    let req = IncomingRequest {
        list,
        uid: account.uid,
        src: text("src"),
        dst: text("dst"),
        dt: text("dt"),
        kwd: if list == IncomingList::In { text("kwd") } else { None },
        limit: limit_param(p),
        last: int_param(p, "last"),
    };
    let reply: Result<IncomingReply, _> =
        app.bus.request(smsfleet_contract::services::INCOMING, &req, app.query_timeout).await;
    match reply {
        Ok(IncomingReply::Rows(rows)) => Ok(Payload::List(rows.into_iter().map(|r| row_node(r, list)).collect())),
        Ok(IncomingReply::Error(code)) => Err(ApiError::new(code)),
        Err(e) => {
            tracing::error!(error = %e, ?list, "incoming query failed");
            Err(ApiError::new(ERR_EMPTY))
        }
    }
}

fn row_node(r: IncomingRow, list: IncomingList) -> Node {
    let item = Node::map().with("id", r.id).with("src", r.src).with("dst", r.dst);
    if list == IncomingList::In {
        item.with("kwd", r.kwd).with("msg", r.msg).with("dt", r.dt).with("status", 1i64)
    } else {
        item.with("msg", r.msg).with("dt", r.dt)
    }
}
