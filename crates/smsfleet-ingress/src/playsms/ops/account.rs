//! playSMS's account admin ops (ERR 600 for anyone but an admin):
//! `accountadd`, `accountremove`, `parentset`, `parentget`, `accountpref`,
//! `accountconf`. Changes go to the accounts role over request/reply; the
//! asking replica applies a changed account before it answers, so its next
//! request already sees the change.

use std::net::IpAddr;
use std::time::Duration;

use smsfleet_bus::StateEvent;
use smsfleet_contract::{AccountCommand, AccountReply, ConfigurationChanges, NewAccountCommand, PreferenceChanges};
use smsfleet_playsms::{Node, Params};

use super::{flag, optional, text};
use crate::app::App;
use crate::auth::find_user;
use crate::playsms::caller;
use crate::playsms::error::{ApiError, account_error};
use crate::playsms::reply::Payload;

const ACCOUNTS_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends an account command; applies a changed account locally first.
/// `None` when the accounts role could not be reached.
pub(super) async fn account_command(app: &App, cmd: &AccountCommand) -> Option<AccountReply> {
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

/// A change's answer: `info` and `token` when the role gave them; `failed`
/// is the op's "fail to …" code.
async fn change(app: &App, cmd: AccountCommand, failed: u16) -> Result<Payload, ApiError> {
    match account_command(app, &cmd).await {
        Some(AccountReply::Done { info, token, .. }) => {
            let mut payload = Vec::new();
            if !info.is_empty() {
                payload.push(("info".to_owned(), Node::from(info)));
            }
            if let Some(token) = token {
                payload.push(("token".to_owned(), Node::from(token)));
            }
            Ok(Payload::Ok(payload))
        }
        other => Err(account_error(&cmd, other, failed)),
    }
}

pub(crate) async fn add(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    caller::admin(app, p, client)?;
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
        smpp_password: optional(p, "data_smpp_password"),
    };
    let required = [&cmd.status, &cmd.username, &cmd.password, &cmd.name, &cmd.email];
    if required.iter().any(|f| f.is_empty()) {
        return Err(ApiError::new(603));
    }
    change(app, AccountCommand::Add(Box::new(cmd)), 604).await
}

pub(crate) async fn remove(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    caller::admin(app, p, client)?;
    let username = optional(p, "data_username").ok_or(ApiError::new(605))?;
    change(app, AccountCommand::Remove { username }, 606).await
}

pub(crate) async fn parent_set(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    caller::admin(app, p, client)?;
    let (Some(username), Some(parent)) = (optional(p, "data_username"), optional(p, "data_parent")) else {
        return Err(ApiError::new(607));
    };
    change(app, AccountCommand::SetParent { username, parent }, 608).await
}

/// `op=parentget`, from the replica's memory: 609 unknown, 610 no parent.
pub(crate) async fn parent_get(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    caller::admin(app, p, client)?;
    let account = optional(p, "data_username").and_then(|u| find_user(&app.cache, &u)).ok_or(ApiError::new(609))?;
    let parent =
        account.parent_uid.filter(|uid| *uid > 0).and_then(|uid| app.cache.by_uid(uid)).ok_or(ApiError::new(610))?;
    Ok(Payload::Ok(vec![
        ("parent_uid".to_owned(), Node::Int(parent.uid)),
        ("parent".to_owned(), Node::from(parent.username.clone())),
    ]))
}

pub(crate) async fn preferences(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    caller::admin(app, p, client)?;
    let username = optional(p, "data_username").ok_or(ApiError::new(615))?;
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
        smpp_password: optional(p, "data_smpp_password"),
    };
    change(app, AccountCommand::Preferences { username, changes }, 616).await
}

pub(crate) async fn configuration(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    caller::admin(app, p, client)?;
    let username = optional(p, "data_username").ok_or(ApiError::new(617))?;
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
    change(app, AccountCommand::Configuration { username, changes }, 618).await
}
