//! The `[route.http]` table: an HTTP gateway as upstream, in the manner of
//! Kannel's generic HTTP SMSC. A request template (URL, or URL plus body)
//! with escapes, and rules deciding from the HTTP status and the body
//! whether the gateway took the message, refused it, or did not take it.
//! The ready profiles (Kannel, Jasmin, RouteSMS-style) are such templates
//! and rules written once; any field set in the table overrides the
//! profile's.

use std::fmt;

use regex::Regex;
use serde::Deserialize;
use smsfleet_contract::{DLR_JASMIN_PATH, DLR_KANNEL_PATH};
use smsfleet_domain::template::Template;

/// Escapes of the request templates (URL and body).
pub const REQUEST_ESCAPES: &[&str] = &[
    "from",
    "to",
    "text",
    "text_hex",
    "coding",
    "data_coding",
    "ref",
    "dlr_url",
    "username",
    "password",
    "validity_minutes",
    "flash",
];

/// Escapes of the callback URL given to the gateway (`dlr_url`).
pub const DLR_ESCAPES: &[&str] = &["ref", "route", "base"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpProfile {
    /// Everything from the table.
    #[default]
    Generic,
    /// Kannel's `/cgi-bin/sendsms`; reports to `/dlr/<route>/kannel`.
    Kannel,
    /// Jasmin's `/send`; reports to `/dlr/<route>/jasmin`.
    Jasmin,
    /// A RouteSMS-style `/bulksms/bulksms` (another smsfleet's bulk API);
    /// reports are that gateway's JSON callbacks, posted to
    /// `/dlr/<route>/bulk` (set as the callback URL of our account there).
    Routesms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpMethod {
    /// Everything in the URL's query.
    Get,
    /// `application/x-www-form-urlencoded` body.
    PostForm,
    /// `application/json` body.
    PostJson,
}

/// A password that never prints.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// An HTTP route's settings, the profile applied.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub profile: HttpProfile,
    pub method: HttpMethod,
    /// URL template; for `get` it carries the parameters.
    pub url: String,
    /// Body template of `post-form` / `post-json`.
    pub body: Option<String>,
    /// The templates used instead for a UCS-2 message (e.g. Jasmin's
    /// `hex-content`), when the gateway wants it sent differently.
    pub ucs2_url: Option<String>,
    pub ucs2_body: Option<String>,
    pub username: String,
    pub password: Secret,
    /// HTTP statuses that may mean success: `2xx`-style classes or codes.
    pub success_status: Vec<String>,
    /// When set, a success must also match this.
    pub success_regex: Option<String>,
    pub permanent_regex: Option<String>,
    pub temporary_regex: Option<String>,
    /// One capture group: the gateway's id of the message. Without it the
    /// gateway is taken to know the message by our reference.
    pub foreign_id_regex: Option<String>,
    /// Template of the report callback URL given to the gateway
    /// ([`DLR_ESCAPES`]); `None` gives none.
    pub dlr_url: Option<String>,
    /// The dlr role's base URL (`{base}` of `dlr_url`).
    pub dlr_base_url: String,
    /// The gateway recognises a resend by our reference. Off unless said:
    /// a gateway that does not would send the message twice.
    pub dedupes_by_reference: bool,
}

/// The `[route.http]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpTable {
    #[serde(default)]
    profile: HttpProfile,
    url: String,
    method: Option<HttpMethod>,
    body: Option<String>,
    ucs2_url: Option<String>,
    ucs2_body: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    success_status: Option<Vec<String>>,
    success_regex: Option<String>,
    permanent_regex: Option<String>,
    temporary_regex: Option<String>,
    foreign_id_regex: Option<String>,
    dlr_url: Option<String>,
    dlr_base_url: Option<String>,
    #[serde(default)]
    resend: bool,
}

/// What a profile fills in when the table does not.
struct ProfileDefaults {
    method: HttpMethod,
    /// Appended to the table's `url` as its query (`get`).
    query: Option<&'static str>,
    ucs2_query: Option<&'static str>,
    success_regex: Option<&'static str>,
    permanent_regex: Option<&'static str>,
    temporary_regex: Option<&'static str>,
    foreign_id_regex: Option<&'static str>,
    dlr_url: Option<String>,
}

impl HttpProfile {
    fn defaults(self) -> ProfileDefaults {
        let none = || ProfileDefaults {
            method: HttpMethod::Get,
            query: None,
            ucs2_query: None,
            success_regex: None,
            permanent_regex: None,
            temporary_regex: None,
            foreign_id_regex: None,
            dlr_url: None,
        };
        match self {
            HttpProfile::Generic => none(),
            // Kannel answers `202 0: Accepted for delivery` or `202 3:
            // Queued for later delivery` and gives no id: its reports carry
            // our reference back in the dlr-url, where Kannel puts the
            // report's status bits for `%d`. 31 asks for every report.
            HttpProfile::Kannel => ProfileDefaults {
                query: Some(
                    "username={username}&password={password}&from={from}&to={to}&text={text}\
                     &charset=UTF-8&coding={coding}&dlr-mask=31&dlr-url={dlr_url}",
                ),
                success_regex: Some(r"^\s*[03]:"),
                dlr_url: Some(format!("{{base}}{DLR_KANNEL_PATH}?id={{ref}}&status=%d")),
                ..none()
            },
            // Jasmin answers `Success "<uuid>"`; UCS-2 goes as hex with coding 8.
            HttpProfile::Jasmin => ProfileDefaults {
                query: Some(
                    "username={username}&password={password}&to={to}&from={from}&content={text}\
                     &dlr=yes&dlr-url={dlr_url}&dlr-level=2&dlr-method=POST",
                ),
                ucs2_query: Some(
                    "username={username}&password={password}&to={to}&from={from}&hex-content={text_hex}\
                     &coding=8&dlr=yes&dlr-url={dlr_url}&dlr-level=2&dlr-method=POST",
                ),
                success_regex: Some(r#"^Success ""#),
                foreign_id_regex: Some(r#"^Success "([^"]+)""#),
                dlr_url: Some(format!("{{base}}{DLR_JASMIN_PATH}")),
                ..none()
            },
            // Always HTTP 200; the body says it: `1701|<dest>|<id>` taken,
            // 1710 (not stored) and 1715 (store timeout) not taken,
            // other 17xx and 10xx codes refused.
            HttpProfile::Routesms => ProfileDefaults {
                query: Some(
                    "username={username}&password={password}&type=0&dlr=1&destination={to}&source={from}&message={text}",
                ),
                ucs2_query: Some(
                    "username={username}&password={password}&type=2&dlr=1&destination={to}&source={from}&message={text_hex}",
                ),
                success_regex: Some(r"^1701\|"),
                foreign_id_regex: Some(r"^1701\|[^|]*\|([^,|\s]+)"),
                temporary_regex: Some(r"^17(10|15)\b"),
                permanent_regex: Some(r"^(17(0[2-9]|1[1-46-9]|2\d|3[0-3])|10\d\d|16|18)\b"),
                ..none()
            },
        }
    }
}

fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

impl HttpTable {
    /// Applies the profile and resolves the password; `env` reads the
    /// environment (a parameter so tests need not change the process's).
    pub(crate) fn resolve(
        self,
        dlr_base_url: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<HttpSettings, String> {
        let d = self.profile.defaults();
        let method = self.method.unwrap_or(d.method);
        let password = match (self.password, self.password_env) {
            (Some(_), Some(_)) => return Err("password and password_env: set only one".to_owned()),
            (Some(p), None) => p,
            (None, Some(var)) => env(&var).ok_or_else(|| format!("password_env: {var} is not set"))?,
            (None, None) => String::new(),
        };
        let templated = |query: Option<&str>| match (method, query) {
            (HttpMethod::Get, Some(q)) => Some(with_query(&self.url, q)),
            _ => None,
        };
        let url = templated(d.query).unwrap_or_else(|| self.url.clone());
        let ucs2_url = self.ucs2_url.clone().or_else(|| templated(d.ucs2_query));
        Ok(HttpSettings {
            profile: self.profile,
            method,
            url,
            body: self.body,
            ucs2_url,
            ucs2_body: self.ucs2_body,
            username: self.username.unwrap_or_default(),
            password: Secret(password),
            success_status: self.success_status.unwrap_or_else(|| vec!["2xx".to_owned()]),
            success_regex: self.success_regex.or(d.success_regex.map(str::to_owned)),
            permanent_regex: self.permanent_regex.or(d.permanent_regex.map(str::to_owned)),
            temporary_regex: self.temporary_regex.or(d.temporary_regex.map(str::to_owned)),
            foreign_id_regex: self.foreign_id_regex.or(d.foreign_id_regex.map(str::to_owned)),
            dlr_url: self.dlr_url.or(d.dlr_url),
            dlr_base_url: self.dlr_base_url.or(dlr_base_url.map(str::to_owned)).unwrap_or_default(),
            dedupes_by_reference: self.resend,
        })
    }
}

/// `2xx`, `20x` or `202`: which HTTP statuses it covers.
pub fn status_matches(pattern: &str, status: u16) -> bool {
    let code = status.to_string();
    pattern.len() == 3 && pattern.bytes().zip(code.bytes()).all(|(p, c)| p == c || p.eq_ignore_ascii_case(&b'x'))
}

fn valid_status_pattern(p: &str) -> bool {
    p.len() == 3
        && p.as_bytes()[0].is_ascii_digit()
        && p.bytes().all(|b| b.is_ascii_digit() || b.eq_ignore_ascii_case(&b'x'))
}

impl HttpSettings {
    /// Every template and regex compiles, the URL is http(s), the id regex
    /// has one group, and a report URL has a dlr base to start from.
    pub(crate) fn validate(&self, route: &str) -> Result<(), String> {
        let bad = |field: &str, why: String| format!("route {route:?}: [route.http] {field}: {why}");
        let is_http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        for (field, url) in [("url", Some(&self.url)), ("ucs2_url", self.ucs2_url.as_ref())] {
            if let Some(url) = url {
                if !is_http(url) {
                    return Err(bad(field, "must be an http(s) URL".to_owned()));
                }
                Template::parse(url, REQUEST_ESCAPES).map_err(|e| bad(field, e.to_string()))?;
            }
        }
        for (field, body) in [("body", &self.body), ("ucs2_body", &self.ucs2_body)] {
            if let Some(body) = body {
                if self.method == HttpMethod::Get {
                    return Err(bad(field, "a body needs method post-form or post-json".to_owned()));
                }
                Template::parse(body, REQUEST_ESCAPES).map_err(|e| bad(field, e.to_string()))?;
            }
        }
        if self.method != HttpMethod::Get && self.body.is_none() {
            return Err(bad("body", format!("required with method {:?}", self.method)));
        }
        if let Some(p) = self.success_status.iter().find(|p| !valid_status_pattern(p)) {
            return Err(bad("success_status", format!("{p:?} is not a status like 200 or 2xx")));
        }
        for (field, re) in [
            ("success_regex", &self.success_regex),
            ("permanent_regex", &self.permanent_regex),
            ("temporary_regex", &self.temporary_regex),
            ("foreign_id_regex", &self.foreign_id_regex),
        ] {
            if let Some(re) = re {
                let compiled = Regex::new(re).map_err(|e| bad(field, e.to_string().replace('\n', " ")))?;
                if field == "foreign_id_regex" && compiled.captures_len() != 2 {
                    return Err(bad(field, "needs exactly one capture group".to_owned()));
                }
            }
        }
        if let Some(dlr) = &self.dlr_url {
            Template::parse(dlr, DLR_ESCAPES).map_err(|e| bad("dlr_url", e.to_string()))?;
            if dlr.contains("{base}") && !is_http(&self.dlr_base_url) {
                return Err(bad("dlr_base_url", "an http(s) URL is needed for the report callback".to_owned()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn table(toml_text: &str) -> HttpTable {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn profiles_fill_in_and_the_table_overrides() {
        let env = |k: &str| (k == "KANNEL_PW").then(|| "s3cret".to_owned());
        let k = table("profile = \"kannel\"\nurl = \"http://k:13013/cgi-bin/sendsms\"\npassword_env = \"KANNEL_PW\"")
            .resolve(Some("http://dlr:8081"), &env)
            .unwrap();
        assert!(k.url.starts_with("http://k:13013/cgi-bin/sendsms?username={username}&password={password}"));
        assert_eq!(k.password, Secret("s3cret".to_owned()));
        assert_eq!(format!("{:?}", k.password), "\"***\"");
        assert_eq!(k.dlr_base_url, "http://dlr:8081");
        assert!(!k.dedupes_by_reference);
        k.validate("k").unwrap();

        let r = table("profile = \"routesms\"\nurl = \"http://gw/bulksms/bulksms\"\nsuccess_regex = \"^OK\"")
            .resolve(None, &env)
            .unwrap();
        assert_eq!(r.success_regex.as_deref(), Some("^OK"));
        assert!(r.ucs2_url.as_deref().unwrap().contains("type=2"));
        r.validate("r").unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let none = |_: &str| None;
        let e = table("url = \"http://x\"\npassword_env = \"NOPE\"").resolve(None, &none).unwrap_err();
        assert_eq!(e, "password_env: NOPE is not set");
        let check = |t: &str| table(t).resolve(None, &none).unwrap().validate("r").unwrap_err();
        assert!(check("url = \"ftp://x\"").contains("[route.http] url: must be"));
        assert!(check("url = \"http://x?to={dest}\"").contains("url: unknown escape {dest}"));
        assert!(check("url = \"http://x\"\nmethod = \"post-json\"").contains("body: required"));
        assert!(check("url = \"http://x\"\nforeign_id_regex = \"^ok$\"").contains("one capture group"));
        assert!(check("url = \"http://x\"\npermanent_regex = \"(\"").contains("permanent_regex"));
        assert!(check("url = \"http://x\"\nsuccess_status = [\"ok\"]").contains("success_status"));
        assert!(check("profile = \"kannel\"\nurl = \"http://x\"").contains("dlr_base_url"));
        assert!(toml::from_str::<HttpTable>("url = \"http://x\"\nusrname = \"a\"").is_err());
    }

    #[test]
    fn status_patterns() {
        assert!(status_matches("2xx", 202) && status_matches("202", 202) && status_matches("20X", 200));
        assert!(!status_matches("2xx", 302) && !status_matches("200", 202));
    }
}
