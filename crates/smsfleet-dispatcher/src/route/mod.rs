//! Upstream routes: where a destination is sent, over which protocol, at
//! what pace, and where it goes when the route is down. Built at start-up
//! (from the routes file, `file.rs`, the `SMSFLEET_ROUTES` shorthand, or by
//! the caller) and again on SIGHUP, so the rest of the dispatcher works with
//! validated values. Each protocol's own settings live in its module.

mod file;
pub(crate) mod http;
mod sim;
mod smpp;

use std::time::Duration;

use smsfleet_contract::{RouteId, split_dlr_callback_url};

use crate::DispatcherError;

pub use file::{load_routes_file, parse_routes_file};
pub use http::{HttpMethod, HttpProfile, HttpSettings};
pub use sim::SimSettings;
pub use smpp::SmppSettings;

/// One upstream route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Recorded in the dispatch log and carried in the report callback;
    /// reports are matched by (route, upstream id), so it must stay stable.
    pub name: RouteId,
    /// Destination prefixes (digits); empty makes this the default route.
    pub prefixes: Vec<String>,
    /// Routes tried in order when this one is down or answers with a
    /// temporary failure (never after an unknown outcome: the message may
    /// be out already).
    pub failover: Vec<RouteId>,
    pub limits: RouteLimits,
    pub protocol: Protocol,
    /// Who the dlr role takes this route's callbacks from.
    pub callback: CallbackSettings,
}

/// A route's callback rules (issue 14.14): the secret the upstream must
/// send with every report and MO, and the addresses it may post from.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallbackSettings {
    /// Read from the environment variable `callback_secret_env` names, so
    /// the route specs themselves hold no secret.
    pub secret: Option<String>,
    /// A playSMS-style allow-list (`10.0.0.0/8,192.168.1.*`); empty: any peer.
    pub allow: String,
}

impl CallbackSettings {
    /// Builds the settings from the route's `callback_secret_env` (resolved
    /// through `env`) and `callback_allow` entries; the error names the field.
    /// The secret travels inside callback URLs the upstream rewrites (Kannel
    /// expands `%` escapes), so it is limited to URL-safe characters.
    pub(crate) fn resolve(
        secret_env: Option<&str>,
        allow: &[&str],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CallbackSettings, String> {
        let secret = match secret_env {
            None => None,
            Some(var) => {
                let secret =
                    env(var).filter(|s| !s.is_empty()).ok_or(format!("callback_secret_env: {var} is not set"))?;
                if !secret.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                    return Err(format!("callback_secret_env: {var} may hold only letters, digits and -._~"));
                }
                Some(secret)
            }
        };
        let allow = allow.iter().map(|a| a.trim()).collect::<Vec<_>>().join(",");
        if !allow.is_empty() && !smsfleet_domain::ipallow::is_valid_list(&allow) {
            return Err("callback_allow: addresses, CIDR ranges or wildcards".to_owned());
        }
        Ok(CallbackSettings { secret, allow })
    }
}

impl std::fmt::Debug for CallbackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = self.secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("CallbackSettings").field("secret", &secret).field("allow", &self.allow).finish()
    }
}

/// How hard the dispatcher may drive one route, per dispatcher process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimits {
    /// Message parts per second (what the upstream counts and charges);
    /// `None` is unlimited.
    pub mps: Option<u32>,
    /// Submit calls in flight at once.
    pub max_in_flight: usize,
    /// Messages per submit call.
    pub batch: usize,
    /// The longest validity a message is given on this route (capped by
    /// its own); `None` leaves the message's own.
    pub validity: Option<Duration>,
}

impl Default for RouteLimits {
    fn default() -> Self {
        Self { mps: None, max_in_flight: 16, batch: 100, validity: None }
    }
}

/// The upstream's protocol and its own settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Protocol {
    /// smsfleet's simulator, over its JSON protocol (`smsfleet_sim_protocol`).
    Sim(SimSettings),
    /// An HTTP gateway (Kannel, Jasmin, another smsfleet, or a template).
    Http(HttpSettings),
    /// An SMSC over SMPP 3.4.
    Smpp(SmppSettings),
}

impl Protocol {
    /// Checks the protocol's own settings; the error names the route and
    /// the field.
    fn validate(&self, route: &str) -> Result<(), String> {
        let result = match self {
            Protocol::Sim(_) => Ok(()),
            Protocol::Http(h) => h.validate(route),
            Protocol::Smpp(s) => s.validate(route).map_err(|e| format!("[route.smpp] {e}")),
        };
        let named = format!("route {route:?}");
        result.map_err(|e| if e.starts_with(&named) { e } else { format!("{named}: {e}") })
    }
}

/// Checks a whole route table: names unique, limits positive, failover
/// lists naming other existing routes, and each protocol's settings. One
/// line per problem is enough; the first one is returned.
pub fn validate_routes(routes: &[Route]) -> Result<(), DispatcherError> {
    let bad = |route: &RouteId, why: String| DispatcherError::Config(format!("route {:?}: {why}", route.as_str()));
    if routes.is_empty() {
        return Err(DispatcherError::Config("at least one route is required".to_owned()));
    }
    for (i, r) in routes.iter().enumerate() {
        if routes[..i].iter().any(|o| o.name == r.name) {
            return Err(bad(&r.name, "name is used twice".to_owned()));
        }
    }
    for r in routes {
        if r.limits.batch == 0 || r.limits.max_in_flight == 0 || r.limits.mps == Some(0) {
            return Err(bad(&r.name, "batch, concurrency and parts_per_second must be > 0".to_owned()));
        }
        if let Some(p) = r.prefixes.iter().find(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(bad(&r.name, format!("prefixes: {p:?} is not a digit prefix")));
        }
        for (j, f) in r.failover.iter().enumerate() {
            if *f == r.name {
                return Err(bad(&r.name, "failover: a route cannot fail over to itself".to_owned()));
            }
            if r.failover[..j].contains(f) {
                return Err(bad(&r.name, format!("failover: {:?} is listed twice", f.as_str())));
            }
            if !routes.iter().any(|o| o.name == *f) {
                return Err(bad(&r.name, format!("failover: no route named {:?}", f.as_str())));
            }
        }
        r.protocol.validate(r.name.as_str()).map_err(DispatcherError::Config)?;
    }
    Ok(())
}

/// Parses `;`-separated route specs (see [`Route::parse`]); empty specs are skipped.
pub fn parse_routes(specs: &str) -> Result<Vec<Route>, DispatcherError> {
    specs.split(';').map(str::trim).filter(|s| !s.is_empty()).map(Route::parse).collect()
}

impl Route {
    /// Parses the `SMSFLEET_ROUTES` shorthand of a simulator route, `key=value`
    /// pairs separated by commas:
    ///
    /// `name=sim,url=http://127.0.0.1:8090/submit,dlr=http://127.0.0.1:8081,prefixes=62|63,mps=500,inflight=16,batch=100,resend=true`
    ///
    /// - `name` (required): letters, digits, `_`, `-`.
    /// - `url` (required): the upstream's `/submit` URL (http or https).
    /// - `dlr` (required): the dlr role's base URL; the full callback URL
    ///   (`…/dlr/<name>`) is accepted too.
    /// - `prefixes`: `|`-separated digit prefixes (a leading `+` is ignored); absent or empty = default route.
    /// - `mps`: message parts per second (> 0); absent = unlimited.
    /// - `inflight`: concurrent submit calls, default 16.
    /// - `batch`: messages per submit, default 100.
    /// - `resend`: whether the upstream dedupes by reference, `true`/`false`, default `true`.
    /// - `callback_secret_env`: the environment variable holding the secret
    ///   the upstream must send with its callbacks (it must be set).
    /// - `callback_allow`: `|`-separated addresses, CIDR ranges or wildcards
    ///   the upstream's callbacks may come from.
    pub fn parse(spec: &str) -> Result<Route, DispatcherError> {
        Route::parse_with_env(spec, &|name| std::env::var(name).ok())
    }

    /// [`Route::parse`] reading `callback_secret_env` through `env`.
    pub fn parse_with_env(spec: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Route, DispatcherError> {
        let bad = |why: String| DispatcherError::Config(format!("route {spec:?}: {why}"));
        let (mut name, mut submit_url, mut dlr_url) = (None, None, None);
        let mut prefixes = Vec::new();
        let mut limits = RouteLimits::default();
        let mut dedupes_by_reference = true;
        let (mut secret_env, mut allow) = (None, Vec::new());
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
                "name" => name = Some(value),
                "url" => submit_url = Some(value),
                "dlr" => dlr_url = Some(value),
                "prefixes" => {
                    prefixes = value
                        .split('|')
                        .map(|p| p.trim().trim_start_matches('+').to_owned())
                        .filter(|p| !p.is_empty())
                        .collect();
                    if prefixes.iter().any(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
                        return Err(bad("prefixes must be digits".to_owned()));
                    }
                }
                "mps" => limits.mps = Some(u32::try_from(number("mps")?).map_err(|_| bad("mps too large".to_owned()))?),
                "inflight" => limits.max_in_flight = number("inflight")?,
                "batch" => limits.batch = number("batch")?,
                "resend" => {
                    dedupes_by_reference =
                        value.parse::<bool>().map_err(|_| bad("resend must be true or false".to_owned()))?
                }
                "callback_secret_env" => secret_env = Some(value),
                "callback_allow" => allow = value.split('|').collect(),
                other => return Err(bad(format!("unknown key {other:?}"))),
            }
        }
        let name = name.filter(|n| !n.is_empty()).ok_or_else(|| bad("name is required".to_owned()))?;
        let callback = CallbackSettings::resolve(secret_env, &allow, env).map_err(bad)?;
        let name =
            RouteId::parse(name).map_err(|_| bad("name may hold only letters, digits, '_' and '-'".to_owned()))?;
        let is_http = |u: &&str| u.starts_with("http://") || u.starts_with("https://");
        let submit_url = submit_url.filter(is_http).ok_or_else(|| bad("url must be an http(s) URL".to_owned()))?;
        let dlr_url = dlr_url.filter(is_http).ok_or_else(|| bad("dlr must be an http(s) URL".to_owned()))?;
        let dlr_base_url = match split_dlr_callback_url(dlr_url) {
            Some((base, id)) if id == name => base,
            Some((_, id)) => return Err(bad(format!("dlr is the callback of route {id}, not of {name}"))),
            None => dlr_url.trim_end_matches('/'),
        };
        let protocol = Protocol::Sim(SimSettings {
            submit_url: submit_url.to_owned(),
            dlr_base_url: dlr_base_url.to_owned(),
            dedupes_by_reference,
        });
        Ok(Route { name, prefixes, failover: Vec::new(), limits, protocol, callback })
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
        Route::parse(&format!("name={name},url=http://u/submit,dlr=http://d,prefixes={prefixes}")).unwrap()
    }

    fn sim(route: &Route) -> &SimSettings {
        let Protocol::Sim(settings) = &route.protocol else { panic!("not a sim route") };
        settings
    }

    #[test]
    fn parses_every_key() {
        let r = Route::parse(
            "name=sim,url=http://127.0.0.1:8090/submit,dlr=http://127.0.0.1:8081,prefixes=62|+63,mps=500,inflight=4,batch=50,resend=false",
        )
        .unwrap();
        assert_eq!(r.name.as_str(), "sim");
        assert_eq!(r.prefixes, vec!["62", "63"]);
        assert_eq!(r.limits, RouteLimits { mps: Some(500), max_in_flight: 4, batch: 50, validity: None });
        assert_eq!(
            sim(&r),
            &SimSettings {
                submit_url: "http://127.0.0.1:8090/submit".to_owned(),
                dlr_base_url: "http://127.0.0.1:8081".to_owned(),
                dedupes_by_reference: false,
            }
        );
    }

    #[test]
    fn callback_rules() {
        let env = |name: &str| (name == "SIM_SECRET").then(|| "s3cret".to_owned());
        let spec = "name=sim,url=http://u/submit,dlr=http://d,callback_secret_env=SIM_SECRET,callback_allow=10.0.0.0/8|192.168.1.*";
        let r = Route::parse_with_env(spec, &env).unwrap();
        assert_eq!(r.callback.secret.as_deref(), Some("s3cret"));
        assert_eq!(r.callback.allow, "10.0.0.0/8,192.168.1.*");
        assert!(!format!("{r:?}").contains("s3cret"));
        let unset = "name=sim,url=http://u/submit,dlr=http://d,callback_secret_env=NOPE";
        assert!(Route::parse_with_env(unset, &env).is_err());
        let bad_list = "name=sim,url=http://u/submit,dlr=http://d,callback_allow=nonsense";
        assert!(Route::parse_with_env(bad_list, &env).is_err());
        assert_eq!(route("sim", "").callback, CallbackSettings::default());
    }

    #[test]
    fn the_old_full_callback_url_still_parses() {
        let full = Route::parse("name=sim,url=http://x/submit,dlr=http://127.0.0.1:8081/dlr/sim").unwrap();
        let base = Route::parse("name=sim,url=http://x/submit,dlr=http://127.0.0.1:8081/").unwrap();
        assert_eq!(full, base);
        assert_eq!(sim(&full).dlr_base_url, "http://127.0.0.1:8081");
        // A callback naming another route would never match its reports.
        assert!(Route::parse("name=a,url=http://x/submit,dlr=http://d/dlr/b").is_err());
    }

    #[test]
    fn defaults_and_errors() {
        let r = Route::parse("name=a,url=http://x/submit,dlr=http://y/dlr/a").unwrap();
        assert!(r.prefixes.is_empty());
        assert_eq!(r.limits, RouteLimits::default());
        assert!(sim(&r).dedupes_by_reference);
        for bad in [
            "url=http://x,dlr=http://y",
            "name=a,dlr=http://y",
            "name=a,url=ftp://x,dlr=http://y",
            "name=a,url=http://x",
            "name=a,url=http://x,dlr=http://y,mps=0",
            "name=a,url=http://x,dlr=http://y,batch=0",
            "name=a,url=http://x,dlr=http://y,prefixes=6a",
            "name=a,url=http://x,dlr=http://y,colour=red",
            "name=a b,url=http://x,dlr=http://y",
            "name=a,url=http://x,dlr=http://y,resend=maybe",
            "name=a,url",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn several_routes_in_one_line() {
        let routes =
            parse_routes(" name=a,url=http://x,dlr=http://y ; ;name=b,url=http://x,dlr=http://y,prefixes=44;").unwrap();
        let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(parse_routes("").unwrap().is_empty());
        assert!(parse_routes("name=a,url=http://x,dlr=http://y;name=b").is_err());
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
