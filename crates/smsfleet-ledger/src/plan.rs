//! The pure part of charging: given the locked balances, the refs already in
//! the ledger and a batch of submissions' totals, decide each submission in
//! order and say which entries and balances to write. Kept free of I/O so
//! the money rules (sequence within a batch, redelivery, free messages) are
//! unit-tested without a database.

use std::collections::HashMap;

use rust_decimal::Decimal;
use smsfleet_domain::Credit;
use smsfleet_domain::charge::{ChargeDecision, decide};
use smsfleet_store::ledger::NewEntry;

pub(crate) const KIND_CHARGE: &str = "charge";
pub(crate) const KIND_REJECTED: &str = "rejected";

/// One submission reduced to what the ledger needs to decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    pub reference: String,
    pub uid: i64,
    pub total: Credit,
    pub messages: i32,
    /// The stream stored it after the ingress's deadline: the client was
    /// answered an error, so it is rejected whatever the balance.
    pub late: bool,
}

/// What became of a submission; a redelivery yields the recorded outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Charged,
    Rejected,
    /// The ref holds an entry of another kind; nothing is published for it.
    Foreign(String),
}

impl Outcome {
    fn from_kind(kind: &str) -> Self {
        match kind {
            KIND_CHARGE => Self::Charged,
            KIND_REJECTED => Self::Rejected,
            other => Self::Foreign(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// New ledger entries, in decision order.
    pub entries: Vec<NewEntry>,
    /// Final balance of every account whose balance changed, by uid.
    pub balances: Vec<(i64, Decimal)>,
    /// One per request, same order.
    pub outcomes: Vec<Outcome>,
    /// Some ref was already decided (in the ledger or earlier in the batch).
    pub replayed: bool,
}

/// Decides `requests` in order. A ref already in `existing` (or decided
/// earlier in this batch, when one submission arrives twice) keeps its
/// outcome and charges nothing. An account without a balance row is
/// rejected without an entry: the entry's foreign key would refuse it and
/// poison the whole batch, and a redelivery decides it the same way anyway.
pub fn plan(balances: &HashMap<i64, Credit>, existing: &HashMap<String, String>, requests: &[ChargeRequest]) -> Plan {
    let mut current: HashMap<i64, Credit> = HashMap::new();
    let mut decided: HashMap<&str, Outcome> = HashMap::new();
    let mut out = Plan::default();
    for req in requests {
        if let Some(kind) = existing.get(&req.reference) {
            out.replayed = true;
            out.outcomes.push(Outcome::from_kind(kind));
            continue;
        }
        if let Some(outcome) = decided.get(req.reference.as_str()) {
            out.replayed = true;
            out.outcomes.push(outcome.clone());
            continue;
        }
        let balance = current.get(&req.uid).copied().or_else(|| balances.get(&req.uid).copied());
        let outcome = match balance {
            None => Outcome::Rejected,
            Some(_) if req.late => {
                out.entries.push(rejected_entry(req));
                Outcome::Rejected
            }
            Some(balance) => match decide(balance, req.total) {
                ChargeDecision::Accept { total, balance_after } => {
                    current.insert(req.uid, balance_after);
                    out.entries.push(NewEntry {
                        reference: req.reference.clone(),
                        uid: req.uid,
                        kind: KIND_CHARGE,
                        amount: -total.0,
                        messages: req.messages,
                    });
                    Outcome::Charged
                }
                ChargeDecision::Reject { .. } => {
                    out.entries.push(rejected_entry(req));
                    Outcome::Rejected
                }
            },
        };
        decided.insert(req.reference.as_str(), outcome.clone());
        out.outcomes.push(outcome);
    }
    let mut changed: Vec<(i64, Decimal)> = current
        .into_iter()
        .filter(|(uid, after)| balances.get(uid) != Some(after))
        .map(|(uid, after)| (uid, after.0))
        .collect();
    changed.sort_unstable_by_key(|(uid, _)| *uid);
    out.balances = changed;
    out
}

/// A rejection is recorded like a charge, so a redelivery (or the same
/// submission in a later batch) keeps the outcome.
fn rejected_entry(req: &ChargeRequest) -> NewEntry {
    NewEntry { reference: req.reference.clone(), uid: req.uid, kind: KIND_REJECTED, amount: Decimal::ZERO, messages: 0 }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn c(s: &str) -> Credit {
        s.parse().unwrap()
    }

    fn req(reference: &str, uid: i64, total: &str) -> ChargeRequest {
        ChargeRequest { reference: reference.into(), uid, total: c(total), messages: 2, late: false }
    }

    #[test]
    fn a_late_submission_is_rejected_with_credit_to_spare_and_keeps_that_outcome() {
        let balances = HashMap::from([(1, c("100"))]);
        let late = ChargeRequest { late: true, ..req("submit:a", 1, "6") };
        let p = plan(&balances, &HashMap::new(), &[late, req("submit:b", 1, "6")]);
        assert_eq!(p.outcomes, vec![Outcome::Rejected, Outcome::Charged]);
        assert_eq!((p.entries[0].kind, p.entries[0].amount, p.entries[0].messages), ("rejected", Decimal::ZERO, 0));
        assert_eq!(p.balances, vec![(1, c("94").0)]);

        // The same submission again, on time this time: still rejected.
        let existing = HashMap::from([("submit:a".to_owned(), "rejected".to_owned())]);
        let p = plan(&balances, &existing, &[req("submit:a", 1, "6")]);
        assert_eq!(p.outcomes, vec![Outcome::Rejected]);
        assert!(p.entries.is_empty() && p.balances.is_empty());
    }

    #[test]
    fn second_submission_of_an_account_is_decided_on_the_reduced_balance() {
        let balances = HashMap::from([(1, c("10"))]);
        let p = plan(&balances, &HashMap::new(), &[req("submit:a", 1, "6"), req("submit:b", 1, "6")]);
        assert_eq!(p.outcomes, vec![Outcome::Charged, Outcome::Rejected]);
        assert_eq!(p.balances, vec![(1, c("4").0)]);
        assert_eq!(p.entries.len(), 2);
        assert_eq!((p.entries[0].kind, p.entries[0].amount, p.entries[0].messages), ("charge", c("-6").0, 2));
        assert_eq!((p.entries[1].kind, p.entries[1].amount, p.entries[1].messages), ("rejected", Decimal::ZERO, 0));
        assert!(!p.replayed);
    }

    #[test]
    fn redelivery_keeps_the_outcome_and_charges_nothing() {
        let balances = HashMap::from([(1, c("4"))]);
        let existing = HashMap::from([("submit:a".to_owned(), "charge".to_owned())]);
        let p = plan(&balances, &existing, &[req("submit:a", 1, "6")]);
        assert_eq!(p.outcomes, vec![Outcome::Charged]);
        assert!(p.entries.is_empty());
        assert!(p.balances.is_empty());
        assert!(p.replayed);

        let existing = HashMap::from([("submit:a".to_owned(), "rejected".to_owned())]);
        let p = plan(&HashMap::from([(1, c("100"))]), &existing, &[req("submit:a", 1, "6")]);
        assert_eq!(p.outcomes, vec![Outcome::Rejected]);
        assert!(p.entries.is_empty() && p.balances.is_empty());
    }

    #[test]
    fn the_same_submission_twice_in_one_batch_is_charged_once() {
        let balances = HashMap::from([(1, c("100"))]);
        let p = plan(&balances, &HashMap::new(), &[req("submit:a", 1, "6"), req("submit:a", 1, "6")]);
        assert_eq!(p.outcomes, vec![Outcome::Charged, Outcome::Charged]);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.balances, vec![(1, c("94").0)]);
    }

    #[test]
    fn zero_rate_is_always_accepted() {
        let balances = HashMap::from([(1, c("-5"))]);
        let p = plan(&balances, &HashMap::new(), &[req("submit:a", 1, "0")]);
        assert_eq!(p.outcomes, vec![Outcome::Charged]);
        assert_eq!(p.entries[0].kind, "charge");
        // The balance did not move, so nothing to write or publish.
        assert!(p.balances.is_empty());
    }

    #[test]
    fn unknown_account_is_rejected_without_an_entry() {
        let p = plan(&HashMap::new(), &HashMap::new(), &[req("submit:a", 9, "1")]);
        assert_eq!(p.outcomes, vec![Outcome::Rejected]);
        assert!(p.entries.is_empty());
    }
}
