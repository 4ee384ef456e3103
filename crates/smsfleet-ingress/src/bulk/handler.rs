//! The bulk request from guards to reply: authenticate, interpret, hand
//! the numbers to the accept path, render each destination's line.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use smsfleet_contract::Api;
use smsfleet_playsms::Params;

use super::codes as code;
use super::guards::{authenticate, blacklisted};
use super::request::{BulkLimits, Target, plan, required};
use crate::accept::{Checks, Fate, Refusal, SendRequest};
use crate::app::App;
use crate::body::{self, Bodies};

pub async fn bulksms(app: State<Arc<App>>, peer: ConnectInfo<SocketAddr>, req: Request) -> Response {
    handle(app, peer, req, false).await
}

pub async fn schedulemsg(app: State<Arc<App>>, peer: ConnectInfo<SocketAddr>, req: Request) -> Response {
    handle(app, peer, req, true).await
}

/// Both endpoints: the same parameters, `schedulemsg` also reads a schedule.
async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    scheduled: bool,
) -> Response {
    let client = app.client_ip(peer, req.headers());
    match body::params(req, Bodies::FormOnly).await {
        Ok(p) => submit(&app, &p, client, scheduled).await,
        Err(why) => why.answer(code_only(code::INVALID_URL)),
    }
}

#[tracing::instrument(name = "bulk.submit", skip_all, fields(scheduled))]
async fn submit(app: &App, p: &Params, client: IpAddr, scheduled: bool) -> Response {
    metrics::counter!("smsfleet_ingress_requests_total", "op" => if scheduled { "bulk_schedulemsg" } else { "bulk_bulksms" })
        .increment(1);
    let r = match required(p, scheduled) {
        Ok(r) => r,
        Err(c) => return code_only(c),
    };
    if blacklisted(&app.bulk.settings, client) {
        return code_only(code::IP_BLACKLISTED);
    }
    let account = match authenticate(app, &r, client).await {
        Ok(a) => a,
        Err(c) => return code_only(c),
    };
    let limits = BulkLimits {
        max_destinations: app.limits.max_destinations,
        max_segments: app.limits.max_segments,
        spam_patterns: app.bulk.settings.spam_patterns.clone(),
    };
    let uid = account.uid;
    let plan = match plan(&r, &limits) {
        Ok(plan) => plan,
        Err(c) => {
            tracing::info!(uid, code = c, "bulk request refused");
            return code_only(c);
        }
    };
    let request = SendRequest {
        account,
        api: Api::Bulk,
        sender: plan.sender,
        text: plan.text,
        footer: String::new(),
        encoding: plan.encoding,
        segments: plan.segments,
        flash: plan.flash,
        msg_type: plan.msg_type,
        destinations: plan
            .targets
            .iter()
            .filter_map(|t| match t {
                Target::Send(n) => Some(n.digits().to_owned()),
                Target::Invalid(_) => None,
            })
            .collect(),
        schedule_at: plan.schedule_at,
        validity: app.validity,
        dlr_requested: plan.dlr,
        checks: Checks {
            do_not_disturb: true,
            templates: true,
            duplicates: true,
            store_timeout: Some(app.query_timeout),
        },
    };
    match app.acceptor.accept(&request).await {
        Ok(accepted) => render(&lines(&plan.targets, &accepted.fates)),
        Err(refusal) => {
            let c = refusal_code(&refusal);
            tracing::info!(uid, code = c, "bulk request refused");
            code_only(c)
        }
    }
}

fn refusal_code(refusal: &Refusal) -> u16 {
    match refusal {
        Refusal::Template => code::TEMPLATE,
        Refusal::NoCredit => code::NO_CREDIT,
        Refusal::NotStored { .. } => code::INTERNAL,
        Refusal::StoreTimeout => code::TIMEOUT,
    }
}

/// One `<code>|<destination>[|<id>]` line per destination, in the
/// request's order; `fates` follow the valid numbers' order.
fn lines(targets: &[Target], fates: &[Fate]) -> Vec<String> {
    let mut fates = fates.iter();
    targets
        .iter()
        .map(|t| match t {
            Target::Invalid(raw) => format!("{}|{raw}", code::BAD_DESTINATION),
            Target::Send(n) => match fates.next() {
                Some(Fate::Accepted(id)) => format!("{}|{}|{}", code::SUBMITTED, n.as_str(), id.0),
                Some(Fate::StopListed) => format!("{}|{}", code::STOP_LIST, n.as_str()),
                Some(Fate::DoNotDisturb) => format!("{}|{}", code::DND, n.as_str()),
                Some(Fate::Duplicate) => format!("{}|{}", code::DUPLICATE, n.as_str()),
                None => format!("{}|{}", code::INTERNAL, n.as_str()),
            },
        })
        .collect()
}

/// Lines joined with commas, `text/plain`, always HTTP 200.
fn render(lines: &[String]) -> Response {
    let mut r = (StatusCode::OK, lines.join(",")).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn code_only(c: u16) -> Response {
    render(&[c.to_string()])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use smsfleet_domain::{Msisdn, SmsLogId};

    use super::*;

    #[test]
    fn lines_keep_the_request_order() {
        let n = |s: &str| Target::Send(Msisdn::strict(s).unwrap());
        let targets = [
            n("+919999999999"),
            Target::Invalid("abc".into()),
            n("911111111111"),
            n("912222222222"),
            n("919999999999"),
        ];
        let fates = [Fate::Accepted(SmsLogId(42)), Fate::StopListed, Fate::DoNotDisturb, Fate::Duplicate];
        assert_eq!(
            lines(&targets, &fates),
            vec!["1701|+919999999999|42", "1706|abc", "1042|911111111111", "1732|912222222222", "1041|919999999999"]
        );
    }

    #[test]
    fn refusals_in_bulk_codes() {
        let queue = smsfleet_domain::QueueCode::from_bytes([1; 16]);
        assert_eq!(refusal_code(&Refusal::Template), code::TEMPLATE);
        assert_eq!(refusal_code(&Refusal::NoCredit), code::NO_CREDIT);
        assert_eq!(refusal_code(&Refusal::NotStored { queue }), code::INTERNAL);
        assert_eq!(refusal_code(&Refusal::StoreTimeout), code::TIMEOUT);
    }
}
