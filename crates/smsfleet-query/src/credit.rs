//! `op=cr`: the caller's spendable credit, read from the ledger's balance
//! row (the ledger is the only writer; we only read).

use rust_decimal::Decimal;
use smsfleet_contract::{CreditReply, CreditRequest};
use smsfleet_store::PgPool;

/// Answers one `cr` request. An account without a balance row has nothing
/// to spend, so it reads "0" like playSMS's zero credit. The reply type has
/// no error variant, so a database error is logged and also answered "0":
/// the ingress gets a prompt answer instead of a timeout.
#[tracing::instrument(skip_all, fields(uid = req.uid))]
pub async fn credit_reply(pool: &PgPool, req: &CreditRequest) -> CreditReply {
    let balance = match smsfleet_store::ledger::balance(pool, req.uid).await {
        Ok(b) => b.map(|(balance, _revision)| balance).unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, "balance lookup failed");
            Decimal::ZERO
        }
    };
    CreditReply { balance: format_balance(balance) }
}

/// NUMERIC arithmetic leaves trailing zeros (`12.500`); clients compare
/// the text, so it is normalised, and zero is exactly "0".
fn format_balance(d: Decimal) -> String {
    if d.is_zero() { "0".to_owned() } else { d.normalize().to_string() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::str::FromStr;

    use super::*;

    #[test]
    fn balances_are_plain_decimal_text() {
        assert_eq!(format_balance(Decimal::from_str("0.000").unwrap()), "0");
        assert_eq!(format_balance(Decimal::from_str("12.500").unwrap()), "12.5");
        assert_eq!(format_balance(Decimal::from_str("-3").unwrap()), "-3");
        assert_eq!(format_balance(Decimal::from_str("100").unwrap()), "100");
    }
}
