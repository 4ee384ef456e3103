//! SMPP time formats: absolute `YYMMDDhhmmsstnnp` (local time, tenths of a
//! second, offset from UTC in quarter hours, `+`/`-`), relative
//! `YYMMDDhhmmss000R`, and the receipt dates `YYMMDDhhmm[ss]`.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("an SMPP time has 16 characters, got {0}")]
    Length(usize),
    #[error("not an SMPP time: {0:?}")]
    Invalid(String),
}

/// A relative period; years and months count as calendar units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelativeTime {
    pub years: u8,
    pub months: u8,
    pub days: u8,
    pub hours: u8,
    pub minutes: u8,
    pub seconds: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmppTime {
    Absolute(OffsetDateTime),
    Relative(RelativeTime),
}

fn two(s: &[u8], i: usize) -> Option<u8> {
    let (a, b) = (*s.get(i)?, *s.get(i + 1)?);
    if a.is_ascii_digit() && b.is_ascii_digit() { Some((a - b'0') * 10 + (b - b'0')) } else { None }
}

fn date_time(y: u8, mo: u8, d: u8, h: u8, mi: u8, s: u8, millis: u16) -> Option<PrimitiveDateTime> {
    let date = Date::from_calendar_date(2000 + i32::from(y), Month::try_from(mo).ok()?, d).ok()?;
    let time = Time::from_hms_milli(h, mi, s, millis).ok()?;
    Some(PrimitiveDateTime::new(date, time))
}

/// Parses a schedule_delivery_time / validity_period. Empty is `None`.
pub fn parse(s: &str) -> Result<Option<SmppTime>, TimeError> {
    if s.is_empty() {
        return Ok(None);
    }
    let b = s.as_bytes();
    if b.len() != 16 {
        return Err(TimeError::Length(b.len()));
    }
    let invalid = || TimeError::Invalid(s.to_owned());
    let f: Vec<u8> = (0..6).map(|i| two(b, i * 2)).collect::<Option<_>>().ok_or_else(invalid)?;
    let (tenths, nn, p) = (b[12], two(b, 13).ok_or_else(invalid)?, b[15]);
    match p {
        b'R' => Ok(Some(SmppTime::Relative(RelativeTime {
            years: f[0],
            months: f[1],
            days: f[2],
            hours: f[3],
            minutes: f[4],
            seconds: f[5],
        }))),
        b'+' | b'-' => {
            if !tenths.is_ascii_digit() || nn > 48 {
                return Err(invalid());
            }
            let local =
                date_time(f[0], f[1], f[2], f[3], f[4], f[5], u16::from(tenths - b'0') * 100).ok_or_else(invalid)?;
            let minutes = i32::from(nn) * 15 * if p == b'-' { -1 } else { 1 };
            let offset = UtcOffset::from_whole_seconds(minutes * 60).map_err(|_| invalid())?;
            Ok(Some(SmppTime::Absolute(local.assume_offset(offset))))
        }
        _ => Err(invalid()),
    }
}

/// Formats an absolute time in its own offset (rounded to a quarter hour).
pub fn format_absolute(t: OffsetDateTime) -> String {
    let quarter_hours = t.offset().whole_minutes() / 15;
    let sign = if quarter_hours < 0 { '-' } else { '+' };
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}{}{:02}{}",
        t.year().rem_euclid(100),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond() / 100,
        quarter_hours.unsigned_abs(),
        sign
    )
}

pub fn format_relative(r: RelativeTime) -> String {
    format!("{:02}{:02}{:02}{:02}{:02}{:02}000R", r.years, r.months, r.days, r.hours, r.minutes, r.seconds)
}

impl SmppTime {
    /// The moment meant, relative times counted from `now`.
    pub fn resolve(&self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::Absolute(t) => *t,
            Self::Relative(r) => {
                let months = i32::from(r.years) * 12 + i32::from(r.months);
                let mut t = now;
                if months > 0 {
                    let total = t.year() * 12 + i32::from(u8::from(t.month())) - 1 + months;
                    let (year, month) = (total.div_euclid(12), u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1));
                    let month = Month::try_from(month).unwrap_or(Month::January);
                    let day = t.day().min(month.length(year));
                    if let Ok(date) = Date::from_calendar_date(year, month, day) {
                        t = t.replace_date(date);
                    }
                }
                t + time::Duration::seconds(
                    i64::from(r.days) * 86_400
                        + i64::from(r.hours) * 3600
                        + i64::from(r.minutes) * 60
                        + i64::from(r.seconds),
                )
            }
        }
    }
}

/// A receipt's `submit date:` / `done date:`: `YYMMDDhhmm` or with seconds.
pub fn parse_receipt_date(s: &str) -> Option<PrimitiveDateTime> {
    let b = s.as_bytes();
    let f: Vec<u8> = (0..b.len() / 2).map(|i| two(b, i * 2)).collect::<Option<_>>()?;
    match (b.len(), f.as_slice()) {
        (10, [y, mo, d, h, mi]) => date_time(*y, *mo, *d, *h, *mi, 0, 0),
        (12, [y, mo, d, h, mi, s]) => date_time(*y, *mo, *d, *h, *mi, *s, 0),
        _ => None,
    }
}

/// `YYMMDDhhmm`, as most SMSCs write receipt dates.
pub fn format_receipt_date(t: PrimitiveDateTime) -> String {
    format!("{:02}{:02}{:02}{:02}{:02}", t.year().rem_euclid(100), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn absolute_round_trips_with_offsets() {
        let Some(SmppTime::Absolute(t)) = parse("261202143005304+").unwrap() else { panic!() };
        assert_eq!(t, datetime!(2026-12-02 14:30:05.3 +01:00));
        assert_eq!(format_absolute(t), "261202143005304+");
        let Some(SmppTime::Absolute(t)) = parse("261202143005028-").unwrap() else { panic!() };
        assert_eq!(t.offset().whole_minutes(), -7 * 60);
        assert_eq!(format_absolute(t), "261202143005028-");
    }

    #[test]
    fn relative_parses_and_resolves() {
        let Some(SmppTime::Relative(r)) = parse("000102030405000R").unwrap() else { panic!() };
        assert_eq!(r, RelativeTime { years: 0, months: 1, days: 2, hours: 3, minutes: 4, seconds: 5 });
        assert_eq!(format_relative(r), "000102030405000R");
        let now = datetime!(2026-01-31 00:00 UTC);
        assert_eq!(SmppTime::Relative(r).resolve(now), datetime!(2026-03-02 03:04:05 UTC));
    }

    #[test]
    fn bad_times_are_errors_not_panics() {
        assert_eq!(parse("").unwrap(), None);
        assert!(matches!(parse("123"), Err(TimeError::Length(3))));
        assert!(parse("261302143005304+").is_err());
        assert!(parse("26120214300530x+").is_err());
        assert!(parse("261202143005399+").is_err());
        assert!(parse("2612021430053040").is_err());
        assert!(parse("ééééééééé").is_err());
    }

    #[test]
    fn receipt_dates_with_and_without_seconds() {
        assert_eq!(parse_receipt_date("2612021430"), Some(datetime!(2026-12-02 14:30)));
        assert_eq!(parse_receipt_date("261202143059"), Some(datetime!(2026-12-02 14:30:59)));
        assert_eq!(parse_receipt_date("26120214"), None);
        assert_eq!(format_receipt_date(datetime!(2026-12-02 14:30:59)), "2612021430");
    }
}
