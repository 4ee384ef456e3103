//! The state every handler shares, and the login bookkeeping every door's
//! authentication goes through. Handlers and ops import this module; it
//! imports none of them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use smsfleet_bus::{Bus, IdIssuer};
use smsfleet_domain::clock::now_ms;
use smsfleet_secrets::Secrets;

use crate::accept::Acceptor;
use crate::bulk::state::BulkState;
use crate::cache::AccountCache;
use crate::guard::LoginGuard;

/// Request limits every door shares.
pub struct SendLimits {
    pub max_destinations: usize,
    pub max_segments: u32,
    /// Sender used when neither `from` nor the account's sender is set.
    pub default_sender: String,
}

#[derive(Clone)]
pub(crate) struct App {
    pub bus: Bus,
    pub cache: AccountCache,
    pub secrets: Secrets,
    pub acceptor: Acceptor,
    pub ids: IdIssuer,
    pub limits: Arc<SendLimits>,
    pub validity: Duration,
    pub query_timeout: Duration,
    pub bulk: Arc<BulkState>,
    pub guard: Arc<LoginGuard>,
    pub web_root: Arc<str>,
    pub trusted_proxies: Arc<str>,
}

impl App {
    /// The client's address, through trusted reverse proxies.
    pub fn client_ip(&self, peer: SocketAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        // Every header line, in order: together they are one list. A line
        // that is not text counts as a hop that is no address.
        let forwarded: Vec<&str> =
            headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("")).collect();
        smsfleet_domain::ipallow::client_ip(peer.ip(), &forwarded, &self.trusted_proxies)
    }

    /// Whether `client` is blocked for too many failed logins.
    pub fn login_blocked(&self, client: IpAddr) -> bool {
        self.guard.enabled() && self.cache.blocked(client, now_ms())
    }

    /// Counts a login outcome; the failure that crosses the limit blocks
    /// the IP here at once and on every other replica through the state
    /// stream. A success changes nothing (see [`crate::guard`]).
    pub fn record_login(&self, client: IpAddr, ok: bool) {
        if ok {
            return;
        }
        metrics::counter!("smsfleet_ingress_login_failures_total").increment(1);
        let Some(until_ms) = self.guard.failed(client, now_ms()) else { return };
        tracing::warn!(%client, until_ms, "client blocked after repeated failed logins");
        metrics::counter!("smsfleet_ingress_clients_blocked_total").increment(1);
        let state =
            smsfleet_contract::BlockState { v: smsfleet_contract::SCHEMA_VERSION, ip: client.to_string(), until_ms };
        self.cache.apply(smsfleet_bus::StateEvent::Block(state.clone()));
        let bus = self.bus.clone();
        tokio::spawn(async move {
            let subject = bus.namespace().block_state_subject(&state.ip);
            if let Err(e) = bus.publish_state(subject, &state).await {
                tracing::error!(error = %e, "block not published to other replicas");
            }
        });
    }
}
