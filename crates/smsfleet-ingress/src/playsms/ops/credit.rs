//! `op=creditview`, `op=creditadd`, `op=creditdeduct` (admins only).
//! Balances are read through the query role and changed by the ledger, the
//! only writer of balances, over request/reply.

use std::net::IpAddr;
use std::time::Duration;

use rust_decimal::Decimal;
use smsfleet_contract::{CreditChangeReply, CreditChangeRequest, CreditRequest};
use smsfleet_domain::{Credit, QueueCode};
use smsfleet_playsms::{Node, Params, float_cast};

use super::optional;
use crate::app::App;
use crate::auth::find_user;
use crate::playsms::caller;
use crate::playsms::error::ApiError;
use crate::playsms::reply::Payload;

const LEDGER_TIMEOUT: Duration = Duration::from_secs(10);

/// The ledger's balance of `uid`; `None` when it cannot be had.
pub(super) async fn balance_of(app: &App, uid: i64) -> Option<Credit> {
    let req = CreditRequest { uid };
    match app.bus.request(smsfleet_contract::services::CREDIT, &req, app.query_timeout).await {
        Ok(r) => r.balance.parse::<Credit>().ok(),
        Err(e) => {
            tracing::error!(error = %e, "credit query failed");
            None
        }
    }
}

/// `op=creditview`: 619 missing; 620 for an unknown user or a zero balance
/// (playSMS treats 0 as "no credit to view").
pub(crate) async fn view(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    caller::admin(app, p, client)?;
    let username = optional(p, "data_username").ok_or(ApiError::new(619))?;
    let account = find_user(&app.cache, &username).ok_or(ApiError::new(620))?;
    match balance_of(app, account.uid).await {
        Some(balance) if !balance.is_zero() => Ok(Payload::one("balance", Node::Float(balance.to_f64()))),
        _ => Err(ApiError::new(620)),
    }
}

/// `op=creditadd` / `op=creditdeduct` through the ledger. As in playSMS,
/// `creditadd` adds the amount as given, so a negative one deducts, and
/// `creditdeduct` always deducts its absolute value; the ledger rounds it
/// to playSMS's three decimals. `amount` echoes PHP's `(float)
/// data_amount` as given; `balance` is the balance after the change (the
/// API documents "updated balance"; playSMS returns its stale cache
/// there). A deduction may take the balance below zero, as in playSMS.
pub(crate) async fn change(app: &App, p: &Params, client: IpAddr, deduct: bool) -> Result<Payload, ApiError> {
    let (missing, failed) = if deduct { (623, 624) } else { (621, 622) };
    caller::admin(app, p, client)?;
    let username = optional(p, "data_username").ok_or(ApiError::new(missing))?;
    let amount = float_cast(p.get("data_amount").unwrap_or(""));
    let given = Decimal::try_from(amount).unwrap_or_default();
    if given.is_zero() {
        return Err(ApiError::new(failed));
    }
    let account = find_user(&app.cache, &username).ok_or(ApiError::new(failed))?;
    let signed = if deduct { -given.abs() } else { given };
    let req = CreditChangeRequest {
        reference: QueueCode::from_bytes(rand::random()).to_string(),
        uid: account.uid,
        amount: signed.normalize().to_string(),
    };
    let reply = app.bus.request(smsfleet_contract::services::LEDGER_CREDIT, &req, LEDGER_TIMEOUT).await;
    match reply {
        Ok(CreditChangeReply::Balance(balance)) => {
            let balance = balance.parse::<Credit>().unwrap_or_default();
            Ok(Payload::Ok(vec![
                ("amount".to_owned(), Node::Float(amount)),
                ("balance".to_owned(), Node::Float(balance.to_f64())),
            ]))
        }
        Ok(CreditChangeReply::Failed) => Err(ApiError::new(failed)),
        Err(e) => {
            tracing::error!(error = %e, "ledger credit request failed");
            Err(ApiError::new(failed))
        }
    }
}
