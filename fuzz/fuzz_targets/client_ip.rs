//! The client address behind proxies (`X-Forwarded-For` lines, trusted
//! proxy list) and IP allow-lists, both written by clients or operators.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use smsfleet_domain::ipallow::{allows, client_ip, is_valid_list};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    peer: [u8; 16],
    v4: bool,
    forwarded_for: Vec<&'a str>,
    trusted: &'a str,
    list: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let peer: IpAddr = if input.v4 {
        IpAddr::from([input.peer[0], input.peer[1], input.peer[2], input.peer[3]])
    } else {
        IpAddr::from(input.peer)
    };
    let client = client_ip(peer, &input.forwarded_for, input.trusted);
    if input.trusted.trim().is_empty() {
        assert_eq!(client, peer, "no trusted proxy, yet the header chose the address");
    }
    let _ = is_valid_list(input.list);
    let _ = allows(input.list, client);
});
