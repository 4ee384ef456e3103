//! Query strings and JSON bodies as `Params` reads them: never a panic,
//! every value trimmed, every look-up finds what iteration shows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsfleet_playsms::Params;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let from_query = Params::from_query(&text);
    check(&from_query);
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) {
        check(&Params::from_json_body(&json));
    }
    let merged = Params::merge(from_query.clone(), Params::from_query(&text.chars().rev().collect::<String>()));
    check(&merged);
    let _ = (merged.op(), merged.format());
});

fn check(p: &Params) {
    for (key, value) in p.iter() {
        assert_eq!(p.get(key), Some(value), "look-up of {key:?} disagrees with iteration");
        assert_eq!(value, value.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\0' | '\x0B')));
    }
    assert_eq!(p.iter().count(), p.len());
}
