//! `op=stoplist`: any webservices user may add a number (ERR 100 on bad
//! auth, not 600); a missing `from` answers the bare envelope, as playSMS
//! does; 627 when the number is already listed.

use std::net::IpAddr;

use smsfleet_bus::StateEvent;
use smsfleet_contract::{AccountCommand, AccountReply, SCHEMA_VERSION, StopState};
use smsfleet_playsms::Params;

use super::account::account_command;
use super::optional;
use crate::app::App;
use crate::playsms::caller;
use crate::playsms::error::{ApiError, account_error};
use crate::playsms::reply::Payload;

/// A stop-list entry the accounts role could not take (no digits in it).
const ERR_EMPTY: u16 = 102;

pub(crate) async fn handle(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    caller::user(app, p, client)?;
    let Some(number) = optional(p, "from") else { return Ok(Payload::Bare) };
    let cmd = AccountCommand::AddStop { number };
    match account_command(app, &cmd).await {
        Some(AccountReply::Stopped { number }) => {
            let state = StopState { v: SCHEMA_VERSION, number, uid: None, listed: true };
            app.cache.apply(StateEvent::Stop(state));
            Ok(Payload::ok())
        }
        other => Err(account_error(&cmd, other, ERR_EMPTY)),
    }
}
