//! Wire types of the simulator's HTTP contract, the one definition of it.
//!
//! The simulator's handlers, the dispatcher's simulator upstream
//! (`POST /submit`) and the dlr role's report callback (`{"reports":[..]}`)
//! all code against these shapes. Text fields are `Cow` so a sender can
//! borrow what it already holds while a receiver decodes owned values
//! (`Cow` always deserializes as `Owned`, so `SubmitRequest<'static>` is
//! `DeserializeOwned`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
pub use smsfleet_domain::Encoding;

/// `status` of an accepted message in a [`SubmitResult`].
pub const ACCEPTED: &str = "accepted";
/// `status` of a refused message in a [`SubmitResult`].
pub const REJECTED: &str = "rejected";

#[derive(Debug, Serialize, Deserialize)]
pub struct SubmitRequest<'a> {
    pub messages: Vec<SubmitMessage<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SubmitMessage<'a> {
    /// The sender's reference; the simulator dedupes by it, which makes a
    /// resend safe.
    #[serde(rename = "ref")]
    pub reference: Cow<'a, str>,
    pub from: Cow<'a, str>,
    pub to: Cow<'a, str>,
    pub text: Cow<'a, str>,
    pub encoding: Encoding,
    #[serde(default)]
    pub flash: bool,
    /// Where the simulator posts this message's report; without it the
    /// simulator's configured default.
    #[serde(default)]
    pub dlr_url: Option<Cow<'a, str>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SubmitResponse<'a> {
    pub results: Vec<SubmitResult<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SubmitResult<'a> {
    #[serde(rename = "ref")]
    pub reference: Cow<'a, str>,
    pub id: Option<String>,
    /// [`ACCEPTED`] or [`REJECTED`].
    pub status: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Cow<'a, str>>,
}

/// What `/messages/{ref}` returns: the accepted content plus how often the ref was submitted.
#[derive(Debug, Serialize)]
pub struct MessageView<'a> {
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

/// The body of a delivery-report POST.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReportBatch<'a> {
    pub reports: Vec<Report<'a>>,
}

/// One delivery report. The simulator always sends every field; a
/// receiver needs only `id` and `status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report<'a> {
    /// The upstream id given in the submit's answer.
    pub id: Cow<'a, str>,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Cow<'a, str>>,
    /// `delivered` or `failed`.
    pub status: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<Cow<'a, str>>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<Cow<'a, str>>,
}

#[derive(Debug, Serialize)]
pub struct StatsView {
    pub submits: u64,
    /// Submit calls (HTTP requests), each carrying one or more messages.
    pub submit_requests: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub duplicate_submits: u64,
    pub delivered_reports: u64,
    pub failed_reports: u64,
    pub report_posts: u64,
    pub report_post_failures: u64,
    pub pending_reports: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn encoding_keeps_its_json_spelling() {
        let spelled: Vec<String> = [Encoding::Gsm7, Encoding::Ucs2, Encoding::Latin1]
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        assert_eq!(spelled, [r#""gsm7""#, r#""ucs2""#, r#""latin1""#]);
    }

    #[test]
    fn a_report_needs_only_id_and_status() {
        let batch: ReportBatch<'static> =
            serde_json::from_str(r#"{"reports":[{"id":"7","status":"delivered"}]}"#).unwrap();
        assert_eq!((&*batch.reports[0].id, batch.reports[0].error_code.is_none()), ("7", true));
    }
}
