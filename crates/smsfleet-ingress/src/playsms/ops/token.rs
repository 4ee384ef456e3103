//! `op=get_token` (password login, checked from the cache) and
//! `op=set_token` (a new token from the accounts role).

use std::net::IpAddr;

use smsfleet_bus::StateEvent;
use smsfleet_contract::{AccountCommand, AccountReply};
use smsfleet_playsms::Params;

use super::account::account_command;
use crate::app::App;
use crate::auth::{self, GetTokenOutcome};
use crate::playsms::caller;
use crate::playsms::error::{ApiError, account_error};
use crate::playsms::reply::Payload;

const ERR_AUTH: u16 = 100;

pub(crate) async fn get_token(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    if app.login_blocked(client) {
        return Err(ApiError::new(ERR_AUTH));
    }
    let (cache, secrets) = (app.cache.clone(), app.secrets.clone());
    let (u, pw) = (p.get("u").map(str::to_owned), p.get("p").map(str::to_owned));
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let outcome =
        tokio::task::spawn_blocking(move || auth::get_token(&cache, &secrets, u.as_deref(), pw.as_deref(), client))
            .await
            .unwrap_or(GetTokenOutcome::Err(ERR_AUTH));
    app.record_login(client, outcome != GetTokenOutcome::Err(ERR_AUTH));
    match outcome {
        GetTokenOutcome::Token(t) => Ok(Payload::one("token", t)),
        GetTokenOutcome::Err(code) => Err(ApiError::new(code)),
    }
}

pub(crate) async fn set_token(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    let account = caller::user(app, p, client)?;
    let cmd = AccountCommand::SetToken { uid: account.uid };
    match account_command(app, &cmd).await {
        Some(AccountReply::Token { token, account }) => {
            // Apply at once, so the old token fails on this replica from the
            // very next request; others follow through the state feed.
            app.cache.apply(StateEvent::Account(account));
            Ok(Payload::one("token", token))
        }
        other => Err(account_error(&cmd, other, ERR_AUTH)),
    }
}
