//! The callback endpoint upstreams post reports to. Handlers only parse
//! and store: matching happens in the worker, so a slow database never
//! makes an upstream wait or time out.

use std::borrow::Cow;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use smsfleet_bus::Bus;
use smsfleet_contract::{
    DLR_BULK_PATH, DLR_CALLBACK_PATH, DLR_JASMIN_PATH, DLR_KANNEL_PATH, DlrBatch, DlrOutcome, DlrReport, RouteId,
    SCHEMA_VERSION, StreamKind,
};
use smsfleet_domain::clock::{now_ms, unix_ms};
use smsfleet_sim_protocol::{Report, ReportBatch};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::limits::{encoded_len, payload_budget};

/// `POST /dlr/{route}` (JSON batch in the simulator's format),
/// `GET /dlr/{route}?id=..&status=..` (one report, Kannel style),
/// `/dlr/{route}/kannel`, `/dlr/{route}/jasmin`, `/dlr/{route}/bulk` (the
/// HTTP gateways' own formats, see `gateways.rs`),
/// `GET|POST /mo/{route}` (incoming messages, see `mo.rs`), `GET /healthz`.
/// The report path is [`DLR_CALLBACK_PATH`], the one the dispatcher's
/// upstreams are given.
pub fn router(bus: Bus) -> Router {
    Router::new()
        .route(DLR_CALLBACK_PATH, post(post_reports).get(get_report))
        .route(DLR_KANNEL_PATH, get(crate::gateways::kannel))
        .route(DLR_JASMIN_PATH, post(crate::gateways::jasmin_post).get(crate::gateways::jasmin_get))
        .route(DLR_BULK_PATH, post(crate::gateways::bulk))
        .route("/mo/{route}", post(crate::mo::post_mo).get(crate::mo::get_mo))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(bus)
}

#[derive(Debug, Deserialize)]
pub(crate) struct SingleReport {
    id: String,
    status: String,
    #[serde(default)]
    error_code: Option<String>,
}

impl SingleReport {
    pub(crate) fn into_report(self) -> Report<'static> {
        Report {
            id: self.id.into(),
            reference: None,
            status: self.status.into(),
            error_code: self.error_code.map(Cow::Owned),
            done_at: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReceiveError {
    #[error("malformed report: {0}")]
    Malformed(String),
    #[error("a report is too large for one message")]
    TooLarge,
    #[error("cannot store reports: {0}")]
    Bus(#[from] smsfleet_bus::BusError),
}

impl IntoResponse for ReceiveError {
    fn into_response(self) -> Response {
        match self {
            ReceiveError::Malformed(m) => {
                (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "ok": false, "error": m }))).into_response()
            }
            ReceiveError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(serde_json::json!({ "ok": false, "error": self.to_string() })),
            )
                .into_response(),
            ReceiveError::Bus(e) => {
                // The upstream retries on anything but 2xx, so nothing is lost.
                tracing::warn!(error = %e, "dlr batch not stored; asking the upstream to retry");
                (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({ "ok": false }))).into_response()
            }
        }
    }
}

fn outcome(status: &str) -> Result<DlrOutcome, ReceiveError> {
    match status.to_ascii_lowercase().as_str() {
        "delivered" | "delivrd" | "1" => Ok(DlrOutcome::Delivered),
        "failed" | "undeliv" | "rejectd" | "expired" | "2" => Ok(DlrOutcome::Failed),
        other => Err(ReceiveError::Malformed(format!("unknown status {other:?}"))),
    }
}

/// RFC 3339 to Unix ms. An unreadable time is dropped (the receive time is
/// used instead) rather than refusing a report we can still match.
fn done_at_ms(s: &str) -> Option<i64> {
    match OffsetDateTime::parse(s, &Rfc3339) {
        Ok(t) => Some(unix_ms(t)),
        Err(e) => {
            tracing::debug!(done_at = s, error = %e, "unreadable done_at");
            None
        }
    }
}

pub(crate) fn convert(route: &str, reports: Vec<Report<'_>>) -> Result<DlrBatch, ReceiveError> {
    let route = RouteId::parse(route).map_err(|e| ReceiveError::Malformed(e.to_string()))?;
    if reports.is_empty() {
        return Err(ReceiveError::Malformed("no reports".to_owned()));
    }
    let reports = reports
        .into_iter()
        .map(|r| {
            if r.id.is_empty() {
                return Err(ReceiveError::Malformed("empty id".to_owned()));
            }
            // Postgres text cannot hold a NUL: refused here, not dead-lettered later.
            if r.id.contains('\0') || r.error_code.as_deref().is_some_and(|c| c.contains('\0')) {
                return Err(ReceiveError::Malformed("NUL in id or error_code".to_owned()));
            }
            Ok(DlrReport {
                outcome: outcome(&r.status)?,
                error_code: r.error_code.filter(|c| !c.is_empty()).map(Cow::into_owned),
                done_at_ms: r.done_at.as_deref().and_then(done_at_ms),
                upstream_id: r.id.into_owned(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DlrBatch {
        v: SCHEMA_VERSION,
        batch_id: hex::encode(rand::random::<[u8; 16]>()),
        route: route.to_string(),
        received_at_ms: now_ms(),
        reports,
    })
}

/// Cuts a batch into batches of at most `budget` JSON bytes each, so a
/// callback with more reports than one message holds is stored whole (the
/// parts are published together). One report that cannot fit alone is
/// [`ReceiveError::TooLarge`].
pub(crate) fn split(batch: DlrBatch, budget: usize) -> Result<Vec<DlrBatch>, ReceiveError> {
    let DlrBatch { v, batch_id, route, received_at_ms, reports } = batch;
    let part = |i: Option<usize>, reports: Vec<DlrReport>| DlrBatch {
        v,
        batch_id: i.map_or_else(|| batch_id.clone(), |i| format!("{batch_id}-{i}")),
        route: route.clone(),
        received_at_ms,
        reports,
    };
    // The empty batch, with room for a part's "-<n>" suffix.
    let envelope = encoded_len(&part(Some(usize::MAX), Vec::new()));
    let mut parts: Vec<Vec<DlrReport>> = Vec::new();
    let mut used = budget;
    for report in reports {
        // Plus one for the comma between reports.
        let len = encoded_len(&report).saturating_add(1);
        if envelope.saturating_add(len) > budget {
            return Err(ReceiveError::TooLarge);
        }
        if used.saturating_add(len) > budget || parts.is_empty() {
            parts.push(Vec::new());
            used = envelope;
        }
        used += len;
        if let Some(last) = parts.last_mut() {
            last.push(report);
        }
    }
    if parts.len() == 1 {
        return Ok(parts.into_iter().map(|reports| part(None, reports)).collect());
    }
    Ok(parts.into_iter().enumerate().map(|(i, reports)| part(Some(i), reports)).collect())
}

/// Stores the reports; reused by any ingress that mounts its own endpoint.
pub(crate) async fn receive_inner(bus: &Bus, route: &str, reports: Vec<Report<'_>>) -> Result<usize, ReceiveError> {
    let batch = convert(route, reports)?;
    let count = batch.reports.len();
    let subject = bus.namespace().subject(StreamKind::Dlr);
    let parts = split(batch, payload_budget(bus))?
        .into_iter()
        .map(|part| (subject.clone(), part.batch_id.clone(), part))
        .collect();
    bus.publish_all(parts).await?;
    metrics::counter!("smsfleet_dlr_received_total").increment(count as u64);
    Ok(count)
}

#[tracing::instrument(skip_all, fields(route = %route))]
async fn post_reports(State(bus): State<Bus>, Path(route): Path<String>, body: Bytes) -> Response {
    // Parsed by hand so that every malformed body is a 400 (axum's Json
    // answers 422 for a well-formed body of the wrong shape).
    let parsed: ReportBatch<'_> = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return ReceiveError::Malformed(e.to_string()).into_response(),
    };
    match receive_inner(&bus, &route, parsed.reports).await {
        Ok(_) => axum::Json(serde_json::json!({ "ok": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

#[tracing::instrument(skip_all, fields(route = %route))]
async fn get_report(
    State(bus): State<Bus>,
    Path(route): Path<String>,
    query: Result<Query<SingleReport>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return ReceiveError::Malformed("need id and status".to_owned()).into_response();
    };
    match receive_inner(&bus, &route, vec![q.into_report()]).await {
        Ok(_) => axum::Json(serde_json::json!({ "ok": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn converts_the_simulator_format() {
        let wire: ReportBatch<'_> = serde_json::from_str(
            r#"{"reports":[{"id":"7","ref":"1","status":"delivered","error_code":"","done_at":"2024-01-02T03:04:05.5Z"},
                           {"id":"8","ref":"2","status":"failed","error_code":"34","done_at":"nonsense"}]}"#,
        )
        .unwrap();
        let b = convert("sim", wire.reports).unwrap();
        assert_eq!(b.route, "sim");
        assert_eq!(b.batch_id.len(), 32);
        assert_eq!(b.reports[0].outcome, DlrOutcome::Delivered);
        assert_eq!(b.reports[0].error_code, None);
        assert_eq!(b.reports[0].done_at_ms, Some(1_704_164_645_500));
        assert_eq!(b.reports[1].outcome, DlrOutcome::Failed);
        assert_eq!(b.reports[1].error_code.as_deref(), Some("34"));
        assert_eq!(b.reports[1].done_at_ms, None);
    }

    #[test]
    fn kannel_codes_and_garbage() {
        assert_eq!(outcome("1").unwrap(), DlrOutcome::Delivered);
        assert_eq!(outcome("2").unwrap(), DlrOutcome::Failed);
        assert!(outcome("maybe").is_err());
        assert!(convert("sim", vec![]).is_err());
        let one =
            || vec![Report { id: "1".into(), reference: None, status: "1".into(), error_code: None, done_at: None }];
        assert!(convert("sim", one()).is_ok());
        assert!(convert("no such/route", one()).is_err());
        let nul =
            || vec![Report { id: "1\0".into(), reference: None, status: "1".into(), error_code: None, done_at: None }];
        assert!(convert("sim", nul()).is_err());
    }

    #[test]
    fn a_batch_too_large_for_one_message_is_split_in_order() {
        let reports = (0..100)
            .map(|i| Report {
                id: i.to_string().into(),
                reference: None,
                status: "1".into(),
                error_code: None,
                done_at: None,
            })
            .collect();
        let batch = convert("sim", reports).unwrap();
        let whole = encoded_len(&batch);
        let parts = split(batch.clone(), whole / 3).unwrap();
        assert!(parts.len() >= 3, "{} parts", parts.len());
        assert!(parts.iter().all(|p| encoded_len(p) <= whole / 3 && p.route == "sim"));
        let ids: Vec<&str> = parts.iter().flat_map(|p| p.reports.iter().map(|r| r.upstream_id.as_str())).collect();
        assert_eq!(ids, batch.reports.iter().map(|r| r.upstream_id.as_str()).collect::<Vec<_>>());
        let distinct: std::collections::HashSet<&str> = parts.iter().map(|p| p.batch_id.as_str()).collect();
        assert_eq!(distinct.len(), parts.len());
        // One message is enough: the batch is kept as it was.
        assert_eq!(split(batch.clone(), whole + 64).unwrap(), vec![batch.clone()]);
        assert!(matches!(split(batch, 100), Err(ReceiveError::TooLarge)));
    }
}
