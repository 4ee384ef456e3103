//! `op=pv`: send. [`plan`] interprets the request (destinations, groups,
//! `@user` targets, sender, footer, encoding, schedule), pure so every rule
//! is unit-tested without a server; [`handle`] hands the numbers to the
//! accept path, sends the internal messages and renders one item per
//! destination in the request's order.

use std::collections::HashSet;
use std::net::IpAddr;

use smsfleet_contract::{AccountState, Api};
use smsfleet_domain::account::SenderRule;
use smsfleet_domain::{Msisdn, schedule, text};
use smsfleet_playsms::{Node, Params};
use time::OffsetDateTime;

use super::inbox::{self, InboxTarget};
use crate::accept::{Accepted, Checks, Fate, Refusal, SendRequest};
use crate::app::{App, SendLimits};
use crate::playsms::caller;
use crate::playsms::error::ApiError;
use crate::playsms::reply::{Payload, destination_failed_item, send_failed_item};

/// playSMS's ERR 201: `to` or `msg` missing or empty.
const ERR_EMPTY: u16 = 201;

/// playSMS has no do-not-disturb list, templates or duplicate window, and
/// waits for the store as long as it takes.
const PLAYSMS_CHECKS: Checks =
    Checks { do_not_disturb: false, templates: false, duplicates: false, store_timeout: None };

/// playSMS cuts footers at 30 characters.
const MAX_FOOTER: usize = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct PvPlan {
    pub destinations: Vec<String>,
    pub sender: String,
    pub text: String,
    /// With its leading space, or empty.
    pub footer: String,
    pub encoding: text::Encoding,
    pub segments: u32,
    pub flash: bool,
    pub msg_type: String,
    pub schedule_at: Option<OffsetDateTime>,
    /// `@username` entries: internal messages to other users' inboxes.
    pub inbox: Vec<InboxTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PvRejection {
    /// ERR 201: `to` or `msg` missing or empty.
    Empty,
    /// A request-level failure (ERR 200 item): no usable destination, too
    /// many destinations, too long, or a schedule we cannot read.
    Failed(&'static str),
}

/// `group_members` resolves `#CODE` (without the `#`) to the member numbers
/// of the caller's group, `None` when there is no such group.
pub fn plan(
    p: &Params,
    account: &AccountState,
    limits: &SendLimits,
    group_members: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<PvPlan, PvRejection> {
    let (Some(to), Some(msg)) = (p.get_nonempty("to"), p.get_nonempty("msg")) else {
        return Err(PvRejection::Empty);
    };
    let text = msg.replace("\r\n", "\n");
    let mut destinations: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut inbox: Vec<InboxTarget> = Vec::new();
    for raw in to.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(name) = raw.strip_prefix('@') {
            // playSMS silently drops a message to yourself.
            if let Some(username) = smsfleet_domain::account::normalize_username(name)
                && !username.eq_ignore_ascii_case(&account.username)
                && !inbox.iter().any(|t| t.username == username)
            {
                inbox.push(InboxTarget { username, position: destinations.len() });
            }
            continue;
        }
        // `#CODE`: every member of the group; an unknown group adds nothing.
        let numbers = match raw.strip_prefix('#') {
            Some(code) => group_members(code.trim()).unwrap_or_default(),
            None => vec![raw.to_owned()],
        };
        for number in numbers {
            if let Some(n) = Msisdn::clean(&number)
                && seen.insert(n.as_str().to_owned())
            {
                destinations.push(n.as_str().to_owned());
            }
        }
    }
    if destinations.is_empty() && inbox.is_empty() {
        return Err(PvRejection::Failed("no valid destination"));
    }
    if destinations.len() + inbox.len() > limits.max_destinations {
        return Err(PvRejection::Failed("too many destinations"));
    }
    let sender = p
        .get_nonempty("from")
        .filter(|f| SenderRule::PLAYSMS.allows(f))
        .map(str::to_owned)
        .or_else(|| (!account.sender.is_empty()).then(|| account.sender.clone()))
        .unwrap_or_else(|| limits.default_sender.clone());
    let footer_text = if p.get_nonempty("nofooter").is_some() {
        String::new()
    } else {
        p.get_nonempty("footer").map(|f| f.chars().take(MAX_FOOTER).collect()).unwrap_or_else(|| account.footer.clone())
    };
    let footer = if footer_text.trim().is_empty() { String::new() } else { format!(" {}", footer_text.trim()) };
    let full = format!("{text}{footer}");
    let unicode = p.get("unicode").is_some_and(|u| u == "1");
    let encoding = text::detect(&full, unicode);
    let segments = text::count_segments(&full, encoding).segments;
    if segments > limits.max_segments {
        return Err(PvRejection::Failed("message too long"));
    }
    let msg_type = p.get_nonempty("type").unwrap_or("text").to_owned();
    let flash = msg_type.eq_ignore_ascii_case("flash");
    let schedule_at = match p.get_nonempty("schedule") {
        None => None,
        Some(s) => {
            let offset = schedule::parse_offset(&account.timezone).unwrap_or(time::UtcOffset::UTC);
            Some(schedule::parse_schedule(s, offset).ok_or(PvRejection::Failed("unreadable schedule"))?)
        }
    };
    Ok(PvPlan { destinations, sender, text, footer, encoding, segments, flash, msg_type, schedule_at, inbox })
}

pub(crate) async fn handle(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    let account = caller::user(app, p, client)?;
    let group_members = |code: &str| app.cache.group_members(account.uid, code);
    let plan = match plan(p, &account, &app.limits, &group_members) {
        Ok(plan) => plan,
        Err(PvRejection::Empty) => return Err(ApiError::new(ERR_EMPTY)),
        Err(PvRejection::Failed(why)) => {
            tracing::info!(uid = account.uid, why, "pv refused");
            return Ok(failed_send(""));
        }
    };
    // `@user` entries are internal messages, not charged and not in `ds`.
    let inbox = inbox::resolve(&app.cache, &account, &plan.inbox);
    let request = SendRequest {
        account: account.clone(),
        api: Api::Playsms,
        sender: plan.sender,
        text: plan.text,
        footer: plan.footer,
        encoding: plan.encoding,
        segments: plan.segments,
        flash: plan.flash,
        msg_type: plan.msg_type,
        destinations: plan.destinations,
        schedule_at: plan.schedule_at,
        validity: app.validity,
        dlr_requested: false,
        checks: PLAYSMS_CHECKS,
    };
    let accepted = match app.acceptor.accept(&request).await {
        Ok(accepted) => accepted,
        Err(Refusal::NotStored { queue }) => return Ok(failed_send(queue.as_str())),
        Err(refusal) => {
            if refusal == Refusal::NoCredit {
                metrics::counter!("smsfleet_ingress_pv_rejected_total", "reason" => "credit").increment(1);
            }
            return Ok(failed_send(""));
        }
    };
    // A request that sends nothing fails as a whole, as in playSMS.
    if accepted.sent() == 0 && inbox.is_empty() {
        return Ok(failed_send(""));
    }
    let queue = accepted.queue.as_str();
    let ims = inbox::send(app, &account, queue, &request.text, &inbox).await;
    let numbers = number_items(&accepted, &request.destinations);
    Ok(Payload::List(inbox::interleave(numbers, ims)))
}

/// The item playSMS (on PHP 7) returns when a whole send fails.
fn failed_send(queue: &str) -> Payload {
    Payload::List(vec![send_failed_item(queue)])
}

/// One item per number, in the request's order, whether it was typed or
/// came from a `#group`: an accepted one with its id, a stop-listed one as
/// playSMS's ERR 200 item for that number, next to the OK items.
fn number_items(accepted: &Accepted, destinations: &[String]) -> Vec<Node> {
    let queue = accepted.queue.as_str();
    accepted
        .fates
        .iter()
        .zip(destinations)
        .map(|(fate, to)| match fate {
            Fate::Accepted(id) => Node::map()
                .with("status", "OK")
                .with("error", "0")
                .with("smslog_id", id.0)
                .with("queue", queue)
                .with("to", to.as_str()),
            // playSMS's checks have no do-not-disturb list or duplicate
            // window, so only the stop list refuses a number here.
            Fate::StopListed | Fate::DoNotDisturb | Fate::Duplicate => destination_failed_item(queue, to),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn account() -> AccountState {
        AccountState { timezone: "+0700".into(), footer: "@alice".into(), ..crate::test_fixtures::account() }
    }

    fn limits() -> SendLimits {
        SendLimits { max_destinations: 100, max_segments: 10, default_sender: "smsfleet".into() }
    }

    fn params(q: &str) -> Params {
        Params::from_query(q)
    }

    /// alice's groups as in the reference fixture.
    fn groups(code: &str) -> Option<Vec<String>> {
        match code.to_ascii_uppercase().as_str() {
            "FRIENDS" => Some(vec!["+628111000101".into(), "0811-1000-102".into()]),
            "FAMILY" => Some(vec![]),
            _ => None,
        }
    }

    fn plan(p: &Params, account: &AccountState, limits: &SendLimits) -> Result<PvPlan, PvRejection> {
        super::plan(p, account, limits, &groups)
    }

    #[test]
    fn groups_expand_to_members_mixed_with_numbers() {
        let p = plan(&params("to=%23FRIENDS&msg=hi"), &account(), &limits()).unwrap();
        assert_eq!(p.destinations, vec!["+628111000101", "08111000102"]);
        let p = plan(&params("to=08111000102,%23friends,628111000007,%2B628111000101&msg=hi"), &account(), &limits())
            .unwrap();
        assert_eq!(p.destinations, vec!["08111000102", "+628111000101", "628111000007"]);
    }

    #[test]
    fn unknown_or_empty_groups_add_nothing() {
        for to in ["%23NOPE", "%23FAMILY", "%23", "%23FAM"] {
            assert_eq!(
                plan(&params(&format!("to={to}&msg=hi")), &account(), &limits()),
                Err(PvRejection::Failed("no valid destination")),
                "{to}"
            );
        }
        let p = plan(&params("to=%23NOPE,628111000007&msg=hi"), &account(), &limits()).unwrap();
        assert_eq!(p.destinations, vec!["628111000007"]);
    }

    #[test]
    fn splits_cleans_and_dedupes() {
        let p = plan(
            &params("to=628111000003,%2B628111000003,%200811-1000-004,abc,628111000003&msg=hi"),
            &account(),
            &limits(),
        )
        .unwrap();
        assert_eq!(p.destinations, vec!["628111000003", "+628111000003", "08111000004"]);
        assert_eq!(p.footer, " @alice");
        assert_eq!(p.sender, "smsfleet");
    }

    #[test]
    fn empty_and_invalid() {
        assert_eq!(plan(&params("to=&msg=hi"), &account(), &limits()), Err(PvRejection::Empty));
        assert_eq!(plan(&params("to=1&msg=+"), &account(), &limits()), Err(PvRejection::Empty));
        assert_eq!(
            plan(&params("to=abc,def&msg=hi"), &account(), &limits()),
            Err(PvRejection::Failed("no valid destination"))
        );
    }

    #[test]
    fn users_become_inbox_targets_in_order_and_self_is_dropped() {
        let p = plan(&params("to=%40Bob,628111000007,%40alice,%40bob,%40carol&msg=hi"), &account(), &limits()).unwrap();
        assert_eq!(p.destinations, vec!["628111000007"]);
        let targets: Vec<(&str, usize)> = p.inbox.iter().map(|t| (t.username.as_str(), t.position)).collect();
        assert_eq!(targets, vec![("bob", 0), ("carol", 1)]);
        let p = plan(&params("to=%40bob&msg=hi"), &account(), &limits()).unwrap();
        assert!(p.destinations.is_empty());
        assert_eq!(p.inbox.len(), 1);
        assert_eq!(
            plan(&params("to=%40alice&msg=hi"), &account(), &limits()),
            Err(PvRejection::Failed("no valid destination"))
        );
        assert_eq!(
            plan(&params("to=%40&msg=hi"), &account(), &limits()),
            Err(PvRejection::Failed("no valid destination"))
        );
        let small = SendLimits { max_destinations: 2, ..limits() };
        assert_eq!(
            plan(&params("to=%40bob,%40carol,1&msg=hi"), &account(), &small),
            Err(PvRejection::Failed("too many destinations"))
        );
    }

    #[test]
    fn footer_sender_flash_unicode() {
        let p = plan(&params("to=1&msg=hi&nofooter=1&from=ACME&type=flash&unicode=1"), &account(), &limits()).unwrap();
        assert_eq!(p.footer, "");
        assert_eq!(p.sender, "ACME");
        assert!(p.flash);
        assert_eq!(p.encoding, text::Encoding::Ucs2);
        let p = plan(&params("to=1&msg=%D0%9F%D1%80%D0%B8&footer=xx"), &account(), &limits()).unwrap();
        assert_eq!(p.encoding, text::Encoding::Ucs2);
        assert_eq!(p.footer, " xx");
        let p = plan(&params("to=1&msg=hi&from=this-is-not-valid"), &account(), &limits()).unwrap();
        assert_eq!(p.sender, "smsfleet");
    }

    #[test]
    fn segments_include_footer_and_limit() {
        let long = "a".repeat(155);
        let p = plan(&params(&format!("to=1&msg={long}")), &account(), &limits()).unwrap();
        assert_eq!(p.segments, 2);
        let too_long = "a".repeat(1600);
        assert_eq!(
            plan(&params(&format!("to=1&msg={too_long}")), &account(), &limits()),
            Err(PvRejection::Failed("message too long"))
        );
    }

    #[test]
    fn schedule_in_account_zone() {
        let p = plan(&params("to=1&msg=x&schedule=2030-01-01+10%3A00%3A00"), &account(), &limits()).unwrap();
        assert_eq!(p.schedule_at.unwrap(), time::macros::datetime!(2030-01-01 03:00:00 UTC));
        let p = plan(&params("to=1&msg=x&schedule=2030-01-01"), &account(), &limits()).unwrap();
        assert_eq!(p.schedule_at.unwrap(), time::macros::datetime!(2029-12-31 17:00:00 UTC), "midnight at +0700");
        assert_eq!(
            plan(&params("to=1&msg=x&schedule=soon"), &account(), &limits()),
            Err(PvRejection::Failed("unreadable schedule"))
        );
    }

    #[test]
    fn stop_listed_numbers_get_an_err_200_item_in_their_place() {
        use smsfleet_domain::{QueueCode, SmsLogId};
        use smsfleet_playsms::render::to_json;
        let queue = QueueCode::from_bytes([3; 16]);
        let accepted = Accepted {
            queue: queue.clone(),
            fates: vec![Fate::StopListed, Fate::Accepted(SmsLogId(5)), Fate::StopListed],
        };
        let destinations = ["+628111000101", "08111000102", "628111000103"].map(String::from);
        let items = number_items(&accepted, &destinations);
        let json: Vec<String> = items.iter().map(to_json).collect();
        assert_eq!(
            json,
            vec![
                format!(r#"{{"status":"ERR","error":"200","smslog_id":0,"queue":"{queue}","to":"+628111000101"}}"#),
                format!(r#"{{"status":"OK","error":"0","smslog_id":5,"queue":"{queue}","to":"08111000102"}}"#),
                format!(r#"{{"status":"ERR","error":"200","smslog_id":0,"queue":"{queue}","to":"628111000103"}}"#),
            ]
        );
    }
}
