//! The one SMPP 3.4 session layer of smsfleet, shared by the dispatcher's
//! upstream binds (client), the customer-facing SMPP server and the
//! simulator's fake SMSC (server side).
//!
//! `rusmpp` is the codec (re-exported so users share its version); this
//! crate owns the session behaviour ([`session`]), binding and reconnecting
//! ([`client`]), accepting binds ([`server`]), and the pure parts: text
//! coding and long messages ([`text`]), delivery receipts and upstream id
//! matching ([`receipt`]), SMPP time formats ([`time`]) and TLV helpers
//! ([`tlv`]).

pub mod client;
pub mod frame;
pub mod receipt;
pub mod server;
pub mod session;
pub mod text;
pub mod time;
pub mod tlv;

pub use rusmpp;

/// A C-string field of at most `N - 1` characters; empty if `s` does not
/// fit (callers check lengths where input enters).
pub fn c_string<const N: usize>(s: &str) -> rusmpp::types::COctetString<1, N> {
    use std::str::FromStr;
    rusmpp::types::COctetString::from_str(s).unwrap_or_else(|_| rusmpp::types::COctetString::empty())
}

/// The spec's name of a command_status (`ESME_RTHROTTLED`), for reasons and
/// metrics labels; unknown values in hex.
pub fn status_name(status: rusmpp::CommandStatus) -> String {
    match status {
        rusmpp::CommandStatus::Other(n) => format!("0x{n:08X}"),
        known => {
            let debug = format!("{known:?}");
            format!("ESME_{}", debug.trim_start_matches("Esme").to_ascii_uppercase())
        }
    }
}
pub use session::{
    BindKind, CloseReason, Inbound, InboundRequest, PendingResponse, Responder, Session, SessionConfig, SessionError,
    SessionHandle, Side,
};
