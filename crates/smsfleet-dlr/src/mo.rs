//! The MO callback: messages from handsets that an upstream reports to us
//! (`GET|POST /mo/{route}` with `from`, `to`, `text`, `id`). Like the
//! delivery-report callback it only parses and stores: the message goes to
//! the INCOMING stream under the key `mo:<route>:<id>` and the upstream
//! gets its 200 only after the PubAck, so a retry after a lost answer or
//! an outage (503) is stored once.

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use smsfleet_bus::Bus;
use smsfleet_contract::{IncomingKind, IncomingMessage, SCHEMA_VERSION, StreamKind};

use crate::limits::{encoded_len, payload_budget};

/// Longest upstream id we take; it becomes part of a NATS header.
const MAX_ID_LEN: usize = 200;

/// One MO as the upstream sends it (query string, form or JSON body).
#[derive(Debug, Deserialize)]
pub(crate) struct WireMo {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    id: String,
}

/// Longest route name we take; like the id it becomes part of the key.
const MAX_ROUTE_LEN: usize = 64;

/// A route name is a configured name, never free text: letters, digits,
/// `_`, `-`, `.`. Checked before any key is built, because the key becomes
/// a NATS header and a subject-like identifier.
fn valid_route(route: &str) -> bool {
    !route.is_empty()
        && route.len() <= MAX_ROUTE_LEN
        && route.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Checks an MO and turns it into the stream message.
pub(crate) fn convert(route: &str, mo: WireMo, received_at_ms: i64) -> Result<IncomingMessage, String> {
    if !valid_route(route) {
        return Err("route must be 1 to 64 letters, digits, '_', '-' or '.'".to_owned());
    }
    let (from, id) = (mo.from.trim(), mo.id.trim());
    if from.is_empty() || id.is_empty() {
        return Err("need a route, from and id".to_owned());
    }
    if id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err("id too long or not printable".to_owned());
    }
    // Postgres text cannot hold a NUL: refused here, not dead-lettered later.
    if [from, mo.to.as_str(), mo.text.as_str()].iter().any(|s| s.contains('\0')) {
        return Err("NUL in from, to or text".to_owned());
    }
    Ok(IncomingMessage {
        v: SCHEMA_VERSION,
        key: format!("mo:{route}:{id}"),
        kind: IncomingKind::Mo,
        sender: from.to_owned(),
        receiver: mo.to.trim().to_owned(),
        text: mo.text,
        smsc: route.to_owned(),
        to_uid: None,
        received_at_ms,
        traceparent: smsfleet_telemetry::current_traceparent(),
    })
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn store(bus: &Bus, route: &str, mo: WireMo) -> Response {
    let message = match convert(route, mo, smsfleet_domain::clock::now_ms()) {
        Ok(m) => m,
        Err(why) => return answer(StatusCode::BAD_REQUEST, serde_json::json!({ "ok": false, "error": why })),
    };
    if encoded_len(&message) > payload_budget(bus) {
        // Permanent: a retry would never fit either.
        return answer(StatusCode::PAYLOAD_TOO_LARGE, serde_json::json!({ "ok": false, "error": "MO too large" }));
    }
    match bus.publish(bus.namespace().subject(StreamKind::Incoming), &message.key, &message).await {
        Ok(_) => {
            metrics::counter!("smsfleet_dlr_mo_received_total").increment(1);
            answer(StatusCode::OK, serde_json::json!({ "ok": true }))
        }
        Err(e) => {
            // The upstream retries on anything but 2xx; the key dedupes it.
            tracing::warn!(error = %e, "MO not stored; asking the upstream to retry");
            answer(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "ok": false }))
        }
    }
}

#[tracing::instrument(skip_all, fields(route = %route))]
pub(crate) async fn get_mo(
    State(bus): State<Bus>,
    Path(route): Path<String>,
    query: Result<Query<WireMo>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match query {
        Ok(Query(mo)) => store(&bus, &route, mo).await,
        Err(e) => answer(StatusCode::BAD_REQUEST, serde_json::json!({ "ok": false, "error": e.body_text() })),
    }
}

/// A JSON object or an urlencoded form.
#[tracing::instrument(skip_all, fields(route = %route))]
pub(crate) async fn post_mo(State(bus): State<Bus>, Path(route): Path<String>, req: Request) -> Response {
    match read_mo(req).await {
        Ok(mo) => store(&bus, &route, mo).await,
        Err((status, why)) => answer(status, serde_json::json!({ "ok": false, "error": why })),
    }
}

/// A POSTed MO's fields, or the status and reason it is refused with.
pub(crate) async fn read_mo(req: Request) -> Result<WireMo, (StatusCode, String)> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if json {
        match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
            Ok(body) => serde_json::from_slice::<WireMo>(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string())),
            Err(e) => Err((StatusCode::PAYLOAD_TOO_LARGE, e.to_string())),
        }
    } else {
        axum::Form::<WireMo>::from_request(req, &()).await.map(|f| f.0).map_err(|e| {
            // A body over axum's limit is permanent (413), not malformed.
            let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { e.status() } else { StatusCode::BAD_REQUEST };
            (status, e.body_text())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mo(from: &str, id: &str) -> WireMo {
        WireMo { from: from.into(), to: " 1234 ".into(), text: "IDOL hi".into(), id: id.into() }
    }

    #[test]
    fn key_is_route_and_upstream_id() {
        let m = convert("sim", mo("+628999000001", "abc-1"), 7).unwrap();
        assert_eq!((m.key.as_str(), m.kind, m.smsc.as_str()), ("mo:sim:abc-1", IncomingKind::Mo, "sim"));
        assert_eq!((m.sender.as_str(), m.receiver.as_str(), m.text.as_str()), ("+628999000001", "1234", "IDOL hi"));
        assert_eq!((m.received_at_ms, m.to_uid), (7, None));
    }

    #[test]
    fn from_and_id_are_required() {
        assert!(convert("sim", mo("", "1"), 0).is_err());
        assert!(convert("sim", mo("62", " "), 0).is_err());
        assert!(convert("sim", mo("62", &"x".repeat(201)), 0).is_err());
        assert!(convert("sim", mo("62", "a\nb"), 0).is_err());
    }

    #[test]
    fn a_nul_anywhere_is_refused() {
        assert!(convert("sim", mo("62\0", "1"), 0).is_err());
        assert!(convert("sim", WireMo { text: "a\0b".into(), ..mo("62", "1") }, 0).is_err());
        assert!(convert("sim", WireMo { to: "1\0".into(), ..mo("62", "1") }, 0).is_err());
    }

    #[test]
    fn route_names_are_plain() {
        for bad in ["", "a\r\nX:1", "a b", "a/b", "a:b", "a*", "é", &"r".repeat(65)] {
            assert!(convert(bad, mo("62", "1"), 0).is_err(), "{bad:?} accepted");
        }
        for good in ["sim", "Route_1", "up-stream.eu", &"r".repeat(64)] {
            assert!(convert(good, mo("62", "1"), 0).is_ok(), "{good:?} refused");
        }
    }
}
