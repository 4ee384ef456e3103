//! Who may post callbacks (issue 14.14). Every endpoint with a `{route}`
//! in its path (reports in any format, MOs) goes through [`guard`], so a
//! new endpoint is covered by being mounted on the router.
//!
//! Per route: an optional shared secret, sent by the upstream in the
//! `X-Smsfleet-Callback-Secret` header or the URL's `callback_secret`
//! query parameter (for upstreams that can only be given a URL), and an
//! optional IP allow-list of the TCP peer. Once the dlr role knows any
//! route, a callback for a route it does not know is refused: forged or
//! stale reports would otherwise be retried by the matcher for minutes.
//! A dlr role given no routes takes every route, as before.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use smsfleet_contract::{CALLBACK_SECRET_HEADER as SECRET_HEADER, CALLBACK_SECRET_PARAM as SECRET_PARAM};

/// One route's callback rules.
#[derive(Clone, Default)]
pub struct RouteCallbacks {
    /// Compared in constant time; `None` asks for none.
    pub secret: Option<String>,
    /// playSMS-style allow-list (`10.0.0.0/8,192.168.1.*`); empty allows any peer.
    pub allow: String,
}

impl fmt::Debug for RouteCallbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteCallbacks")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("allow", &self.allow)
            .finish()
    }
}

/// The rules of every route the dlr role knows; empty takes every route.
#[derive(Debug, Clone, Default)]
pub struct CallbackAuth {
    routes: HashMap<String, RouteCallbacks>,
}

/// Why a callback is refused before it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a route name at all (the handlers' own 400 for malformed input).
    MalformedRoute,
    UnknownRoute,
    BadSecret,
    PeerNotAllowed,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::MalformedRoute => StatusCode::BAD_REQUEST,
            Refusal::UnknownRoute => StatusCode::NOT_FOUND,
            Refusal::BadSecret => StatusCode::UNAUTHORIZED,
            Refusal::PeerNotAllowed => StatusCode::FORBIDDEN,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Refusal::MalformedRoute => "malformed_route",
            Refusal::UnknownRoute => "unknown_route",
            Refusal::BadSecret => "bad_secret",
            Refusal::PeerNotAllowed => "peer_not_allowed",
        }
    }
}

impl CallbackAuth {
    pub fn new(routes: impl IntoIterator<Item = (String, RouteCallbacks)>) -> Self {
        Self { routes: routes.into_iter().collect() }
    }

    /// Whether any route is known (otherwise every callback is taken).
    pub fn is_open(&self) -> bool {
        self.routes.is_empty()
    }

    /// The rule for one callback: the route from its path, the secret it
    /// carried and the TCP peer.
    pub fn check(&self, route: &str, secret: Option<&str>, peer: IpAddr) -> Result<(), Refusal> {
        if smsfleet_contract::RouteId::parse(route).is_err() {
            return Err(Refusal::MalformedRoute);
        }
        if self.is_open() {
            return Ok(());
        }
        let rules = self.routes.get(route).ok_or(Refusal::UnknownRoute)?;
        if !rules.allow.trim().is_empty() && !smsfleet_domain::ipallow::allows(&rules.allow, peer) {
            return Err(Refusal::PeerNotAllowed);
        }
        if let Some(expected) = &rules.secret {
            let given = secret.unwrap_or("");
            if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(Refusal::BadSecret);
            }
        }
        Ok(())
    }
}

/// Puts every route of `router` behind `auth`.
pub fn guard(router: Router, auth: CallbackAuth) -> Router {
    router.route_layer(middleware::from_fn_with_state(Arc::new(auth), check))
}

async fn check(State(auth): State<Arc<CallbackAuth>>, params: RawPathParams, req: Request, next: Next) -> Response {
    let Some(route) = params.iter().find(|(name, _)| *name == "route").map(|(_, value)| value.to_owned()) else {
        // Not a callback (`/healthz`).
        return next.run(req).await;
    };
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let from_header = req.headers().get(SECRET_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let secret = from_header.or_else(|| query_secret(req.uri().query().unwrap_or("")));
    // Without a peer address (never the case behind our server) only an
    // unspecified address is checked, which no allow-list holds.
    let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    match auth.check(&route, secret.as_deref(), peer) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            // Counted, not logged: a flood of forged callbacks must not fill the log.
            metrics::counter!("smsfleet_dlr_callbacks_refused_total", "reason" => refusal.label()).increment(1);
            tracing::debug!(route, %peer, ?refusal, "callback refused");
            let body = serde_json::json!({ "ok": false, "error": refusal.label() });
            (refusal.status(), axum::Json(body)).into_response()
        }
    }
}

fn query_secret(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == SECRET_PARAM).map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn auth() -> CallbackAuth {
        CallbackAuth::new([
            ("open".to_owned(), RouteCallbacks::default()),
            ("secret".to_owned(), RouteCallbacks { secret: Some("s3cret".to_owned()), allow: String::new() }),
            ("fenced".to_owned(), RouteCallbacks { secret: Some("k".to_owned()), allow: "10.0.0.0/8".to_owned() }),
        ])
    }

    #[test]
    fn no_routes_known_takes_everything() {
        assert_eq!(CallbackAuth::default().check("any", None, ip("203.0.113.1")), Ok(()));
    }

    #[test]
    fn unknown_routes_are_refused_once_any_is_known() {
        assert_eq!(auth().check("other", Some("s3cret"), ip("10.0.0.1")), Err(Refusal::UnknownRoute));
        assert_eq!(auth().check("open", None, ip("203.0.113.1")), Ok(()));
    }

    #[test]
    fn a_path_that_is_no_route_name_is_malformed_input() {
        for a in [CallbackAuth::default(), auth()] {
            assert_eq!(a.check("a\r\nX:1", None, ip("10.0.0.1")), Err(Refusal::MalformedRoute));
            assert_eq!(a.check("a b", None, ip("10.0.0.1")), Err(Refusal::MalformedRoute));
        }
    }

    #[test]
    fn the_secret_must_match_exactly() {
        let a = auth();
        assert_eq!(a.check("secret", Some("s3cret"), ip("203.0.113.1")), Ok(()));
        for wrong in [None, Some(""), Some("s3cre"), Some("s3cret "), Some("S3CRET")] {
            assert_eq!(a.check("secret", wrong, ip("203.0.113.1")), Err(Refusal::BadSecret), "{wrong:?}");
        }
    }

    #[test]
    fn the_allow_list_is_checked_before_the_secret() {
        let a = auth();
        assert_eq!(a.check("fenced", Some("k"), ip("10.1.2.3")), Ok(()));
        assert_eq!(a.check("fenced", Some("k"), ip("::ffff:10.1.2.3")), Ok(()));
        assert_eq!(a.check("fenced", Some("k"), ip("192.168.1.1")), Err(Refusal::PeerNotAllowed));
        assert_eq!(a.check("fenced", None, ip("10.1.2.3")), Err(Refusal::BadSecret));
    }

    #[test]
    fn the_secret_is_read_from_the_query() {
        assert_eq!(query_secret("id=1&callback_secret=a%2Bb&status=1").as_deref(), Some("a+b"));
        assert_eq!(query_secret("id=1"), None);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert!(!format!("{:?}", auth()).contains("s3cret"));
    }
}
