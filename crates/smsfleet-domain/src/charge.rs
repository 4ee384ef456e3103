//! What a message costs: segments × the rate of the destination's longest
//! matching prefix, or the default rate. The ingress uses this to refuse a
//! send that the balance it sees cannot cover; the ledger uses it to charge.

use serde::{Deserialize, Serialize};

use crate::money::Credit;

/// Prefixes longer than this are ignored, as in playSMS's simplerate.
pub const MAX_PREFIX_DIGITS: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateTable {
    pub default_rate: Credit,
    /// `(prefix digits, rate per segment)`; order does not matter.
    pub prefixes: Vec<(String, Credit)>,
}

impl RateTable {
    /// The per-segment rate for a destination number (`+` and other
    /// non-digits are ignored).
    pub fn rate_for(&self, destination: &str) -> Credit {
        let digits: String = destination.chars().filter(char::is_ascii_digit).take(MAX_PREFIX_DIGITS).collect();
        self.prefixes
            .iter()
            .filter(|(p, _)| !p.is_empty() && digits.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, r)| *r)
            .unwrap_or(self.default_rate)
    }
}

/// Charge for one destination.
pub fn charge_for(rates: &RateTable, destination: &str, segments: u32) -> Credit {
    rates.rate_for(destination) * segments
}

/// The outcome of trying to charge a whole submission against a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeDecision {
    /// Charge `total`; the balance becomes `balance_after`.
    Accept { total: Credit, balance_after: Credit },
    /// The balance cannot cover `total`; nothing is charged.
    Reject { total: Credit, balance: Credit },
}

/// playSMS fails the whole request when the balance cannot cover every
/// destination, and so do we: a half-sent campaign is worse than none.
/// A free message (total zero) is always accepted, even on a negative balance.
pub fn decide(balance: Credit, total: Credit) -> ChargeDecision {
    if total.is_zero() || balance >= total {
        ChargeDecision::Accept { total, balance_after: balance - total }
    } else {
        ChargeDecision::Reject { total, balance }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Credit {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let t = RateTable {
            default_rate: c("1"),
            prefixes: vec![("62".into(), c("0.5")), ("628".into(), c("0.25")), ("1".into(), c("2"))],
        };
        assert_eq!(t.rate_for("+628111"), c("0.25"));
        assert_eq!(t.rate_for("6221"), c("0.5"));
        assert_eq!(t.rate_for("4470"), c("1"));
        assert_eq!(charge_for(&t, "628111", 3), c("0.75"));
    }

    #[test]
    fn whole_submission_is_accepted_or_rejected() {
        assert_eq!(decide(c("10"), c("3")), ChargeDecision::Accept { total: c("3"), balance_after: c("7") });
        assert_eq!(decide(c("2"), c("3")), ChargeDecision::Reject { total: c("3"), balance: c("2") });
        assert!(matches!(decide(c("-5"), c("0")), ChargeDecision::Accept { .. }));
    }
}
