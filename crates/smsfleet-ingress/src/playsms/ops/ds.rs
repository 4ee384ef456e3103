//! `op=ds`: delivery status of the caller's messages, read by the query
//! role over request/reply.

use std::net::IpAddr;

use smsfleet_contract::{DsReply, DsRequest, DsRow};
use smsfleet_playsms::{Node, Params};

use super::{int_param, limit_param};
use crate::app::App;
use crate::playsms::caller;
use crate::playsms::error::ApiError;
use crate::playsms::reply::Payload;

/// When the query role cannot answer.
const ERR_NO_STATUS: u16 = 400;

pub(crate) async fn handle(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    let account = caller::user(app, p, client)?;
    let req = DsRequest {
        uid: account.uid,
        queue: p.get_nonempty("queue").map(str::to_owned),
        src: p.get_nonempty("src").map(str::to_owned),
        dst: p.get_nonempty("dst").map(str::to_owned),
        dt: p.get_nonempty("dt").map(str::to_owned),
        smslog_id: int_param(p, "smslog_id"),
        limit: limit_param(p),
        last: int_param(p, "last"),
    };
    let reply: Result<DsReply, _> = app.bus.request(smsfleet_contract::services::DS, &req, app.query_timeout).await;
    match reply {
        Ok(DsReply::Rows(rows)) => Ok(Payload::List(rows.into_iter().map(row_node).collect())),
        Ok(DsReply::Error(code)) => Err(ApiError::new(code)),
        Err(e) => {
            tracing::error!(error = %e, "ds query failed");
            Err(ApiError::new(ERR_NO_STATUS))
        }
    }
}

fn row_node(r: DsRow) -> Node {
    Node::map()
        .with("smslog_id", r.smslog_id)
        .with("src", r.src)
        .with("dst", r.dst)
        .with("msg", r.msg)
        .with("dt", r.dt)
        .with("update", r.update)
        .with("status", i64::from(r.status))
}
