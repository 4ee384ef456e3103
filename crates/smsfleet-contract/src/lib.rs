//! The bus contract: every stream, subject, consumer and message schema
//! that smsfleet's roles exchange over NATS JetStream.
//!
//! This crate is data only (serde types and constants) so that any role, the
//! tests and the schema check can depend on it without pulling in a NATS
//! client. `proto/` at the repository root holds the same contract as JSON
//! Schema and a topology file for non-Rust consumers; a test keeps the two
//! identical.

pub mod messages;
pub mod route_id;
pub mod services;
pub mod status_batch_id;
pub mod topology;

pub use messages::*;
pub use route_id::{
    CALLBACK_SECRET_HEADER, CALLBACK_SECRET_PARAM, DLR_BULK_PATH, DLR_CALLBACK_PATH, DLR_JASMIN_PATH, DLR_KANNEL_PATH,
    InvalidRouteId, RouteId, dlr_callback_url, split_dlr_callback_url,
};
pub use services::Service;
pub use status_batch_id::{StatusOrigin, fnv1a, status_batch_id};
pub use topology::{ConsumerSpec, Namespace, Retention, StreamKind, StreamSpec, Topology};

/// Version of every payload on the bus. A consumer rejects (dead-letters) a
/// message with a version it does not know instead of misreading it.
pub const SCHEMA_VERSION: u32 = 1;

/// Header carrying the payload's schema name, e.g. `submit_batch.v1`.
pub const SCHEMA_HEADER: &str = "Smsfleet-Schema";
