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
    /// To try again.
    pub retry: Vec<usize>,
    /// Those of `retry` this try may have delivered: their claims must stay
    /// even if no later try gets through.
    pub maybe_reached: Vec<usize>,
    /// Why the first of `retry` is retried, for the log.
    pub retry_reason: Option<String>,
}

/// Pairs `pending` with `verdicts` (in order). A message without a verdict,
/// or accepted without an upstream id to match its reports by, may be out:
/// it counts as unknown.
pub(crate) fn settle(pending: &[usize], verdicts: Vec<Verdict>) -> Settlement {
    let mut out = Settlement::default();
    let mut verdicts = verdicts.into_iter();
    for &i in pending {
        let verdict = verdicts.next().unwrap_or_else(|| Verdict::Unknown { reason: "no verdict".to_owned() });
        let retry_reason = match verdict {
            Verdict::Accepted { upstream_ids } if !upstream_ids.is_empty() => {
                out.sent.push((i, upstream_ids));
                continue;
            }
            Verdict::Accepted { .. } => {
                out.maybe_reached.push(i);
                "accepted without an upstream id".to_owned()
            }
            Verdict::Rejected { reason } => {
                out.rejected.push((i, reason));
                continue;
            }
            Verdict::Temporary { reason } => reason,
            Verdict::Unknown { reason } => {
                out.maybe_reached.push(i);
                reason
            }
        };
        out.retry.push(i);
        out.retry_reason.get_or_insert(retry_reason);
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
                retry: vec![12, 13, 14, 15],
                maybe_reached: vec![13, 14, 15],
                retry_reason: Some(reason("connection refused")),
            }
        );
    }

    #[test]
    fn all_settled_means_nothing_to_retry() {
        let s = settle(&[1], vec![Verdict::Accepted { upstream_ids: vec![reason("u")] }]);
        assert!(s.retry.is_empty() && s.maybe_reached.is_empty() && s.retry_reason.is_none());
    }
}
