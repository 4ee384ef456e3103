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
pub use session::{
    BindKind, CloseReason, Inbound, InboundRequest, PendingResponse, Responder, Session, SessionConfig, SessionError,
    SessionHandle, Side,
};
