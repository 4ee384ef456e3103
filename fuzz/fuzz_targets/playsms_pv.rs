//! `op=pv`'s interpretation of any query: destinations, groups, `@user`
//! targets, sender, footer, encoding and parts, schedule. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsfleet_playsms::Params;

fuzz_target!(|data: &[u8]| {
    let p = Params::from_query(&String::from_utf8_lossy(data));
    let _ = smsfleet_ingress::fuzzing::pv_plan(&p);
});
