//! Report callbacks in the formats of the HTTP gateways the dispatcher sends
//! through (its `[route.http]` profiles): Kannel's `dlr-url`, Jasmin's DLR
//! post and the JSON another smsfleet's callbacks role posts. Each turns the
//! gateway's report into the same [`Report`] as the simulator's callback and
//! goes through the same store-then-answer path (`http::receive_inner`), so
//! the gateway gets its success answer only once the report is durable.
//! Intermediate reports (queued, delivered to the SMSC) are answered and
//! dropped: only final outcomes change a message's status.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use smsfleet_bus::Bus;
use smsfleet_sim_protocol::Report;

use crate::http::{ReceiveError, receive_inner};

/// Jasmin sends a report again unless the answer's body is exactly this.
pub const JASMIN_ACK: &str = "ACK/Jasmin";

/// A report's meaning, before it is one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    Delivered,
    Failed,
    /// Not final: answered, not stored.
    Intermediate,
}

impl Meaning {
    fn status(self) -> &'static str {
        match self {
            Meaning::Delivered => "delivered",
            Meaning::Failed | Meaning::Intermediate => "failed",
        }
    }
}

/// Kannel's `%d`: 1 delivered, 2 undelivered, 4 queued at the SMSC, 8
/// delivered to the SMSC, 16 rejected by the SMSC. A value with several bits
/// takes the most final one.
fn kannel_meaning(bits: &str) -> Option<Meaning> {
    let bits: u32 = bits.trim().parse().ok()?;
    if bits & 1 != 0 {
        Some(Meaning::Delivered)
    } else if bits & (2 | 16) != 0 {
        Some(Meaning::Failed)
    } else if bits & (4 | 8) != 0 {
        Some(Meaning::Intermediate)
    } else {
        None
    }
}

/// Jasmin's `message_status`: the SMPP receipt's `stat:` at level 2, the
/// submit_sm_resp's command status (`ESME_ROK` ...) at level 1.
fn jasmin_meaning(status: &str) -> Option<Meaning> {
    match status.trim().to_ascii_uppercase().as_str() {
        "DELIVRD" => Some(Meaning::Delivered),
        "UNDELIV" | "REJECTD" | "EXPIRED" | "DELETED" | "FAILED" => Some(Meaning::Failed),
        "ACCEPTD" | "ENROUTE" | "UNKNOWN" => Some(Meaning::Intermediate),
        s if s.starts_with("ESME_") => Some(Meaning::Intermediate),
        _ => None,
    }
}

/// One report in, stored unless intermediate.
async fn store(
    bus: &Bus,
    route: &str,
    id: &str,
    meaning: Meaning,
    error_code: Option<String>,
    done_at: Option<String>,
) -> Result<(), ReceiveError> {
    if meaning == Meaning::Intermediate {
        metrics::counter!("smsfleet_dlr_intermediate_total").increment(1);
        return Ok(());
    }
    let report = Report {
        id: Cow::Borrowed(id),
        reference: None,
        status: Cow::Borrowed(meaning.status()),
        error_code: error_code.map(Cow::Owned),
        done_at: done_at.map(Cow::Owned),
    };
    receive_inner(bus, route, vec![report]).await.map(|_| ())
}

#[derive(Debug, Deserialize)]
pub(crate) struct KannelReport {
    /// Our reference, put in the dlr-url by the dispatcher.
    id: String,
    /// Kannel's `%d`.
    status: String,
}

/// `GET /dlr/{route}/kannel?id=<our ref>&status=<%d>`.
#[tracing::instrument(skip_all, fields(route = %route))]
pub(crate) async fn kannel(
    State(bus): State<Bus>,
    Path(route): Path<String>,
    query: Result<Query<KannelReport>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return ReceiveError::Malformed("need id and status".to_owned()).into_response();
    };
    let Some(meaning) = kannel_meaning(&q.status) else {
        return ReceiveError::Malformed(format!("unknown Kannel status {:?}", q.status)).into_response();
    };
    match store(&bus, &route, &q.id, meaning, None, None).await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct JasminReport {
    /// Jasmin's message id, as answered to `/send`.
    id: String,
    message_status: String,
    #[serde(default)]
    err: Option<String>,
    #[serde(default)]
    donedate: Option<String>,
}

fn parse_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ReceiveError> {
    serde_urlencoded_like(body).map_err(ReceiveError::Malformed)
}

/// `axum::Form` without the content-type check: Jasmin's posts are forms,
/// but not every version says so.
fn serde_urlencoded_like<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let pairs: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    serde_json::from_value(serde_json::Value::Object(pairs)).map_err(|e| e.to_string())
}

async fn jasmin_store(bus: &Bus, route: &str, r: JasminReport) -> Response {
    let Some(meaning) = jasmin_meaning(&r.message_status) else {
        return ReceiveError::Malformed(format!("unknown Jasmin status {:?}", r.message_status)).into_response();
    };
    let error = r.err.filter(|e| !e.is_empty() && e != "000");
    // Jasmin's donedate (YYMMDDhhmm) is not RFC 3339; the receive time stands in.
    let _ = r.donedate;
    match store(bus, route, &r.id, meaning, error, None).await {
        Ok(()) => (StatusCode::OK, JASMIN_ACK).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /dlr/{route}/jasmin` (form), answered `ACK/Jasmin` once stored.
#[tracing::instrument(skip_all, fields(route = %route))]
pub(crate) async fn jasmin_post(State(bus): State<Bus>, Path(route): Path<String>, body: Bytes) -> Response {
    match parse_form::<JasminReport>(&body) {
        Ok(r) => jasmin_store(&bus, &route, r).await,
        Err(e) => e.into_response(),
    }
}

/// `GET /dlr/{route}/jasmin?...` (Jasmin's `dlr-method=GET`).
#[tracing::instrument(skip_all, fields(route = %route))]
pub(crate) async fn jasmin_get(
    State(bus): State<Bus>,
    Path(route): Path<String>,
    query: Result<Query<JasminReport>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match query {
        Ok(Query(r)) => jasmin_store(&bus, &route, r).await,
        Err(e) => ReceiveError::Malformed(e.body_text()).into_response(),
    }
}

/// What another smsfleet's callbacks role posts (its `CallbackBody`).
#[derive(Debug, Deserialize)]
pub(crate) struct BulkCallback {
    /// That gateway's message id: what its `1701|<dest>|<id>` answered.
    message_id: String,
    /// `delivered` or `failed`.
    status: String,
    #[serde(default)]
    done_at: Option<String>,
}

/// `POST /dlr/{route}/bulk` (JSON).
#[tracing::instrument(skip_all, fields(route = %route))]
pub(crate) async fn bulk(State(bus): State<Bus>, Path(route): Path<String>, body: Bytes) -> Response {
    let parsed: BulkCallback = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return ReceiveError::Malformed(e.to_string()).into_response(),
    };
    let meaning = match parsed.status.to_ascii_lowercase().as_str() {
        "delivered" => Meaning::Delivered,
        "failed" => Meaning::Failed,
        other => return ReceiveError::Malformed(format!("unknown status {other:?}")).into_response(),
    };
    match store(&bus, &route, &parsed.message_id, meaning, None, parsed.done_at).await {
        Ok(()) => axum::Json(serde_json::json!({ "ok": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kannel_status_bits() {
        assert_eq!(kannel_meaning("1"), Some(Meaning::Delivered));
        assert_eq!(kannel_meaning("2"), Some(Meaning::Failed));
        assert_eq!(kannel_meaning("16"), Some(Meaning::Failed));
        assert_eq!(kannel_meaning("4"), Some(Meaning::Intermediate));
        assert_eq!(kannel_meaning("8"), Some(Meaning::Intermediate));
        assert_eq!(kannel_meaning("9"), Some(Meaning::Delivered));
        assert_eq!(kannel_meaning("0"), None);
        assert_eq!(kannel_meaning("%d"), None);
    }

    #[test]
    fn jasmin_statuses() {
        assert_eq!(jasmin_meaning("DELIVRD"), Some(Meaning::Delivered));
        assert_eq!(jasmin_meaning("UNDELIV"), Some(Meaning::Failed));
        assert_eq!(jasmin_meaning("ESME_ROK"), Some(Meaning::Intermediate));
        assert_eq!(jasmin_meaning("what"), None);
        let r: JasminReport =
            serde_urlencoded_like(b"id=abc-1&message_status=DELIVRD&level=2&err=000&donedate=2412011200").unwrap();
        assert_eq!((r.id.as_str(), r.message_status.as_str()), ("abc-1", "DELIVRD"));
        assert!(serde_urlencoded_like::<JasminReport>(b"id=1").is_err());
    }
}
