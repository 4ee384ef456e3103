//! [`Upstream`] to an HTTP gateway (`[route.http]`): one request per
//! message, built from the route's templates, and a verdict from the HTTP
//! status and the body by the route's rules. What the rules cannot place
//! is [`Verdict::Unknown`]: the gateway may have taken the message, so it is
//! never a reason to send it again to a gateway that does not de-duplicate.

use std::borrow::Cow;

use futures_util::future::{BoxFuture, join_all};
use regex::Regex;
use smsfleet_contract::RouteId;
use smsfleet_domain::Encoding;
use smsfleet_domain::template::{Quoting, Template, ucs2_hex};

use super::{OutboundMessage, Upstream, Verdict, transport_verdict, with_callback_secret};
use smsfleet_domain::template::status_matches;

use crate::route::{HttpMethod, HttpSettings, http::DLR_ESCAPES, http::REQUEST_ESCAPES};

/// More of an answer than this is never needed to classify it.
const MAX_ANSWER: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpUpstreamError {
    #[error("route {route}: {field}: {error}")]
    Invalid { route: String, field: &'static str, error: String },
}

/// The rules that turn an answer into a verdict.
#[derive(Debug)]
pub(crate) struct Rules {
    success_status: Vec<String>,
    success: Option<Regex>,
    permanent: Option<Regex>,
    temporary: Option<Regex>,
    foreign_id: Option<Regex>,
}

impl Rules {
    /// The verdict on one answer. Order: the body's temporary and permanent
    /// rules, then success (a success status, and the success rule when
    /// there is one), then the status alone (429 and 503 mean "not taken",
    /// other 4xx "refused"); anything else is unknown.
    pub(crate) fn verdict(&self, status: u16, body: &str, reference: &str) -> Verdict {
        let brief = || {
            let text: String = body.trim().chars().take(200).collect();
            format!("HTTP {status}: {text}")
        };
        if self.temporary.as_ref().is_some_and(|r| r.is_match(body)) {
            return Verdict::Temporary { reason: brief() };
        }
        if self.permanent.as_ref().is_some_and(|r| r.is_match(body)) {
            return Verdict::Rejected { reason: brief() };
        }
        let success_status = self.success_status.iter().any(|p| status_matches(p, status));
        if success_status && self.success.as_ref().is_none_or(|r| r.is_match(body)) {
            return match &self.foreign_id {
                None => Verdict::Accepted { upstream_ids: vec![reference.to_owned()] },
                Some(re) => match re.captures(body).and_then(|c| c.get(1)).map(|m| m.as_str().trim()) {
                    Some(id) if !id.is_empty() => Verdict::Accepted { upstream_ids: vec![id.to_owned()] },
                    _ => Verdict::Unknown { reason: format!("taken, but no id in the answer: {}", brief()) },
                },
            };
        }
        match status {
            429 | 503 => Verdict::Temporary { reason: brief() },
            400..=499 => Verdict::Rejected { reason: brief() },
            _ => Verdict::Unknown { reason: format!("unclassifiable answer: {}", brief()) },
        }
    }
}

pub(crate) struct HttpUpstream {
    client: reqwest::Client,
    route: RouteId,
    method: HttpMethod,
    url: Template,
    body: Option<Template>,
    ucs2_url: Option<Template>,
    ucs2_body: Option<Template>,
    username: String,
    password: String,
    dlr_url: Option<Template>,
    dlr_base_url: String,
    /// Added to every callback URL (see [`with_callback_secret`]).
    callback_secret: Option<String>,
    rules: Rules,
    dedupes_by_reference: bool,
}

impl HttpUpstream {
    pub(crate) fn new(
        client: reqwest::Client,
        route: &RouteId,
        s: &HttpSettings,
        callback_secret: Option<&str>,
    ) -> Result<HttpUpstream, HttpUpstreamError> {
        let invalid =
            |field: &'static str, error: String| HttpUpstreamError::Invalid { route: route.to_string(), field, error };
        let template = |field: &'static str, text: &Option<String>, escapes: &[&str]| {
            text.as_deref().map(|t| Template::parse(t, escapes).map_err(|e| invalid(field, e.to_string()))).transpose()
        };
        let regex = |field: &'static str, re: &Option<String>| {
            re.as_deref().map(|r| Regex::new(r).map_err(|e| invalid(field, e.to_string()))).transpose()
        };
        Ok(HttpUpstream {
            client,
            route: route.clone(),
            method: s.method,
            url: Template::parse(&s.url, REQUEST_ESCAPES).map_err(|e| invalid("url", e.to_string()))?,
            body: template("body", &s.body, REQUEST_ESCAPES)?,
            ucs2_url: template("ucs2_url", &s.ucs2_url, REQUEST_ESCAPES)?,
            ucs2_body: template("ucs2_body", &s.ucs2_body, REQUEST_ESCAPES)?,
            username: s.username.clone(),
            password: s.password.0.clone(),
            dlr_url: template("dlr_url", &s.dlr_url, DLR_ESCAPES)?,
            dlr_base_url: s.dlr_base_url.trim_end_matches('/').to_owned(),
            callback_secret: callback_secret.map(str::to_owned),
            rules: Rules {
                success_status: s.success_status.clone(),
                success: regex("success_regex", &s.success_regex)?,
                permanent: regex("permanent_regex", &s.permanent_regex)?,
                temporary: regex("temporary_regex", &s.temporary_regex)?,
                foreign_id: regex("foreign_id_regex", &s.foreign_id_regex)?,
            },
            dedupes_by_reference: s.dedupes_by_reference,
        })
    }

    /// The value of escape `i` of [`REQUEST_ESCAPES`] for `m`.
    fn value<'m>(&'m self, m: &'m OutboundMessage<'m>, dlr_url: &'m str, i: usize) -> Cow<'m, str> {
        let ucs2 = m.encoding == Encoding::Ucs2;
        match REQUEST_ESCAPES.get(i).copied().unwrap_or_default() {
            "from" => Cow::Borrowed(m.from),
            "to" => Cow::Borrowed(m.to),
            "text" => Cow::Borrowed(m.text),
            "text_hex" => Cow::Owned(ucs2_hex(m.text)),
            "coding" => Cow::Borrowed(if ucs2 { "2" } else { "0" }),
            "data_coding" => Cow::Borrowed(match m.encoding {
                Encoding::Gsm7 => "0",
                Encoding::Latin1 => "3",
                Encoding::Ucs2 => "8",
            }),
            "ref" => Cow::Borrowed(&m.reference),
            "dlr_url" => Cow::Borrowed(dlr_url),
            "username" => Cow::Borrowed(&self.username),
            "password" => Cow::Borrowed(&self.password),
            "validity_minutes" => {
                let minutes = (m.valid_until_ms - smsfleet_domain::clock::now_ms()).max(60_000) / 60_000;
                Cow::Owned(minutes.to_string())
            }
            "flash" => Cow::Borrowed(if m.flash { "1" } else { "0" }),
            _ => Cow::Borrowed(""),
        }
    }

    fn dlr_url_of(&self, m: &OutboundMessage<'_>) -> String {
        let Some(template) = &self.dlr_url else { return String::new() };
        let url = template.render(Quoting::Raw, |i| match DLR_ESCAPES.get(i).copied().unwrap_or_default() {
            "ref" => Cow::Borrowed(m.reference.as_str()),
            "route" => Cow::Borrowed(self.route.as_str()),
            "base" => Cow::Borrowed(self.dlr_base_url.as_str()),
            _ => Cow::Borrowed(""),
        });
        with_callback_secret(url, self.callback_secret.as_deref())
    }

    #[tracing::instrument(skip_all, fields(route = %self.route, smslog_id = m.smslog_id))]
    async fn submit_one(&self, m: &OutboundMessage<'_>) -> Verdict {
        let dlr_url = self.dlr_url_of(m);
        let ucs2 = m.encoding == Encoding::Ucs2;
        let url_template = self.ucs2_url.as_ref().filter(|_| ucs2).unwrap_or(&self.url);
        let url = url_template.render(Quoting::Form, |i| self.value(m, &dlr_url, i));
        let body_template = self.ucs2_body.as_ref().filter(|_| ucs2).or(self.body.as_ref());
        let request = match (self.method, body_template) {
            (HttpMethod::Get, _) | (_, None) => self.client.get(&url),
            (HttpMethod::PostForm, Some(t)) => self
                .client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(t.render(Quoting::Form, |i| self.value(m, &dlr_url, i))),
            (HttpMethod::PostJson, Some(t)) => self
                .client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(t.render(Quoting::Json, |i| self.value(m, &dlr_url, i))),
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_verdict(&e),
        };
        let status = response.status().as_u16();
        let body = match response.bytes().await {
            Ok(b) => b,
            // The status came, the body broke off: the gateway decided
            // something we cannot read.
            Err(e) => return Verdict::Unknown { reason: format!("HTTP {status}, body unreadable: {e}") },
        };
        let body = String::from_utf8_lossy(&body[..body.len().min(MAX_ANSWER)]);
        let verdict = self.rules.verdict(status, &body, &m.reference);
        if let Verdict::Unknown { reason } = &verdict {
            tracing::warn!(route = %self.route, smslog_id = m.smslog_id, %reason, "gateway answer not classified");
        }
        verdict
    }
}

impl Upstream for HttpUpstream {
    fn submit<'a>(&'a self, batch: &'a [OutboundMessage<'a>]) -> BoxFuture<'a, Vec<Verdict>> {
        Box::pin(join_all(batch.iter().map(|m| self.submit_one(m))))
    }

    fn dedupes_by_reference(&self) -> bool {
        self.dedupes_by_reference
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::route::{HttpProfile, parse_routes_file};

    fn rules_of(profile: HttpProfile) -> Rules {
        let text = format!(
            "dlr_base_url = \"http://dlr\"\n[[route]]\nname = \"r\"\nprotocol = \"http\"\n[route.http]\nprofile = \"{}\"\nurl = \"http://gw/x\"\n",
            format!("{profile:?}").to_lowercase()
        );
        let routes = parse_routes_file(&text, &|_| None).unwrap();
        let crate::route::Protocol::Http(s) = &routes[0].protocol else { panic!("http") };
        let up = HttpUpstream::new(reqwest::Client::new(), &routes[0].name, s, routes[0].callback.secret.as_deref())
            .unwrap();
        up.rules
    }

    fn accepted(id: &str) -> Verdict {
        Verdict::Accepted { upstream_ids: vec![id.to_owned()] }
    }

    #[test]
    fn routesms_answers() {
        let r = rules_of(HttpProfile::Routesms);
        // The answer that was "undecodable" and sent 54 times.
        assert_eq!(r.verdict(200, "1701|628111000001|386319617521065984", "9"), accepted("386319617521065984"));
        assert_eq!(r.verdict(200, "1701|628111000001|77,1701|628111000002|78", "9"), accepted("77"));
        assert!(matches!(r.verdict(200, "1706|628111", "9"), Verdict::Rejected { .. }));
        assert!(matches!(r.verdict(200, "1703", "9"), Verdict::Rejected { .. }));
        assert!(matches!(r.verdict(200, "1025", "9"), Verdict::Rejected { .. }));
        assert!(matches!(r.verdict(200, "1710|628111", "9"), Verdict::Temporary { .. }));
        assert!(matches!(r.verdict(200, "1715", "9"), Verdict::Temporary { .. }));
        assert!(matches!(r.verdict(200, "<html>welcome</html>", "9"), Verdict::Unknown { .. }));
        assert!(matches!(r.verdict(200, "1701|628111|", "9"), Verdict::Unknown { .. }));
    }

    #[test]
    fn kannel_answers() {
        let r = rules_of(HttpProfile::Kannel);
        assert_eq!(r.verdict(202, "0: Accepted for delivery", "42"), accepted("42"));
        assert_eq!(r.verdict(202, "3: Queued for later delivery", "42"), accepted("42"));
        assert!(matches!(r.verdict(202, "Insufficient args, rejected", "42"), Verdict::Unknown { .. }));
        assert!(matches!(r.verdict(403, "Authorization failed for sendsms", "42"), Verdict::Rejected { .. }));
        assert!(matches!(r.verdict(503, "Temporal failure, try again later.", "42"), Verdict::Temporary { .. }));
        assert!(matches!(r.verdict(500, "", "42"), Verdict::Unknown { .. }));
    }

    #[test]
    fn jasmin_answers() {
        let r = rules_of(HttpProfile::Jasmin);
        assert_eq!(r.verdict(200, "Success \"07033084-5cfd-4812-90a4-e4d24ffb6e3d\"", "1"), {
            accepted("07033084-5cfd-4812-90a4-e4d24ffb6e3d")
        });
        assert!(matches!(r.verdict(400, "Error \"Mandatory arguments not found\"", "1"), Verdict::Rejected { .. }));
        assert!(matches!(r.verdict(200, "Error", "1"), Verdict::Unknown { .. }));
    }

    #[test]
    fn requests_are_built_from_the_profile() {
        let text = "[[route]]\nname = \"k\"\nprotocol = \"http\"\n[route.http]\nprofile = \"kannel\"\n\
                    url = \"http://k:13013/cgi-bin/sendsms\"\nusername = \"u\"\npassword = \"p&q\"\n\
                    dlr_base_url = \"http://dlr:8081\"\n";
        let routes = parse_routes_file(text, &|_| None).unwrap();
        let crate::route::Protocol::Http(s) = &routes[0].protocol else { panic!("http") };
        let up = HttpUpstream::new(reqwest::Client::new(), &routes[0].name, s, routes[0].callback.secret.as_deref())
            .unwrap();
        let parts = vec!["héllo".to_owned()];
        let m = OutboundMessage {
            smslog_id: 42,
            reference: "42".to_owned(),
            from: "ACME",
            to: "628111",
            text: "héllo",
            parts: &parts,
            encoding: Encoding::Ucs2,
            flash: false,
            valid_until_ms: i64::MAX,
        };
        let dlr = up.dlr_url_of(&m);
        assert_eq!(dlr, "http://dlr:8081/dlr/k/kannel?id=42&status=%d");
        let url = up.url.render(Quoting::Form, |i| up.value(&m, &dlr, i));
        assert_eq!(
            url,
            "http://k:13013/cgi-bin/sendsms?username=u&password=p%26q&from=ACME&to=628111&text=h%C3%A9llo\
             &charset=UTF-8&coding=2&dlr-mask=31&dlr-url=http%3A%2F%2Fdlr%3A8081%2Fdlr%2Fk%2Fkannel%3Fid%3D42%26status%3D%25d"
        );
    }

    #[test]
    fn every_profile_callback_url_carries_the_secret() {
        let env = |var: &str| (var == "CB").then(|| "s3cr-t".to_owned());
        let m = OutboundMessage {
            smslog_id: 7,
            reference: "7".to_owned(),
            from: "ACME",
            to: "628111",
            text: "hi",
            parts: &[],
            encoding: Encoding::Gsm7,
            flash: false,
            valid_until_ms: i64::MAX,
        };
        for (profile, extra, expected) in [
            ("kannel", "", "http://dlr/dlr/r/kannel?id=7&status=%d&callback_secret=s3cr-t"),
            ("jasmin", "", "http://dlr/dlr/r/jasmin?callback_secret=s3cr-t"),
            ("routesms", "dlr_url = \"{base}/dlr/{route}/bulk\"\n", "http://dlr/dlr/r/bulk?callback_secret=s3cr-t"),
            (
                "generic",
                "dlr_url = \"{base}/dlr/{route}?ref={ref}\"\n",
                "http://dlr/dlr/r?ref=7&callback_secret=s3cr-t",
            ),
        ] {
            let text = format!(
                "dlr_base_url = \"http://dlr\"\n[[route]]\nname = \"r\"\nprotocol = \"http\"\ncallback_secret_env = \"CB\"\n\
                 [route.http]\nprofile = \"{profile}\"\nurl = \"http://gw/x\"\n{extra}"
            );
            let routes = parse_routes_file(&text, &env).unwrap();
            let crate::route::Protocol::Http(s) = &routes[0].protocol else { panic!("http") };
            let up =
                HttpUpstream::new(reqwest::Client::new(), &routes[0].name, s, routes[0].callback.secret.as_deref())
                    .unwrap();
            assert_eq!(up.dlr_url_of(&m), expected, "{profile}");
        }
    }
}
