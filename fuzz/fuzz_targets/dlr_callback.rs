//! Delivery-report callbacks: a JSON batch body cut into bus messages of
//! a small budget, and the one-report query string. Never a panic.
#![no_main]

use axum::http::Uri;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use smsfleet_dlr::fuzzing::{report_body, report_query};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    route: &'a str,
    budget: u16,
    body: &'a [u8],
    query: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let _ = report_body(input.route, input.body, usize::from(input.budget));
    let _ = report_body("sim", input.body, 64 * 1024);
    if let Ok(uri) = format!("/dlr/sim?{}", input.query).parse::<Uri>() {
        let _ = report_query(input.route, &uri);
        let _ = report_query("sim", &uri);
    }
});
