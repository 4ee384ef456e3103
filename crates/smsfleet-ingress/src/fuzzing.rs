//! Entry points for the fuzz targets in the repository's `fuzz/` crate
//! (feature `fuzzing`, off in every build that serves traffic): the
//! parsers of client bytes, run as a request runs them but without a bus,
//! so a fuzzer reaches them in microseconds. Not an API.

use axum::extract::Request;
use smsfleet_playsms::Params;

use crate::app::SendLimits;
use crate::body;
use crate::bulk::request::{self as bulk, BulkLimits};
use crate::playsms::ops::pv;

pub use crate::body::{Bodies, Refused};

/// The playSMS and bulk doors' parameters: query merged with the body.
pub async fn door_params(req: Request, bodies: Bodies) -> Result<Params, Refused> {
    body::params(req, bodies).await
}

/// The JSON-POST variant's parameters.
pub async fn json_params(req: Request) -> Result<Params, Refused> {
    body::json_params(req).await
}

/// `op=pv`'s interpretation for the test account (`#G` is a group of two).
pub fn pv_plan(p: &Params) -> bool {
    let limits = SendLimits { max_destinations: 100, max_segments: 10, default_sender: "smsfleet".into() };
    let groups = |code: &str| (code == "G").then(|| vec!["+628111".to_owned(), "628222".to_owned()]);
    pv::plan(p, &crate::test_fixtures::account(), &limits, &groups).is_ok()
}

/// The bulk API's interpretation, `sendsms` and `schedulemsg` alike.
pub fn bulk_plan(p: &Params) -> Vec<Result<(), u16>> {
    let limits = BulkLimits { max_destinations: 100, max_segments: 10, spam_patterns: vec!["free money".into()] };
    [false, true]
        .into_iter()
        .map(|scheduled| bulk::required(p, scheduled).and_then(|r| bulk::plan(&r, &limits)).map(|_| ()))
        .collect()
}
