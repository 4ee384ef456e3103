//! Interpretation of a bulk request, pure so that every reply code is
//! unit-tested with the input that provokes it. Codes are checked in this
//! order: 1702 ([`required`]), then (after authentication) 1704, 1708, 1707,
//! 1705, 1711–1713, 1706 and 1028 ([`plan`]); the accept path adds 1033,
//! per destination 1042/1732/1041, then 1725 and 1710/1715.

use smsfleet_domain::account::SenderRule;
use smsfleet_domain::schedule::{BulkScheduleError, parse_bulk_schedule};
use smsfleet_domain::{Msisdn, text};
use smsfleet_playsms::Params;
use time::OffsetDateTime;

use super::codes as code;

/// The parameters every request must carry, non-blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Required {
    pub username: String,
    pub password: String,
    pub msg_type: String,
    pub dlr: String,
    pub destination: String,
    pub source: String,
    pub message: String,
    /// `(date, time, gmt)` for `schedulemsg`.
    pub schedule: Option<(String, String, String)>,
}

/// 1702 unless every required parameter is present and not blank.
pub fn required(p: &Params, scheduled: bool) -> Result<Required, u16> {
    let get = |k: &str| p.get_nonempty(k).map(str::to_owned).ok_or(code::INVALID_URL);
    // The message is kept untrimmed-by-us (Params already trims, like PHP).
    let r = Required {
        username: get("username")?,
        password: get("password")?,
        msg_type: get("type")?,
        dlr: get("dlr")?,
        destination: get("destination")?,
        source: get("source")?,
        message: get("message")?,
        schedule: if scheduled { Some((get("date")?, get("time")?, get("gmt")?)) } else { None },
    };
    Ok(r)
}

/// Clients often forget to encode the `+` of `gmt` (`gmt=+05:30`,
/// `gmt=GMT+05:30`), so it arrives as a space, which the PHP-style trim of
/// every parameter removes when it leads the value. An offset that starts
/// with a digit, directly or after `GMT` and a space, is therefore read as
/// positive; `-` needs no encoding and is kept.
fn unencoded_plus(gmt: &str) -> String {
    let (prefix, offset) = match gmt.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("gmt") => (&gmt[..3], &gmt[3..]),
        _ => ("", gmt),
    };
    let unsigned = offset.trim_start().starts_with(|c: char| c.is_ascii_digit());
    let lost_plus = prefix.is_empty() || offset.starts_with(' ');
    if unsigned && lost_plus { format!("{prefix} +{}", offset.trim_start()) } else { gmt.to_owned() }
}

/// One destination of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A number to hand to the accept path (as the client wrote it, `+`
    /// kept).
    Send(Msisdn),
    /// Not a number (1706), as the client wrote it.
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BulkPlan {
    pub targets: Vec<Target>,
    pub sender: String,
    pub text: String,
    pub encoding: text::Encoding,
    pub segments: u32,
    pub flash: bool,
    pub msg_type: String,
    pub dlr: bool,
    pub schedule_at: Option<OffsetDateTime>,
}

pub struct BulkLimits {
    pub max_destinations: usize,
    pub max_segments: u32,
    pub spam_patterns: Vec<String>,
}

/// Validates an authenticated request's wire fields; the accept path then
/// checks lists, templates, duplicates and credit.
pub fn plan(r: &Required, limits: &BulkLimits) -> Result<BulkPlan, u16> {
    let (encoding, flash) = match r.msg_type.as_str() {
        "0" => (text::Encoding::Gsm7, false),
        "1" => (text::Encoding::Gsm7, true),
        "2" => (text::Encoding::Ucs2, false),
        "5" => (text::Encoding::Latin1, false),
        "6" => (text::Encoding::Ucs2, true),
        "7" => (text::Encoding::Latin1, true),
        // 3 is reserved and 4 (WAP push) is not offered.
        _ => return Err(code::BAD_TYPE),
    };
    let dlr = match r.dlr.as_str() {
        "0" => false,
        "1" => true,
        _ => return Err(code::BAD_DLR),
    };
    if !SenderRule::BULK.allows(&r.source) {
        return Err(code::BAD_SOURCE);
    }
    let message = if encoding == text::Encoding::Ucs2 { decode_utf16_hex(&r.message) } else { None }
        .unwrap_or_else(|| r.message.replace("\r\n", "\n"));
    let representable = match encoding {
        text::Encoding::Gsm7 => text::is_gsm7(&message),
        text::Encoding::Latin1 => text::is_latin1(&message),
        text::Encoding::Ucs2 => true,
    };
    // A NUL can hide in hex (type 2 `004100000042`); Postgres text cannot hold it.
    if message.is_empty() || !representable || message.contains('\0') {
        return Err(code::BAD_MESSAGE);
    }
    let segments = text::count_segments(&message, encoding).segments;
    if segments > limits.max_segments {
        return Err(code::BAD_MESSAGE);
    }
    let schedule_at = match &r.schedule {
        None => None,
        Some((d, t, g)) => Some(parse_bulk_schedule(d, t, &unencoded_plus(g)).map_err(|e| match e {
            BulkScheduleError::Date => code::BAD_DATE,
            BulkScheduleError::Time => code::BAD_TIME,
            BulkScheduleError::Offset => code::BAD_GMT,
        })?),
    };
    let mut targets = Vec::new();
    let mut any_valid = false;
    for raw in r.destination.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match Msisdn::strict(raw) {
            None => targets.push(Target::Invalid(raw.to_owned())),
            Some(n) => {
                any_valid = true;
                targets.push(Target::Send(n));
            }
        }
    }
    if !any_valid || targets.len() > limits.max_destinations {
        return Err(code::BAD_DESTINATION);
    }
    if is_spam(&message, &limits.spam_patterns) {
        return Err(code::SPAM);
    }
    Ok(BulkPlan {
        targets,
        sender: r.source.clone(),
        text: message,
        encoding,
        segments,
        flash,
        msg_type: r.msg_type.clone(),
        dlr,
        schedule_at,
    })
}

/// Route Mobile clients send unicode (types 2 and 6) as hex of UTF-16BE:
/// `00480069` is "Hi". A message of only hex digits whose length is a
/// multiple of 4 is decoded that way; anything else (or invalid UTF-16) is
/// taken as the text itself.
pub fn decode_utf16_hex(s: &str) -> Option<String> {
    if s.is_empty() || !s.len().is_multiple_of(4) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let units: Vec<u16> = s
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).ok().and_then(|h| u16::from_str_radix(h, 16).ok()))
        .collect::<Option<_>>()?;
    char::decode_utf16(units).collect::<Result<String, _>>().ok()
}

pub fn is_spam(message: &str, patterns: &[String]) -> bool {
    let lower = message.to_lowercase();
    patterns.iter().any(|p| !p.is_empty() && lower.contains(&p.to_lowercase()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limits() -> BulkLimits {
        BulkLimits { max_destinations: 100, max_segments: 10, spam_patterns: vec!["free money".into()] }
    }

    const BASE: &str = "username=alice&password=pw&type=0&dlr=0&destination=919999999999&source=ACME&message=hi";

    fn with(over: &str) -> Params {
        Params::merge(Params::from_query(BASE), Params::from_query(over))
    }

    fn run(over: &str) -> Result<BulkPlan, u16> {
        plan(&required(&with(over), false)?, &limits())
    }

    fn lines(p: &BulkPlan) -> Vec<String> {
        p.targets
            .iter()
            .map(|t| match t {
                Target::Send(n) => format!("send {n}"),
                Target::Invalid(d) => format!("{}|{d}", code::BAD_DESTINATION),
            })
            .collect()
    }

    #[test]
    fn missing_or_blank_is_1702() {
        for k in ["username", "password", "type", "dlr", "destination", "source", "message"] {
            assert_eq!(run(&format!("{k}=")).unwrap_err(), code::INVALID_URL, "{k}");
            assert_eq!(run(&format!("{k}=%20")).unwrap_err(), code::INVALID_URL, "{k}");
        }
        let p = Params::from_query(BASE);
        assert_eq!(required(&p, true).unwrap_err(), code::INVALID_URL);
        let p = with("date=01/01/2030&time=10:00+am");
        assert_eq!(required(&p, true).unwrap_err(), code::INVALID_URL);
        assert!(required(&with("date=01/01/2030&time=10:00+am&gmt=%2B05:30"), true).is_ok());
    }

    #[test]
    fn types_1704() {
        for t in ["3", "4", "8", "x", "-1", "01"] {
            assert_eq!(run(&format!("type={t}")).unwrap_err(), code::BAD_TYPE, "{t}");
        }
        let p = run("type=0").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Gsm7, false));
        let p = run("type=1").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Gsm7, true));
        let p = run("type=2").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Ucs2, false));
        let p = run("type=5").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Latin1, false));
        let p = run("type=6").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Ucs2, true));
        let p = run("type=7").unwrap();
        assert_eq!((p.encoding, p.flash), (text::Encoding::Latin1, true));
    }

    #[test]
    fn dlr_1708() {
        assert_eq!(run("dlr=2").unwrap_err(), code::BAD_DLR);
        assert_eq!(run("dlr=yes").unwrap_err(), code::BAD_DLR);
        assert!(run("dlr=1").unwrap().dlr);
        assert!(!run("dlr=0").unwrap().dlr);
    }

    #[test]
    fn source_1707() {
        assert!(run("source=%2B123456789012345678").is_ok());
        assert!(run("source=123456789012345678").is_ok());
        assert_eq!(run("source=1234567890123456789").unwrap_err(), code::BAD_SOURCE);
        assert!(run("source=ABCDEFGHIJK").is_ok());
        assert_eq!(run("source=ABCDEFGHIJKL").unwrap_err(), code::BAD_SOURCE);
        assert_eq!(run("source=AC%26ME").unwrap_err(), code::BAD_SOURCE);
    }

    #[test]
    fn message_1705_and_segments() {
        // Not GSM-7 for type 0, not Latin-1 for type 5.
        assert_eq!(run("message=%D0%9F%D1%80%D0%B8").unwrap_err(), code::BAD_MESSAGE);
        assert_eq!(run("type=5&message=%E2%82%AC").unwrap_err(), code::BAD_MESSAGE);
        assert_eq!(run("type=2&message=004100000042").unwrap_err(), code::BAD_MESSAGE, "a NUL in hex");
        assert_eq!(run(&format!("message={}", "a".repeat(1531))).unwrap_err(), code::BAD_MESSAGE);
        assert_eq!(run(&format!("message={}", "a".repeat(160))).unwrap().segments, 1);
        assert_eq!(run(&format!("message={}", "a".repeat(161))).unwrap().segments, 2);
        assert_eq!(run(&format!("message={}", "a".repeat(306))).unwrap().segments, 2);
        assert_eq!(run(&format!("message={}", "a".repeat(307))).unwrap().segments, 3);
        assert_eq!(run(&format!("type=2&message={}", "Ж".repeat(70))).unwrap().segments, 1);
        assert_eq!(run(&format!("type=2&message={}", "Ж".repeat(71))).unwrap().segments, 2);
        assert_eq!(run(&format!("type=2&message={}", "Ж".repeat(134))).unwrap().segments, 2);
        assert_eq!(run(&format!("type=2&message={}", "Ж".repeat(135))).unwrap().segments, 3);
        assert_eq!(run("type=5&message=caf%C3%A9").unwrap().text, "café");
    }

    #[test]
    fn unicode_hex() {
        assert_eq!(decode_utf16_hex("00480069").as_deref(), Some("Hi"));
        assert_eq!(decode_utf16_hex("041F04400438043204350442").as_deref(), Some("Привет"));
        assert_eq!(decode_utf16_hex("D83DDE00").as_deref(), Some("😀"));
        assert_eq!(decode_utf16_hex("D83D"), None, "lone surrogate");
        assert_eq!(decode_utf16_hex("0048006"), None);
        assert_eq!(decode_utf16_hex("hello"), None);
        assert_eq!(run("type=2&message=041F04400438").unwrap().text, "При");
        assert_eq!(run("type=6&message=Hi there").unwrap().text, "Hi there");
        // Types 0/1/5/7 never decode hex.
        assert_eq!(run("type=0&message=00480069").unwrap().text, "00480069");
    }

    #[test]
    fn schedule_1711_1712_1713() {
        let go = |q: &str| required(&with(q), true).and_then(|r| plan(&r, &limits()));
        let ok = go("date=03/03/2030&time=03:45+pm&gmt=GMT+%2B05:30").unwrap();
        assert_eq!(ok.schedule_at.unwrap(), time::macros::datetime!(2030-03-03 10:15:00 UTC));
        let ok = go("date=03/03/2030&time=03:45+pm&gmt=-10:00").unwrap();
        assert_eq!(ok.schedule_at.unwrap(), time::macros::datetime!(2030-03-04 01:45:00 UTC));
        assert_eq!(go("date=2030-03-03&time=03:45+pm&gmt=%2B05:30").unwrap_err(), code::BAD_DATE);
        assert_eq!(go("date=13/03/2030&time=03:45+pm&gmt=%2B05:30").unwrap_err(), code::BAD_DATE);
        assert_eq!(go("date=03/03/2030&time=15:45&gmt=%2B05:30").unwrap_err(), code::BAD_TIME);
        assert_eq!(go("date=03/03/2030&time=13:45+pm&gmt=%2B05:30").unwrap_err(), code::BAD_TIME);
        assert_eq!(go("date=03/03/2030&time=03:45+pm&gmt=0530").unwrap_err(), code::BAD_GMT);
        assert_eq!(go("date=03/03/2030&time=03:45+pm&gmt=%2B25:00").unwrap_err(), code::BAD_GMT);
    }

    #[test]
    fn an_unencoded_plus_in_gmt_is_read_as_plus() {
        let go = |q: &str| required(&with(q), true).and_then(|r| plan(&r, &limits()));
        let at = time::macros::datetime!(2030-03-03 10:15:00 UTC);
        for gmt in ["+05:30", "GMT+05:30", "gmt+05:30", "GMT++05:30", "%2B05:30", "GMT+%2B05:30"] {
            let q = format!("date=03/03/2030&time=03:45+pm&gmt={gmt}");
            assert_eq!(go(&q).map(|p| p.schedule_at), Ok(Some(at)), "{gmt}");
        }
        let west = time::macros::datetime!(2030-03-04 01:45:00 UTC);
        assert_eq!(go("date=03/03/2030&time=03:45+pm&gmt=GMT+-10:00").map(|p| p.schedule_at), Ok(Some(west)));
        assert_eq!(go("date=03/03/2030&time=03:45+pm&gmt=GMT05:30").unwrap_err(), code::BAD_GMT);
        assert_eq!(go("date=03/03/2030&time=03:45+pm&gmt=+0530").unwrap_err(), code::BAD_GMT);
    }

    #[test]
    fn destinations_1706() {
        assert_eq!(run("destination=abc").unwrap_err(), code::BAD_DESTINATION);
        assert_eq!(run("destination=123,abc").unwrap_err(), code::BAD_DESTINATION);
        assert_eq!(run("destination=,,").unwrap_err(), code::BAD_DESTINATION);
        // Listed numbers (1042, 1732) are the accept path's: see
        // `accept::tests` and `handler::tests`.
        let p = run("destination=%2B919999999999%2C919999999998,abc,911111111111,912222222222").unwrap();
        assert_eq!(
            lines(&p),
            vec!["send +919999999999", "send 919999999998", "1706|abc", "send 911111111111", "send 912222222222"]
        );
        // An unencoded `+` arrives as a space and is trimmed away.
        let p = run("destination=+919999999999").unwrap();
        assert_eq!(lines(&p), vec!["send 919999999999"]);
        let many = (0..101).map(|i| format!("9199999{i:05}")).collect::<Vec<_>>().join(",");
        assert_eq!(run(&format!("destination={many}")).unwrap_err(), code::BAD_DESTINATION);
    }

    #[test]
    fn spam_1028() {
        // Templates (1033) are the accept path's: `accept::tests`.
        assert_eq!(run("message=Get+FREE+Money+now").unwrap_err(), code::SPAM);
        assert!(run("message=Your+code+is+1234").is_ok());
    }
}
