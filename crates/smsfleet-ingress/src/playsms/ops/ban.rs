//! `op=accountban` / `op=accountunban`: admins only (ERR 600 otherwise).
//! The asking replica applies the new state before answering, so the ban
//! holds here from the next request; other replicas follow through the
//! state feed within milliseconds.

use std::net::IpAddr;

use smsfleet_bus::StateEvent;
use smsfleet_contract::{AccountCommand, AccountReply};
use smsfleet_playsms::Params;

use super::account::account_command;
use crate::app::App;
use crate::playsms::caller;
use crate::playsms::error::{ApiError, account_error};
use crate::playsms::reply::Payload;

pub(crate) async fn handle(app: &App, p: &Params, client: IpAddr, banned: bool) -> Result<Payload, ApiError> {
    let (unknown, failed) = if banned { (611, 612) } else { (613, 614) };
    caller::admin(app, p, client)?;
    let Some(username) = p.get_nonempty("data_username") else { return Err(ApiError::new(unknown)) };
    let cmd = AccountCommand::SetBanned { username: username.to_owned(), banned };
    match account_command(app, &cmd).await {
        Some(AccountReply::Account(account)) => {
            app.cache.apply(StateEvent::Account(account));
            Ok(Payload::ok())
        }
        other => Err(account_error(&cmd, other, failed)),
    }
}
