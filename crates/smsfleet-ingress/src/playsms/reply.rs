//! The one place a playSMS answer is put together: the envelope around an
//! op's [`Payload`] or [`ApiError`], its timestamp, the session headers
//! every playSMS answer carries and the format the client asked for.
//! `ws_login`'s redirect and an unknown op's empty page are built here too.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use smsfleet_domain::clock::now_secs;
use smsfleet_playsms::{Format, Node, envelope, render};

use super::error::ApiError;

/// What an op answers on success.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    /// `status: OK`, `error: 0` and the op's keys.
    Ok(Vec<(String, Node)>),
    /// `data: [...]` without status keys (pv, ds, in, ix, sx).
    List(Vec<Node>),
    /// Only the trailer keys (no op, or stoplist without `from`).
    Bare,
}

impl Payload {
    pub fn ok() -> Self {
        Payload::Ok(Vec::new())
    }

    /// An OK answer with one key.
    pub fn one(key: &str, value: impl Into<Node>) -> Self {
        Payload::Ok(vec![(key.to_owned(), value.into())])
    }
}

/// The envelope around an op's outcome, stamped with the one timestamp.
pub(crate) fn envelope_of(result: Result<Payload, ApiError>, timestamp: i64) -> Node {
    match result {
        Ok(Payload::Ok(entries)) => envelope::ok(entries, timestamp),
        Ok(Payload::List(items)) => envelope::list(items, timestamp),
        Ok(Payload::Bare) => envelope::bare(timestamp),
        Err(e) => {
            let extra = e.info.map(|info| vec![("info".to_owned(), Node::from(info))]).unwrap_or_default();
            envelope::err_with(e.code, extra, timestamp)
        }
    }
}

pub(crate) fn reply(result: Result<Payload, ApiError>, format: Format) -> Response {
    let rendered = render(&envelope_of(result, now_secs()), format);
    let mut headers = session_headers();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(rendered.content_type));
    (StatusCode::OK, headers, rendered.body).into_response()
}

/// playSMS answers an op it does not know with an empty HTML body.
pub(crate) fn unknown_op() -> Response {
    let mut headers = session_headers();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    (StatusCode::OK, headers).into_response()
}

/// A bare `text/plain` answer (the `credit` extension op), with the
/// session headers of every playSMS answer.
pub(crate) fn plain_text(body: String) -> Response {
    let mut headers = session_headers();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    (StatusCode::OK, headers, body).into_response()
}

/// `ws_login`'s answer, whatever happened.
pub(crate) fn redirect(location: &str) -> Response {
    let mut r = (StatusCode::FOUND, session_headers()).into_response();
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("index.php"));
    r.headers_mut().insert(header::LOCATION, location);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    r
}

/// The cache headers PHP's `session_start()` puts on every playSMS answer,
/// whatever the op (transcripts 001–202 all carry them).
fn session_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=0, no-cache, no-store, must-revalidate"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("Thu, 19 Nov 1981 08:52:00 GMT"));
    headers.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    headers
}

/// playSMS's ERR 200 item for a whole send that failed (on PHP 7: its
/// result arrays are empty strings).
pub(crate) fn send_failed_item(queue: &str) -> Node {
    Node::map().with("status", "ERR").with("error", "200").with("smslog_id", "").with("queue", queue).with("to", "")
}

/// playSMS's ERR 200 item for one destination of a send that went on: the
/// defaults `sendsms()` gives every destination (no id, the request's
/// queue, the number).
pub(crate) fn destination_failed_item(queue: &str, to: &str) -> Node {
    Node::map().with("status", "ERR").with("error", "200").with("smslog_id", 0).with("queue", queue).with("to", to)
}

#[cfg(test)]
mod tests {
    use smsfleet_playsms::render::to_json;

    use super::*;

    /// playSMS sends its session cache headers on every answer, an unknown
    /// op's empty one included (transcript 002).
    #[test]
    fn unknown_op_is_empty_html_with_the_session_headers() {
        let r = unknown_op();
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=UTF-8");
        assert_eq!(h[header::CACHE_CONTROL], "max-age=0, no-cache, no-store, must-revalidate");
        assert_eq!(h[header::PRAGMA], "no-cache");
        assert_eq!(h[header::EXPIRES], "Thu, 19 Nov 1981 08:52:00 GMT");
        assert_eq!(h["x-frame-options"], "SAMEORIGIN");
    }

    #[test]
    fn envelopes_of_payloads_and_errors() {
        assert_eq!(
            to_json(&envelope_of(Err(ApiError::new(100)), 7)),
            r#"{"status":"ERR","error":"100","error_string":"authentication failed","timestamp":7}"#
        );
        let refused = ApiError { code: 604, info: Some("x".into()) };
        assert_eq!(
            to_json(&envelope_of(Err(refused), 7)),
            r#"{"status":"ERR","error":"604","info":"x","error_string":"fail to add account","timestamp":7}"#
        );
        assert_eq!(
            to_json(&envelope_of(Ok(Payload::one("token", "t")), 7)),
            r#"{"status":"OK","error":"0","token":"t","error_string":null,"timestamp":7}"#
        );
        assert_eq!(
            to_json(&envelope_of(Ok(Payload::List(vec![])), 7)),
            r#"{"data":[],"error_string":null,"timestamp":7}"#
        );
        assert_eq!(to_json(&envelope_of(Ok(Payload::Bare), 7)), r#"{"error_string":null,"timestamp":7}"#);
    }
}
