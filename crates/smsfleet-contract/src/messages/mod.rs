//! Message payloads, one module per stream or service of `proto/README.md`.
//! All are JSON; timestamps are Unix milliseconds and money is a decimal
//! string, so a consumer in any language reads them without a date or
//! float library surprise.

mod accounts;
mod dispatch;
mod dlr;
mod ids;
mod incoming;
mod ledger;
mod query;
mod smpp;
mod state;
mod status;
mod submit;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use accounts::*;
pub use dispatch::*;
pub use dlr::*;
pub use ids::*;
pub use incoming::*;
pub use ledger::*;
pub use query::*;
pub use smpp::*;
pub use state::*;
pub use status::*;
pub use submit::*;
// The payloads use the domain's enums directly; re-exported so a consumer
// of the contract needs no second import.
pub use smsfleet_domain::{DeliveryStatus, Encoding};

/// Any message carried on the bus that has a schema in `proto/schemas`.
pub trait BusMessage: Serialize + for<'de> Deserialize<'de> + JsonSchema {
    /// Schema file stem, e.g. `submit_batch`.
    const SCHEMA: &'static str;

    /// The `v` the payload carries (stream payloads do, service requests
    /// and replies do not), checked by the bus when it decodes.
    fn schema_version(&self) -> Option<u32> {
        None
    }

    /// The trace context the payload itself carries, used when it is
    /// published outside the span that created it (a batching task, a
    /// scheduler releasing it hours later).
    fn trace_parent(&self) -> Option<&str> {
        None
    }
}

/// A payload that carries its own `traceparent` (see
/// [`BusMessage::trace_parent`]).
trait CarriesTrace {
    fn carried_trace(&self) -> Option<&str>;
}

/// The one list of bus messages: each type with its schema name, `v` when
/// it has one, and `trace` when it carries its trace context. It makes both
/// the [`BusMessage`] impls and [`all_schemas`].
macro_rules! bus_messages {
    ($($t:ty => $name:literal $([$($flag:ident),*])?),* $(,)?) => {
        $(impl BusMessage for $t {
            const SCHEMA: &'static str = $name;
            $($(bus_messages!(@$flag);)*)?
        })*

        /// Every schema, for the proto check and the generator.
        pub fn all_schemas() -> Vec<(&'static str, schemars::Schema)> {
            vec![$((<$t as BusMessage>::SCHEMA, schemars::schema_for!($t))),*]
        }
    };
    (@v) => {
        fn schema_version(&self) -> Option<u32> {
            Some(self.v)
        }
    };
    (@trace) => {
        fn trace_parent(&self) -> Option<&str> {
            CarriesTrace::carried_trace(self)
        }
    };
}

bus_messages! {
    SubmitBatch => "submit_batch" [v, trace],
    DispatchChunk => "dispatch_chunk" [v, trace],
    StatusBatch => "status_batch" [v],
    DlrBatch => "dlr_batch" [v],
    AccountState => "account_state" [v],
    BalanceState => "balance_state" [v],
    RatesState => "rates_state" [v],
    StopState => "stop_state" [v],
    BlockState => "block_state" [v],
    GroupState => "group_state" [v],
    IncomingMessage => "incoming_message" [v, trace],
    IdCounter => "id_counter" [v],
    SmppDeliver => "smpp_deliver" [v],
    SmppSessionsRequest => "smpp_sessions_request",
    SmppSessionsReply => "smpp_sessions_reply",
    DsRequest => "ds_request",
    DsReply => "ds_reply",
    CreditRequest => "credit_request",
    CreditReply => "credit_reply",
    LastIdsRequest => "last_ids_request",
    LastIdsReply => "last_ids_reply",
    PhonebookRequest => "phonebook_request",
    PhonebookReply => "phonebook_reply",
    IncomingRequest => "incoming_request",
    IncomingReply => "incoming_reply",
    AccountCommand => "account_command",
    AccountReply => "account_reply",
    CreditChangeRequest => "credit_change_request",
    CreditChangeReply => "credit_change_reply",
}

impl CarriesTrace for SubmitBatch {
    fn carried_trace(&self) -> Option<&str> {
        self.submissions.iter().find_map(|s| s.traceparent.as_deref())
    }
}

impl CarriesTrace for DispatchChunk {
    fn carried_trace(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }
}

impl CarriesTrace for IncomingMessage {
    fn carried_trace(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }
}
