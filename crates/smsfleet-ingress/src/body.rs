//! The one request-body reader of every front door: the playSMS endpoint
//! (form or multipart), its JSON-POST variant and the bulk API (form
//! only). Like PHP's `$_REQUEST`, body values override the query's; only a
//! POST's body counts (PHP fills `$_POST` for POST only).
//!
//! A request whose body is too large, or whose parameters hold a NUL, is
//! refused whole ([`Refused`]): running it on the query alone would send
//! what the client did not ask for, and a NUL would be answered OK and then
//! fail in Postgres, whose text cannot hold one. A body of a type the door
//! does not parse is still read (and discarded, bounded), so the keep-alive
//! connection stays usable for the client's next request.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use smsfleet_playsms::Params;

/// Largest body read by any door (also the router's `DefaultBodyLimit`,
/// which bounds multipart and the JSON-POST variant).
pub const MAX_FORM_BYTES: usize = 8 * 1024 * 1024;

/// Which body encodings a door reads besides `x-www-form-urlencoded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bodies {
    FormOnly,
    FormAndMultipart,
}

/// Why a request is answered with the door's bad-input code and not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The body is over [`MAX_FORM_BYTES`].
    TooLarge,
    /// A parameter name or value holds U+0000.
    Nul,
}

impl Refused {
    /// The refusal's answer, marked `Connection: close` when the body was
    /// left unread: the connection cannot carry another request.
    pub fn answer(self, mut r: Response) -> Response {
        tracing::info!(refused = ?self, "request refused before it ran");
        if self == Refused::TooLarge {
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

/// The query merged with the body's form fields (files skipped).
pub async fn params(req: Request, bodies: Bodies) -> Result<Params, Refused> {
    let query = Params::from_query(req.uri().query().unwrap_or(""));
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let body = if req.method() != Method::POST {
        // Read (bounded) and ignored, so the connection stays usable.
        read(req).await?;
        Params::new()
    } else if bodies == Bodies::FormAndMultipart && content_type.starts_with("multipart/form-data") {
        multipart(req).await?
    } else {
        let bytes = read(req).await?;
        if content_type.starts_with("application/x-www-form-urlencoded") {
            Params::from_query(&String::from_utf8_lossy(&bytes))
        } else {
            // playSMS does not parse JSON or other bodies on these endpoints.
            Params::new()
        }
    };
    without_nul(Params::merge(query, body))
}

/// Bytes a too-large body may still send after the limit: read and thrown
/// away so that a client that sent a little too much gets its answer, not a
/// connection reset by unread data. Beyond that the connection is closed.
const MAX_DRAINED_BYTES: usize = MAX_FORM_BYTES;

/// The whole body, at most [`MAX_FORM_BYTES`]; a body that breaks off
/// counts as empty.
async fn read(req: Request) -> Result<Bytes, Refused> {
    let mut chunks = req.into_body().into_data_stream();
    let (mut body, mut seen) = (BytesMut::new(), 0usize);
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else {
            body.clear();
            break;
        };
        seen = seen.saturating_add(chunk.len());
        if seen > MAX_FORM_BYTES + MAX_DRAINED_BYTES {
            break;
        }
        if seen <= MAX_FORM_BYTES {
            body.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_FORM_BYTES {
        return Err(Refused::TooLarge);
    }
    Ok(body.freeze())
}

fn without_nul(p: Params) -> Result<Params, Refused> {
    if p.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
        return Err(Refused::Nul);
    }
    Ok(p)
}

/// A multipart body that breaks off for its size is refused; one that is
/// malformed otherwise counts from its last good field, as before.
async fn multipart(req: Request) -> Result<Params, Refused> {
    let too_large =
        |status: StatusCode| if status == StatusCode::PAYLOAD_TOO_LARGE { Err(Refused::TooLarge) } else { Ok(()) };
    let mut mp = match Multipart::from_request(req, &()).await {
        Ok(mp) => mp,
        Err(e) => {
            too_large(e.status())?;
            return Ok(Params::new());
        }
    };
    let mut pairs = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                too_large(e.status())?;
                break;
            }
        };
        let name = field.name().unwrap_or("").to_owned();
        if field.file_name().is_some() {
            continue;
        }
        match field.text().await {
            Ok(v) => pairs.push((name, v)),
            Err(e) => too_large(e.status())?,
        }
    }
    Ok(Params::from_pairs(pairs))
}

/// The JSON-POST variant's object; anything but JSON counts as empty.
pub async fn json_params(req: Request) -> Result<Params, Refused> {
    let body = read(req).await?;
    let params = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => Params::from_json_body(&v),
        Err(_) => Params::new(),
    };
    without_nul(params)
}
