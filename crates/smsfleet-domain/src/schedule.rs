//! Schedules and account time zones.
//!
//! playSMS interprets `schedule=YYYY-MM-DD hh:mm:ss` in the account's time
//! zone, an offset like `+0700`. We keep that, store the instant in UTC, and
//! (unlike playSMS) honour negative offsets too.

use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Parses `+0700`, `-0330`, `+07:00`, `+7`, `0` or empty (UTC).
pub fn parse_offset(s: &str) -> Option<UtcOffset> {
    let s = s.trim();
    if s.is_empty() || s == "0" || s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("gmt") {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1i32, &s[1..]),
        b'-' => (-1i32, &s[1..]),
        _ => (1i32, s),
    };
    let rest = rest.replace(':', "");
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 4 {
        return None;
    }
    let (h, m) = if rest.len() <= 2 {
        (rest.parse::<i32>().ok()?, 0)
    } else {
        let split = rest.len() - 2;
        (rest[..split].parse::<i32>().ok()?, rest[split..].parse::<i32>().ok()?)
    };
    if h > 14 || m > 59 {
        return None;
    }
    UtcOffset::from_whole_seconds(sign * (h * 3600 + m * 60)).ok()
}

/// Formats an offset the way playSMS stores it: `+0700`.
pub fn format_offset(o: UtcOffset) -> String {
    let (h, m, _) = o.as_hms();
    let sign = if o.is_negative() { '-' } else { '+' };
    format!("{sign}{:02}{:02}", h.unsigned_abs(), m.unsigned_abs())
}

/// Reads a playSMS `schedule` value in the account's offset and returns the
/// UTC instant. Accepts `YYYY-MM-DD hh:mm:ss`, `YYYY-MM-DD hh:mm`, the ISO
/// `T` separator, and a date alone, `YYYY-MM-DD`, which is midnight of that
/// day (playSMS's `strtotime` reads it so).
pub fn parse_schedule(s: &str, offset: UtcOffset) -> Option<OffsetDateTime> {
    let s = s.trim().replace('T', " ");
    let with_secs = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let without_secs = format_description!("[year]-[month]-[day] [hour]:[minute]");
    let date_only = format_description!("[year]-[month]-[day]");
    let local = PrimitiveDateTime::parse(&s, with_secs)
        .or_else(|_| PrimitiveDateTime::parse(&s, without_secs))
        .or_else(|_| Date::parse(&s, date_only).map(Date::midnight))
        .ok()?;
    Some(local.assume_offset(offset).to_offset(UtcOffset::UTC))
}

/// The bulk HTTP API's schedule: `date=MM/DD/YYYY`, `time=hh:mm am|pm`,
/// `gmt=GMT +hh:mm | +hh:mm | -hh:mm`.
pub fn parse_bulk_schedule(date: &str, time_of_day: &str, gmt: &str) -> Result<OffsetDateTime, BulkScheduleError> {
    let date = parse_us_date(date).ok_or(BulkScheduleError::Date)?;
    let t = parse_12h_time(time_of_day).ok_or(BulkScheduleError::Time)?;
    let g = gmt.trim();
    let g = g.strip_prefix("GMT").or_else(|| g.strip_prefix("gmt")).unwrap_or(g).trim();
    if g.is_empty() || !(g.starts_with('+') || g.starts_with('-')) || !g.contains(':') {
        return Err(BulkScheduleError::Offset);
    }
    let (hh, mm) = g[1..].split_once(':').ok_or(BulkScheduleError::Offset)?;
    let h: u8 = hh.trim().parse().map_err(|_| BulkScheduleError::Offset)?;
    let m: u8 = mm.trim().parse().map_err(|_| BulkScheduleError::Offset)?;
    if h > 14 || m > 59 || hh.trim().is_empty() || mm.len() != 2 {
        return Err(BulkScheduleError::Offset);
    }
    let offset = parse_offset(&format!("{}{:02}{:02}", &g[..1], h, m)).ok_or(BulkScheduleError::Offset)?;
    Ok(PrimitiveDateTime::new(date, t).assume_offset(offset).to_offset(UtcOffset::UTC))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BulkScheduleError {
    #[error("date must be MM/DD/YYYY")]
    Date,
    #[error("time must be hh:mm am|pm")]
    Time,
    #[error("gmt must be GMT +hh:mm, +hh:mm or -hh:mm")]
    Offset,
}

fn parse_us_date(s: &str) -> Option<Date> {
    let mut it = s.trim().split('/');
    let (m, d, y) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || m.len() != 2 || d.len() != 2 || y.len() != 4 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

fn parse_12h_time(s: &str) -> Option<Time> {
    let s = s.trim().to_ascii_lowercase();
    let (clock, meridiem) = if let Some(c) = s.strip_suffix("am") {
        (c.trim(), false)
    } else if let Some(c) = s.strip_suffix("pm") {
        (c.trim(), true)
    } else {
        return None;
    };
    let (h, m) = clock.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u8 = h.parse().ok()?;
    let m: u8 = m.parse().ok()?;
    if h > 12 || m > 59 {
        return None;
    }
    // 12 am is midnight and 12 pm is noon; 00 is accepted as midnight too.
    let h24 = match (h, meridiem) {
        (12, false) => 0,
        (12, true) => 12,
        (h, false) => h,
        (h, true) => h + 12,
    };
    Time::from_hms(h24, m, 0).ok()
}

/// playSMS's datetime text: `YYYY-MM-DD HH:MM:SS`, in UTC here.
pub fn format_playsms(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let f = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+0700").unwrap().whole_seconds(), 7 * 3600);
        assert_eq!(parse_offset("-0330").unwrap().whole_seconds(), -(3 * 3600 + 1800));
        assert_eq!(parse_offset("+07:00").unwrap().whole_seconds(), 7 * 3600);
        assert_eq!(parse_offset("").unwrap(), UtcOffset::UTC);
        assert!(parse_offset("+99").is_none());
        assert!(parse_offset("abc").is_none());
        assert_eq!(format_offset(parse_offset("-0330").unwrap()), "-0330");
    }

    #[test]
    fn schedule_in_account_zone() {
        let o = parse_offset("+0700").unwrap();
        assert_eq!(parse_schedule("2030-01-01 10:00:00", o).unwrap(), datetime!(2030-01-01 03:00:00 UTC));
        assert_eq!(parse_schedule("2030-01-01 10:00", o).unwrap(), datetime!(2030-01-01 03:00:00 UTC));
        let neg = parse_offset("-0500").unwrap();
        assert_eq!(parse_schedule("2030-01-01 10:00:00", neg).unwrap(), datetime!(2030-01-01 15:00:00 UTC));
        assert!(parse_schedule("tomorrow", o).is_none());
    }

    #[test]
    fn a_date_alone_is_midnight_in_the_account_zone() {
        let o = parse_offset("+0700").unwrap();
        assert_eq!(parse_schedule("2030-01-01", o).unwrap(), datetime!(2029-12-31 17:00:00 UTC));
        assert_eq!(parse_schedule(" 2030-01-01 ", UtcOffset::UTC).unwrap(), datetime!(2030-01-01 00:00:00 UTC));
        let neg = parse_offset("-0500").unwrap();
        assert_eq!(parse_schedule("2030-01-01", neg).unwrap(), datetime!(2030-01-01 05:00:00 UTC));
        assert!(parse_schedule("2030-02-30", o).is_none());
        assert!(parse_schedule("2030-01", o).is_none());
    }

    #[test]
    fn bulk_schedule() {
        assert_eq!(
            parse_bulk_schedule("03/03/2030", "03:45 pm", "GMT +1:30").unwrap(),
            datetime!(2030-03-03 14:15:00 UTC)
        );
        assert_eq!(
            parse_bulk_schedule("12/31/2030", "12:05 am", "-10:00").unwrap(),
            datetime!(2030-12-31 10:05:00 UTC)
        );
        assert_eq!(parse_bulk_schedule("2030-03-03", "03:45 pm", "+01:00"), Err(BulkScheduleError::Date));
        assert_eq!(parse_bulk_schedule("02/30/2030", "03:45 pm", "+01:00"), Err(BulkScheduleError::Date));
        assert_eq!(parse_bulk_schedule("03/03/2030", "13:45 pm", "+01:00"), Err(BulkScheduleError::Time));
        assert_eq!(parse_bulk_schedule("03/03/2030", "03:45", "+01:00"), Err(BulkScheduleError::Time));
        assert_eq!(parse_bulk_schedule("03/03/2030", "03:45 am", "01:00"), Err(BulkScheduleError::Offset));
        assert_eq!(parse_bulk_schedule("03/03/2030", "03:45 am", "GMT"), Err(BulkScheduleError::Offset));
    }

    #[test]
    fn playsms_datetime_text() {
        assert_eq!(format_playsms(datetime!(2026-11-23 01:21:32 UTC)), "2026-11-23 01:21:32");
    }
}
