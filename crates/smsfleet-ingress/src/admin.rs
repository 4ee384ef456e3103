//! playSMS's admin ops (ERR 600 for anyone but an admin), `query`,
//! `stoplist` and `ws_login`. Account changes go to the accounts role,
//! credit changes to the ledger (the only writer of balances) and reads
//! that need Postgres to the query role, all over NATS request/reply; the
//! asking replica applies a changed account before it answers, so its next
//! request already sees the change.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use smsfleet_bus::StateEvent;
use smsfleet_contract::{
    AccountCommand, AccountReply, ConfigurationChanges, CreditChangeReply, CreditChangeRequest, CreditRequest,
    LastIdsReply, LastIdsRequest, NewAccountCommand, PreferenceChanges, SCHEMA_VERSION, StopState,
};
use smsfleet_domain::Credit;
use smsfleet_playsms::{Node, Params, envelope, float_cast};

use crate::playsms::{authenticate, authenticate_admin, now_ts};
use crate::{App, account_errors};

const ACCOUNTS_TIMEOUT: Duration = Duration::from_secs(10);

fn text(p: &Params, key: &str) -> String {
    p.get(key).map(str::trim).unwrap_or("").to_owned()
}

fn optional(p: &Params, key: &str) -> Option<String> {
    p.get(key).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// Sends an account command; applies a changed account locally first.
async fn account_command(app: &App, cmd: &AccountCommand) -> Option<AccountReply> {
    match app.bus.request(smsfleet_contract::services::ACCOUNTS, cmd, ACCOUNTS_TIMEOUT).await {
        Ok(reply) => {
            if let AccountReply::Done { account: Some(account), .. } = &reply {
                app.cache.apply(StateEvent::Account(account.clone()));
            }
            Some(reply)
        }
        Err(e) => {
            tracing::error!(error = %e, "accounts service request failed");
            None
        }
    }
}

/// Maps an accounts reply onto the envelope; `failed` is the op's
/// "fail to …" code, used when the service could not be reached.
fn account_reply(cmd: &AccountCommand, reply: Option<AccountReply>, failed: u16) -> Node {
    match reply {
        Some(AccountReply::Done { info, token, .. }) => {
            let mut payload = Vec::new();
            if !info.is_empty() {
                payload.push(("info".to_owned(), Node::from(info)));
            }
            if let Some(token) = token {
                payload.push(("token".to_owned(), Node::from(token)));
            }
            envelope::ok(payload, now_ts())
        }
        Some(AccountReply::Refused(e)) => account_errors::refusal(cmd, &e, now_ts()),
        Some(_) | None => envelope::err(failed, now_ts()),
    }
}

/// A truthy playSMS flag: non-empty and not `0`.
fn flag(p: &Params, key: &str) -> bool {
    p.get(key).map(str::trim).is_some_and(|v| !v.is_empty() && v != "0")
}

pub async fn op_account_add(app: &App, p: &Params, client: IpAddr) -> Node {
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(600, now_ts());
    }
    let cmd = NewAccountCommand {
        status: text(p, "data_status"),
        username: text(p, "data_username"),
        password: text(p, "data_password"),
        name: text(p, "data_name"),
        email: text(p, "data_email"),
        parent: text(p, "data_parent"),
        mobile: text(p, "data_mobile"),
        footer: optional(p, "data_footer"),
        timezone: text(p, "data_datetime_timezone"),
        language: text(p, "data_language_module"),
        webservices_enabled: flag(p, "data_enable_webservices"),
        webservices_ip: optional(p, "data_webservices_ip"),
        token: optional(p, "data_token"),
    };
    let required = [&cmd.status, &cmd.username, &cmd.password, &cmd.name, &cmd.email];
    if required.iter().any(|f| f.is_empty()) {
        return envelope::err(603, now_ts());
    }
    let cmd = AccountCommand::Add(Box::new(cmd));
    account_reply(&cmd, account_command(app, &cmd).await, 604)
}

pub async fn op_account_remove(app: &App, p: &Params, client: IpAddr) -> Node {
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(600, now_ts());
    }
    let Some(username) = optional(p, "data_username") else { return envelope::err(605, now_ts()) };
    let cmd = AccountCommand::Remove { username };
    account_reply(&cmd, account_command(app, &cmd).await, 606)
}

pub async fn op_parent_set(app: &App, p: &Params, client: IpAddr) -> Node {
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(600, now_ts());
    }
    let (Some(username), Some(parent)) = (optional(p, "data_username"), optional(p, "data_parent")) else {
        return envelope::err(607, now_ts());
    };
    let cmd = AccountCommand::SetParent { username, parent };
    account_reply(&cmd, account_command(app, &cmd).await, 608)
}

/// `op=parentget`, from the replica's memory: 609 unknown, 610 no parent.
pub async fn op_parent_get(app: &App, p: &Params, client: IpAddr) -> Node {
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(600, now_ts());
    }
    let Some(account) = optional(p, "data_username").and_then(|u| crate::auth::find_user(&app.cache, &u)) else {
        return envelope::err(609, now_ts());
    };
    let Some(parent) = account.parent_uid.filter(|uid| *uid > 0).and_then(|uid| app.cache.by_uid(uid)) else {
        return envelope::err(610, now_ts());
    };
    envelope::ok(
        vec![
            ("parent_uid".to_owned(), Node::Int(parent.uid)),
            ("parent".to_owned(), Node::from(parent.username.clone())),
        ],
        now_ts(),
    )
}

pub async fn op_account_pref(app: &App, p: &Params, client: IpAddr) -> Node {
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(600, now_ts());
    }
    let Some(username) = optional(p, "data_username") else { return envelope::err(615, now_ts()) };
    let changes = PreferenceChanges {
        name: optional(p, "data_name"),
        email: optional(p, "data_email"),
        mobile: optional(p, "data_mobile"),
        password: optional(p, "data_password"),
        address: optional(p, "data_address"),
        city: optional(p, "data_city"),
        state: optional(p, "data_state"),
        country: optional(p, "data_country"),
        zipcode: optional(p, "data_zipcode"),
    };
    let cmd = AccountCommand::Preferences { username, changes };
    account_reply(&cmd, account_command(app, &cmd).await, 616)
}

pub async fn op_account_conf(app: &App, p: &Params, client: IpAddr) -> Node {
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(600, now_ts());
    }
    let Some(username) = optional(p, "data_username") else { return envelope::err(617, now_ts()) };
    // playSMS counts a value when strlen > 0, so "0" sets a flag to 0.
    let raw = |key: &str| p.get(key).filter(|v| !v.is_empty()).map(str::to_owned);
    let changes = ConfigurationChanges {
        footer: raw("data_footer"),
        timezone: raw("data_datetime_timezone"),
        language: raw("data_language_module"),
        fwd_to_inbox: raw("data_fwd_to_inbox"),
        fwd_to_email: raw("data_fwd_to_email"),
        fwd_to_mobile: raw("data_fwd_to_mobile"),
        local_length: raw("data_local_length"),
        replace_zero: raw("data_replace_zero"),
        sender: raw("data_sender"),
    };
    let cmd = AccountCommand::Configuration { username, changes };
    account_reply(&cmd, account_command(app, &cmd).await, 618)
}

pub async fn op_login_key_set(app: &App, p: &Params, client: IpAddr) -> Node {
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(600, now_ts());
    }
    let Some(username) = optional(p, "data_username") else { return envelope::err(625, now_ts()) };
    let cmd = AccountCommand::SetLoginKey { username };
    match account_command(app, &cmd).await {
        Some(AccountReply::LoginKey { login_key }) => {
            envelope::ok(vec![("login_key".to_owned(), Node::from(login_key))], now_ts())
        }
        Some(AccountReply::Refused(e)) => account_errors::refusal(&cmd, &e, now_ts()),
        _ => envelope::err(626, now_ts()),
    }
}

/// `op=ws_login`: always the same redirect, whatever happened, so the
/// answer tells a guesser nothing; the key is consumed either way. There is
/// no web UI session to set up: a valid key is logged and counted, so an
/// operator's portal at `web_root` can be linked from it.
pub async fn op_ws_login(app: &App, p: &Params, client: IpAddr) -> Response {
    if let (Some(username), Some(login_key)) = (optional(p, "u"), optional(p, "login_key"))
        && !app.login_blocked(client)
    {
        let ok = matches!(
            account_command(app, &AccountCommand::UseLoginKey { username: username.clone(), login_key }).await,
            Some(AccountReply::Done { .. })
        );
        app.record_login(client, ok);
        tracing::info!(%username, ok, "ws_login");
        metrics::counter!("smsfleet_ingress_ws_login_total", "ok" => if ok { "true" } else { "false" }).increment(1);
    }
    let mut r = (StatusCode::FOUND, crate::playsms::session_headers()).into_response();
    let location = HeaderValue::from_str(&app.web_root).unwrap_or(HeaderValue::from_static("index.php"));
    r.headers_mut().insert(header::LOCATION, location);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    r
}

async fn balance_of(app: &App, uid: i64) -> Option<Credit> {
    let req = CreditRequest { uid };
    match app.bus.request(smsfleet_contract::services::CREDIT, &req, app.query_timeout).await {
        Ok(r) => r.balance.parse::<Credit>().ok(),
        Err(e) => {
            tracing::error!(error = %e, "credit query failed");
            None
        }
    }
}

/// `op=creditview`: 619 missing; 620 for an unknown user or a zero balance
/// (playSMS treats 0 as "no credit to view").
pub async fn op_credit_view(app: &App, p: &Params, client: IpAddr) -> Node {
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(600, now_ts());
    }
    let Some(username) = optional(p, "data_username") else { return envelope::err(619, now_ts()) };
    let Some(account) = crate::auth::find_user(&app.cache, &username) else { return envelope::err(620, now_ts()) };
    match balance_of(app, account.uid).await {
        Some(balance) if !balance.is_zero() => {
            envelope::ok(vec![("balance".to_owned(), Node::Float(balance.to_f64()))], now_ts())
        }
        _ => envelope::err(620, now_ts()),
    }
}

/// `op=creditadd` / `op=creditdeduct` through the ledger. `amount` echoes
/// PHP's `(float) data_amount` as given; `balance` is the balance after the
/// change (the API documents "updated balance"; playSMS returns its stale
/// cache there). A deduction may take the balance below zero, as in playSMS.
pub async fn op_credit_change(app: &App, p: &Params, client: IpAddr, deduct: bool) -> Node {
    let (missing, failed) = if deduct { (623, 624) } else { (621, 622) };
    if authenticate_admin(app, p, client).is_none() {
        return envelope::err(600, now_ts());
    }
    let Some(username) = optional(p, "data_username") else { return envelope::err(missing, now_ts()) };
    let amount = float_cast(p.get("data_amount").unwrap_or(""));
    let magnitude = Decimal::try_from(amount.abs()).unwrap_or_default();
    if magnitude <= Decimal::ZERO {
        return envelope::err(failed, now_ts());
    }
    let Some(account) = crate::auth::find_user(&app.cache, &username) else { return envelope::err(failed, now_ts()) };
    let signed = if deduct { -magnitude } else { magnitude };
    let req = CreditChangeRequest {
        reference: smsfleet_domain::QueueCode::from_bytes(rand::random()).to_string(),
        uid: account.uid,
        amount: signed.normalize().to_string(),
    };
    let reply = app.bus.request(smsfleet_contract::services::LEDGER_CREDIT, &req, ACCOUNTS_TIMEOUT).await;
    match reply {
        Ok(CreditChangeReply::Balance(balance)) => {
            let balance = balance.parse::<Credit>().unwrap_or_default();
            envelope::ok(
                vec![("amount".to_owned(), Node::Float(amount)), ("balance".to_owned(), Node::Float(balance.to_f64()))],
                now_ts(),
            )
        }
        Ok(CreditChangeReply::Failed) => envelope::err(failed, now_ts()),
        Err(e) => {
            tracing::error!(error = %e, "ledger credit request failed");
            envelope::err(failed, now_ts())
        }
    }
}

/// `op=query`: the caller's account, credit (the `cr` rule) and newest ids.
pub async fn op_query(app: &App, p: &Params, client: IpAddr) -> Node {
    let Some(account) = authenticate(app, p, client) else { return envelope::err(100, now_ts()) };
    let credit = balance_of(app, account.uid).await.unwrap_or_else(|| app.cache.balance(account.uid));
    let req = LastIdsRequest { uid: account.uid };
    let last =
        app.bus.request(smsfleet_contract::services::LAST_IDS, &req, app.query_timeout).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "last ids query failed");
            LastIdsReply::default()
        });
    let status = account.role.code();
    let user = Node::map()
        .with("username", account.username.clone())
        .with("uid", account.uid)
        .with("status", status as i64)
        .with("name", account.name.clone())
        .with("email", account.email.clone())
        .with("mobile", account.mobile.clone())
        .with("credit", envelope::credit_value(credit.to_f64()));
    let last_id = Node::map()
        .with("user_inbox", last.user_inbox)
        .with("user_incoming", last.user_incoming)
        .with("user_outgoing", last.user_outgoing);
    envelope::ok(vec![("data".to_owned(), Node::map().with("user", user).with("last_id", last_id))], now_ts())
}

/// `op=stoplist`: any webservices user may add a number (ERR 100 on bad
/// auth, not 600); a missing `from` answers the bare envelope, as playSMS
/// does; 627 when the number is already listed.
pub async fn op_stoplist(app: &App, p: &Params, client: IpAddr) -> Node {
    if authenticate(app, p, client).is_none() {
        return envelope::err(100, now_ts());
    }
    let Some(number) = optional(p, "from") else { return envelope::bare(now_ts()) };
    let cmd = AccountCommand::AddStop { number };
    match account_command(app, &cmd).await {
        Some(AccountReply::Stopped { number }) => {
            let state = StopState { v: SCHEMA_VERSION, number, uid: None, listed: true };
            app.cache.apply(StateEvent::Stop(state));
            envelope::ok(Vec::new(), now_ts())
        }
        Some(AccountReply::Refused(e)) => account_errors::refusal(&cmd, &e, now_ts()),
        _ => envelope::err(102, now_ts()),
    }
}
