//! The pure part of charging: given the locked balances, the refs already in
//! the ledger and a batch of submissions' totals, decide each submission in
//! order and say which entries and balances to write. Kept free of I/O so
//! the money rules (sequence within a batch, redelivery, free messages,
//! subusers spending their parent's credit) are unit-tested without a
//! database.

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
    /// The parent whose credit a subuser spends too (reseller billing).
    pub parent: Option<i64>,
    pub total: Credit,
    pub messages: i32,
    /// The stream stored it after the ingress's deadline: the client was
    /// answered an error, so it is rejected whatever the balance.
    pub late: bool,
}

/// The ref of the parent's entry for a subuser's charge `reference`. Only
/// the subuser's ref decides a redelivery; both are written in one
/// transaction, so neither exists without the other.
pub fn parent_reference(reference: &str) -> String {
    format!("{reference}:parent")
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
/// outcome and charges nothing. A request with a parent is charged only
/// when both balances cover it, and then to both. An account (or parent)
/// without a balance row is rejected without an entry: the entry's foreign
/// key would refuse it and poison the whole batch, and a redelivery
/// decides it the same way anyway.
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
        let payers: Vec<(i64, String)> = std::iter::once((req.uid, req.reference.clone()))
            .chain(req.parent.map(|p| (p, parent_reference(&req.reference))))
            .collect();
        let decisions: Option<Vec<ChargeDecision>> = payers
            .iter()
            .map(|(uid, _)| current.get(uid).or_else(|| balances.get(uid)).map(|b| decide(*b, req.total)))
            .collect();
        let outcome = match decisions {
            None => Outcome::Rejected,
            Some(_) if req.late => {
                out.entries.push(rejected_entry(req));
                Outcome::Rejected
            }
            Some(decisions) if decisions.iter().all(|d| matches!(d, ChargeDecision::Accept { .. })) => {
                for ((uid, reference), decision) in payers.into_iter().zip(decisions) {
                    let ChargeDecision::Accept { total, balance_after } = decision else { continue };
                    // A free message moves no balance: the parent needs no entry.
                    if uid != req.uid && total.is_zero() {
                        continue;
                    }
                    current.insert(uid, balance_after);
                    out.entries.push(NewEntry {
                        reference,
                        uid,
                        kind: KIND_CHARGE,
                        amount: -total.0,
                        messages: req.messages,
                    });
                }
                Outcome::Charged
            }
            Some(_) => {
                out.entries.push(rejected_entry(req));
                Outcome::Rejected
            }
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
        ChargeRequest { reference: reference.into(), uid, parent: None, total: c(total), messages: 2, late: false }
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

    fn sub_req(reference: &str, uid: i64, parent: i64, total: &str) -> ChargeRequest {
        ChargeRequest { parent: Some(parent), ..req(reference, uid, total) }
    }

    #[test]
    fn a_subuser_charge_lowers_its_parents_balance_too() {
        let balances = HashMap::from([(1, c("10")), (2, c("20"))]);
        let p = plan(&balances, &HashMap::new(), &[sub_req("submit:a", 2, 1, "6"), req("submit:b", 1, "3")]);
        assert_eq!(p.outcomes, vec![Outcome::Charged, Outcome::Charged]);
        assert_eq!(p.balances, vec![(1, c("1").0), (2, c("14").0)]);
        let entries: Vec<_> = p.entries.iter().map(|e| (e.reference.as_str(), e.uid, e.kind, e.amount)).collect();
        assert_eq!(
            entries,
            vec![
                ("submit:a", 2, "charge", c("-6").0),
                ("submit:a:parent", 1, "charge", c("-6").0),
                ("submit:b", 1, "charge", c("-3").0),
            ]
        );
    }

    #[test]
    fn a_parent_without_credit_refuses_its_subusers_send() {
        let balances = HashMap::from([(1, c("5")), (2, c("100"))]);
        let p = plan(&balances, &HashMap::new(), &[sub_req("submit:a", 2, 1, "6")]);
        assert_eq!(p.outcomes, vec![Outcome::Rejected]);
        assert!(p.balances.is_empty());
        assert_eq!((p.entries.len(), p.entries[0].uid, p.entries[0].kind), (1, 2, "rejected"));
        // Nor does the parent's credit stand in for the subuser's.
        let balances = HashMap::from([(1, c("100")), (2, c("5"))]);
        let p = plan(&balances, &HashMap::new(), &[sub_req("submit:a", 2, 1, "6")]);
        assert_eq!(p.outcomes, vec![Outcome::Rejected]);
        // A parent without a balance row: rejected without an entry.
        let p = plan(&HashMap::from([(2, c("100"))]), &HashMap::new(), &[sub_req("submit:a", 2, 1, "6")]);
        assert_eq!(p.outcomes, vec![Outcome::Rejected]);
        assert!(p.entries.is_empty());
    }

    #[test]
    fn a_redelivered_subuser_charge_charges_neither_again() {
        let balances = HashMap::from([(1, c("10")), (2, c("20"))]);
        let existing = HashMap::from([("submit:a".to_owned(), "charge".to_owned())]);
        let p = plan(&balances, &existing, &[sub_req("submit:a", 2, 1, "6"), sub_req("submit:a", 2, 1, "6")]);
        assert_eq!(p.outcomes, vec![Outcome::Charged, Outcome::Charged]);
        assert!(p.entries.is_empty() && p.balances.is_empty() && p.replayed);
        // Twice in one batch: each balance charged once.
        let p = plan(&balances, &HashMap::new(), &[sub_req("submit:b", 2, 1, "6"), sub_req("submit:b", 2, 1, "6")]);
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.balances, vec![(1, c("4").0), (2, c("14").0)]);
    }

    #[test]
    fn a_free_subuser_message_writes_no_parent_entry() {
        let balances = HashMap::from([(1, c("-5")), (2, c("0"))]);
        let p = plan(&balances, &HashMap::new(), &[sub_req("submit:a", 2, 1, "0")]);
        assert_eq!(p.outcomes, vec![Outcome::Charged]);
        assert_eq!(p.entries.len(), 1);
        assert!(p.balances.is_empty());
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
