//! The one accept path. Every front door (playSMS `pv`, its JSON-POST
//! variant, the bulk API, and the SMPP server to come) parses its own wire
//! format into a [`SendRequest`] and hands it here; this module applies the
//! stop list, the do-not-disturb list, templates, duplicates, pricing and
//! the credit check, assigns the ids and stores the submission through the
//! group-commit [`Publisher`] (awaiting the PubAck). The door renders the
//! [`Accepted`] outcome or the [`Refusal`] in its own codes.

mod duplicates;
pub mod templates;

use std::sync::Arc;
use std::time::{Duration, Instant};

use smsfleet_bus::IdIssuer;
use smsfleet_contract::{AccountState, Api, Destination, Submission};
use smsfleet_domain::account::bills_parent;
use smsfleet_domain::clock::{now_ms, unix_ms};
use smsfleet_domain::{Credit, Encoding, QueueCode, SmsLogId, charge_for};
use time::OffsetDateTime;

pub use duplicates::DuplicateWindow;

use crate::cache::AccountCache;
use crate::publisher::Publisher;

/// A validated send request, whatever door it came through.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub account: Arc<AccountState>,
    pub api: Api,
    pub sender: String,
    /// The text without footer.
    pub text: String,
    /// Appended on the air (`""` or `" @alice"`).
    pub footer: String,
    pub encoding: Encoding,
    /// Parts per destination, footer included.
    pub segments: u32,
    pub flash: bool,
    /// The door's message type as given, kept for the records.
    pub msg_type: String,
    /// Numbers as they are stored and sent, in the request's order.
    pub destinations: Vec<String>,
    pub schedule_at: Option<OffsetDateTime>,
    /// How long after acceptance (or the schedule) delivery is tried.
    pub validity: Duration,
    pub dlr_requested: bool,
    pub checks: Checks,
}

/// The checks a door's API defines beyond the stop list, which every door
/// honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// The account's do-not-disturb list.
    pub do_not_disturb: bool,
    /// The account's approved templates.
    pub templates: bool,
    /// The same text to the same number within the duplicate window.
    pub duplicates: bool,
    /// How long to await the PubAck; `None` waits as long as it takes.
    pub store_timeout: Option<Duration>,
}

/// What became of one destination, in the request's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Accepted(SmsLogId),
    StopListed,
    DoNotDisturb,
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Names the request (playSMS's `queue`); set even when no destination
    /// was sent, so a door can name internal messages with it.
    pub queue: QueueCode,
    pub fates: Vec<Fate>,
}

impl Accepted {
    pub fn sent(&self) -> usize {
        self.fates.iter().filter(|f| matches!(f, Fate::Accepted(_))).count()
    }
}

/// Why nothing of a request was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The text fits none of the account's templates.
    Template,
    /// The balance does not cover the charge.
    NoCredit,
    /// The publish failed: nothing is stored.
    NotStored { queue: QueueCode },
    /// The PubAck did not come in time: it may still be stored, so the
    /// duplicate records are kept and the client must not resubmit.
    StoreTimeout,
}

/// The shared state of the accept path.
#[derive(Clone)]
pub(crate) struct Acceptor {
    cache: AccountCache,
    publisher: Publisher,
    ids: IdIssuer,
    duplicates: Arc<DuplicateWindow>,
}

impl Acceptor {
    pub fn new(cache: AccountCache, publisher: Publisher, ids: IdIssuer, duplicates: DuplicateWindow) -> Self {
        Self { cache, publisher, ids, duplicates: Arc::new(duplicates) }
    }

    // Debug level: every door already opens a request span, and a second
    // span per message is measurable on the one-recipient hot path.
    #[tracing::instrument(level = "debug", name = "accept", skip_all, fields(uid = req.account.uid, api = ?req.api))]
    pub async fn accept(&self, req: &SendRequest) -> Result<Accepted, Refusal> {
        check_text(req)?;
        let uid = req.account.uid;
        let queue = QueueCode::from_bytes(rand::random());
        let (fates, sendable) = screen(&self.cache, &self.duplicates, req, Instant::now());
        let forget_duplicates = || {
            if req.checks.duplicates {
                for &i in &sendable {
                    self.duplicates.forget(uid, req.destinations[i].trim_start_matches('+'), &req.text);
                }
            }
        };
        let mut ids = Vec::new();
        if !sendable.is_empty() {
            let rates = self.cache.rates();
            let total: Credit = sendable.iter().map(|&i| charge_for(&rates, &req.destinations[i], req.segments)).sum();
            let payers = match payers(&self.cache, &req.account, total) {
                Ok(payers) => payers,
                Err(refusal) => {
                    forget_duplicates();
                    return Err(refusal);
                }
            };
            // No id block (a NATS outage): nothing can be stored.
            let Some(new_ids) = self.ids.next_ids(sendable.len()).await else {
                forget_duplicates();
                return Err(Refusal::NotStored { queue });
            };
            ids = new_ids;
            let submission = submission(req, &queue, &sendable, &ids);
            match store(self.publisher.submit(submission), req.checks.store_timeout).await {
                Ok(()) => {}
                Err(StoreFailure::Failed) => {
                    forget_duplicates();
                    return Err(Refusal::NotStored { queue });
                }
                Err(StoreFailure::TimedOut) => return Err(Refusal::StoreTimeout),
            }
            for payer in payers {
                self.cache.spend(payer, total);
            }
            metrics::counter!("smsfleet_ingress_messages_accepted_total").increment(ids.len() as u64);
        }
        let mut ids = ids.into_iter();
        let fates =
            fates.into_iter().map(|f| f.unwrap_or_else(|| Fate::Accepted(ids.next().unwrap_or(SmsLogId(0))))).collect();
        Ok(Accepted { queue, fates })
    }
}

/// The accounts whose credit a send of `total` by `account` spends: the
/// account, and its parent under reseller billing ([`bills_parent`]), as
/// the ledger will charge them. Refused when a cached balance of either
/// cannot cover the whole send; a free send is never refused.
fn payers(cache: &AccountCache, account: &AccountState, total: Credit) -> Result<Vec<i64>, Refusal> {
    let parent = account
        .parent_uid
        .and_then(|p| cache.by_uid(p))
        .filter(|p| !p.deleted && bills_parent(account.role, p.role))
        .map(|p| p.uid);
    let payers: Vec<i64> = std::iter::once(account.uid).chain(parent).collect();
    if !total.is_zero() && payers.iter().any(|&payer| cache.balance(payer) < total) {
        return Err(Refusal::NoCredit);
    }
    Ok(payers)
}

/// Each destination's fate before sending (`None`: to be sent), and the
/// indices of those to send. Records the sendable ones for the duplicate
/// check.
fn screen(
    cache: &AccountCache,
    duplicates: &DuplicateWindow,
    req: &SendRequest,
    now: Instant,
) -> (Vec<Option<Fate>>, Vec<usize>) {
    let uid = req.account.uid;
    let mut fates = Vec::with_capacity(req.destinations.len());
    let mut sendable = Vec::new();
    for (index, to) in req.destinations.iter().enumerate() {
        let digits = to.trim_start_matches('+');
        let fate = if cache.stopped(digits) {
            Some(Fate::StopListed)
        } else if req.checks.do_not_disturb && cache.do_not_disturb(uid, digits) {
            Some(Fate::DoNotDisturb)
        } else if req.checks.duplicates && duplicates.check_and_record(uid, digits, &req.text, now) {
            Some(Fate::Duplicate)
        } else {
            sendable.push(index);
            None
        };
        fates.push(fate);
    }
    (fates, sendable)
}

/// The checks on the text alone, made before anything is recorded.
fn check_text(req: &SendRequest) -> Result<(), Refusal> {
    if req.checks.templates && !templates::allowed(&req.account.templates, &req.text) {
        return Err(Refusal::Template);
    }
    Ok(())
}

fn submission(req: &SendRequest, queue: &QueueCode, sendable: &[usize], ids: &[SmsLogId]) -> Submission {
    let accepted_at_ms = now_ms();
    let schedule_at_ms = req.schedule_at.map(unix_ms);
    let validity_from = schedule_at_ms.unwrap_or(accepted_at_ms).max(accepted_at_ms);
    Submission {
        queue: queue.to_string(),
        uid: req.account.uid,
        api: req.api,
        sender: req.sender.clone(),
        text: req.text.clone(),
        footer: req.footer.clone(),
        encoding: req.encoding,
        flash: req.flash,
        segments: req.segments,
        msg_type: req.msg_type.clone(),
        dlr_requested: req.dlr_requested,
        accepted_at_ms,
        schedule_at_ms,
        validity_until_ms: validity_from + req.validity.as_millis() as i64,
        destinations: ids
            .iter()
            .zip(sendable)
            .map(|(id, &i)| Destination { smslog_id: id.0, to: req.destinations[i].clone() })
            .collect(),
        traceparent: smsfleet_telemetry::current_traceparent(),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum StoreFailure {
    Failed,
    TimedOut,
}

/// Awaits the JetStream PubAck of a submission, within `timeout` if any.
async fn store<F>(publish: F, timeout: Option<Duration>) -> Result<(), StoreFailure>
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let result = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, publish).await.map_err(|_| StoreFailure::TimedOut)?,
        None => publish.await,
    };
    result.map_err(|e| {
        tracing::error!(error = %e, "submission not stored");
        StoreFailure::Failed
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(templates: &[&str], text: &str) -> SendRequest {
        let account = AccountState {
            templates: templates.iter().map(|t| t.to_string()).collect(),
            ..crate::test_fixtures::account()
        };
        SendRequest {
            account: Arc::new(account),
            api: Api::Bulk,
            sender: "ACME".into(),
            text: text.into(),
            footer: String::new(),
            encoding: Encoding::Gsm7,
            segments: 1,
            flash: false,
            msg_type: "0".into(),
            destinations: vec!["919999999999".into()],
            schedule_at: None,
            validity: Duration::from_secs(60),
            dlr_requested: false,
            checks: Checks { do_not_disturb: true, templates: true, duplicates: true, store_timeout: None },
        }
    }

    #[test]
    fn texts_must_fit_a_template_when_the_account_has_any() {
        let templates = ["Your OTP is {#var#}", "Hello {#var#}, bye"];
        assert_eq!(check_text(&request(&templates, "Your OTP is 1234")), Ok(()));
        assert_eq!(check_text(&request(&templates, "Hello Bob, bye")), Ok(()));
        assert_eq!(check_text(&request(&templates, "Your code is 1234")), Err(Refusal::Template));
        assert_eq!(check_text(&request(&[], "Your code is 1234")), Ok(()));
        let free =
            SendRequest { checks: Checks { templates: false, ..request(&[], "").checks }, ..request(&templates, "x") };
        assert_eq!(check_text(&free), Ok(()));
    }

    #[test]
    fn stop_list_do_not_disturb_and_duplicates() {
        let cache = AccountCache::default();
        let stop = |number: &str, uid| {
            let v = smsfleet_contract::SCHEMA_VERSION;
            let state = smsfleet_contract::StopState { v, number: number.into(), uid, listed: true };
            cache.apply(smsfleet_bus::StateEvent::Stop(state));
        };
        stop("911111111111", None);
        stop("912222222222", Some(2));
        let window = DuplicateWindow::new(Duration::from_secs(60), 100);
        let mut req = request(&[], "hi");
        req.destinations = ["+919999999999", "911111111111", "+912222222222", "919999999999", "919999999998"]
            .map(String::from)
            .to_vec();
        let now = Instant::now();
        let (fates, sendable) = screen(&cache, &window, &req, now);
        use Fate::*;
        assert_eq!(fates, vec![None, Some(StopListed), Some(DoNotDisturb), Some(Duplicate), None]);
        assert_eq!(sendable, vec![0, 4]);
        // playSMS has no do-not-disturb list and no duplicate window.
        req.checks = Checks { do_not_disturb: false, duplicates: false, ..req.checks };
        let (fates, sendable) = screen(&cache, &window, &req, now);
        assert_eq!(fates, vec![None, Some(StopListed), None, None, None]);
        assert_eq!(sendable, vec![0, 2, 3, 4]);
    }

    /// Issue 12.8: a subuser's send needs its parent's credit too.
    #[test]
    fn a_subuser_spends_its_parents_credit_too() {
        let cache = AccountCache::default();
        let balance = |uid, amount: &str| {
            let v = smsfleet_contract::SCHEMA_VERSION;
            let state = smsfleet_contract::BalanceState { v, uid, revision: 1, balance: amount.into() };
            cache.apply(smsfleet_bus::StateEvent::Balance(state));
        };
        let carol = AccountState { uid: 4, username: "carol".into(), ..crate::test_fixtures::account() };
        cache.apply(smsfleet_bus::StateEvent::Account(Box::new(carol.clone())));
        let bob = AccountState {
            uid: 5,
            username: "bob".into(),
            role: smsfleet_domain::account::Role::Subuser,
            parent_uid: Some(4),
            ..crate::test_fixtures::account()
        };
        let three: Credit = "3".parse().unwrap();
        balance(5, "10");
        balance(4, "2");
        assert_eq!(payers(&cache, &bob, three), Err(Refusal::NoCredit));
        assert_eq!(payers(&cache, &bob, Credit::default()), Ok(vec![5, 4]));
        balance(4, "3");
        assert_eq!(payers(&cache, &bob, three), Ok(vec![5, 4]));
        // A user pays alone, whatever its parent_uid says.
        let alice = AccountState { parent_uid: Some(4), ..crate::test_fixtures::account() };
        balance(2, "3");
        assert_eq!(payers(&cache, &alice, three), Ok(vec![2]));
        // A removed parent no longer pays.
        cache.apply(smsfleet_bus::StateEvent::Account(Box::new(AccountState { deleted: true, revision: 2, ..carol })));
        assert_eq!(payers(&cache, &bob, three), Ok(vec![5]));
    }

    #[tokio::test(start_paused = true)]
    async fn store_failure_and_timeout() {
        let t = Some(Duration::from_secs(5));
        assert_eq!(store(async { Ok(()) }, t).await, Ok(()));
        assert_eq!(store(async { Err("no stream".to_owned()) }, t).await, Err(StoreFailure::Failed));
        assert_eq!(store(std::future::pending(), t).await, Err(StoreFailure::TimedOut));
        assert_eq!(store(async { Err("no stream".to_owned()) }, None).await, Err(StoreFailure::Failed));
    }

    #[test]
    fn submissions_carry_the_sendable_numbers_with_their_ids() {
        let mut req = request(&[], "hi");
        req.destinations = vec!["+628111".into(), "628222".into(), "628333".into()];
        let queue = QueueCode::from_bytes([7; 16]);
        let s = submission(&req, &queue, &[0, 2], &[SmsLogId(11), SmsLogId(12)]);
        let sent: Vec<(i64, &str)> = s.destinations.iter().map(|d| (d.smslog_id, d.to.as_str())).collect();
        assert_eq!(sent, vec![(11, "+628111"), (12, "628333")]);
        assert_eq!(s.queue, queue.to_string());
        assert_eq!(s.validity_until_ms - s.accepted_at_ms, 60_000);
    }
}
