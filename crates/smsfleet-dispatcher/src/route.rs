//! Upstream routes: where a destination is sent, and at what pace. Parsed
//! once from a one-line spec at start-up so the rest of the dispatcher works
//! with validated values.

use crate::DispatcherError;

/// One upstream SMSC reached over the simulator's HTTP protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Name used in the dispatch log and in the DLR callback path; reports
    /// are matched by (route, upstream id), so it must stay stable.
    pub name: String,
    /// e.g. `http://127.0.0.1:8090/submit`.
    pub submit_url: String,
    /// Where the upstream should post reports, e.g. `http://127.0.0.1:8081/dlr/<name>`.
    pub dlr_url: String,
    /// Destination prefixes (digits); empty makes this the default route.
    pub prefixes: Vec<String>,
    /// Messages per second for this route, per dispatcher process.
    pub mps: Option<u32>,
    /// Concurrent HTTP calls to this route.
    pub max_in_flight: usize,
    /// Messages per HTTP submit.
    pub batch: usize,
    /// The upstream dedupes by `ref`, so a message whose earlier attempt has
    /// an unknown outcome (crash or timeout) may be sent again. Without it
    /// such messages are failed instead (at-most-once).
    pub resend_unconfirmed: bool,
}

impl Route {
    /// Parses `key=value` pairs separated by commas:
    ///
    /// `name=sim,url=http://127.0.0.1:8090/submit,dlr=http://127.0.0.1:8081/dlr/sim,prefixes=62|63,mps=500,inflight=16,batch=100,resend=true`
    ///
    /// - `name` (required): letters, digits, `_`, `-`.
    /// - `url` (required): the upstream's `/submit` URL (http or https).
    /// - `dlr` (required): the callback URL handed to the upstream.
    /// - `prefixes`: `|`-separated digit prefixes (a leading `+` is ignored); absent or empty = default route.
    /// - `mps`: messages per second (> 0); absent = unlimited.
    /// - `inflight`: concurrent HTTP calls, default 16.
    /// - `batch`: messages per submit, default 100.
    /// - `resend`: `true`/`false`, default `true`.
    pub fn parse(spec: &str) -> Result<Route, DispatcherError> {
        let bad = |why: String| DispatcherError::Config(format!("route {spec:?}: {why}"));
        let (mut name, mut submit_url, mut dlr_url) = (None, None, None);
        let mut route = Route {
            name: String::new(),
            submit_url: String::new(),
            dlr_url: String::new(),
            prefixes: Vec::new(),
            mps: None,
            max_in_flight: 16,
            batch: 100,
            resend_unconfirmed: true,
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| bad(format!("{part:?} is not key=value")))?;
            let value = value.trim();
            let number = |what: &str| -> Result<usize, DispatcherError> {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(format!("{what} must be a number > 0")))
            };
            match key.trim() {
                "name" => name = Some(value.to_owned()),
                "url" => submit_url = Some(value.to_owned()),
                "dlr" => dlr_url = Some(value.to_owned()),
                "prefixes" => {
                    route.prefixes = value
                        .split('|')
                        .map(|p| p.trim().trim_start_matches('+').to_owned())
                        .filter(|p| !p.is_empty())
                        .collect();
                    if route.prefixes.iter().any(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
                        return Err(bad("prefixes must be digits".to_owned()));
                    }
                }
                "mps" => route.mps = Some(u32::try_from(number("mps")?).map_err(|_| bad("mps too large".to_owned()))?),
                "inflight" => route.max_in_flight = number("inflight")?,
                "batch" => route.batch = number("batch")?,
                "resend" => {
                    route.resend_unconfirmed =
                        value.parse::<bool>().map_err(|_| bad("resend must be true or false".to_owned()))?
                }
                other => return Err(bad(format!("unknown key {other:?}"))),
            }
        }
        route.name = name.filter(|n| !n.is_empty()).ok_or_else(|| bad("name is required".to_owned()))?;
        if !route.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(bad("name may hold only letters, digits, '_' and '-'".to_owned()));
        }
        let is_http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        route.submit_url =
            submit_url.filter(|u| is_http(u)).ok_or_else(|| bad("url must be an http(s) URL".to_owned()))?;
        route.dlr_url = dlr_url.filter(|u| is_http(u)).ok_or_else(|| bad("dlr must be an http(s) URL".to_owned()))?;
        Ok(route)
    }

    /// Length of the longest prefix of `digits` this route serves; `Some(0)`
    /// for the default route.
    fn match_len(&self, digits: &str) -> Option<usize> {
        if self.prefixes.is_empty() {
            return Some(0);
        }
        self.prefixes.iter().filter(|p| digits.starts_with(p.as_str())).map(String::len).max()
    }
}

/// The route for a destination: the longest matching prefix, else the
/// default route (empty prefixes); `None` when neither exists. Ties go to
/// the route listed first, so the order of the configuration decides.
pub fn choose_route(routes: &[Route], destination: &str) -> Option<usize> {
    let digits: String = destination.chars().filter(char::is_ascii_digit).collect();
    let mut best: Option<(usize, usize)> = None;
    for (i, route) in routes.iter().enumerate() {
        if let Some(len) = route.match_len(&digits)
            && best.is_none_or(|(_, b)| len > b)
        {
            best = Some((i, len));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn route(name: &str, prefixes: &str) -> Route {
        Route::parse(&format!("name={name},url=http://u/submit,dlr=http://d/dlr/{name},prefixes={prefixes}")).unwrap()
    }

    #[test]
    fn parses_every_key() {
        let r = Route::parse(
            "name=sim,url=http://127.0.0.1:8090/submit,dlr=http://127.0.0.1:8081/dlr/sim,prefixes=62|+63,mps=500,inflight=4,batch=50,resend=false",
        )
        .unwrap();
        assert_eq!(r.name, "sim");
        assert_eq!(r.submit_url, "http://127.0.0.1:8090/submit");
        assert_eq!(r.dlr_url, "http://127.0.0.1:8081/dlr/sim");
        assert_eq!(r.prefixes, vec!["62", "63"]);
        assert_eq!(r.mps, Some(500));
        assert_eq!((r.max_in_flight, r.batch, r.resend_unconfirmed), (4, 50, false));
    }

    #[test]
    fn defaults_and_errors() {
        let r = Route::parse("name=a,url=http://x/submit,dlr=http://y/dlr/a").unwrap();
        assert!(r.prefixes.is_empty());
        assert_eq!((r.mps, r.max_in_flight, r.batch, r.resend_unconfirmed), (None, 16, 100, true));
        for bad in [
            "url=http://x,dlr=http://y",
            "name=a,dlr=http://y",
            "name=a,url=ftp://x,dlr=http://y",
            "name=a,url=http://x,dlr=http://y,mps=0",
            "name=a,url=http://x,dlr=http://y,prefixes=6a",
            "name=a,url=http://x,dlr=http://y,colour=red",
            "name=a b,url=http://x,dlr=http://y",
            "name=a,url=http://x,dlr=http://y,resend=maybe",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn longest_prefix_wins_else_default() {
        let routes = vec![route("def", ""), route("id", "62"), route("tsel", "62811|62812"), route("ph", "63")];
        assert_eq!(choose_route(&routes, "+628111234"), Some(2));
        assert_eq!(choose_route(&routes, "628991234"), Some(1));
        assert_eq!(choose_route(&routes, "639991234"), Some(3));
        assert_eq!(choose_route(&routes, "4412345"), Some(0));
        assert_eq!(choose_route(&routes[1..], "4412345"), None);
    }
}
