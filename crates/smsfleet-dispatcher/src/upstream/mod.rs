//! The seam between the send loop and an upstream SMSC.
//!
//! The send loop (claim, pacing, retries, validity, status batch) talks only
//! to [`Upstream`]: it hands over a batch of messages and gets one
//! [`Verdict`] per message. Whether a failed call can have reached the
//! upstream is the implementation's to say, because only it knows its
//! transport; the loop turns that into "drop the claim" or "keep it".
//! Each protocol of [`Protocol`] has one implementation, built by
//! [`connect`]: the simulator's JSON protocol (`sim.rs`) and HTTP gateways
//! (`http.rs`).

mod http;
mod sim;
mod smpp;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use smsfleet_domain::Encoding;

use crate::DispatcherError;
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
    /// When the message stops being worth delivering (Unix ms): its own
    /// validity, capped by the route's.
    pub valid_until_ms: i64,
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

    /// Ends what the upstream keeps open (SMPP binds unbind cleanly); the
    /// dispatcher calls it on shutdown.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The upstream of `route`; `client` is the dispatcher's shared HTTP client
/// (its timeouts bound every call). Fails for settings this build cannot
/// serve; the route table was validated before, so that is rare.
pub(crate) fn connect(
    route: &Route,
    client: &reqwest::Client,
    bus: &smsfleet_bus::Bus,
) -> Result<Arc<dyn Upstream>, DispatcherError> {
    match &route.protocol {
        Protocol::Sim(settings) => {
            Ok(Arc::new(sim::SimUpstream::new(client.clone(), &route.name, settings, route.callback.secret.as_deref())))
        }
        Protocol::Http(settings) => {
            http::HttpUpstream::new(client.clone(), &route.name, settings, route.callback.secret.as_deref())
                .map(|u| Arc::new(u) as Arc<dyn Upstream>)
                .map_err(|e| DispatcherError::Config(e.to_string()))
        }
        Protocol::Smpp(settings) => smpp::SmppUpstream::new(bus, &route.name, settings)
            .map(|u| Arc::new(u) as Arc<dyn Upstream>)
            .map_err(|e| DispatcherError::Config(format!("route {:?}: [route.smpp] {e}", route.name.as_str()))),
    }
}

/// `url` with the route's callback secret as the `callback_secret` query
/// parameter: upstreams are given a callback URL and no headers, so the
/// secret the dlr role checks has to travel in it.
pub(crate) fn with_callback_secret(url: String, secret: Option<&str>) -> String {
    let Some(secret) = secret else { return url };
    let pair = form_urlencoded::Serializer::new(String::new())
        .append_pair(smsfleet_contract::CALLBACK_SECRET_PARAM, secret)
        .finish();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{pair}")
}

/// The verdict on a request that failed in transport. A connect error
/// means no request bytes were written; anything later (timeout, reset
/// mid-response) may have been processed upstream.
pub(crate) fn transport_verdict(e: &reqwest::Error) -> Verdict {
    if e.is_connect() && !e.is_timeout() {
        Verdict::Temporary { reason: e.to_string() }
    } else {
        Verdict::Unknown { reason: e.to_string() }
    }
}
