//! The upstream's HTTP submit protocol (the simulator's contract) and how a
//! failed call is classified: whether the request can have reached the
//! upstream decides if our claims may be dropped.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use smsfleet_contract::Encoding;

#[derive(Debug, Serialize)]
pub struct SubmitRequest<'a> {
    pub messages: Vec<SubmitMessage<'a>>,
}

#[derive(Debug, Serialize)]
pub struct SubmitMessage<'a> {
    /// Our `smslog_id`: the upstream dedupes by it, which makes a resend safe.
    #[serde(rename = "ref")]
    pub reference: String,
    pub from: &'a str,
    pub to: &'a str,
    pub text: &'a str,
    pub encoding: Encoding,
    pub flash: bool,
    pub dlr_url: &'a str,
}

#[derive(Debug, Deserialize)]
struct SubmitResponse {
    results: Vec<SubmitResult>,
}

#[derive(Debug, Deserialize)]
struct SubmitResult {
    #[serde(rename = "ref")]
    reference: String,
    id: Option<String>,
    status: String,
    #[serde(default)]
    error: Option<String>,
}

/// The upstream's verdict on one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted { upstream_id: String },
    Rejected { reason: String },
}

/// Why a submit call gave no verdicts.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing reached the upstream (connection refused, DNS, TLS): claims
    /// can be dropped.
    #[error("upstream unreachable: {0}")]
    NotReached(String),
    /// The upstream may have accepted it (timeout, 5xx, 429, garbled
    /// answer): claims must stay so a redelivery knows.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The upstream refused the whole request (4xx): resending cannot help.
    #[error("upstream refused the request: {0}")]
    Refused(String),
}

/// Posts one batch and returns the verdict per `ref`.
pub async fn submit(
    client: &reqwest::Client,
    url: &str,
    request: &SubmitRequest<'_>,
) -> Result<HashMap<String, Verdict>, CallError> {
    let response = client.post(url).json(request).send().await.map_err(classify)?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(CallError::Unknown(format!("HTTP {status}")));
    }
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(CallError::Refused(format!("HTTP {status}: {}", body.chars().take(200).collect::<String>())));
    }
    let body = response.bytes().await.map_err(|e| CallError::Unknown(e.to_string()))?;
    let parsed: SubmitResponse =
        serde_json::from_slice(&body).map_err(|e| CallError::Unknown(format!("undecodable answer: {e}")))?;
    Ok(parsed
        .results
        .into_iter()
        .map(|r| {
            let verdict = match (r.status.as_str(), r.id) {
                ("accepted", Some(upstream_id)) => Verdict::Accepted { upstream_id },
                _ => Verdict::Rejected { reason: r.error.unwrap_or_else(|| format!("upstream status {}", r.status)) },
            };
            (r.reference, verdict)
        })
        .collect())
}

fn classify(e: reqwest::Error) -> CallError {
    // A connect error means no request bytes were written; anything later
    // (timeout, reset mid-response) may have been processed upstream.
    if e.is_connect() && !e.is_timeout() {
        CallError::NotReached(e.to_string())
    } else {
        CallError::Unknown(e.to_string())
    }
}
