//! Streams, subjects and durable consumers, as plain data.
//!
//! Every name is derived from a namespace (default `smsfleet`) so that tests
//! run side by side on one NATS server, each in its own namespace, and an
//! operator can run two fleets on one cluster.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Default for Namespace {
    fn default() -> Self {
        Self("smsfleet".to_owned())
    }
}

impl Namespace {
    /// A namespace is a lower-case NATS token: letters, digits and `_`.
    pub fn new(name: &str) -> Option<Self> {
        let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        ok.then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn stream_name(&self, kind: StreamKind) -> String {
        format!("{}_{}", self.0.to_ascii_uppercase(), kind.suffix())
    }

    pub fn subject(&self, kind: StreamKind) -> String {
        format!("{}.{}", self.0, kind.subject_token())
    }

    pub fn account_state_subject(&self, uid: i64) -> String {
        format!("{}.state.account.{uid}", self.0)
    }

    pub fn balance_state_subject(&self, uid: i64) -> String {
        format!("{}.state.balance.{uid}", self.0)
    }

    pub fn rates_state_subject(&self) -> String {
        format!("{}.state.rates", self.0)
    }

    /// Global stop list entry (`digits` without `+`).
    pub fn stop_state_subject(&self, digits: &str) -> String {
        format!("{}.state.stop.{digits}", self.0)
    }

    /// An account's do-not-disturb entry.
    pub fn dnd_state_subject(&self, uid: i64, digits: &str) -> String {
        format!("{}.state.dnd.{uid}.{digits}", self.0)
    }

    /// A phonebook group with its members (for `#CODE` in `pv`).
    pub fn group_state_subject(&self, uid: i64, gpid: i64) -> String {
        format!("{}.state.group.{uid}.{gpid}", self.0)
    }

    pub fn state_filter(&self) -> String {
        format!("{}.state.>", self.0)
    }

    /// The `smslog_id` counter: its last message holds the first id no
    /// block has taken yet.
    pub fn id_counter_subject(&self) -> String {
        format!("{}.ids.smslog", self.0)
    }

    /// What waits for account `uid`'s SMPP receiver binds.
    pub fn smpp_out_subject(&self, uid: i64) -> String {
        format!("{}.smpp.out.{uid}", self.0)
    }

    /// The durable consumer every replica holding a receiver bind of `uid`
    /// pulls from (created at the account's first receiver bind).
    pub fn smpp_out_durable(uid: i64) -> String {
        format!("smpp_out_{uid}")
    }

    /// Slot `n` of a fleet-wide named pool (e.g. the SMPP binds of a
    /// route, `smpp.<route>`); see `smsfleet_bus::SlotLease`.
    pub fn slot_subject(&self, pool: &str, n: u32) -> String {
        format!("{}.lease.slot.{pool}.{n}", self.0)
    }

    pub fn dead_letter_subject(&self, from: StreamKind) -> String {
        format!("{}.dead.{}", self.0, from.subject_token())
    }

    /// A blocked client IP; dots and colons become `_` (NATS subject tokens
    /// cannot hold dots).
    pub fn block_state_subject(&self, ip: &str) -> String {
        let token: String = ip.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        format!("{}.state.block.{token}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    Submit,
    Dispatch,
    Schedule,
    Status,
    Dlr,
    State,
    Lease,
    Dead,
    Incoming,
    Ids,
    SmppOut,
}

impl StreamKind {
    pub const ALL: [StreamKind; 11] = [
        Self::Submit,
        Self::Dispatch,
        Self::Schedule,
        Self::Status,
        Self::Dlr,
        Self::State,
        Self::Lease,
        Self::Dead,
        Self::Incoming,
        Self::Ids,
        Self::SmppOut,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Self::Submit => "SUBMIT",
            Self::Dispatch => "DISPATCH",
            Self::Schedule => "SCHEDULE",
            Self::Status => "STATUS",
            Self::Dlr => "DLR",
            Self::State => "STATE",
            Self::Lease => "LEASE",
            Self::Dead => "DEAD",
            Self::Incoming => "INCOMING",
            Self::Ids => "IDS",
            Self::SmppOut => "SMPP_OUT",
        }
    }

    fn subject_token(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Dispatch => "dispatch",
            Self::Schedule => "schedule",
            Self::Status => "status",
            Self::Dlr => "dlr",
            Self::State => "state",
            Self::Lease => "lease",
            Self::Dead => "dead",
            Self::Incoming => "incoming",
            Self::Ids => "ids",
            Self::SmppOut => "smpp_out",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    /// Fan-out events: kept until every durable consumer has acked. The
    /// server keeps them by age (its limits retention), and smsfleet purges
    /// what every durable has acked (`smsfleet_bus::trim`). Not the server's
    /// interest retention: nats-server 2.9 stops consumers before the stream
    /// on a graceful shutdown, and an interest stream drops (yet
    /// acknowledges) what is published meanwhile (issue 14.1).
    AckedByAll,
    /// Deleted when its one consumer acks (commands owned by one role).
    WorkQueue,
    /// Kept by age and per-subject limits (state snapshots, leases, dead letters).
    Limits,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamSpec {
    pub kind: StreamKind,
    /// Subject pattern relative to the namespace, e.g. `submit` or `state.>`.
    pub subjects: &'static str,
    pub retention: Retention,
    pub max_age_secs: u64,
    /// 0 means unlimited.
    pub max_msgs_per_subject: i64,
    pub duplicate_window_secs: u64,
    /// The payload schema carried on the stream.
    pub schema: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerSpec {
    pub stream: StreamKind,
    pub durable: &'static str,
    /// The role that pulls from it.
    pub role: &'static str,
    pub ack_wait_secs: u64,
    pub max_deliver: i64,
    pub max_ack_pending: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub version: u32,
    pub streams: Vec<StreamSpec>,
    pub consumers: Vec<ConsumerSpec>,
}

const DAY: u64 = 86_400;

/// The longest a receipt can wait for its customer to bind: the SMPP
/// server's configured expiry is capped by it.
pub const SMPP_OUT_MAX_AGE_SECS: u64 = 7 * DAY;

/// How long a delivered message may go without an ack or an in-progress
/// ack before the server redelivers it. Short, so the work of a killed
/// worker comes back within seconds; the bus worker sends in-progress acks
/// while a handler runs, so slow work (an SMSC call) is never redelivered
/// in the middle.
pub const ACK_WAIT_SECS: u64 = 6;

impl Topology {
    pub fn current() -> Self {
        use Retention::*;
        use StreamKind::*;
        let stream = |kind, subjects, retention, max_age_secs, max_msgs_per_subject, schema| StreamSpec {
            kind,
            subjects,
            retention,
            max_age_secs,
            max_msgs_per_subject,
            // The server refuses a duplicate window longer than max_age.
            duplicate_window_secs: if max_age_secs > 0 { max_age_secs.min(120) } else { 120 },
            schema,
        };
        let consumer = |stream, durable, role, ack_wait_secs, max_deliver, max_ack_pending| ConsumerSpec {
            stream,
            durable,
            role,
            ack_wait_secs,
            max_deliver,
            max_ack_pending,
        };
        Topology {
            version: crate::SCHEMA_VERSION,
            streams: vec![
                stream(Submit, "submit", AckedByAll, 7 * DAY, 0, "submit_batch"),
                stream(Dispatch, "dispatch", WorkQueue, 7 * DAY, 0, "dispatch_chunk"),
                stream(Schedule, "schedule", WorkQueue, 400 * DAY, 0, "dispatch_chunk"),
                stream(Status, "status", AckedByAll, 7 * DAY, 0, "status_batch"),
                stream(Dlr, "dlr", WorkQueue, 7 * DAY, 0, "dlr_batch"),
                stream(
                    State,
                    "state.>",
                    Limits,
                    0,
                    1,
                    "account_state | balance_state | rates_state | stop_state | block_state | group_state",
                ),
                stream(Lease, "lease.>", Limits, 30, 1, "lease (empty body)"),
                stream(Dead, "dead.>", Limits, 14 * DAY, 0, "the original payload"),
                // Fan-out, not a work queue: other roles (auto-replies,
                // forwarding) may add their own durable later.
                stream(Incoming, "incoming", AckedByAll, 7 * DAY, 0, "incoming_message"),
                // Id counters: kept forever (a lost counter would reissue
                // ids), the last value per subject is all that matters.
                stream(Ids, "ids.>", Limits, 0, 1, "id_counter"),
                // A work queue with one durable per account (`smpp_out_<uid>`,
                // filter `smpp.out.<uid>`; the filters never overlap): a
                // receipt stays until a customer's deliver_sm_resp acks it,
                // or until max_age. The server drops it earlier when it is
                // older than its configured receipt expiry.
                stream(SmppOut, "smpp.out.>", WorkQueue, SMPP_OUT_MAX_AGE_SECS, 0, "smpp_deliver"),
            ],
            consumers: vec![
                consumer(Submit, "ledger", "ledger", ACK_WAIT_SECS, 20, 20_000),
                consumer(Submit, "projection", "query", ACK_WAIT_SECS, 20, 20_000),
                consumer(Submit, "callbacks", "callbacks", ACK_WAIT_SECS, 20, 20_000),
                consumer(Schedule, "scheduler", "scheduler", ACK_WAIT_SECS, 20, 20_000),
                consumer(Dispatch, "dispatcher", "dispatcher", ACK_WAIT_SECS, 50, 2_000),
                consumer(Status, "projection", "query", ACK_WAIT_SECS, 20, 20_000),
                consumer(Status, "callbacks", "callbacks", ACK_WAIT_SECS, 20, 20_000),
                consumer(Dlr, "dlr", "dlr", ACK_WAIT_SECS, 40, 20_000),
                consumer(Incoming, "projection", "query", ACK_WAIT_SECS, 20, 20_000),
            ],
        }
    }

    pub fn stream(&self, kind: StreamKind) -> Option<&StreamSpec> {
        self.streams.iter().find(|s| s.kind == kind)
    }

    pub fn consumer(&self, stream: StreamKind, durable: &str) -> Option<&ConsumerSpec> {
        self.consumers.iter().find(|c| c.stream == stream && c.durable == durable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_namespace() {
        let ns = Namespace::new("t42").unwrap();
        assert_eq!(ns.stream_name(StreamKind::Submit), "T42_SUBMIT");
        assert_eq!(ns.subject(StreamKind::Dispatch), "t42.dispatch");
        assert_eq!(ns.account_state_subject(7), "t42.state.account.7");
        assert_eq!(ns.subject(StreamKind::Incoming), "t42.incoming");
        assert_eq!(ns.smpp_out_subject(7), "t42.smpp.out.7");
        assert_eq!(ns.stream_name(StreamKind::SmppOut), "T42_SMPP_OUT");
        assert_eq!(crate::services::INCOMING.subject(&ns), "t42.svc.query.incoming");
        assert!(Namespace::new("Bad.Name").is_none());
    }

    #[test]
    fn every_consumer_has_a_stream() {
        let t = Topology::current();
        for c in &t.consumers {
            assert!(t.stream(c.stream).is_some());
        }
    }
}
