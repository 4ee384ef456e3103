//! Whole requests through the one body reader of every door (form,
//! multipart, JSON, other types, any method): never a panic, and whatever
//! it lets through holds no NUL (Postgres text cannot store one).
#![no_main]

use axum::body::Body;
use axum::extract::Request;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use smsfleet_ingress::fuzzing::{Bodies, door_params, json_params};
use smsfleet_playsms::Params;

#[derive(Debug, Arbitrary)]
struct Input {
    post: bool,
    content_type: ContentType,
    query: String,
    body: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
enum ContentType {
    Form,
    /// With a boundary the body may or may not use.
    Multipart(String),
    Json,
    Other(String),
    None,
}

impl ContentType {
    fn header(&self) -> Option<String> {
        match self {
            ContentType::Form => Some("application/x-www-form-urlencoded".to_owned()),
            ContentType::Multipart(b) => Some(format!("multipart/form-data; boundary={b}")),
            ContentType::Json => Some("application/json".to_owned()),
            ContentType::Other(t) => Some(t.clone()),
            ContentType::None => None,
        }
    }
}

fn request(input: &Input) -> Option<Request> {
    let mut builder =
        Request::builder().method(if input.post { "POST" } else { "GET" }).uri(format!("/index.php?{}", input.query));
    if let Some(t) = input.content_type.header() {
        builder = builder.header("content-type", t);
    }
    builder.body(Body::from(input.body.clone())).ok()
}

fn no_nul(p: &Params) {
    assert!(p.iter().all(|(k, v)| !k.contains('\0') && !v.contains('\0')), "a NUL got through: {p:?}");
}

fuzz_target!(|input: Input| {
    // A URI the HTTP layer would refuse never reaches the reader.
    let rt = smsfleet_fuzz::runtime();
    for bodies in [Bodies::FormOnly, Bodies::FormAndMultipart] {
        if let Some(req) = request(&input)
            && let Ok(p) = rt.block_on(door_params(req, bodies))
        {
            no_nul(&p);
        }
    }
    if let Some(req) = request(&input)
        && let Ok(p) = rt.block_on(json_params(req))
    {
        no_nul(&p);
    }
});
