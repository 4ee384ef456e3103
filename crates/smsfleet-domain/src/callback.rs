//! An account's delivery-report callback (bulk API, `dlr=1`): where and how
//! the callbacks role tells the account a message's final status, and what
//! answer counts as "received".
//!
//! A plain URL keeps the original behaviour: a JSON POST, done on any 2xx.
//! Clients that cannot read JSON (Kannel's generic HTTP port, which answers
//! `202 Insufficient args, rejected` to it) need their own parameters, so
//! the callback may be a template in the manner of Kannel's `dlr-url`:
//!
//! ```text
//! GET http://kannel:13015/?dlr-mid={message_id}&dlr-mask={status_code}&to={destination} expect=2xx match=^Sent
//! ```
//!
//! `GET` fills the URL; `POST` sends the URL's query (filled) as a form
//! body. `expect=` lists the HTTP statuses that may mean success (`2xx`,
//! `202`, comma-separated; default `2xx`), `match=` a regex the body must
//! match too (the rest of the line). The spec is checked when the account
//! is saved, so the sender never meets a bad one.

use std::borrow::Cow;

use regex::Regex;

use crate::template::{Quoting, Template, TemplateError, status_matches, valid_status_pattern};

/// Escapes of a callback template.
pub const CALLBACK_ESCAPES: &[&str] = &["message_id", "destination", "status", "status_code", "done_at", "done_unix"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackMethod {
    /// The original: POST `{"message_id","destination","status","done_at"}`.
    Json,
    Get,
    PostForm,
}

/// One report to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackReport<'a> {
    pub message_id: &'a str,
    pub destination: &'a str,
    /// `delivered` or `failed`.
    pub status: &'a str,
    /// RFC 3339, UTC.
    pub done_at: &'a str,
    pub done_unix: i64,
}

/// The request to make for one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRequest {
    pub method: CallbackMethod,
    pub url: String,
    /// A form body (`PostForm`); `Json` bodies are the caller's to build.
    pub form: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CallbackSpec {
    method: CallbackMethod,
    url: Template,
    /// The query of a `POST` template, sent as the body.
    form: Option<Template>,
    expect: Vec<String>,
    body_match: Option<Regex>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackSpecError {
    #[error("the callback must be an http(s) URL, optionally after GET or POST")]
    NotHttp,
    #[error("callback template: {0}")]
    Template(#[from] TemplateError),
    #[error("expect={0:?}: use statuses like 200 or 2xx, comma-separated")]
    Expect(String),
    #[error("match=: {0}")]
    Match(String),
    #[error("unknown callback option {0:?} (expect=, match=)")]
    Option(String),
    #[error("a plain URL has no escapes; put GET or POST before a template")]
    EscapesNeedMethod,
}

impl CallbackSpec {
    pub fn parse(spec: &str) -> Result<CallbackSpec, CallbackSpecError> {
        let spec = spec.trim();
        let (method, rest) = match spec.split_once(char::is_whitespace) {
            Some(("GET", rest)) => (CallbackMethod::Get, rest.trim_start()),
            Some(("POST", rest)) => (CallbackMethod::PostForm, rest.trim_start()),
            _ => (CallbackMethod::Json, spec),
        };
        let (url, mut options) = match rest.split_once(char::is_whitespace) {
            Some((url, options)) => (url, options.trim_start()),
            None => (rest, ""),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CallbackSpecError::NotHttp);
        }
        let mut expect = vec!["2xx".to_owned()];
        let mut body_match = None;
        while !options.is_empty() {
            if let Some(re) = options.strip_prefix("match=") {
                body_match =
                    Some(Regex::new(re).map_err(|e| CallbackSpecError::Match(e.to_string().replace('\n', " ")))?);
                break;
            }
            let (option, more) = options.split_once(char::is_whitespace).unwrap_or((options, ""));
            match option.strip_prefix("expect=") {
                Some(list) => {
                    expect = list.split(',').map(str::to_owned).collect();
                    if !expect.iter().all(|p| valid_status_pattern(p)) {
                        return Err(CallbackSpecError::Expect(list.to_owned()));
                    }
                }
                None => return Err(CallbackSpecError::Option(option.to_owned())),
            }
            options = more.trim_start();
        }
        let (url, form) = match method {
            CallbackMethod::Json if url.contains(['{', '}']) => return Err(CallbackSpecError::EscapesNeedMethod),
            CallbackMethod::Json => (Template::parse(url, &[])?, None),
            CallbackMethod::Get => (Template::parse(url, CALLBACK_ESCAPES)?, None),
            CallbackMethod::PostForm => match url.split_once('?') {
                Some((path, query)) => {
                    (Template::parse(path, CALLBACK_ESCAPES)?, Some(Template::parse(query, CALLBACK_ESCAPES)?))
                }
                None => (Template::parse(url, CALLBACK_ESCAPES)?, None),
            },
        };
        Ok(CallbackSpec { method, url, form, expect, body_match })
    }

    pub fn method(&self) -> CallbackMethod {
        self.method
    }

    /// The request for `report`.
    pub fn request(&self, report: &CallbackReport<'_>) -> CallbackRequest {
        let done_unix = report.done_unix.to_string();
        let value = |i: usize| -> Cow<'_, str> {
            Cow::Borrowed(match CALLBACK_ESCAPES.get(i).copied().unwrap_or_default() {
                "message_id" => report.message_id,
                "destination" => report.destination,
                "status" => report.status,
                // Kannel's dlr-mask bits: 1 delivered, 2 not delivered.
                "status_code" => {
                    if report.status == "delivered" {
                        "1"
                    } else {
                        "2"
                    }
                }
                "done_at" => report.done_at,
                "done_unix" => done_unix.as_str(),
                _ => "",
            })
        };
        CallbackRequest {
            method: self.method,
            url: self.url.render(Quoting::Form, value),
            form: self.form.as_ref().map(|t| t.render(Quoting::Form, value)),
        }
    }

    /// Whether the receiver's answer says it has the report.
    pub fn is_success(&self, status: u16, body: &str) -> bool {
        self.expect.iter().any(|p| status_matches(p, status))
            && self.body_match.as_ref().is_none_or(|r| r.is_match(body))
    }

    /// Whether the answer's body is needed to decide.
    pub fn needs_body(&self) -> bool {
        self.body_match.is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn report() -> CallbackReport<'static> {
        CallbackReport {
            message_id: "42",
            destination: "+628111",
            status: "delivered",
            done_at: "2026-12-02T10:00:00Z",
            done_unix: 1_796_205_600,
        }
    }

    #[test]
    fn a_plain_url_is_the_json_post_done_on_any_2xx() {
        let s = CallbackSpec::parse("https://client.example/dlr").unwrap();
        assert_eq!(s.method(), CallbackMethod::Json);
        let r = s.request(&report());
        assert_eq!((r.url.as_str(), r.form), ("https://client.example/dlr", None));
        assert!(s.is_success(200, "") && s.is_success(202, "Insufficient args, rejected") && !s.is_success(500, ""));
    }

    #[test]
    fn a_kannel_template_with_its_own_success() {
        let s = CallbackSpec::parse(
            "GET http://kannel:13015/?dlr-mid={message_id}&dlr-mask={status_code}&to={destination}&t={done_unix} expect=202,2xx match=^Sent",
        )
        .unwrap();
        let r = s.request(&report());
        assert_eq!(r.url, "http://kannel:13015/?dlr-mid=42&dlr-mask=1&to=%2B628111&t=1796205600");
        assert!(s.is_success(202, "Sent."));
        assert!(!s.is_success(202, "Insufficient args, rejected"));
        assert!(!s.is_success(500, "Sent."));
        assert!(s.needs_body());
    }

    #[test]
    fn post_sends_the_query_as_a_form() {
        let s = CallbackSpec::parse("POST http://h/cb?id={message_id}&s={status}&at={done_at} match=ok now").unwrap();
        let r = s.request(&CallbackReport { status: "failed", ..report() });
        assert_eq!(r.url, "http://h/cb");
        assert_eq!(r.form.as_deref(), Some("id=42&s=failed&at=2026-12-02T10%3A00%3A00Z"));
        assert!(s.is_success(200, "it is ok now") && !s.is_success(200, "ok"));
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in [
            "ftp://x",
            "GET nothttp",
            "GET http://h/?id={msgid}",
            "http://h/?id={message_id}",
            "GET http://h/ expect=ok",
            "GET http://h/ colour=red",
            "GET http://h/ match=(",
        ] {
            assert!(CallbackSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
