//! How much one callback may put in one bus message. A message over the
//! server's max payload is refused by NATS; answering that with 503 would
//! make an upstream retry forever, so the callbacks check first and answer
//! 413 (permanent) for what can never fit.

use smsfleet_bus::Bus;

/// Room left in a message for its headers (schema, trace context, id).
const HEADER_ROOM: usize = 4 * 1024;

/// The most JSON bytes one message may carry on the connected server.
pub(crate) fn payload_budget(bus: &Bus) -> usize {
    bus.client().server_info().max_payload.saturating_sub(HEADER_ROOM)
}

/// The length of `value` as the bus encodes it (JSON).
pub(crate) fn encoded_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |b| b.len())
}
