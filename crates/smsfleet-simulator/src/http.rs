//! HTTP edge of the simulator: thin axum handlers over [`crate::App`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::App;
use crate::protocol::{StatsView, SubmitRequest};

/// Large enough for batches of tens of thousands of messages; the axum default (2 MB) is not.
const MAX_BODY: usize = 64 * 1024 * 1024;

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/submit", post(submit))
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset))
        .route("/messages/{reference}", get(message))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn submit(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    // Parsed by hand so every malformed body is a 400, as the contract says (axum's `Json`
    // would answer 422 for well-formed JSON of the wrong shape).
    let request: SubmitRequest<'static> = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            let body = serde_json::json!({ "error": error.to_string() }).to_string();
            return json(StatusCode::BAD_REQUEST, body.into_bytes());
        }
    };
    let screened = app.screen(&request.messages);
    let wait = app.pace(peer, &screened);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let response = app.accept(request.messages, screened);
    match serde_json::to_vec(&response) {
        Ok(body) => json(StatusCode::OK, body),
        Err(error) => {
            tracing::error!(%error, "cannot encode submit response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn stats(State(app): State<Arc<App>>) -> Response {
    let c = &app.counters;
    let view = StatsView {
        submits: c.submits.load(Ordering::Relaxed),
        submit_requests: c.submit_requests.load(Ordering::Relaxed),
        accepted: c.accepted.load(Ordering::Relaxed),
        rejected: c.rejected.load(Ordering::Relaxed),
        duplicate_submits: c.duplicate_submits.load(Ordering::Relaxed),
        delivered_reports: c.delivered_reports.load(Ordering::Relaxed),
        failed_reports: c.failed_reports.load(Ordering::Relaxed),
        report_posts: c.report_posts.load(Ordering::Relaxed),
        report_post_failures: c.report_post_failures.load(Ordering::Relaxed),
        pending_reports: crate::dlr::pending_count(c),
    };
    match serde_json::to_vec(&view) {
        Ok(body) => json(StatusCode::OK, body),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn reset(State(app): State<Arc<App>>) -> StatusCode {
    app.counters.reset();
    app.refs.clear();
    StatusCode::OK
}

async fn message(State(app): State<Arc<App>>, Path(reference): Path<String>) -> Response {
    match app.refs.view(&reference) {
        Some(body) => json(StatusCode::OK, body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok"
}
