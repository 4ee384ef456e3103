//! The bulk API's interpretation of any parameters (`sendsms` and
//! `schedulemsg`): every outcome is a documented 17xx code, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsfleet_playsms::Params;

fuzz_target!(|data: &[u8]| {
    let p = Params::from_query(&String::from_utf8_lossy(data));
    for outcome in smsfleet_ingress::fuzzing::bulk_plan(&p) {
        if let Err(code) = outcome {
            assert!((1700..1800).contains(&code) || code == 1028, "undocumented code {code}");
        }
    }
});
