//! What one submit try's verdicts mean for the send loop: the one place a
//! [`Verdict`] becomes a status (sent, failed) or a retry, and where a
//! retried message is marked as possibly out already.

use crate::upstream::Verdict;

/// The verdicts of one try, sorted by what the loop does next. Messages are
/// indices into the chunk's destinations.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Settlement {
    /// Sent: record the upstream ids (one per part) and report `Sent`.
    pub sent: Vec<(usize, Vec<String>)>,
    /// Failed for good: report `Failed` with the reason.
    pub rejected: Vec<(usize, String)>,
    /// Certainly not sent: may go to the next route or be tried again.
    pub temporary: Vec<(usize, String)>,
    /// May have been sent: only an upstream that de-duplicates by our
    /// reference may get it again; for any other it is failed, once.
    pub unknown: Vec<(usize, String)>,
}

/// Pairs `pending` with `verdicts` (in order). A message without a verdict,
/// or accepted without an upstream id to match its reports by, may be out:
/// it counts as unknown.
pub(crate) fn settle(pending: &[usize], verdicts: Vec<Verdict>) -> Settlement {
    let mut out = Settlement::default();
    let mut verdicts = verdicts.into_iter();
    for &i in pending {
        match verdicts.next().unwrap_or_else(|| Verdict::Unknown { reason: "no verdict".to_owned() }) {
            Verdict::Accepted { upstream_ids } if !upstream_ids.is_empty() => out.sent.push((i, upstream_ids)),
            Verdict::Accepted { .. } => out.unknown.push((i, "accepted without an upstream id".to_owned())),
            Verdict::Rejected { reason } => out.rejected.push((i, reason)),
            Verdict::Temporary { reason } => out.temporary.push((i, reason)),
            Verdict::Unknown { reason } => out.unknown.push((i, reason)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: &str) -> String {
        r.to_owned()
    }

    #[test]
    fn every_verdict_has_its_next_step() {
        let verdicts = vec![
            Verdict::Accepted { upstream_ids: vec![reason("u1"), reason("u2")] },
            Verdict::Rejected { reason: reason("invalid destination") },
            Verdict::Temporary { reason: reason("connection refused") },
            Verdict::Unknown { reason: reason("timeout") },
            Verdict::Accepted { upstream_ids: vec![] },
        ];
        let s = settle(&[10, 11, 12, 13, 14, 15], verdicts);
        assert_eq!(
            s,
            Settlement {
                sent: vec![(10, vec![reason("u1"), reason("u2")])],
                rejected: vec![(11, reason("invalid destination"))],
                temporary: vec![(12, reason("connection refused"))],
                unknown: vec![
                    (13, reason("timeout")),
                    (14, reason("accepted without an upstream id")),
                    (15, reason("no verdict"))
                ],
            }
        );
    }

    #[test]
    fn all_settled_means_nothing_to_retry() {
        let s = settle(&[1], vec![Verdict::Accepted { upstream_ids: vec![reason("u")] }]);
        assert!(s.temporary.is_empty() && s.unknown.is_empty());
    }
}
