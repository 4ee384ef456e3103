//! Wall-clock helpers. Every payload on the bus carries Unix milliseconds
//! and every playSMS envelope Unix seconds; converting in one place keeps
//! the rounding the same everywhere.

use time::OffsetDateTime;

/// Unix milliseconds of an instant.
pub fn unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

/// Unix seconds now (the playSMS envelope's `timestamp`).
pub fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_truncate_towards_the_past() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_999_999).unwrap();
        assert_eq!(unix_ms(at), 1_700_000_000_123);
    }
}
