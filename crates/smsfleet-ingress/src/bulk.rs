//! The bulk HTTP API (Route Mobile style): `/bulksms/bulksms` and
//! `/bulksms/schedulemsg`, GET query or POST form (the body overrides the
//! query). Replies are `text/plain` lines `<code>|<destination>|<id>` joined
//! with commas, always with HTTP 200: the API's own client samples treat any
//! other status as a transport failure.
//!
//! Request interpretation is pure ([`required`], [`plan`]) so that every
//! reply code is unit-tested with the input that provokes it; the handler
//! only authenticates, looks up lists, publishes and renders. Codes are
//! checked in this order: 1702, 16, 1703, 1709, 18, 1704, 1708, 1707, 1705,
//! 1711–1713 (schedule, smsfleet extensions), 1706, 1028, 1033, per
//! destination 1042/1732/1041, then 1725 and 1710/1715.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use smsfleet_contract::{AccountState, Api, Destination, Submission};
use smsfleet_domain::schedule::{BulkScheduleError, parse_bulk_schedule};
use smsfleet_domain::{Credit, Msisdn, QueueCode, charge_for, ipallow, text};
use smsfleet_playsms::Params;
use time::OffsetDateTime;

use crate::App;

const MAX_FORM_BYTES: usize = 8 * 1024 * 1024;

/// Reply codes of the bulk API. 1711–1713 are smsfleet extensions for a
/// malformed schedule; the others are the API's own.
pub mod code {
    pub const SUBMITTED: u16 = 1701;
    pub const INVALID_URL: u16 = 1702;
    pub const BAD_CREDENTIALS: u16 = 1703;
    pub const BAD_TYPE: u16 = 1704;
    pub const BAD_MESSAGE: u16 = 1705;
    pub const BAD_DESTINATION: u16 = 1706;
    pub const BAD_SOURCE: u16 = 1707;
    pub const BAD_DLR: u16 = 1708;
    pub const USER_VALIDATION: u16 = 1709;
    pub const INTERNAL: u16 = 1710;
    pub const BAD_DATE: u16 = 1711;
    pub const BAD_TIME: u16 = 1712;
    pub const BAD_GMT: u16 = 1713;
    pub const TIMEOUT: u16 = 1715;
    pub const NO_CREDIT: u16 = 1725;
    pub const DND: u16 = 1732;
    pub const SPAM: u16 = 1028;
    pub const TEMPLATE: u16 = 1033;
    pub const DUPLICATE: u16 = 1041;
    pub const STOP_LIST: u16 = 1042;
    pub const IP_BLACKLISTED: u16 = 16;
    pub const IP_NOT_WHITELISTED: u16 = 18;
}

/// Settings of the bulk API (from `SMSFLEET_BULK_*`).
#[derive(Debug, Clone, Default)]
pub struct BulkSettings {
    /// Global client-IP blacklist, `domain::ipallow` syntax; empty = off.
    pub ip_blacklist: String,
    /// Case-insensitive substrings that make a message spam (1028).
    pub spam_patterns: Vec<String>,
    /// Same account, destination and text within this window is 1041; zero = off.
    pub duplicate_window: Duration,
}

/// The parameters every request must carry, non-blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Required {
    pub username: String,
    pub password: String,
    pub msg_type: String,
    pub dlr: String,
    pub destination: String,
    pub source: String,
    pub message: String,
    /// `(date, time, gmt)` for `schedulemsg`.
    pub schedule: Option<(String, String, String)>,
}

/// 1702 unless every required parameter is present and not blank.
pub fn required(p: &Params, scheduled: bool) -> Result<Required, u16> {
    let get = |k: &str| p.get_nonempty(k).map(str::to_owned).ok_or(code::INVALID_URL);
    // The message is kept untrimmed-by-us (Params already trims, like PHP).
    let r = Required {
        username: get("username")?,
        password: get("password")?,
        msg_type: get("type")?,
        dlr: get("dlr")?,
        destination: get("destination")?,
        source: get("source")?,
        message: get("message")?,
        schedule: if scheduled { Some((get("date")?, get("time")?, get("gmt")?)) } else { None },
    };
    Ok(r)
}

/// What to do with one destination of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Send to this number (as the client wrote it, `+` kept).
    Send(Msisdn),
    /// Answer this code for this destination and do not send.
    Reject(u16, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BulkPlan {
    pub targets: Vec<Target>,
    pub sender: String,
    pub text: String,
    pub encoding: text::Encoding,
    pub segments: u32,
    pub flash: bool,
    pub msg_type: String,
    pub dlr: bool,
    pub schedule_at: Option<OffsetDateTime>,
}

pub struct BulkLimits {
    pub max_destinations: usize,
    pub max_segments: u32,
    pub spam_patterns: Vec<String>,
}

/// Validates an authenticated request. `listed(digits)` answers 1042 (stop
/// list) or 1732 (the account's do-not-disturb list) for a number.
pub fn plan(
    r: &Required,
    account: &AccountState,
    limits: &BulkLimits,
    listed: impl Fn(&str) -> Option<u16>,
) -> Result<BulkPlan, u16> {
    let (encoding, flash) = match r.msg_type.as_str() {
        "0" => (text::Encoding::Gsm7, false),
        "1" => (text::Encoding::Gsm7, true),
        "2" => (text::Encoding::Ucs2, false),
        "5" => (text::Encoding::Latin1, false),
        "6" => (text::Encoding::Ucs2, true),
        "7" => (text::Encoding::Latin1, true),
        // 3 is reserved and 4 (WAP push) is not offered.
        _ => return Err(code::BAD_TYPE),
    };
    let dlr = match r.dlr.as_str() {
        "0" => false,
        "1" => true,
        _ => return Err(code::BAD_DLR),
    };
    if !source_ok(&r.source) {
        return Err(code::BAD_SOURCE);
    }
    let message = if encoding == text::Encoding::Ucs2 { decode_utf16_hex(&r.message) } else { None }
        .unwrap_or_else(|| r.message.replace("\r\n", "\n"));
    let representable = match encoding {
        text::Encoding::Gsm7 => text::is_gsm7(&message),
        text::Encoding::Latin1 => text::is_latin1(&message),
        text::Encoding::Ucs2 => true,
    };
    if message.is_empty() || !representable {
        return Err(code::BAD_MESSAGE);
    }
    let segments = text::count_segments(&message, encoding).segments;
    if segments > limits.max_segments {
        return Err(code::BAD_MESSAGE);
    }
    let schedule_at = match &r.schedule {
        None => None,
        Some((d, t, g)) => Some(parse_bulk_schedule(d, t, g).map_err(|e| match e {
            BulkScheduleError::Date => code::BAD_DATE,
            BulkScheduleError::Time => code::BAD_TIME,
            BulkScheduleError::Offset => code::BAD_GMT,
        })?),
    };
    let mut targets = Vec::new();
    let mut any_valid = false;
    for raw in r.destination.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match Msisdn::strict(raw) {
            None => targets.push(Target::Reject(code::BAD_DESTINATION, raw.to_owned())),
            Some(n) => {
                any_valid = true;
                match listed(n.digits()) {
                    Some(c) => targets.push(Target::Reject(c, n.as_str().to_owned())),
                    None => targets.push(Target::Send(n)),
                }
            }
        }
    }
    if !any_valid || targets.len() > limits.max_destinations {
        return Err(code::BAD_DESTINATION);
    }
    if is_spam(&message, &limits.spam_patterns) {
        return Err(code::SPAM);
    }
    if !account.templates.is_empty() && !account.templates.iter().any(|t| matches_template(t, &message)) {
        return Err(code::TEMPLATE);
    }
    Ok(BulkPlan {
        targets,
        sender: r.source.clone(),
        text: message,
        encoding,
        segments,
        flash,
        msg_type: r.msg_type.clone(),
        dlr,
        schedule_at,
    })
}

/// Numeric: an optional `+` and 1–18 digits. Alphanumeric: 1–11 ASCII
/// letters, digits or spaces, with at least one letter.
pub fn source_ok(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits.len() <= 18;
    }
    s.chars().count() <= 11 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
}

/// Route Mobile clients send unicode (types 2 and 6) as hex of UTF-16BE:
/// `00480069` is "Hi". A message of only hex digits whose length is a
/// multiple of 4 is decoded that way; anything else (or invalid UTF-16) is
/// taken as the text itself.
pub fn decode_utf16_hex(s: &str) -> Option<String> {
    if s.is_empty() || !s.len().is_multiple_of(4) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let units: Vec<u16> = s
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).ok().and_then(|h| u16::from_str_radix(h, 16).ok()))
        .collect::<Option<_>>()?;
    char::decode_utf16(units).collect::<Result<String, _>>().ok()
}

pub fn is_spam(message: &str, patterns: &[String]) -> bool {
    let lower = message.to_lowercase();
    patterns.iter().any(|p| !p.is_empty() && lower.contains(&p.to_lowercase()))
}

const VAR: &str = "{#var#}";
const VAR_MAX: usize = 30;

/// Whether `message` fits `template`: each `{#var#}` stands for 1 to 30
/// arbitrary characters, everything else must match literally.
pub fn matches_template(template: &str, message: &str) -> bool {
    let pieces: Vec<&str> = template.split(VAR).collect();
    let msg: Vec<char> = message.chars().collect();
    let pieces: Vec<Vec<char>> = pieces.iter().map(|p| p.chars().collect()).collect();
    fn go(pieces: &[Vec<char>], msg: &[char]) -> bool {
        let (first, rest) = match pieces.split_first() {
            Some(x) => x,
            None => return msg.is_empty(),
        };
        if !msg.starts_with(first) {
            return false;
        }
        let msg = &msg[first.len()..];
        if rest.is_empty() {
            return msg.is_empty();
        }
        // A variable follows: try every length from 1 to 30.
        (1..=VAR_MAX.min(msg.len())).any(|n| go(rest, &msg[n..]))
    }
    go(&pieces, &msg)
}

/// Remembers recent (account, destination, text) sends for the duplicate
/// check. Per ingress replica: a duplicate sent through another replica is
/// not caught.
pub struct DuplicateWindow {
    window: Duration,
    capacity: usize,
    seen: Mutex<HashMap<u64, Instant>>,
}

impl DuplicateWindow {
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self { window, capacity, seen: Mutex::new(HashMap::new()) }
    }

    fn key(uid: i64, destination: &str, text: &str) -> u64 {
        let mut h = DefaultHasher::new();
        (uid, destination, text).hash(&mut h);
        h.finish()
    }

    /// True if the same send was recorded within the window; otherwise
    /// records it (at `now`) and returns false.
    pub fn check_and_record(&self, uid: i64, destination: &str, text: &str, now: Instant) -> bool {
        if self.window.is_zero() {
            return false;
        }
        let key = Self::key(uid, destination, text);
        let Ok(mut seen) = self.seen.lock() else { return false };
        if let Some(at) = seen.get(&key)
            && now.duration_since(*at) < self.window
        {
            return true;
        }
        if seen.len() >= self.capacity {
            let window = self.window;
            seen.retain(|_, at| now.duration_since(*at) < window);
            if seen.len() >= self.capacity {
                seen.clear();
            }
        }
        seen.insert(key, now);
        false
    }

    /// Undoes a record when the send did not happen after all.
    pub fn forget(&self, uid: i64, destination: &str, text: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(&Self::key(uid, destination, text));
        }
    }
}

/// Successful argon2 checks, keyed by (uid, account revision, keyed
/// password fingerprint): argon2 costs tens of milliseconds of CPU and would
/// otherwise cap the request rate. A changed account (new revision) or
/// another password misses the cache; wrong passwords are never cached.
pub struct CredentialCache {
    capacity: usize,
    ok: Mutex<std::collections::HashSet<(i64, i64, String)>>,
}

impl CredentialCache {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, ok: Mutex::new(Default::default()) }
    }

    pub fn contains(&self, uid: i64, revision: i64, fingerprint: &str) -> bool {
        self.ok.lock().is_ok_and(|s| s.contains(&(uid, revision, fingerprint.to_owned())))
    }

    pub fn insert(&self, uid: i64, revision: i64, fingerprint: String) {
        if let Ok(mut s) = self.ok.lock() {
            if s.len() >= self.capacity {
                s.clear();
            }
            s.insert((uid, revision, fingerprint));
        }
    }
}

/// Per-replica bulk API state.
pub struct BulkState {
    pub settings: BulkSettings,
    pub credentials: CredentialCache,
    pub duplicates: DuplicateWindow,
}

impl BulkState {
    pub fn new(settings: BulkSettings) -> Self {
        Self {
            duplicates: DuplicateWindow::new(settings.duplicate_window, 100_000),
            credentials: CredentialCache::new(10_000),
            settings,
        }
    }
}

fn render(lines: &[String]) -> Response {
    let mut r = (StatusCode::OK, lines.join(",")).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn code_only(c: u16) -> Response {
    render(&[c.to_string()])
}

async fn params(req: Request) -> Params {
    let query = Params::from_query(req.uri().query().unwrap_or(""));
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let body = if form {
        match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
            Ok(b) => Params::from_query(&String::from_utf8_lossy(&b)),
            Err(_) => Params::new(),
        }
    } else {
        Params::new()
    };
    Params::merge(query, body)
}

pub async fn bulksms(State(app): State<App>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let client = app.client_ip(peer, req.headers());
    let p = params(req).await;
    submit(&app, &p, client, false).await
}

pub async fn schedulemsg(State(app): State<App>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let client = app.client_ip(peer, req.headers());
    let p = params(req).await;
    submit(&app, &p, client, true).await
}

/// Awaits the JetStream PubAck of a submission: 1710 if the publish
/// failed, 1715 if it did not answer in time (it may still be stored, so
/// the duplicate record is kept and the client must not resubmit).
async fn store<F>(publish: F, timeout: Duration) -> Result<(), u16>
where
    F: std::future::Future<Output = Result<(), String>>,
{
    match tokio::time::timeout(timeout, publish).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "bulk submission not stored");
            Err(code::INTERNAL)
        }
        Err(_) => Err(code::TIMEOUT),
    }
}

/// 1703 for an unknown user or wrong password; 1709 for an account that may
/// not send; 18 for a client outside the account's allow-list.
async fn authenticate(app: &App, r: &Required, client: IpAddr) -> Result<Arc<AccountState>, u16> {
    if app.login_blocked(client) {
        return Err(code::BAD_CREDENTIALS);
    }
    let outcome = check_credentials(app, r, client).await;
    app.record_login(client, !matches!(outcome, Err(code::BAD_CREDENTIALS)));
    outcome
}

async fn check_credentials(app: &App, r: &Required, client: IpAddr) -> Result<Arc<AccountState>, u16> {
    let account = crate::auth::find_user(&app.cache, &r.username).ok_or(code::BAD_CREDENTIALS)?;
    let hash = account.bulk_password_hash.clone().ok_or(code::BAD_CREDENTIALS)?;
    let fingerprint = app.secrets.password_fingerprint(&r.password);
    if !app.bulk.credentials.contains(account.uid, account.revision, &fingerprint) {
        let password = r.password.clone();
        // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
        let ok = tokio::task::spawn_blocking(move || smsfleet_accounts::verify_password(&hash, &password))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(code::BAD_CREDENTIALS);
        }
        app.bulk.credentials.insert(account.uid, account.revision, fingerprint);
    }
    if account.banned || account.deleted || !account.webservices_enabled {
        return Err(code::USER_VALIDATION);
    }
    if !ipallow::allows(&account.webservices_ip, client) {
        return Err(code::IP_NOT_WHITELISTED);
    }
    Ok(account)
}

#[tracing::instrument(name = "bulk.submit", skip_all, fields(scheduled))]
async fn submit(app: &App, p: &Params, client: IpAddr, scheduled: bool) -> Response {
    metrics::counter!("smsfleet_ingress_requests_total", "op" => if scheduled { "bulk_schedulemsg" } else { "bulk_bulksms" })
        .increment(1);
    let r = match required(p, scheduled) {
        Ok(r) => r,
        Err(c) => return code_only(c),
    };
    let blacklist = &app.bulk.settings.ip_blacklist;
    if !blacklist.trim().is_empty() && ipallow::allows(blacklist, client) {
        return code_only(code::IP_BLACKLISTED);
    }
    let account = match authenticate(app, &r, client).await {
        Ok(a) => a,
        Err(c) => return code_only(c),
    };
    let limits = BulkLimits {
        max_destinations: app.pv_limits.max_destinations,
        max_segments: app.pv_limits.max_segments,
        spam_patterns: app.bulk.settings.spam_patterns.clone(),
    };
    let uid = account.uid;
    let cache = &app.cache;
    let listed = |digits: &str| {
        if cache.stopped(digits) {
            Some(code::STOP_LIST)
        } else if cache.do_not_disturb(uid, digits) {
            Some(code::DND)
        } else {
            None
        }
    };
    let mut plan = match plan(&r, &account, &limits, listed) {
        Ok(plan) => plan,
        Err(c) => {
            tracing::info!(uid, code = c, "bulk request refused");
            return code_only(c);
        }
    };
    let now = Instant::now();
    let mut recorded = Vec::new();
    for t in &mut plan.targets {
        if let Target::Send(n) = t {
            if app.bulk.duplicates.check_and_record(uid, n.digits(), &plan.text, now) {
                *t = Target::Reject(code::DUPLICATE, n.as_str().to_owned());
            } else {
                recorded.push(n.digits().to_owned());
            }
        }
    }
    let forget = |recorded: &[String]| {
        for d in recorded {
            app.bulk.duplicates.forget(uid, d, &plan.text);
        }
    };
    let sendable: Vec<&Msisdn> =
        plan.targets.iter().filter_map(|t| if let Target::Send(n) = t { Some(n) } else { None }).collect();
    let Some(ids) = app.next_ids(sendable.len()) else {
        forget(&recorded);
        return code_only(code::INTERNAL);
    };
    if !sendable.is_empty() {
        let rates = app.cache.rates();
        let total: Credit = sendable.iter().map(|d| charge_for(&rates, d.digits(), plan.segments)).sum();
        if !total.is_zero() && app.cache.balance(uid) < total {
            forget(&recorded);
            return code_only(code::NO_CREDIT);
        }
        let now = OffsetDateTime::now_utc();
        let accepted_at_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let schedule_at_ms = plan.schedule_at.map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
        let validity_from = schedule_at_ms.unwrap_or(accepted_at_ms).max(accepted_at_ms);
        let submission = Submission {
            queue: QueueCode::from_bytes(rand::random()).to_string(),
            uid,
            api: Api::Bulk,
            sender: plan.sender.clone(),
            text: plan.text.clone(),
            footer: String::new(),
            encoding: plan.encoding.into(),
            flash: plan.flash,
            segments: plan.segments,
            msg_type: plan.msg_type.clone(),
            dlr_requested: plan.dlr,
            accepted_at_ms,
            schedule_at_ms,
            validity_until_ms: validity_from + app.validity.as_millis() as i64,
            destinations: ids
                .iter()
                .zip(&sendable)
                .map(|(id, to)| Destination { smslog_id: id.0, to: to.digits().to_owned() })
                .collect(),
            traceparent: smsfleet_telemetry::current_traceparent(),
        };
        match store(app.publisher.submit(submission), app.query_timeout).await {
            Ok(()) => {}
            Err(c) => {
                if c == code::INTERNAL {
                    forget(&recorded);
                }
                tracing::error!(uid, code = c, "bulk submission not stored");
                return code_only(c);
            }
        }
        app.cache.spend(uid, total);
        metrics::counter!("smsfleet_ingress_messages_accepted_total").increment(ids.len() as u64);
    }
    let mut ids = ids.into_iter();
    let lines: Vec<String> = plan
        .targets
        .iter()
        .map(|t| match t {
            Target::Send(n) => {
                format!("{}|{}|{}", code::SUBMITTED, n.as_str(), ids.next().map(|i| i.0).unwrap_or_default())
            }
            Target::Reject(c, d) => format!("{c}|{d}"),
        })
        .collect();
    render(&lines)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn account(templates: &[&str]) -> AccountState {
        AccountState { templates: templates.iter().map(|t| t.to_string()).collect(), ..crate::test_fixtures::account() }
    }

    fn limits() -> BulkLimits {
        BulkLimits { max_destinations: 100, max_segments: 10, spam_patterns: vec!["free money".into()] }
    }

    const BASE: &str = "username=alice&password=pw&type=0&dlr=0&destination=919999999999&source=ACME&message=hi";

    fn with(over: &str) -> Params {
        Params::merge(Params::from_query(BASE), Params::from_query(over))
    }

    fn run(over: &str) -> Result<BulkPlan, u16> {
        run_acc(over, &account(&[]))
    }

    fn run_acc(over: &str, a: &AccountState) -> Result<BulkPlan, u16> {
        let r = required(&with(over), false)?;
        plan(&r, a, &limits(), |d| match d {
            "911111111111" => Some(code::STOP_LIST),
            "912222222222" => Some(code::DND),
            _ => None,
        })
    }

    fn lines(p: &BulkPlan) -> Vec<String> {
        p.targets
            .iter()
            .map(|t| match t {
                Target::Send(n) => format!("send {n}"),
                Target::Reject(c, d) => format!("{c}|{d}"),
            })
            .collect()
    }

    #[test]
    fn missing_or_blank_is_1702() {
        for k in ["username", "password", "type", "dlr", "destination", "source", "message"] {
            assert_eq!(run(&format!("{k}=")).unwrap_err(), code::INVALID_URL, "{k}");
            assert_eq!(run(&format!("{k}=%20")).unwrap_err(), code::INVALID_URL, "{k}");
        }
        let p = Params::from_query(BASE);
        assert_eq!(required(&p, true).unwrap_err(), code::INVALID_URL);
        let p = with("date=01/01/2030&time=10:00+am");
        assert_eq!(required(&p, true).unwrap_err(), code::INVALID_URL);
        assert!(required(&with("date=01/01/2030&time=10:00+am&gmt=%2B05:30"), true).is_ok());
    }

    #[test]
    fn types_1704() {
        for t in ["3", "4", "8", "x", "-1", "01"] {
            assert_eq!(run(&format!("type={t}")).unwrap_err(), code::BAD_TYPE, "{t}");
        }
        let p = run("type=0").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Gsm7, false));
        let p = run("type=1").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Gsm7, true));
        let p = run("type=2").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Ucs2, false));
        let p = run("type=5").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Latin1, false));
        let p = run("type=6").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Ucs2, true));
        let p = run("type=7").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Latin1, true));
    }

    #[test]
    fn dlr_1708() {
        assert_eq!(run("dlr=2").unwrap_err(), code::BAD_DLR);
        assert_eq!(run("dlr=yes").unwrap_err(), code::BAD_DLR);
        assert!(run("dlr=1").unwrap().dlr);
        assert!(!run("dlr=0").unwrap().dlr);
    }

    #[test]
    fn source_1707() {
        assert!(run("source=%2B123456789012345678").is_ok());
        assert!(run("source=123456789012345678").is_ok());
        assert_eq!(run("source=1234567890123456789").unwrap_err(), code::BAD_SOURCE);
        assert!(run("source=ABCDEFGHIJK").is_ok());
        assert_eq!(run("source=ABCDEFGHIJKL").unwrap_err(), code::BAD_SOURCE);
        assert_eq!(run("source=AC%26ME").unwrap_err(), code::BAD_SOURCE);
    }

    #[test]
    fn message_1705_and_segments() {
        // Not GSM-7 for type 0, not Latin-1 for type 5.
        assert_eq!(run("message=%D0%9F%D1%80%D0%B8").unwrap_err(), code::BAD_MESSAGE);
        assert_eq!(run("type=5&message=%E2%82%AC").unwrap_err(), code::BAD_MESSAGE);
        assert_eq!(run(&format!("message={}", "a".repeat(1531))).unwrap_err(), code::BAD_MESSAGE);
        assert_eq!(run(&format!("message={}", "a".repeat(160))).unwrap().segments, 1);
        assert_eq!(run(&format!("message={}", "a".repeat(161))).unwrap().segments, 2);
        assert_eq!(run(&format!("message={}", "a".repeat(306))).unwrap().segments, 2);
        assert_eq!(run(&format!("message={}", "a".repeat(307))).unwrap().segments, 3);
        assert_eq!(run(&format!("type=2&message={}", "Ж".repeat(70))).unwrap().segments, 1);
        assert_eq!(run(&format!("type=2&message={}", "Ж".repeat(71))).unwrap().segments, 2);
        assert_eq!(run(&format!("type=2&message={}", "Ж".repeat(134))).unwrap().segments, 2);
        assert_eq!(run(&format!("type=2&message={}", "Ж".repeat(135))).unwrap().segments, 3);
        assert_eq!(run("type=5&message=caf%C3%A9").unwrap().text, "café");
    }

    #[test]
    fn unicode_hex() {
        assert_eq!(decode_utf16_hex("00480069").as_deref(), Some("Hi"));
        assert_eq!(decode_utf16_hex("041F04400438043204350442").as_deref(), Some("Привет"));
        assert_eq!(decode_utf16_hex("D83DDE00").as_deref(), Some("😀"));
        assert_eq!(decode_utf16_hex("D83D"), None, "lone surrogate");
        assert_eq!(decode_utf16_hex("0048006"), None);
        assert_eq!(decode_utf16_hex("hello"), None);
        assert_eq!(run("type=2&message=041F04400438").unwrap().text, "При");
        assert_eq!(run("type=6&message=Hi there").unwrap().text, "Hi there");
        // Types 0/1/5/7 never decode hex.
        assert_eq!(run("type=0&message=00480069").unwrap().text, "00480069");
    }

    #[test]
    fn schedule_1711_1712_1713() {
        let go = |q: &str| required(&with(q), true).and_then(|r| plan(&r, &account(&[]), &limits(), |_| None));
        let ok = go("date=03/03/2030&time=03:45+pm&gmt=GMT+%2B05:30").unwrap();
        assert_eq!(ok.schedule_at.unwrap(), time::macros::datetime!(2030-03-03 10:15:00 UTC));
        let ok = go("date=03/03/2030&time=03:45+pm&gmt=-10:00").unwrap();
        assert_eq!(ok.schedule_at.unwrap(), time::macros::datetime!(2030-03-04 01:45:00 UTC));
        assert_eq!(go("date=2030-03-03&time=03:45+pm&gmt=%2B05:30").unwrap_err(), code::BAD_DATE);
        assert_eq!(go("date=13/03/2030&time=03:45+pm&gmt=%2B05:30").unwrap_err(), code::BAD_DATE);
        assert_eq!(go("date=03/03/2030&time=15:45&gmt=%2B05:30").unwrap_err(), code::BAD_TIME);
        assert_eq!(go("date=03/03/2030&time=13:45+pm&gmt=%2B05:30").unwrap_err(), code::BAD_TIME);
        assert_eq!(go("date=03/03/2030&time=03:45+pm&gmt=0530").unwrap_err(), code::BAD_GMT);
        assert_eq!(go("date=03/03/2030&time=03:45+pm&gmt=%2B25:00").unwrap_err(), code::BAD_GMT);
    }

    #[test]
    fn destinations_1706_1042_1732() {
        assert_eq!(run("destination=abc").unwrap_err(), code::BAD_DESTINATION);
        assert_eq!(run("destination=123,abc").unwrap_err(), code::BAD_DESTINATION);
        assert_eq!(run("destination=,,").unwrap_err(), code::BAD_DESTINATION);
        let p = run("destination=%2B919999999999%2C919999999998,abc,911111111111,912222222222").unwrap();
        assert_eq!(
            lines(&p),
            vec!["send +919999999999", "send 919999999998", "1706|abc", "1042|911111111111", "1732|912222222222"]
        );
        // An unencoded `+` arrives as a space and is trimmed away.
        let p = run("destination=+919999999999").unwrap();
        assert_eq!(lines(&p), vec!["send 919999999999"]);
        let many = (0..101).map(|i| format!("9199999{i:05}")).collect::<Vec<_>>().join(",");
        assert_eq!(run(&format!("destination={many}")).unwrap_err(), code::BAD_DESTINATION);
    }

    #[test]
    fn spam_1028_and_template_1033() {
        assert_eq!(run("message=Get+FREE+Money+now").unwrap_err(), code::SPAM);
        let a = account(&["Your OTP is {#var#}", "Hello {#var#}, bye"]);
        assert!(run_acc("message=Your+OTP+is+1234", &a).is_ok());
        assert!(run_acc("message=Hello+Bob,+bye", &a).is_ok());
        assert_eq!(run_acc("message=Your+code+is+1234", &a).unwrap_err(), code::TEMPLATE);
    }

    #[test]
    fn template_matching() {
        assert!(matches_template("Your OTP is {#var#}", "Your OTP is 1"));
        assert!(!matches_template("Your OTP is {#var#}", "Your OTP is "));
        assert!(matches_template("Your OTP is {#var#}", &format!("Your OTP is {}", "9".repeat(30))));
        assert!(!matches_template("Your OTP is {#var#}", &format!("Your OTP is {}", "9".repeat(31))));
        assert!(matches_template("{#var#} and {#var#}", "a and b and c"));
        assert!(matches_template("fixed", "fixed"));
        assert!(!matches_template("fixed", "fixed!"));
        assert!(matches_template("Dear {#var#}, due {#var#}.", "Dear Ann, due 5 USD."));
        assert!(!matches_template("Dear {#var#}, due {#var#}.", "Dear Ann due 5 USD."));
    }

    #[test]
    fn duplicate_window() {
        let w = DuplicateWindow::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        assert!(!w.check_and_record(1, "91999", "hi", t0));
        assert!(w.check_and_record(1, "91999", "hi", t0 + Duration::from_secs(59)));
        assert!(!w.check_and_record(2, "91999", "hi", t0));
        assert!(!w.check_and_record(1, "91998", "hi", t0));
        assert!(!w.check_and_record(1, "91999", "hi!", t0));
        assert!(!w.check_and_record(1, "91999", "hi", t0 + Duration::from_secs(61)));
        w.forget(1, "91999", "hi");
        assert!(!w.check_and_record(1, "91999", "hi", t0 + Duration::from_secs(62)));
        let off = DuplicateWindow::new(Duration::ZERO, 3);
        assert!(!off.check_and_record(1, "1", "x", t0));
        assert!(!off.check_and_record(1, "1", "x", t0));
    }

    #[tokio::test(start_paused = true)]
    async fn store_failure_is_1710_and_timeout_1715() {
        let t = Duration::from_secs(5);
        assert_eq!(store(async { Ok(()) }, t).await, Ok(()));
        assert_eq!(store(async { Err("no stream".to_owned()) }, t).await, Err(code::INTERNAL));
        assert_eq!(store(std::future::pending(), t).await, Err(code::TIMEOUT));
    }

    #[test]
    fn credential_cache_is_bounded() {
        let c = CredentialCache::new(2);
        c.insert(1, 1, "a".into());
        assert!(c.contains(1, 1, "a"));
        assert!(!c.contains(1, 2, "a"));
        c.insert(2, 1, "b".into());
        c.insert(3, 1, "c".into());
        assert!(!c.contains(1, 1, "a"));
        assert!(c.contains(3, 1, "c"));
    }
}
