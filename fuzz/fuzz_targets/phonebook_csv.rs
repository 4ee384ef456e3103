//! Phonebook CSV imports: any bytes are read whole or refused with a line,
//! never a panic; every accepted contact has a mobile number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsfleet_accounts::phonebook::parse_csv;

fuzz_target!(|data: &[u8]| {
    if let Ok(contacts) = parse_csv(data) {
        assert!(contacts.iter().all(|c| !c.mobile.is_empty()));
    }
});
