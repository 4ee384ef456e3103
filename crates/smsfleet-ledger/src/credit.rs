//! Operator credit changes and balance snapshots.

use rust_decimal::Decimal;
use smsfleet_bus::Bus;
use smsfleet_contract::{BalanceState, CreditChangeReply, CreditChangeRequest, SCHEMA_VERSION};
use smsfleet_store::ledger::{self, NewEntry};
use smsfleet_store::{PgPool, StoreError};

use crate::LedgerError;

pub(crate) fn balance_state(uid: i64, revision: i64, balance: Decimal) -> BalanceState {
    BalanceState { v: SCHEMA_VERSION, uid, revision, balance: balance.normalize().to_string() }
}

pub(crate) async fn publish_balance(bus: &Bus, uid: i64, revision: i64, balance: Decimal) -> Result<(), LedgerError> {
    bus.publish_state(bus.namespace().balance_state_subject(uid), &balance_state(uid, revision, balance)).await?;
    Ok(())
}

/// Republishes every balance so a state stream that lost its snapshots
/// (or a brand-new one) is complete again.
pub(crate) async fn publish_all_balances(bus: &Bus, pool: &PgPool) -> Result<(), LedgerError> {
    for (uid, balance, revision) in ledger::all_balances(pool).await? {
        publish_balance(bus, uid, revision, balance).await?;
    }
    Ok(())
}

/// Decimals a credit change keeps: playSMS stores amounts in a column of
/// three decimals, so `0.0005` adds `0.001` there and here.
const CREDIT_DECIMALS: u32 = 3;

/// `amount` as playSMS stores it: rounded to [`CREDIT_DECIMALS`], halves
/// away from zero (MySQL's rounding of a DECIMAL column).
fn credit_amount(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(CREDIT_DECIMALS, rust_decimal::RoundingStrategy::MidpointAwayFromZero).normalize()
}

/// Adds (`amount > 0`) or deducts (`amount < 0`) credit, rounded as
/// `credit_amount` says, once per `reference`: repeating a call with the
/// same reference changes nothing and returns the current balance, so a
/// CLI or API retry cannot double a top-up. Runs under the same row lock
/// as charging, so it never races a batch. Returns the balance after the
/// change and publishes it.
pub async fn adjust_credit(
    pool: &PgPool,
    bus: &Bus,
    reference: &str,
    uid: i64,
    amount: Decimal,
) -> Result<Decimal, LedgerError> {
    let amount = credit_amount(amount);
    if amount.is_zero() {
        return Err(LedgerError::ZeroAmount);
    }
    let mut tx = pool.begin().await.map_err(StoreError::from)?;
    let locked = ledger::lock_balances(&mut tx, &[uid]).await?;
    let current = locked.get(&uid).cloned().ok_or(LedgerError::UnknownAccount(uid))?;
    let existing = ledger::existing_entries(&mut tx, &[reference.to_owned()]).await?;
    let (balance, revision) = if existing.contains_key(reference) {
        tracing::info!(reference, uid, "credit adjustment already applied");
        (current.balance, current.revision)
    } else {
        let kind = if amount > Decimal::ZERO { "credit_add" } else { "credit_deduct" };
        let entry = NewEntry { reference: reference.to_owned(), uid, kind, amount, messages: 0 };
        ledger::insert_entries(&mut tx, &[entry]).await?;
        let after = current.balance + amount;
        let revisions = ledger::update_balances(&mut tx, &[(uid, after)]).await?;
        let revision = revisions.get(&uid).copied().unwrap_or(current.revision + 1);
        (after, revision)
    };
    tx.commit().await.map_err(StoreError::from)?;
    publish_balance(bus, uid, revision, balance).await?;
    Ok(balance)
}

/// `op=creditadd` / `op=creditdeduct` from an admin, over request/reply.
/// The request's reference makes a retried request a no-op.
pub(crate) async fn change_reply(pool: &PgPool, bus: &Bus, req: &CreditChangeRequest) -> CreditChangeReply {
    let Ok(amount) = req.amount.parse::<Decimal>() else { return CreditChangeReply::Failed };
    let reference = format!("admin:{}", req.reference);
    match adjust_credit(pool, bus, &reference, req.uid, amount).await {
        Ok(balance) => CreditChangeReply::Balance(balance.normalize().to_string()),
        Err(e) => {
            tracing::warn!(error = %e, uid = req.uid, "credit change refused");
            CreditChangeReply::Failed
        }
    }
}
