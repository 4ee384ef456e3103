//! The playSMS webservices endpoint: `/index.php?app=ws` (GET or POST, form
//! or multipart) and its JSON-POST variant `/playsms/api.php`. A handler
//! reads the parameters, [`Op`] names the op once, the op's module under
//! [`ops`] parses, applies and returns a payload, and [`reply`] renders it.

mod caller;
mod error;
mod op;
pub(crate) mod ops;
mod reply;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use smsfleet_playsms::{Format, Params};

use self::error::ApiError;
use self::op::Op;
use self::reply::{Payload, reply};
use crate::app::App;
use crate::body::{self, Bodies};

pub async fn index(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let client = app.client_ip(peer, req.headers());
    let uri = req.uri().clone();
    let params = match body::params(req, Bodies::FormAndMultipart).await {
        Ok(p) => p,
        Err(why) => return refused(why, Params::from_query(uri.query().unwrap_or("")).format()),
    };
    let app_name = params.get("app").unwrap_or("").to_ascii_lowercase();
    if !matches!(app_name.as_str(), "ws" | "webservice" | "webservices") {
        return (StatusCode::NOT_FOUND, "smsfleet serves only app=ws on /index.php\n").into_response();
    }
    dispatch(&app, params, client).await
}

/// `POST /playsms/api.php` with a JSON object; `user`/`token` stand for `u`/`h`.
pub async fn json_api(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let client = app.client_ip(peer, req.headers());
    match body::json_params(req).await {
        Ok(params) => dispatch(&app, params, client).await,
        Err(why) => refused(why, Format::Json),
    }
}

/// playSMS's code for a malformed request ("one or more field empty").
const ERR_BAD_INPUT: u16 = 102;

/// A request refused before any op runs (see [`body::Refused`]).
fn refused(why: body::Refused, format: Format) -> Response {
    why.answer(reply(Err(ApiError::new(ERR_BAD_INPUT)), format))
}

#[tracing::instrument(name = "playsms.request", skip_all, fields(op))]
async fn dispatch(app: &App, p: Params, client: IpAddr) -> Response {
    let format = p.format();
    let Some(name) = p.op() else { return reply(Ok(Payload::Bare), format) };
    tracing::Span::current().record("op", name.as_str());
    let op = Op::parse(&name);
    metrics::counter!("smsfleet_ingress_requests_total", "op" => op.map_or("other", Op::name)).increment(1);
    let Some(op) = op else { return reply::unknown_op() };
    let result = match op {
        Op::Pv => ops::pv::handle(app, &p, client).await,
        Op::Ds => ops::ds::handle(app, &p, client).await,
        Op::Cr => ops::cr::handle(app, &p, client).await,
        Op::GetToken => ops::token::get_token(app, &p, client).await,
        Op::SetToken => ops::token::set_token(app, &p, client).await,
        Op::AccountBan => ops::ban::handle(app, &p, client, true).await,
        Op::AccountUnban => ops::ban::handle(app, &p, client, false).await,
        Op::AccountAdd => ops::account::add(app, &p, client).await,
        Op::AccountRemove => ops::account::remove(app, &p, client).await,
        Op::ParentSet => ops::account::parent_set(app, &p, client).await,
        Op::ParentGet => ops::account::parent_get(app, &p, client).await,
        Op::AccountPref => ops::account::preferences(app, &p, client).await,
        Op::AccountConf => ops::account::configuration(app, &p, client).await,
        Op::CreditView => ops::credit::view(app, &p, client).await,
        Op::CreditAdd => ops::credit::change(app, &p, client, false).await,
        Op::CreditDeduct => ops::credit::change(app, &p, client, true).await,
        Op::LoginKeySet => ops::login_key::set(app, &p, client).await,
        Op::WsLogin => return ops::login_key::ws_login(app, &p, client).await,
        Op::Credit => return ops::cr::credit_text(app, &p, client).await,
        Op::Query => ops::query::handle(app, &p, client).await,
        Op::StopList => ops::stoplist::handle(app, &p, client).await,
        Op::GetContact => ops::phonebook::contacts(app, &p, client).await,
        Op::GetContactGroup => ops::phonebook::groups(app, &p, client).await,
        Op::Inject => ops::incoming::inject(app, &p, client).await,
        Op::Incoming(list) => ops::incoming::list(app, &p, client, list).await,
    };
    reply(result, format)
}
