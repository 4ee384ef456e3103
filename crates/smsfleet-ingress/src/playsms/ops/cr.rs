//! `op=cr`: the caller's balance, from the ledger's projection through the
//! query role, or from the cache when that cannot answer; and `op=credit`,
//! playSMS's extension op that answers the same balance as bare text.

use std::net::IpAddr;

use axum::response::Response;
use rust_decimal::RoundingStrategy;
use smsfleet_domain::Credit;
use smsfleet_playsms::{Params, envelope};

use super::credit::balance_of;
use crate::app::App;
use crate::playsms::caller;
use crate::playsms::error::ApiError;
use crate::playsms::reply::{self, Payload};

pub(crate) async fn handle(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    let account = caller::user(app, p, client)?;
    Ok(Payload::one("credit", envelope::credit_value(current_balance(app, account.uid).await.to_f64())))
}

/// `op=credit`: the balance as `text/plain` with two decimals (`0.00`).
/// playSMS answers it for the web session's user and `0.00` without one;
/// we have no web sessions, so `u`/`h` name the user, and a caller who
/// fails to authenticate gets `0.00`, never an error. A call without
/// credentials, as playSMS's own clients make it, is no failed login.
pub(crate) async fn credit_text(app: &App, p: &Params, client: IpAddr) -> Response {
    let anonymous = p.get_nonempty("u").is_none() && p.get_nonempty("h").is_none();
    let caller = if anonymous { None } else { caller::user(app, p, client).ok() };
    let balance = match caller {
        Some(account) => current_balance(app, account.uid).await,
        None => Credit::default(),
    };
    reply::plain_text(two_decimals(balance))
}

/// The cached balance is at most a moment old: better than failing.
async fn current_balance(app: &App, uid: i64) -> Credit {
    balance_of(app, uid).await.unwrap_or_else(|| app.cache.balance(uid))
}

/// PHP's `number_format($credit, 2, '.', '')`: half away from zero, no
/// thousands separator.
fn two_decimals(balance: Credit) -> String {
    let rounded = balance.0.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    format!("{rounded:.2}")
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn credit_text_has_two_decimals() {
        let text = |s: &str| two_decimals(Credit::from_str(s).unwrap_or_default());
        assert_eq!(two_decimals(Credit::default()), "0.00");
        assert_eq!(text("87.5"), "87.50");
        assert_eq!(text("1234567.125"), "1234567.13");
        assert_eq!(text("0.004"), "0.00");
        assert_eq!(text("-2.5"), "-2.50");
        assert_eq!(text("100"), "100.00");
    }
}
