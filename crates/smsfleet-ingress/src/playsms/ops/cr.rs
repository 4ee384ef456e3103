//! `op=cr`: the caller's balance, from the ledger's projection through the
//! query role, or from the cache when that cannot answer.

use std::net::IpAddr;

use smsfleet_playsms::{Params, envelope};

use super::credit::balance_of;
use crate::app::App;
use crate::playsms::caller;
use crate::playsms::error::ApiError;
use crate::playsms::reply::Payload;

pub(crate) async fn handle(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    let account = caller::user(app, p, client)?;
    // The cached balance is at most a moment old: better than failing.
    let balance = balance_of(app, account.uid).await.unwrap_or_else(|| app.cache.balance(account.uid));
    Ok(Payload::one("credit", envelope::credit_value(balance.to_f64())))
}
