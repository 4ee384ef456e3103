//! `op=loginkeyset` (admins: a one-time web login key for a user) and
//! `op=ws_login` (its use).

use std::net::IpAddr;

use axum::response::Response;
use smsfleet_contract::{AccountCommand, AccountReply};
use smsfleet_playsms::Params;

use super::account::account_command;
use super::optional;
use crate::app::App;
use crate::playsms::caller;
use crate::playsms::error::{ApiError, account_error};
use crate::playsms::reply::{self, Payload};

pub(crate) async fn set(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    caller::admin(app, p, client)?;
    let username = optional(p, "data_username").ok_or(ApiError::new(625))?;
    let cmd = AccountCommand::SetLoginKey { username };
    match account_command(app, &cmd).await {
        Some(AccountReply::LoginKey { login_key }) => Ok(Payload::one("login_key", login_key)),
        other => Err(account_error(&cmd, other, 626)),
    }
}

/// `op=ws_login`: always the same redirect, whatever happened, so the
/// answer tells a guesser nothing; the key is consumed either way. There is
/// no web UI session to set up: a valid key is logged and counted, so an
/// operator's portal at `web_root` can be linked from it.
pub(crate) async fn ws_login(app: &App, p: &Params, client: IpAddr) -> Response {
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
    reply::redirect(&app.web_root)
}
