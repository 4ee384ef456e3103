//! Wire types of the simulator's HTTP contract.
//!
//! The dispatcher submits to `/submit` and the DLR worker receives `{"reports":[..]}`; both code
//! against exactly these shapes, so they live in one place and are the only serde types here.

use serde::{Deserialize, Serialize};

/// Character set of a submitted text; echoed back by `/messages/{ref}` so tests can check it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Gsm7,
    Ucs2,
    Latin1,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SubmitRequest {
    pub messages: Vec<SubmitMessage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SubmitMessage {
    #[serde(rename = "ref")]
    pub reference: String,
    pub from: String,
    pub to: String,
    pub text: String,
    pub encoding: Encoding,
    #[serde(default)]
    pub flash: bool,
    #[serde(default)]
    pub dlr_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct SubmitResponse {
    pub results: Vec<SubmitResult>,
}

#[derive(Debug, Serialize)]
pub(crate) struct SubmitResult {
    #[serde(rename = "ref")]
    pub reference: String,
    pub id: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// What `/messages/{ref}` returns: the accepted content plus how often the ref was submitted.
#[derive(Debug, Serialize)]
pub(crate) struct MessageView<'a> {
    #[serde(rename = "ref")]
    pub reference: &'a str,
    pub id: String,
    pub to: &'a str,
    pub from: &'a str,
    pub text: &'a str,
    pub encoding: Encoding,
    pub flash: bool,
    pub submits: u32,
}

#[derive(Debug, Serialize)]
pub(crate) struct ReportBatch<'a> {
    pub reports: Vec<ReportWire<'a>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ReportWire<'a> {
    pub id: &'a str,
    #[serde(rename = "ref")]
    pub reference: &'a str,
    pub status: &'static str,
    pub error_code: &'static str,
    pub done_at: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct StatsView {
    pub submits: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub duplicate_submits: u64,
    pub delivered_reports: u64,
    pub failed_reports: u64,
    pub report_posts: u64,
    pub report_post_failures: u64,
    pub pending_reports: u64,
}
