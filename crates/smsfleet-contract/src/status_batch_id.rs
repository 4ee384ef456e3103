//! Ids of the `StatusBatch`es the dispatcher and the dlr matcher publish.
//!
//! The id is the JetStream message id, so it must be the same for the same
//! outcome in every process and release: a redelivered chunk or a retried
//! report batch that reaches the same verdicts is then dropped as a
//! duplicate, and one that reaches more is published.

use crate::messages::StatusEvent;

/// Which role's work a status batch reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOrigin {
    /// The dispatcher's verdicts on one dispatch chunk (`d.` ids).
    Dispatch,
    /// The dlr matcher's matches of one dlr batch (`r.` ids).
    Report,
}

impl StatusOrigin {
    fn prefix(self) -> &'static str {
        match self {
            StatusOrigin::Dispatch => "d",
            StatusOrigin::Report => "r",
        }
    }
}

/// `<origin>.<source id>.<hash of the (smslog_id, status) pairs>`; the
/// order of `events` does not matter.
pub fn status_batch_id(origin: StatusOrigin, source_id: &str, events: &[StatusEvent]) -> String {
    let mut pairs: Vec<(i64, u8)> = events.iter().map(|e| (e.smslog_id, e.status as u8)).collect();
    pairs.sort_unstable();
    let hash = fnv1a(pairs.iter().flat_map(|(id, s)| id.to_le_bytes().into_iter().chain([*s])));
    format!("{}.{source_id}.{hash:x}", origin.prefix())
}

/// FNV-1a, 64 bit: the same in every process and release, unlike std's
/// `DefaultHasher`.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsfleet_domain::DeliveryStatus as Status;

    fn event(smslog_id: i64, status: Status) -> StatusEvent {
        StatusEvent { smslog_id, uid: 7, status, at_ms: 0, upstream_id: None, reason: None }
    }

    #[test]
    fn fnv_matches_reference_values() {
        assert_eq!(fnv1a(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn id_depends_on_outcome_not_order() {
        let (a, b) = (event(1, Status::Sent), event(2, Status::Failed));
        let id1 = status_batch_id(StatusOrigin::Dispatch, "q.0", &[a.clone(), b.clone()]);
        assert_eq!(id1, status_batch_id(StatusOrigin::Dispatch, "q.0", &[b.clone(), a.clone()]));
        assert!(id1.starts_with("d.q.0."));
        assert_ne!(id1, status_batch_id(StatusOrigin::Dispatch, "q.0", &[a.clone(), event(2, Status::Sent)]));
        assert_ne!(id1, status_batch_id(StatusOrigin::Dispatch, "q.0", &[a]));
    }

    #[test]
    fn origins_do_not_collide() {
        let events = [event(1, Status::Delivered), event(2, Status::Failed)];
        let report = status_batch_id(StatusOrigin::Report, "abc", &events);
        assert!(report.starts_with("r.abc."));
        assert_ne!(report, status_batch_id(StatusOrigin::Dispatch, "abc", &events));
    }
}
