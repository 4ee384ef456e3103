//! [`Upstream`] over the simulator's JSON protocol: one `POST /submit` per
//! batch, reports posted by the simulator to our dlr callback.

use std::borrow::Cow;
use std::collections::HashMap;

use futures_util::future::BoxFuture;
use smsfleet_contract::{RouteId, dlr_callback_url};
use smsfleet_sim_protocol::{ACCEPTED, SubmitMessage, SubmitRequest, SubmitResponse, SubmitResult};

use super::{OutboundMessage, Upstream, Verdict, transport_verdict, with_callback_secret};
use crate::route::SimSettings;

pub(crate) struct SimUpstream {
    client: reqwest::Client,
    route: RouteId,
    submit_url: String,
    /// Built once from the dlr base URL and the route id.
    dlr_url: String,
    dedupes_by_reference: bool,
}

impl SimUpstream {
    /// `callback_secret` travels in the callback URL: the simulator, like
    /// most upstreams, is given a URL and no headers.
    pub(crate) fn new(
        client: reqwest::Client,
        route: &RouteId,
        settings: &SimSettings,
        callback_secret: Option<&str>,
    ) -> Self {
        let dlr_url = with_callback_secret(dlr_callback_url(&settings.dlr_base_url, route), callback_secret);
        Self {
            client,
            route: route.clone(),
            submit_url: settings.submit_url.clone(),
            dlr_url,
            dedupes_by_reference: settings.dedupes_by_reference,
        }
    }

    async fn submit_batch(&self, batch: &[OutboundMessage<'_>]) -> Vec<Verdict> {
        let messages = batch
            .iter()
            .map(|m| SubmitMessage {
                reference: Cow::Borrowed(&m.reference),
                from: Cow::Borrowed(m.from),
                to: Cow::Borrowed(m.to),
                text: Cow::Borrowed(m.text),
                encoding: m.encoding,
                flash: m.flash,
                dlr_url: Some(Cow::Borrowed(&self.dlr_url)),
            })
            .collect();
        match self.post(&SubmitRequest { messages }).await {
            Ok(results) => {
                let mut by_ref: HashMap<Cow<'_, str>, Verdict> =
                    results.into_iter().map(|r| (r.reference.clone(), verdict(r))).collect();
                batch
                    .iter()
                    .map(|m| {
                        by_ref.remove(m.reference.as_str()).unwrap_or_else(|| Verdict::Unknown {
                            reason: "the upstream's answer lacked some refs".to_owned(),
                        })
                    })
                    .collect()
            }
            Err(failure) => {
                if let Verdict::Rejected { reason } = &failure {
                    tracing::warn!(route = %self.route, %reason, "upstream refused a submit");
                }
                vec![failure; batch.len()]
            }
        }
    }

    /// Posts one batch; a failure of the whole call comes back as the
    /// verdict every message of it gets.
    async fn post(&self, request: &SubmitRequest<'_>) -> Result<Vec<SubmitResult<'static>>, Verdict> {
        let unknown = |reason: String| Verdict::Unknown { reason };
        let response =
            self.client.post(&self.submit_url).json(request).send().await.map_err(|e| transport_verdict(&e))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(unknown(format!("HTTP {status}")));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let reason = format!("HTTP {status}: {}", body.chars().take(200).collect::<String>());
            return Err(Verdict::Rejected { reason });
        }
        let body = response.bytes().await.map_err(|e| unknown(e.to_string()))?;
        let parsed: SubmitResponse<'static> =
            serde_json::from_slice(&body).map_err(|e| unknown(format!("undecodable answer: {e}")))?;
        Ok(parsed.results)
    }
}

impl Upstream for SimUpstream {
    fn submit<'a>(&'a self, batch: &'a [OutboundMessage<'a>]) -> BoxFuture<'a, Vec<Verdict>> {
        Box::pin(self.submit_batch(batch))
    }

    fn dedupes_by_reference(&self) -> bool {
        self.dedupes_by_reference
    }
}

/// The simulator answers `accepted` with one id for the whole message.
fn verdict(result: SubmitResult<'_>) -> Verdict {
    match (result.status.as_ref(), result.id) {
        (ACCEPTED, Some(upstream_id)) => Verdict::Accepted { upstream_ids: vec![upstream_id] },
        (status, _) => Verdict::Rejected {
            reason: result.error.map(Cow::into_owned).unwrap_or_else(|| format!("upstream status {status}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: &'static str, id: Option<&str>, error: Option<&'static str>) -> SubmitResult<'static> {
        SubmitResult {
            reference: "1".into(),
            id: id.map(str::to_owned),
            status: status.into(),
            error: error.map(Cow::Borrowed),
        }
    }

    #[test]
    fn answers_become_verdicts() {
        assert_eq!(
            verdict(result("accepted", Some("u7"), None)),
            Verdict::Accepted { upstream_ids: vec!["u7".to_owned()] }
        );
        assert_eq!(
            verdict(result("rejected", None, Some("invalid destination"))),
            Verdict::Rejected { reason: "invalid destination".to_owned() }
        );
        assert_eq!(
            verdict(result("accepted", None, None)),
            Verdict::Rejected { reason: "upstream status accepted".to_owned() }
        );
    }

    #[test]
    fn the_callback_secret_travels_in_the_callback_url() {
        let route = RouteId::parse("sim").unwrap_or_else(|_| unreachable!());
        let settings = SimSettings {
            submit_url: "http://u/submit".to_owned(),
            dlr_base_url: "http://d:8081/".to_owned(),
            dedupes_by_reference: true,
        };
        let client = reqwest::Client::new();
        let open = SimUpstream::new(client.clone(), &route, &settings, None);
        assert_eq!(open.dlr_url, "http://d:8081/dlr/sim");
        let guarded = SimUpstream::new(client, &route, &settings, Some("s3 cr&t"));
        assert_eq!(guarded.dlr_url, "http://d:8081/dlr/sim?callback_secret=s3+cr%26t");
    }
}
