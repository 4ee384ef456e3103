//! The seam between the send loop and an upstream SMSC.
//!
//! The send loop (claim, pacing, retries, validity, status batch) talks only
//! to [`Upstream`]: it hands over a batch of messages and gets one
//! [`Verdict`] per message. Whether a failed call can have reached the
//! upstream is the implementation's to say, because only it knows its
//! transport; the loop turns that into "drop the claim" or "keep it".
//! Each protocol of [`Protocol`] has one implementation, built by
//! [`connect`]; the simulator's JSON protocol is the first.

mod sim;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use smsfleet_domain::Encoding;

use crate::route::{Protocol, Route};

/// One message to submit. The content is borrowed from the dispatch chunk,
/// which all its destinations share.
#[derive(Debug, Clone)]
pub struct OutboundMessage<'a> {
    pub smslog_id: i64,
    /// Our reference (the `smslog_id` in decimal): what a de-duplicating
    /// upstream recognises a resend by.
    pub reference: String,
    pub from: &'a str,
    pub to: &'a str,
    /// The whole text, for upstreams that split it themselves.
    pub text: &'a str,
    /// `text` split the way it was charged, for upstreams that take parts
    /// (by `smsfleet_domain::text::split_parts`, which falls back to UCS-2
    /// when `encoding` cannot carry the text).
    pub parts: &'a [String],
    pub encoding: Encoding,
    pub flash: bool,
}

/// The upstream's verdict on one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Taken; the upstream's id of each part, in order (one for an upstream
    /// that takes the whole text). Reports are matched by these ids.
    Accepted { upstream_ids: Vec<String> },
    /// Refused for good; sending again cannot help.
    Rejected { reason: String },
    /// Not sent, certainly (nothing reached the upstream): safe to retry.
    Temporary { reason: String },
    /// May or may not have been sent (timeout, broken connection, an answer
    /// that cannot be read): the claim must stay so a redelivery knows.
    Unknown { reason: String },
}

/// An upstream SMSC as the send loop sees it.
pub trait Upstream: Send + Sync {
    /// One verdict per message of `batch`, in the same order. A failure of
    /// the whole call is the same verdict for every message.
    fn submit<'a>(&'a self, batch: &'a [OutboundMessage<'a>]) -> BoxFuture<'a, Vec<Verdict>>;

    /// Whether the upstream recognises a resend by our reference. Only then
    /// is a message whose earlier attempt has an unknown outcome sent again;
    /// otherwise it is failed (at most once).
    fn dedupes_by_reference(&self) -> bool;
}

/// The upstream of `route`; `client` is the dispatcher's shared HTTP client
/// (its timeouts bound every call).
pub(crate) fn connect(route: &Route, client: &reqwest::Client) -> Arc<dyn Upstream> {
    match &route.protocol {
        Protocol::Sim(settings) => {
            Arc::new(sim::SimUpstream::new(client.clone(), &route.name, settings, route.callback.secret.as_deref()))
        }
    }
}
