//! `op=query`: the caller's account, credit (the `cr` rule) and newest ids.

use std::net::IpAddr;

use smsfleet_contract::{LastIdsReply, LastIdsRequest};
use smsfleet_playsms::{Node, Params, envelope};

use super::credit::balance_of;
use crate::app::App;
use crate::playsms::caller;
use crate::playsms::error::ApiError;
use crate::playsms::reply::Payload;

pub(crate) async fn handle(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    let account = caller::user(app, p, client)?;
    let credit = balance_of(app, account.uid).await.unwrap_or_else(|| app.cache.balance(account.uid));
    let req = LastIdsRequest { uid: account.uid };
    let last =
        app.bus.request(smsfleet_contract::services::LAST_IDS, &req, app.query_timeout).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "last ids query failed");
            LastIdsReply::default()
        });
    let status = account.role.code();
    let user = Node::map()
        .with("username", account.username.clone())
        .with("uid", account.uid)
        .with("status", status as i64)
        .with("name", account.name.clone())
        .with("email", account.email.clone())
        .with("mobile", account.mobile.clone())
        .with("credit", envelope::credit_value(credit.to_f64()));
    let last_id = Node::map()
        .with("user_inbox", last.user_inbox)
        .with("user_incoming", last.user_incoming)
        .with("user_outgoing", last.user_outgoing);
    Ok(Payload::one("data", Node::map().with("user", user).with("last_id", last_id)))
}
