//! MO callbacks: query string, form body and JSON body. Never a panic.
#![no_main]

use axum::body::Body;
use axum::extract::Request;
use axum::http::Uri;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use smsfleet_dlr::fuzzing::{mo_body, mo_query};

#[derive(Debug, Arbitrary)]
struct Input {
    route: String,
    json: bool,
    query: String,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    if let Ok(uri) = format!("/mo/sim?{}", input.query).parse::<Uri>() {
        let _ = mo_query(&input.route, &uri);
    }
    let content_type = if input.json { "application/json" } else { "application/x-www-form-urlencoded" };
    if let Ok(req) = Request::builder()
        .method("POST")
        .uri("/mo/sim")
        .header("content-type", content_type)
        .body(Body::from(input.body))
    {
        let _ = smsfleet_fuzz::runtime().block_on(mo_body(&input.route, req));
    }
});
