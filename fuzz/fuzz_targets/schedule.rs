//! Schedules and offsets: playSMS's `schedule` in an account's offset, the
//! bulk API's `date`/`time`/`gmt`. Never a panic, and what is read is a
//! real instant.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use smsfleet_domain::schedule::{format_offset, parse_bulk_schedule, parse_offset, parse_schedule};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    schedule: &'a str,
    timezone: &'a str,
    date: &'a str,
    time: &'a str,
    gmt: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let offset = parse_offset(input.timezone);
    if let Some(o) = offset {
        // What we store reads back as itself.
        assert_eq!(parse_offset(&format_offset(o)), Some(o));
    }
    if let Some(t) = parse_schedule(input.schedule, offset.unwrap_or(time::UtcOffset::UTC)) {
        assert!(t.offset().is_utc());
    }
    if let Ok(t) = parse_bulk_schedule(input.date, input.time, input.gmt) {
        assert!(t.offset().is_utc());
    }
});
