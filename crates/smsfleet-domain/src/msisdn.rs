//! Destination numbers as playSMS cleans them: every character but digits
//! and `+` is removed, so `0811-1000-004` becomes `08111000004`. A number that
//! is empty after cleaning, or has a `+` anywhere but first, is not a number.

use std::fmt;

use serde::{Deserialize, Serialize};

/// playSMS 1.4.7 keeps up to 20 characters of a cleaned number.
pub const MAX_LEN: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Msisdn(String);

impl Msisdn {
    /// Cleans a raw destination. Returns `None` when nothing dialable is left.
    pub fn clean(raw: &str) -> Option<Self> {
        let kept: String = raw.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
        let (plus, digits) = match kept.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", kept.as_str()),
        };
        if digits.is_empty() || digits.contains('+') {
            return None;
        }
        let mut out = format!("{plus}{digits}");
        out.truncate(MAX_LEN);
        Some(Self(out))
    }

    /// Strict form used by the bulk HTTP API: optional `+`, then 5 to 15
    /// digits and nothing else.
    pub fn strict(raw: &str) -> Option<Self> {
        let t = raw.trim();
        let digits = t.strip_prefix('+').unwrap_or(t);
        let ok = (5..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits only, the form the rate table and upstream routes want.
    pub fn digits(&self) -> &str {
        self.0.trim_start_matches('+')
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_playsms() {
        assert_eq!(Msisdn::clean("0811-1000-004").unwrap().as_str(), "08111000004");
        assert_eq!(Msisdn::clean(" +628111000006 ").unwrap().as_str(), "+628111000006");
        assert_eq!(Msisdn::clean("abc"), None);
        assert_eq!(Msisdn::clean("62+81"), None);
        assert_eq!(Msisdn::clean(&"1".repeat(30)).unwrap().as_str().len(), 20);
    }

    #[test]
    fn strict_form_for_bulk_api() {
        assert!(Msisdn::strict("+919999999999").is_some());
        assert!(Msisdn::strict("919999999999").is_some());
        assert!(Msisdn::strict("91-99").is_none());
        assert!(Msisdn::strict("123").is_none());
    }
}
