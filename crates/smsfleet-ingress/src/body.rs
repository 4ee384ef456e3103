//! The one request-body reader of every front door: the playSMS endpoint
//! (form or multipart), its JSON-POST variant and the bulk API (form
//! only). Like PHP's `$_REQUEST`, body values override the query's; a body
//! that cannot be read counts as empty, and so does the body of any method
//! but POST (PHP fills `$_POST` for POST only).

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{Method, header};
use smsfleet_playsms::Params;

/// Largest form body read; a bigger one counts as empty.
pub const MAX_FORM_BYTES: usize = 8 * 1024 * 1024;

/// Which body encodings a door reads besides `x-www-form-urlencoded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bodies {
    FormOnly,
    FormAndMultipart,
}

/// The query merged with the body's form fields (files skipped).
pub async fn params(req: Request, bodies: Bodies) -> Params {
    let query = Params::from_query(req.uri().query().unwrap_or(""));
    if req.method() != Method::POST {
        return query;
    }
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let body = if bodies == Bodies::FormAndMultipart && content_type.starts_with("multipart/form-data") {
        multipart(req).await
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
            Ok(b) => Params::from_query(&String::from_utf8_lossy(&b)),
            Err(_) => Params::new(),
        }
    } else {
        // playSMS does not parse JSON or other bodies on these endpoints.
        Params::new()
    };
    Params::merge(query, body)
}

async fn multipart(req: Request) -> Params {
    let Ok(mut mp) = Multipart::from_request(req, &()).await else { return Params::new() };
    let mut pairs = Vec::new();
    while let Ok(Some(field)) = mp.next_field().await {
        let name = field.name().unwrap_or("").to_owned();
        if field.file_name().is_some() {
            continue;
        }
        if let Ok(v) = field.text().await {
            pairs.push((name, v));
        }
    }
    Params::from_pairs(pairs)
}

/// The JSON-POST variant's object; anything but JSON counts as empty.
pub fn json_params(body: &[u8]) -> Params {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => Params::from_json_body(&v),
        Err(_) => Params::new(),
    }
}
