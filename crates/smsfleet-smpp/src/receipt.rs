//! Delivery receipts: reading them from deliver_sm (the
//! `receipted_message_id` / `message_state` TLVs preferred, the receipt text
//! otherwise), writing them (our server and the fake SMSC send receipts),
//! and making upstream message ids comparable across formats.

use rusmpp::{
    pdus::DeliverSm,
    tlvs::{MessageDeliveryRequestTlvValue, TlvValue},
    types::{COctetString, OctetString},
    values::{EsmClass, MessageState},
};
use time::PrimitiveDateTime;

use crate::{
    text::{DataCodingMap, decode, received_part},
    time::{format_receipt_date, parse_receipt_date},
};

/// A receipt's final or intermediate state: the `stat:` values of the
/// receipt text, which are also the `message_state` TLV values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptState {
    Scheduled,
    Enroute,
    Delivered,
    Expired,
    Deleted,
    Undeliverable,
    Accepted,
    Unknown,
    Rejected,
    Skipped,
    /// Not in SMPP 3.4, sent by some SMSCs.
    Failed,
}

impl ReceiptState {
    /// From a `stat:` value, case-insensitively; long spellings too.
    pub fn from_stat(stat: &str) -> Option<Self> {
        Some(match stat.trim().to_ascii_uppercase().as_str() {
            "SCHEDULED" | "SCHEDUL" => Self::Scheduled,
            "ENROUTE" => Self::Enroute,
            "DELIVRD" | "DELIVERED" => Self::Delivered,
            "EXPIRED" => Self::Expired,
            "DELETED" => Self::Deleted,
            "UNDELIV" | "UNDELIVERABLE" => Self::Undeliverable,
            "ACCEPTD" | "ACCEPTED" => Self::Accepted,
            "UNKNOWN" => Self::Unknown,
            "REJECTD" | "REJECTED" => Self::Rejected,
            "SKIPPED" => Self::Skipped,
            "FAILED" | "FAIL" => Self::Failed,
            _ => return None,
        })
    }

    pub fn stat(self) -> &'static str {
        match self {
            Self::Scheduled => "SCHEDULED",
            Self::Enroute => "ENROUTE",
            Self::Delivered => "DELIVRD",
            Self::Expired => "EXPIRED",
            Self::Deleted => "DELETED",
            Self::Undeliverable => "UNDELIV",
            Self::Accepted => "ACCEPTD",
            Self::Unknown => "UNKNOWN",
            Self::Rejected => "REJECTD",
            Self::Skipped => "SKIPPED",
            Self::Failed => "FAILED",
        }
    }

    pub fn from_message_state(state: MessageState) -> Option<Self> {
        Some(match state {
            MessageState::Scheduled => Self::Scheduled,
            MessageState::Enroute => Self::Enroute,
            MessageState::Delivered => Self::Delivered,
            MessageState::Expired => Self::Expired,
            MessageState::Deleted => Self::Deleted,
            MessageState::Undeliverable => Self::Undeliverable,
            MessageState::Accepted => Self::Accepted,
            MessageState::Unknown => Self::Unknown,
            MessageState::Rejected => Self::Rejected,
            MessageState::Skipped => Self::Skipped,
            MessageState::Other(_) => return None,
        })
    }

    /// The `message_state` TLV value (FAILED has none: UNDELIVERABLE).
    pub fn message_state(self) -> MessageState {
        match self {
            Self::Scheduled => MessageState::Scheduled,
            Self::Enroute => MessageState::Enroute,
            Self::Delivered => MessageState::Delivered,
            Self::Expired => MessageState::Expired,
            Self::Deleted => MessageState::Deleted,
            Self::Undeliverable | Self::Failed => MessageState::Undeliverable,
            Self::Accepted => MessageState::Accepted,
            Self::Unknown => MessageState::Unknown,
            Self::Rejected => MessageState::Rejected,
            Self::Skipped => MessageState::Skipped,
        }
    }

    /// No further receipt follows.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Scheduled | Self::Enroute | Self::Accepted | Self::Unknown)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The upstream's message id, as the receipt gives it.
    pub id: String,
    pub submitted: Option<u32>,
    pub delivered: Option<u32>,
    pub submit_date: Option<PrimitiveDateTime>,
    pub done_date: Option<PrimitiveDateTime>,
    pub state: ReceiptState,
    /// The `err:` field (network or SMSC error code, as text).
    pub error: Option<String>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("receipt without an id")]
    NoId,
    #[error("receipt without a known stat: {0:?}")]
    NoState(String),
}

const KEYS: [&str; 8] = ["id:", "sub:", "dlvrd:", "submit date:", "done date:", "stat:", "err:", "text:"];

/// Parses the receipt text. Keys are matched case-insensitively (`Text:`),
/// at the start or after a space; `text:` takes the rest of the line.
pub fn parse_text(text: &str) -> Result<Receipt, ReceiptError> {
    let lower = text.to_ascii_lowercase();
    let mut found: Vec<(usize, usize)> = Vec::new(); // (key index, position)
    for (k, key) in KEYS.iter().enumerate() {
        let mut from = 0;
        while let Some(p) = lower.get(from..).and_then(|s| s.find(key)).map(|p| p + from) {
            let boundary = p == 0 || lower.as_bytes().get(p - 1).is_some_and(|b| b.is_ascii_whitespace());
            // "done date:" contains "date:" only; "submit date:" is not
            // "id:" etc. A key inside text: is cut off below.
            if boundary {
                found.push((k, p));
                break;
            }
            from = p + 1;
        }
    }
    // text: swallows everything after it, keys included.
    if let Some(&(_, text_at)) = found.iter().find(|(k, _)| *k == 7) {
        found.retain(|&(k, p)| k == 7 || p < text_at);
    }
    found.sort_by_key(|&(_, p)| p);
    let value = |k: usize| -> Option<&str> {
        let i = found.iter().position(|&(key, _)| key == k)?;
        let start = found[i].1 + KEYS[k].len();
        let end = if k == 7 { text.len() } else { found.get(i + 1).map_or(text.len(), |&(_, p)| p) };
        text.get(start..end).map(str::trim)
    };
    let id = value(0).filter(|s| !s.is_empty()).ok_or(ReceiptError::NoId)?.to_owned();
    let stat = value(5).unwrap_or("");
    let state = ReceiptState::from_stat(stat).ok_or_else(|| ReceiptError::NoState(stat.to_owned()))?;
    Ok(Receipt {
        id,
        submitted: value(1).and_then(|s| s.parse().ok()),
        delivered: value(2).and_then(|s| s.parse().ok()),
        submit_date: value(3).and_then(parse_receipt_date),
        done_date: value(4).and_then(parse_receipt_date),
        state,
        error: value(6).filter(|s| !s.is_empty()).map(str::to_owned),
        text: value(7).map(str::to_owned),
    })
}

/// The standard receipt text (SMPP 3.4 appendix B).
pub fn format_text(r: &Receipt) -> String {
    let date = |d: Option<PrimitiveDateTime>| d.map(format_receipt_date).unwrap_or_default();
    let text: String = r.text.as_deref().unwrap_or("").chars().take(20).collect();
    format!(
        "id:{} sub:{:03} dlvrd:{:03} submit date:{} done date:{} stat:{} err:{} text:{}",
        r.id,
        r.submitted.unwrap_or(1),
        r.delivered.unwrap_or(u32::from(r.state == ReceiptState::Delivered)),
        date(r.submit_date),
        date(r.done_date),
        r.state.stat(),
        r.error.as_deref().unwrap_or("000"),
        text
    )
}

const RECEIPT_TYPES: [u8; 2] = [0x04, 0x20];

/// Whether a deliver_sm is a receipt (MC delivery receipt or intermediate
/// notification) rather than an MO.
pub fn is_receipt(sm: &DeliverSm) -> bool {
    RECEIPT_TYPES.contains(&(u8::from(sm.esm_class) & 0x3C))
        || sm.tlvs().iter().any(|t| matches!(t.value(), Some(TlvValue::ReceiptedMessageId(_))))
}

/// The receipt in a deliver_sm, `None` if it is an MO. TLVs win over the
/// text for the id and state; a receipt with TLVs but unreadable text
/// still counts.
pub fn from_deliver_sm(sm: &DeliverSm, map: &DataCodingMap) -> Option<Result<Receipt, ReceiptError>> {
    if !is_receipt(sm) {
        return None;
    }
    let mut tlv_id = None;
    let mut tlv_state = None;
    let mut tlv_error = None;
    for tlv in sm.tlvs() {
        match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => tlv_id = Some(id.as_str().to_owned()),
            Some(TlvValue::MessageState(s)) => tlv_state = ReceiptState::from_message_state(*s),
            Some(TlvValue::NetworkErrorCode(e)) => tlv_error = Some(format!("{:03}", e.error_code)),
            _ => {}
        }
    }
    let part = received_part(sm.esm_class, sm.data_coding, sm.short_message().as_ref(), sm.tlvs());
    let text = decode(&part.content, map.encoding_of(part.data_coding));
    let parsed = parse_text(&text);
    Some(match (parsed, tlv_id, tlv_state) {
        (Ok(mut r), id, state) => {
            if let Some(id) = id.filter(|s| !s.is_empty()) {
                r.id = id;
            }
            if let Some(state) = state {
                r.state = state;
            }
            if r.error.is_none() {
                r.error = tlv_error;
            }
            Ok(r)
        }
        (Err(_), Some(id), Some(state)) if !id.is_empty() => Ok(Receipt {
            id,
            submitted: None,
            delivered: None,
            submit_date: None,
            done_date: None,
            state,
            error: tlv_error,
            text: None,
        }),
        (Err(e), _, _) => Err(e),
    })
}

/// A receipt as a deliver_sm from `source` (the handset) to `destination`
/// (the ESME's sender): esm_class 0x04, the text, and the
/// `receipted_message_id` + `message_state` TLVs.
pub fn to_deliver_sm(r: &Receipt, source: &str, destination: &str) -> DeliverSm {
    let mut sm = DeliverSm::builder()
        .source_addr(crate::c_string(source))
        .destination_addr(crate::c_string(destination))
        .esm_class(EsmClass::from(0x04))
        .build();
    let text = format_text(r);
    sm.set_short_message(OctetString::from_slice(text.as_bytes()).unwrap_or_else(|_| OctetString::empty()));
    let id: COctetString<1, 65> = crate::c_string(&r.id);
    sm.push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(id));
    sm.push_tlv(MessageDeliveryRequestTlvValue::MessageState(r.state.message_state()));
    sm
}

/// How a route's submit_sm_resp ids relate to its receipts' ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdMatch {
    /// Byte for byte.
    #[default]
    AsIs,
    /// Hex in submit_sm_resp, decimal in receipts.
    HexToDec,
    /// Decimal in submit_sm_resp, hex in receipts.
    DecToHex,
    /// Same digits; leading zeros and case ignored.
    Normalized,
}

/// Where an id was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    SubmitResp,
    Receipt,
}

fn normalized(id: &str) -> String {
    let lower = id.trim().to_ascii_lowercase();
    let stripped = lower.trim_start_matches('0');
    if stripped.is_empty() && !lower.is_empty() { "0".to_owned() } else { stripped.to_owned() }
}

/// The form an id is stored and matched in, so that the submit_sm_resp's
/// and the receipt's ids of one message compare equal. Hex ↔ decimal modes
/// store decimal; an id that does not parse in the expected base is kept
/// normalised.
pub fn canonical_id(id: &str, mode: IdMatch, source: IdSource) -> String {
    let from_hex =
        |s: &str| u128::from_str_radix(s.trim(), 16).map(|n| n.to_string()).unwrap_or_else(|_| normalized(s));
    match (mode, source) {
        (IdMatch::AsIs, _) => id.to_owned(),
        (IdMatch::Normalized, _) => normalized(id),
        (IdMatch::HexToDec, IdSource::SubmitResp) | (IdMatch::DecToHex, IdSource::Receipt) => from_hex(id),
        (IdMatch::HexToDec, IdSource::Receipt) | (IdMatch::DecToHex, IdSource::SubmitResp) => normalized(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn parses_the_standard_text() {
        let r = parse_text(
            "id:0123456789 sub:001 dlvrd:001 submit date:2612021430 done date:2612021431 stat:DELIVRD err:000 text:Hello world",
        )
        .unwrap();
        assert_eq!(r.id, "0123456789");
        assert_eq!((r.submitted, r.delivered), (Some(1), Some(1)));
        assert_eq!(r.submit_date, Some(datetime!(2026-12-02 14:30)));
        assert_eq!(r.done_date, Some(datetime!(2026-12-02 14:31)));
        assert_eq!(r.state, ReceiptState::Delivered);
        assert_eq!(r.error.as_deref(), Some("000"));
        assert_eq!(r.text.as_deref(), Some("Hello world"));
    }

    #[test]
    fn variants_capital_text_seconds_failed_and_keys_inside_text() {
        let r = parse_text(
            "id:ab12 sub:001 dlvrd:000 submit date:261202143005 done date:261202143107 stat:FAILED err:034 Text:id:x stat:DELIVRD",
        )
        .unwrap();
        assert_eq!(r.id, "ab12");
        assert_eq!(r.state, ReceiptState::Failed);
        assert_eq!(r.done_date, Some(datetime!(2026-12-02 14:31:07)));
        assert_eq!(r.text.as_deref(), Some("id:x stat:DELIVRD"));
        for stat in ["EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE"] {
            let r = parse_text(&format!("id:1 stat:{stat}")).unwrap();
            assert_eq!(r.state.stat(), stat);
        }
        assert_eq!(parse_text("sub:001 stat:DELIVRD"), Err(ReceiptError::NoId));
        assert!(matches!(parse_text("id:1 stat:WHAT"), Err(ReceiptError::NoState(_))));
        assert!(parse_text("").is_err());
        assert!(parse_text("id:").is_err());
    }

    #[test]
    fn format_then_parse_is_identity() {
        let r = Receipt {
            id: "77".into(),
            submitted: Some(1),
            delivered: Some(1),
            submit_date: Some(datetime!(2026-12-02 14:30)),
            done_date: Some(datetime!(2026-12-02 14:31)),
            state: ReceiptState::Delivered,
            error: Some("000".into()),
            text: Some("hello".into()),
        };
        let text = format_text(&r);
        assert_eq!(
            text,
            "id:77 sub:001 dlvrd:001 submit date:2612021430 done date:2612021431 stat:DELIVRD err:000 text:hello"
        );
        assert_eq!(parse_text(&text).unwrap(), r);
    }

    #[test]
    fn deliver_sm_tlvs_win_over_the_text() {
        let r = Receipt {
            id: "abc".into(),
            submitted: None,
            delivered: None,
            submit_date: None,
            done_date: None,
            state: ReceiptState::Undeliverable,
            error: None,
            text: None,
        };
        let mut sm = to_deliver_sm(&r, "628123", "SENDER");
        assert!(is_receipt(&sm));
        let got = from_deliver_sm(&sm, &DataCodingMap::default()).unwrap().unwrap();
        assert_eq!((got.id.as_str(), got.state), ("abc", ReceiptState::Undeliverable));
        // Text says otherwise; the TLVs are believed.
        sm.set_short_message(OctetString::from_slice(b"id:zzz stat:DELIVRD").unwrap());
        let got = from_deliver_sm(&sm, &DataCodingMap::default()).unwrap().unwrap();
        assert_eq!((got.id.as_str(), got.state), ("abc", ReceiptState::Undeliverable));
        // Unreadable text, TLVs present: still a receipt.
        sm.set_short_message(OctetString::from_slice(b"garbage").unwrap());
        assert!(from_deliver_sm(&sm, &DataCodingMap::default()).unwrap().is_ok());
        let mo = DeliverSm::default();
        assert!(from_deliver_sm(&mo, &DataCodingMap::default()).is_none());
    }

    #[test]
    fn ids_match_in_every_mode() {
        use IdSource::*;
        let same = |mode, resp: &str, receipt: &str| {
            canonical_id(resp, mode, SubmitResp) == canonical_id(receipt, mode, Receipt)
        };
        assert!(same(IdMatch::AsIs, "Ab01", "Ab01"));
        assert!(!same(IdMatch::AsIs, "Ab01", "ab01"));
        assert!(same(IdMatch::Normalized, "00AB01", "ab01"));
        assert!(same(IdMatch::Normalized, "000", "0"));
        assert!(same(IdMatch::HexToDec, "1F", "31"));
        assert!(same(IdMatch::HexToDec, "00ff", "0255"));
        assert!(same(IdMatch::DecToHex, "255", "FF"));
        assert!(same(IdMatch::DecToHex, "0255", "00ff"));
        assert!(!same(IdMatch::HexToDec, "1F", "1F"));
        // Not hex at all: kept normalised, never a panic.
        assert_eq!(canonical_id("xyz", IdMatch::HexToDec, SubmitResp), "xyz");
        assert_eq!(canonical_id(&"f".repeat(40), IdMatch::HexToDec, SubmitResp), "f".repeat(40));
    }
}
