//! The playSMS webservices endpoint: `/index.php?app=ws` (GET or POST, form
//! or multipart) and its JSON-POST variant `/playsms/api.php`. Handlers
//! extract, call the op, and render the envelope in the format asked for.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use smsfleet_contract::{
    AccountCommand, AccountReply, Api, CreditReply, CreditRequest, Destination, DsReply, DsRequest, IncomingList,
    Submission,
};
use smsfleet_domain::{Credit, QueueCode, charge_for};
use smsfleet_playsms::{Format, Node, Params, envelope, render};

use crate::App;
use crate::admin;
use crate::auth::{self, GetTokenOutcome};
use crate::incoming;
use crate::phonebook;
use crate::pv::{self, PvRejection};

const MAX_FORM_BYTES: usize = 8 * 1024 * 1024;

pub(crate) fn now_ts() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub async fn index(State(app): State<App>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let client = app.client_ip(peer, req.headers());
    let query = Params::from_query(req.uri().query().unwrap_or(""));
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let body = if content_type.starts_with("multipart/form-data") {
        match Multipart::from_request(req, &()).await {
            Ok(mut mp) => {
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
            Err(_) => Params::new(),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
            Ok(b) => Params::from_query(&String::from_utf8_lossy(&b)),
            Err(_) => Params::new(),
        }
    } else {
        // playSMS does not parse JSON or other bodies on this endpoint.
        Params::new()
    };
    let params = Params::merge(query, body);
    let app_name = params.get("app").unwrap_or("").to_ascii_lowercase();
    if !matches!(app_name.as_str(), "ws" | "webservice" | "webservices") {
        return (StatusCode::NOT_FOUND, "smsfleet serves only app=ws on /index.php\n").into_response();
    }
    dispatch(&app, params, client).await
}

/// `POST /playsms/api.php` with a JSON object; `user`/`token` stand for `u`/`h`.
pub async fn json_api(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let client = app.client_ip(peer, &headers);
    let params = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => Params::from_json_body(&v),
        Err(_) => Params::new(),
    };
    dispatch(&app, params, client).await
}

#[tracing::instrument(name = "playsms.request", skip_all, fields(op))]
async fn dispatch(app: &App, params: Params, client: std::net::IpAddr) -> Response {
    let format = params.format();
    let Some(op) = params.op() else { return reply(envelope::bare(now_ts()), format) };
    tracing::Span::current().record("op", op.as_str());
    metrics::counter!("smsfleet_ingress_requests_total", "op" => op_label(&op)).increment(1);
    let node = match op.as_str() {
        "pv" => op_pv(app, &params, client).await,
        "ds" => op_ds(app, &params, client).await,
        "cr" => op_cr(app, &params, client).await,
        "get_token" => op_get_token(app, &params, client).await,
        "set_token" => op_set_token(app, &params, client).await,
        "accountban" => op_set_banned(app, &params, client, true).await,
        "accountunban" => op_set_banned(app, &params, client, false).await,
        "accountadd" => admin::op_account_add(app, &params, client).await,
        "accountremove" => admin::op_account_remove(app, &params, client).await,
        "parentset" => admin::op_parent_set(app, &params, client).await,
        "parentget" => admin::op_parent_get(app, &params, client).await,
        "accountpref" => admin::op_account_pref(app, &params, client).await,
        "accountconf" => admin::op_account_conf(app, &params, client).await,
        "creditview" => admin::op_credit_view(app, &params, client).await,
        "creditadd" => admin::op_credit_change(app, &params, client, false).await,
        "creditdeduct" => admin::op_credit_change(app, &params, client, true).await,
        "loginkeyset" => admin::op_login_key_set(app, &params, client).await,
        "ws_login" => return admin::op_ws_login(app, &params, client).await,
        "query" => admin::op_query(app, &params, client).await,
        "stoplist" => admin::op_stoplist(app, &params, client).await,
        "get_contact" => phonebook::op_get_contact(app, &params, client).await,
        "get_contact_group" => phonebook::op_get_contact_group(app, &params, client).await,
        "inject" => incoming::op_inject(app, &params, client).await,
        "in" => incoming::op_list(app, &params, client, IncomingList::In).await,
        "ix" => incoming::op_list(app, &params, client, IncomingList::Ix).await,
        "sx" => incoming::op_list(app, &params, client, IncomingList::Sx).await,
        // playSMS answers an op it does not know with an empty HTML body.
        _ => return unknown_op(),
    };
    reply(node, format)
}

fn op_label(op: &str) -> &'static str {
    match op {
        "pv" => "pv",
        "ds" => "ds",
        "cr" => "cr",
        "get_token" => "get_token",
        "set_token" => "set_token",
        "accountban" => "accountban",
        "accountunban" => "accountunban",
        "accountadd" => "accountadd",
        "accountremove" => "accountremove",
        "parentset" => "parentset",
        "parentget" => "parentget",
        "accountpref" => "accountpref",
        "accountconf" => "accountconf",
        "creditview" => "creditview",
        "creditadd" => "creditadd",
        "creditdeduct" => "creditdeduct",
        "loginkeyset" => "loginkeyset",
        "ws_login" => "ws_login",
        "query" => "query",
        "stoplist" => "stoplist",
        "get_contact" => "get_contact",
        "get_contact_group" => "get_contact_group",
        "inject" => "inject",
        "in" => "in",
        "ix" => "ix",
        "sx" => "sx",
        _ => "other",
    }
}

fn unknown_op() -> Response {
    let mut headers = session_headers();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    (StatusCode::OK, headers).into_response()
}

/// The cache headers PHP's `session_start()` puts on every playSMS answer,
/// whatever the op (transcripts 001–202 all carry them).
pub(crate) fn session_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=0, no-cache, no-store, must-revalidate"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("Thu, 19 Nov 1981 08:52:00 GMT"));
    headers.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    headers
}

pub(crate) fn reply(node: Node, format: Format) -> Response {
    let rendered = render(&node, format);
    let mut headers = session_headers();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(rendered.content_type));
    (StatusCode::OK, headers, rendered.body).into_response()
}

/// Token authentication for every op but get_token and ws_login. A blocked
/// client fails whatever it sends; each outcome feeds the brute-force guard.
pub(crate) fn authenticate(
    app: &App,
    p: &Params,
    client: std::net::IpAddr,
) -> Option<std::sync::Arc<smsfleet_contract::AccountState>> {
    if app.login_blocked(client) {
        return None;
    }
    let found = auth::authenticate_token(&app.cache, &app.secrets, p.get("u"), p.get("h"), client);
    app.record_login(client, found.is_some());
    found
}

/// Admin ops: token authentication plus status 2 (ERR 600 otherwise).
pub(crate) fn authenticate_admin(
    app: &App,
    p: &Params,
    client: std::net::IpAddr,
) -> Option<std::sync::Arc<smsfleet_contract::AccountState>> {
    authenticate(app, p, client).filter(|a| a.role == smsfleet_contract::AccountRole::Admin)
}

/// The item playSMS (on PHP 7) returns when a whole send fails.
fn failed_send(queue: &str) -> Node {
    envelope::list(vec![failed_item(queue)], now_ts())
}

/// playSMS's ERR 200 item, for a whole request or one destination.
pub(crate) fn failed_item(queue: &str) -> Node {
    Node::map().with("status", "ERR").with("error", "200").with("smslog_id", "").with("queue", queue).with("to", "")
}

async fn op_pv(app: &App, p: &Params, client: std::net::IpAddr) -> Node {
    let Some(account) = authenticate(app, p, client) else { return envelope::err(100, now_ts()) };
    let group_members = |code: &str| app.cache.group_members(account.uid, code);
    let mut plan = match pv::plan(p, &account, &app.pv_limits, &group_members) {
        Ok(plan) => plan,
        Err(PvRejection::Empty) => return envelope::err(201, now_ts()),
        Err(PvRejection::Failed(why)) => {
            tracing::info!(uid = account.uid, why, "pv refused");
            return failed_send("");
        }
    };
    // Numbers on the stop list are dropped, as playSMS's stoplist plugin
    // does; `@user` entries keep their place among the numbers left.
    let stopped: Vec<bool> = plan.destinations.iter().map(|d| app.cache.stopped(d.trim_start_matches('+'))).collect();
    if stopped.iter().any(|s| *s) {
        for target in &mut plan.inbox {
            target.position -= stopped[..target.position].iter().filter(|s| **s).count();
        }
        let mut flags = stopped.iter();
        plan.destinations.retain(|_| !flags.next().copied().unwrap_or(false));
    }
    // `@user` entries are internal messages, not charged and not in `ds`.
    let inbox = incoming::resolve_inbox(&app.cache, &account, &plan.inbox);
    if plan.destinations.is_empty() && inbox.is_empty() {
        return failed_send("");
    }
    let rates = app.cache.rates();
    let total: Credit = plan.destinations.iter().map(|d| charge_for(&rates, d, plan.segments)).sum();
    if !total.is_zero() && app.cache.balance(account.uid) < total {
        metrics::counter!("smsfleet_ingress_pv_rejected_total", "reason" => "credit").increment(1);
        return failed_send("");
    }
    let queue = QueueCode::from_bytes(rand::random());
    let Some(ids) = app.next_ids(plan.destinations.len()) else { return failed_send("") };
    let now = time::OffsetDateTime::now_utc();
    let accepted_at_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    let schedule_at_ms = plan.schedule_at.map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    let validity_from = schedule_at_ms.unwrap_or(accepted_at_ms).max(accepted_at_ms);
    let destinations: Vec<Destination> =
        ids.iter().zip(&plan.destinations).map(|(id, to)| Destination { smslog_id: id.0, to: to.clone() }).collect();
    let submission = Submission {
        queue: queue.to_string(),
        uid: account.uid,
        api: Api::Playsms,
        sender: plan.sender,
        text: plan.text.clone(),
        footer: plan.footer,
        encoding: plan.encoding.into(),
        flash: plan.flash,
        segments: plan.segments,
        msg_type: plan.msg_type,
        dlr_requested: false,
        accepted_at_ms,
        schedule_at_ms,
        validity_until_ms: validity_from + app.validity.as_millis() as i64,
        destinations,
        traceparent: smsfleet_telemetry::current_traceparent(),
    };
    if !submission.destinations.is_empty() {
        if let Err(e) = app.publisher.submit(submission).await {
            tracing::error!(error = %e, uid = account.uid, "pv not stored");
            return failed_send(queue.as_str());
        }
        app.cache.spend(account.uid, total);
        metrics::counter!("smsfleet_ingress_messages_accepted_total").increment(ids.len() as u64);
    }
    let ims = incoming::send_ims(app, &account, queue.as_str(), &plan.text, &inbox).await;
    let numbers = ids
        .iter()
        .zip(&plan.destinations)
        .map(|(id, to)| {
            Node::map()
                .with("status", "OK")
                .with("error", "0")
                .with("smslog_id", id.0)
                .with("queue", queue.as_str())
                .with("to", to.as_str())
        })
        .collect();
    envelope::list(incoming::interleave(numbers, ims), now_ts())
}

pub(crate) fn int_param(p: &Params, key: &str) -> Option<i64> {
    p.get_nonempty(key).and_then(|v| v.parse().ok())
}

async fn op_ds(app: &App, p: &Params, client: std::net::IpAddr) -> Node {
    let Some(account) = authenticate(app, p, client) else { return envelope::err(100, now_ts()) };
    let req = DsRequest {
        uid: account.uid,
        queue: p.get_nonempty("queue").map(str::to_owned),
        src: p.get_nonempty("src").map(str::to_owned),
        dst: p.get_nonempty("dst").map(str::to_owned),
        dt: p.get_nonempty("dt").map(str::to_owned),
        smslog_id: int_param(p, "smslog_id"),
        limit: int_param(p, "c").map(|c| c.clamp(0, u32::MAX as i64) as u32).unwrap_or(0),
        last: int_param(p, "last"),
    };
    let reply: Result<DsReply, _> = app.bus.request(app.bus.namespace().ds_service(), &req, app.query_timeout).await;
    match reply {
        Ok(DsReply::Rows(rows)) => envelope::list(
            rows.into_iter()
                .map(|r| {
                    Node::map()
                        .with("smslog_id", r.smslog_id)
                        .with("src", r.src)
                        .with("dst", r.dst)
                        .with("msg", r.msg)
                        .with("dt", r.dt)
                        .with("update", r.update)
                        .with("status", i64::from(r.status))
                })
                .collect(),
            now_ts(),
        ),
        Ok(DsReply::Error(code)) => envelope::err(code, now_ts()),
        Err(e) => {
            tracing::error!(error = %e, "ds query failed");
            envelope::err(400, now_ts())
        }
    }
}

async fn op_cr(app: &App, p: &Params, client: std::net::IpAddr) -> Node {
    let Some(account) = authenticate(app, p, client) else { return envelope::err(100, now_ts()) };
    let req = CreditRequest { uid: account.uid };
    let balance =
        match app.bus.request::<_, CreditReply>(app.bus.namespace().credit_service(), &req, app.query_timeout).await {
            Ok(r) => r.balance.parse::<Credit>().unwrap_or_default(),
            Err(e) => {
                // The cached balance is at most a moment old: better than failing.
                tracing::warn!(error = %e, "credit query failed; answering from cache");
                app.cache.balance(account.uid)
            }
        };
    envelope::ok(vec![("credit".to_owned(), envelope::credit_value(balance.to_f64()))], now_ts())
}

async fn op_get_token(app: &App, p: &Params, client: std::net::IpAddr) -> Node {
    if app.login_blocked(client) {
        return envelope::err(100, now_ts());
    }
    let (cache, secrets) = (app.cache.clone(), app.secrets.clone());
    let (u, pw) = (p.get("u").map(str::to_owned), p.get("p").map(str::to_owned));
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let outcome =
        tokio::task::spawn_blocking(move || auth::get_token(&cache, &secrets, u.as_deref(), pw.as_deref(), client))
            .await
            .unwrap_or(GetTokenOutcome::Err(100));
    app.record_login(client, outcome != GetTokenOutcome::Err(100));
    match outcome {
        GetTokenOutcome::Token(t) => envelope::ok(vec![("token".to_owned(), Node::from(t))], now_ts()),
        GetTokenOutcome::Err(code) => envelope::err(code, now_ts()),
    }
}

async fn op_set_token(app: &App, p: &Params, client: std::net::IpAddr) -> Node {
    let Some(account) = authenticate(app, p, client) else { return envelope::err(100, now_ts()) };
    let cmd = AccountCommand::SetToken { uid: account.uid };
    match app
        .bus
        .request::<_, AccountReply>(app.bus.namespace().accounts_service(), &cmd, Duration::from_secs(10))
        .await
    {
        Ok(AccountReply::Token { token, account }) => {
            // Apply at once, so the old token fails on this replica from the
            // very next request; others follow through the state feed.
            app.cache.apply(smsfleet_bus::StateEvent::Account(account));
            envelope::ok(vec![("token".to_owned(), Node::from(token))], now_ts())
        }
        Ok(AccountReply::Error(code)) => envelope::err(code, now_ts()),
        Ok(_) => envelope::err(100, now_ts()),
        Err(e) => {
            tracing::error!(error = %e, "set_token failed");
            envelope::err(100, now_ts())
        }
    }
}

/// `op=accountban` / `op=accountunban`: admins only (ERR 600 otherwise).
/// The asking replica applies the new state before answering, so the ban
/// holds here from the next request; other replicas follow through the
/// state feed within milliseconds.
async fn op_set_banned(app: &App, p: &Params, client: std::net::IpAddr, banned: bool) -> Node {
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(600, now_ts());
    }
    let Some(username) = p.get_nonempty("data_username") else {
        return envelope::err(if banned { 611 } else { 613 }, now_ts());
    };
    let cmd = AccountCommand::SetBanned { username: username.to_owned(), banned };
    match app
        .bus
        .request::<_, AccountReply>(app.bus.namespace().accounts_service(), &cmd, Duration::from_secs(10))
        .await
    {
        Ok(AccountReply::Account(account)) => {
            app.cache.apply(smsfleet_bus::StateEvent::Account(account));
            envelope::ok(vec![], now_ts())
        }
        Ok(AccountReply::Error(code)) => envelope::err(code, now_ts()),
        Ok(_) | Err(_) => envelope::err(if banned { 612 } else { 614 }, now_ts()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// playSMS sends its session cache headers on every answer, an unknown
    /// op's empty one included (transcript 002).
    #[test]
    fn unknown_op_is_empty_html_with_the_session_headers() {
        let r = unknown_op();
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=UTF-8");
        assert_eq!(h[header::CACHE_CONTROL], "max-age=0, no-cache, no-store, must-revalidate");
        assert_eq!(h[header::PRAGMA], "no-cache");
        assert_eq!(h[header::EXPIRES], "Thu, 19 Nov 1981 08:52:00 GMT");
        assert_eq!(h["x-frame-options"], "SAMEORIGIN");
    }
}
