//! One module per playSMS op or small family. Each authenticates the
//! caller, reads its parameters, applies the op (over the bus or from the
//! account cache) and returns a [`Payload`](super::reply::Payload) or an
//! [`ApiError`](super::error::ApiError); none builds an envelope.

pub(super) mod account;
pub(super) mod ban;
pub(super) mod cr;
pub(super) mod credit;
pub(super) mod ds;
mod inbox;
pub(super) mod incoming;
pub(super) mod login_key;
pub(super) mod phonebook;
pub(crate) mod pv;
pub(super) mod query;
pub(super) mod stoplist;
pub(super) mod token;

use smsfleet_playsms::Params;

/// A whole-number parameter; absent, empty or unreadable is `None`.
fn int_param(p: &Params, key: &str) -> Option<i64> {
    p.get_nonempty(key).and_then(|v| v.parse().ok())
}

/// A `c` limit: 0 (no limit) when absent or unreadable.
fn limit_param(p: &Params) -> u32 {
    int_param(p, "c").map(|c| c.clamp(0, i64::from(u32::MAX)) as u32).unwrap_or(0)
}

/// A trimmed value, empty when absent.
fn text(p: &Params, key: &str) -> String {
    p.get(key).map(str::trim).unwrap_or("").to_owned()
}

/// A trimmed, non-empty value.
fn optional(p: &Params, key: &str) -> Option<String> {
    p.get(key).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// A truthy playSMS flag: non-empty and not `0`.
fn flag(p: &Params, key: &str) -> bool {
    p.get(key).map(str::trim).is_some_and(|v| !v.is_empty() && v != "0")
}
