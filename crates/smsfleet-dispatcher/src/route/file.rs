//! The routes file (`SMSFLEET_ROUTES_FILE`): TOML, one `[[route]]` table per
//! route with its protocol's own table (`[route.http]`, `[route.smpp]`,
//! `[route.sim]`). It is read at start and on SIGHUP, so a mistake must
//! stop a start (or be refused by a reload) with one line naming the route
//! and the field; every table therefore refuses unknown fields, and each
//! route's tables are read one at a time to know where an error is.
//! `deploy/routes.example.toml` shows every field.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use smsfleet_contract::RouteId;

use super::http::HttpTable;
use super::{CallbackSettings, Protocol, Route, RouteLimits, SimSettings, SmppSettings, validate_routes};
use crate::DispatcherError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    /// The dlr role's public base URL, for every route that does not set its own.
    dlr_base_url: Option<String>,
    #[serde(default)]
    route: Vec<toml::Table>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ProtocolKind {
    Sim,
    Http,
    Smpp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteTable {
    name: String,
    protocol: ProtocolKind,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    failover: Vec<String>,
    /// The environment variable holding the secret the upstream must send
    /// with its callbacks.
    callback_secret_env: Option<String>,
    /// Addresses, CIDR ranges or wildcards the callbacks may come from.
    #[serde(default)]
    callback_allow: Vec<String>,
    limits: Option<toml::Table>,
    http: Option<toml::Table>,
    smpp: Option<toml::Table>,
    sim: Option<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsTable {
    /// Message parts per second.
    parts_per_second: Option<u32>,
    /// Submit calls in flight (HTTP: requests; SMPP: see `[route.smpp]` window).
    concurrency: Option<usize>,
    batch: Option<usize>,
    validity_secs: Option<u64>,
}

/// Reads and checks the routes file at `path`, secrets from the process's
/// environment.
pub fn load_routes_file(path: &Path) -> Result<Vec<Route>, DispatcherError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DispatcherError::Config(format!("routes file {}: {e}", path.display())))?;
    parse_routes_file(&text, &|var| std::env::var(var).ok())
        .map_err(|e| DispatcherError::Config(format!("routes file {}: {e}", path.display())))
}

/// Parses a routes file; `env` resolves `password_env` and
/// `callback_secret_env` names. The error is
/// one line naming the route and the field.
pub fn parse_routes_file(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Route>, String> {
    let file: RoutesFile = toml::from_str(text).map_err(|e| one_line(text, &e))?;
    let base = file.dlr_base_url.as_deref();
    let mut routes = Vec::with_capacity(file.route.len());
    for (i, table) in file.route.into_iter().enumerate() {
        let label = match table.get("name").and_then(toml::Value::as_str) {
            Some(name) => format!("route {name:?}"),
            None => format!("route #{}", i + 1),
        };
        let route = parse_route(table, base, env).map_err(|e| format!("{label}: {e}"))?;
        routes.push(route);
    }
    validate_routes(&routes).map_err(|e| match e {
        DispatcherError::Config(m) => m,
        other => other.to_string(),
    })?;
    Ok(routes)
}

fn parse_route(table: toml::Table, base: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Route, String> {
    let r = RouteTable::deserialize(table).map_err(|e| de_error(&e))?;
    let name = RouteId::parse(&r.name).map_err(|_| "name: only letters, digits, '_' and '-'".to_owned())?;
    let prefixes = r
        .prefixes
        .iter()
        .map(|p| {
            let digits = p.trim().trim_start_matches('+');
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                Err(format!("prefixes: {p:?} is not a digit prefix"))
            } else {
                Ok(digits.to_owned())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let failover = r
        .failover
        .iter()
        .map(|f| RouteId::parse(f).map_err(|_| format!("failover: {f:?} is not a route name")))
        .collect::<Result<Vec<_>, _>>()?;
    let allow: Vec<&str> = r.callback_allow.iter().map(String::as_str).collect();
    let callback = CallbackSettings::resolve(r.callback_secret_env.as_deref(), &allow, env)?;
    let limits = match r.limits {
        Some(t) => LimitsTable::deserialize(t).map_err(|e| format!("[route.limits] {}", de_error(&e)))?,
        None => LimitsTable::default(),
    };
    let defaults = RouteLimits::default();
    let protocol = match (r.protocol, r.http, r.smpp, r.sim) {
        (ProtocolKind::Http, Some(t), None, None) => {
            let table = HttpTable::deserialize(t).map_err(|e| format!("[route.http] {}", de_error(&e)))?;
            Protocol::Http(table.resolve(base, env).map_err(|e| format!("[route.http] {e}"))?)
        }
        (ProtocolKind::Smpp, None, Some(t), None) => {
            Protocol::Smpp(SmppSettings::deserialize(t).map_err(|e| format!("[route.smpp] {}", de_error(&e)))?)
        }
        (ProtocolKind::Sim, None, None, Some(t)) => {
            let mut sim = SimSettings::deserialize(t).map_err(|e| format!("[route.sim] {}", de_error(&e)))?;
            if sim.dlr_base_url.is_empty() {
                sim.dlr_base_url = base.unwrap_or_default().to_owned();
            }
            let is_http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
            if !is_http(&sim.submit_url) {
                return Err("[route.sim] url: must be an http(s) URL".to_owned());
            }
            if !is_http(&sim.dlr_base_url) {
                return Err("[route.sim] dlr_base_url: must be an http(s) URL (or set it at the top)".to_owned());
            }
            Protocol::Sim(sim)
        }
        (kind, ..) => {
            let table = match kind {
                ProtocolKind::Http => "http",
                ProtocolKind::Smpp => "smpp",
                ProtocolKind::Sim => "sim",
            };
            return Err(format!("protocol {table:?} needs a [route.{table}] table and no other protocol's"));
        }
    };
    // An HTTP gateway takes one message per request: a batch of one lets
    // `concurrency` count requests.
    let default_batch = if matches!(protocol, Protocol::Http(_)) { 1 } else { defaults.batch };
    Ok(Route {
        name,
        prefixes,
        failover,
        limits: RouteLimits {
            mps: limits.parts_per_second,
            max_in_flight: limits.concurrency.unwrap_or(defaults.max_in_flight),
            batch: limits.batch.unwrap_or(default_batch),
            validity: limits.validity_secs.map(Duration::from_secs),
        },
        protocol,
        callback,
    })
}

fn de_error(e: &toml::de::Error) -> String {
    e.message().trim().replace('\n', " ")
}

/// A syntax error of the file, with its line, on one line.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1;
            format!("line {line}: {}", de_error(e))
        }
        None => de_error(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FILE: &str = r#"
dlr_base_url = "http://dlr:8081"

[[route]]
name = "kannel"
protocol = "http"
prefixes = ["62", "+63"]
failover = ["backup"]
[route.limits]
parts_per_second = 50
concurrency = 4
validity_secs = 3600
[route.http]
profile = "kannel"
url = "http://kannel:13013/cgi-bin/sendsms"
username = "smsfleet"
password_env = "KANNEL_PASSWORD"

[[route]]
name = "backup"
protocol = "sim"
[route.sim]
url = "http://sim:8090/submit"
"#;

    fn env(var: &str) -> Option<String> {
        (var == "KANNEL_PASSWORD").then(|| "pw".to_owned())
    }

    #[test]
    fn reads_every_table() {
        let routes = parse_routes_file(FILE, &env).unwrap();
        assert_eq!(routes.len(), 2);
        let k = &routes[0];
        assert_eq!(k.prefixes, ["62", "63"]);
        assert_eq!(k.failover[0].as_str(), "backup");
        assert_eq!(
            k.limits,
            RouteLimits { mps: Some(50), max_in_flight: 4, batch: 1, validity: Some(Duration::from_secs(3600)) }
        );
        let Protocol::Http(h) = &k.protocol else { panic!("http") };
        assert_eq!(h.password.0, "pw");
        assert_eq!(h.dlr_base_url, "http://dlr:8081");
        let Protocol::Sim(s) = &routes[1].protocol else { panic!("sim") };
        assert_eq!(s.dlr_base_url, "http://dlr:8081");
        assert!(s.dedupes_by_reference);
        assert_eq!(routes[1].limits, RouteLimits::default());
    }

    fn error(text: &str) -> String {
        parse_routes_file(text, &env).unwrap_err()
    }

    #[test]
    fn errors_name_the_route_and_the_field_on_one_line() {
        let cases = [
            (FILE.replace("username =", "usrname ="), r#"route "kannel": [route.http] unknown field `usrname`"#),
            (FILE.replace("\"+63\"", "\"6a\""), r#"route "kannel": prefixes: "6a" is not a digit prefix"#),
            (
                FILE.replace("KANNEL_PASSWORD", "NO_SUCH_VAR"),
                r#"route "kannel": [route.http] password_env: NO_SUCH_VAR is not set"#,
            ),
            (FILE.replace("concurrency", "concurency"), r#"route "kannel": [route.limits] unknown field `concurency`"#),
            (
                FILE.replace("failover = [\"backup\"]", "failover = [\"nope\"]"),
                r#"route "kannel": failover: no route named "nope""#,
            ),
            (FILE.replace("failover = [\"backup\"]", "colour = \"red\""), r#"route "kannel": unknown field `colour`"#),
            (
                FILE.replace("protocol = \"sim\"", "protocol = \"http\""),
                r#"route "backup": protocol "http" needs a [route.http] table"#,
            ),
            (FILE.replace("name = \"backup\"", "name = \"kannel\""), r#"route "kannel": name is used twice"#),
            (FILE.replace("dlr_base_url =", "dlr_base ="), "unknown field `dlr_base`"),
            (
                "[[route]]\nname = \"a\"\nprotocol = \"smpp\"\n[route.smpp]\n".to_owned(),
                "route \"a\": [route.smpp] missing field `host`",
            ),
            (
                "[[route]]\nname = \"a\"\nprotocol = \"smpp\"\n[route.smpp]\nhost = \"h\"\nsystem_id = \"me\"\npassword = \"123456789\"\n"
                    .to_owned(),
                "route \"a\": [route.smpp] password: at most 8 characters",
            ),
            ("[[route]]\nprotocol = \"sim\"\n".to_owned(), "route #1: missing field `name`"),
            ("[[route]\n".to_owned(), "line 1:"),
            (String::new(), "at least one route is required"),
        ];
        for (text, expected) in cases {
            let e = error(&text);
            assert!(e.contains(expected), "{e:?} lacks {expected:?}");
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn callback_settings_per_route() {
        let text = FILE.replace(
            "failover = [\"backup\"]",
            "failover = [\"backup\"]\ncallback_secret_env = \"KANNEL_PASSWORD\"\ncallback_allow = [\"10.0.0.0/8\", \"192.168.1.*\"]",
        );
        let routes = parse_routes_file(&text, &env).unwrap();
        assert_eq!(routes[0].callback.secret.as_deref(), Some("pw"));
        assert_eq!(routes[0].callback.allow, "10.0.0.0/8,192.168.1.*");
        assert!(!format!("{:?}", routes[0]).contains("\"pw\""));
        assert_eq!(routes[1].callback, CallbackSettings::default());
        let unset = text.replace("callback_secret_env = \"KANNEL_PASSWORD\"", "callback_secret_env = \"NOPE\"");
        assert_eq!(error(&unset), r#"route "kannel": callback_secret_env: NOPE is not set"#);
        let bad = text.replace("192.168.1.*", "nonsense");
        assert!(error(&bad).starts_with(r#"route "kannel": callback_allow:"#), "{}", error(&bad));
        let unsafe_secret = |_: &str| Some("a b%".to_owned());
        let e = parse_routes_file(&text, &unsafe_secret).unwrap_err();
        assert!(e.contains("callback_secret_env: KANNEL_PASSWORD may hold only"), "{e}");
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../../../deploy/routes.example.toml");
        let env = |_: &str| Some("secret".to_owned());
        let routes = parse_routes_file(text, &env).unwrap();
        assert!(routes.len() >= 4);
    }
}
