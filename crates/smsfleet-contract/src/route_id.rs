//! Route ids and the delivery-report callback built from them.
//!
//! Reports are matched by (route, upstream id), so the route id travels from
//! the dispatcher's configuration to the upstream (inside the callback URL)
//! and back to the dlr role (out of the callback path). Both sides use the
//! definitions here, so the URL is never assembled or taken apart by
//! convention.

use std::fmt;

/// The name of one upstream route: letters, digits, `_` and `-`, so it is
/// safe as a URL path segment and a metrics label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route id {0:?} must be non-empty and hold only letters, digits, '_' and '-'")]
pub struct InvalidRouteId(pub String);

impl RouteId {
    pub fn parse(name: &str) -> Result<RouteId, InvalidRouteId> {
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid { Ok(RouteId(name.to_owned())) } else { Err(InvalidRouteId(name.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Path of the dlr role's report callback, in axum's route syntax; the one
/// segment is the [`RouteId`].
pub const DLR_CALLBACK_PATH: &str = "/dlr/{route}";

/// Report callbacks in the formats of the HTTP gateways the dispatcher
/// speaks to (axum's route syntax; `{route}` is the [`RouteId`], which the
/// dispatcher's callback templates fill in by the same name): Kannel's
/// `dlr-url` (`?id=<our ref>&status=<%d bits>`), Jasmin's DLR post, and the
/// JSON our own callbacks role posts (another smsfleet as upstream).
pub const DLR_KANNEL_PATH: &str = "/dlr/{route}/kannel";
pub const DLR_JASMIN_PATH: &str = "/dlr/{route}/jasmin";
pub const DLR_BULK_PATH: &str = "/dlr/{route}/bulk";

/// What precedes the route id in [`DLR_CALLBACK_PATH`].
const DLR_CALLBACK_PREFIX: &str = "/dlr/";

/// The URL an upstream posts reports of `route` to, given the dlr role's
/// public base URL (e.g. `http://10.0.0.5:8081`, with or without a trailing
/// `/`).
pub fn dlr_callback_url(dlr_base_url: &str, route: &RouteId) -> String {
    format!("{}{DLR_CALLBACK_PREFIX}{route}", dlr_base_url.trim_end_matches('/'))
}

/// Splits a full callback URL into the dlr base URL and the route id, the
/// inverse of [`dlr_callback_url`]; `None` if `url` does not end in a
/// callback path.
pub fn split_dlr_callback_url(url: &str) -> Option<(&str, RouteId)> {
    let at = url.rfind(DLR_CALLBACK_PREFIX)?;
    let route = RouteId::parse(&url[at + DLR_CALLBACK_PREFIX.len()..]).ok()?;
    Some((&url[..at], route))
}

/// The query parameter an upstream that is given only a callback URL
/// sends a route's callback secret in (the dlr role also reads
/// [`CALLBACK_SECRET_HEADER`]).
pub const CALLBACK_SECRET_PARAM: &str = "callback_secret";
/// The header an upstream that can set headers sends the secret in.
pub const CALLBACK_SECRET_HEADER: &str = "x-smsfleet-callback-secret";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn route_ids_are_path_safe() {
        for good in ["sim", "carrier-1", "A_b9"] {
            assert_eq!(RouteId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "a b", "a/b", "ä", "a?x=1"] {
            assert!(RouteId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn callback_url_round_trips() {
        let route = RouteId::parse("carrier-1").unwrap();
        for base in ["http://127.0.0.1:8081", "http://127.0.0.1:8081/", "https://gw.example/smsfleet"] {
            let url = dlr_callback_url(base, &route);
            assert!(!url.contains("//dlr"), "{url}");
            let (back, id) = split_dlr_callback_url(&url).unwrap();
            assert_eq!((back, &id), (base.trim_end_matches('/'), &route));
        }
        assert_eq!(dlr_callback_url("http://h:1", &route), "http://h:1/dlr/carrier-1");
        assert_eq!(DLR_CALLBACK_PATH.replace("{route}", route.as_str()), "/dlr/carrier-1");
        assert!(split_dlr_callback_url("http://h:1/reports").is_none());
        assert!(split_dlr_callback_url("http://h:1/dlr/").is_none());
        assert!(split_dlr_callback_url("http://h:1/dlr/a/b").is_none());
    }
}
