//! Text on the wire: GSM-7 (unpacked septets, with the extension table),
//! Latin-1 and UCS-2; which data_coding a route sends for each (DCS 0 means
//! "the SMSC's default alphabet", which differs between SMSCs); long
//! messages split by UDH (8-bit reference), SAR TLVs or one
//! `message_payload`; and reassembly of what arrives split.
//!
//! Part boundaries come from `smsfleet_domain::text::split_parts`, the
//! same rule that priced the message, so what is charged is what is sent.

use std::collections::{BTreeMap, HashMap};

use rusmpp::{
    pdus::{DeliverSm, SubmitSm},
    tlvs::{MessageDeliveryRequestTlvValue, MessageSubmissionRequestTlvValue, Tlv, TlvValue},
    types::{AnyOctetString, OctetString},
    values::{DataCoding, EsmClass, MessagePayload},
};
pub use smsfleet_domain::text::Encoding;
use smsfleet_domain::text::{GSM7_ESCAPE, count_segments, gsm7_char, gsm7_code, split_parts};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("the text needs {0} parts; SMPP concatenation carries at most 255")]
    TooManyParts(usize),
}

/// The data_coding a route sends for each alphabet, and what it reads DCS
/// 0 as. Defaults follow SMPP 3.4: GSM-7 as DCS 0, Latin-1 3, UCS-2 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataCodingMap {
    pub gsm7: u8,
    pub latin1: u8,
    pub ucs2: u8,
    /// What an incoming DCS 0 holds.
    pub default_alphabet: Encoding,
}

impl Default for DataCodingMap {
    fn default() -> Self {
        Self { gsm7: 0, latin1: 3, ucs2: 8, default_alphabet: Encoding::Gsm7 }
    }
}

impl DataCodingMap {
    pub fn dcs_for(&self, encoding: Encoding) -> u8 {
        match encoding {
            Encoding::Gsm7 => self.gsm7,
            Encoding::Latin1 => self.latin1,
            Encoding::Ucs2 => self.ucs2,
        }
    }

    /// How to read a received data_coding. The route's own values win; then
    /// the SMPP / GSM 03.38 coding groups; 8-bit data reads as Latin-1.
    pub fn encoding_of(&self, dcs: u8) -> Encoding {
        if dcs == 0 {
            return self.default_alphabet;
        }
        if dcs == self.gsm7 {
            return Encoding::Gsm7;
        }
        if dcs == self.ucs2 {
            return Encoding::Ucs2;
        }
        if dcs == self.latin1 {
            return Encoding::Latin1;
        }
        match dcs {
            1 | 3 => Encoding::Latin1,
            8 => Encoding::Ucs2,
            d if d & 0xF0 == 0xF0 => {
                if d & 0x04 != 0 {
                    Encoding::Latin1
                } else {
                    Encoding::Gsm7
                }
            }
            d if d & 0xC0 == 0 => match (d >> 2) & 0x03 {
                0 => Encoding::Gsm7,
                2 => Encoding::Ucs2,
                _ => Encoding::Latin1,
            },
            _ => Encoding::Latin1,
        }
    }
}

/// Encodes `text`, which the caller has checked fits `encoding` (a
/// character that does not fit becomes `?`).
pub fn encode(text: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Gsm7 => {
            let mut out = Vec::with_capacity(text.len());
            for c in text.chars() {
                match gsm7_code(c) {
                    Some((code, None)) => out.push(code),
                    Some((escape, Some(code))) => out.extend_from_slice(&[escape, code]),
                    None => out.push(b'?'),
                }
            }
            out
        }
        Encoding::Latin1 => text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect(),
        Encoding::Ucs2 => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
    }
}

/// Decodes received bytes; never fails (unmapped codes become U+FFFD).
pub fn decode(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Gsm7 => {
            let mut out = String::with_capacity(bytes.len());
            let mut escaped = false;
            for &b in bytes {
                let b = b & 0x7F;
                if !escaped && b == GSM7_ESCAPE {
                    escaped = true;
                    continue;
                }
                // An escape before a code the extension table lacks reads
                // as the basic character (GSM 03.38 §6.2.1.1).
                let c = if escaped { gsm7_char(b, true).or_else(|| gsm7_char(b, false)) } else { gsm7_char(b, false) };
                out.push(c.unwrap_or('\u{FFFD}'));
                escaped = false;
            }
            out
        }
        Encoding::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
        Encoding::Ucs2 => {
            let units: Vec<u16> =
                bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
            char::decode_utf16(units).map(|r| r.unwrap_or('\u{FFFD}')).collect()
        }
    }
}

/// How a route carries a text longer than one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitMode {
    /// A user data header with an 8-bit reference in each part.
    #[default]
    Udh,
    /// sar_msg_ref_num / sar_total_segments / sar_segment_seqnum TLVs.
    Sar,
    /// One submit_sm with the whole text in `message_payload`; the SMSC
    /// splits. Still charged per part.
    Payload,
}

/// Concatenation of one part: its message's reference, the number of parts,
/// its position (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    pub seq: u8,
}

/// One PDU's worth of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPart {
    /// The short_message field (UDH included when `udhi`).
    pub short_message: Vec<u8>,
    pub udhi: bool,
    pub sar: Option<Concat>,
    /// The whole text for `message_payload` (short_message is then empty).
    pub payload: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedMessage {
    /// The alphabet actually used (UCS-2 when the asked one cannot carry
    /// the text, as the charge assumed).
    pub encoding: Encoding,
    pub data_coding: u8,
    /// Parts charged (what `count_segments` says), whatever the split mode.
    pub charged_parts: u32,
    pub parts: Vec<EncodedPart>,
}

/// Encodes and splits `text` for one route. `reference` identifies this
/// message's parts (8 bits of it in UDH mode).
pub fn encode_message(
    text: &str,
    encoding: Encoding,
    map: &DataCodingMap,
    mode: SplitMode,
    reference: u16,
) -> Result<EncodedMessage, TextError> {
    let count = count_segments(text, encoding);
    let encoding = count.encoding;
    let data_coding = map.dcs_for(encoding);
    let chunks = split_parts(text, encoding);
    let total = chunks.len();
    if total <= 1 || mode == SplitMode::Payload {
        let bytes = encode(text, encoding);
        let part = if total > 1 || bytes.len() > 254 {
            EncodedPart { short_message: Vec::new(), udhi: false, sar: None, payload: Some(bytes) }
        } else {
            EncodedPart { short_message: bytes, udhi: false, sar: None, payload: None }
        };
        return Ok(EncodedMessage { encoding, data_coding, charged_parts: count.segments, parts: vec![part] });
    }
    let total_u8 = u8::try_from(total).map_err(|_| TextError::TooManyParts(total))?;
    let parts = chunks
        .iter()
        .zip(1u8..)
        .map(|(chunk, seq)| {
            let bytes = encode(chunk, encoding);
            let concat = Concat { reference, total: total_u8, seq };
            match mode {
                SplitMode::Sar => EncodedPart { short_message: bytes, udhi: false, sar: Some(concat), payload: None },
                _ => {
                    let [_, low] = reference.to_be_bytes();
                    let mut sm = vec![0x05, 0x00, 0x03, low, total_u8, seq];
                    sm.extend_from_slice(&bytes);
                    EncodedPart { short_message: sm, udhi: true, sar: None, payload: None }
                }
            }
        })
        .collect();
    Ok(EncodedMessage { encoding, data_coding, charged_parts: count.segments, parts })
}

fn octets(bytes: &[u8]) -> OctetString<0, 255> {
    OctetString::from_slice(bytes).unwrap_or_else(|_| OctetString::empty())
}

/// Puts one encoded part into a submit_sm (data_coding, short_message,
/// UDHI flag, SAR or payload TLVs), keeping its other fields and TLVs.
pub fn apply_to_submit(part: &EncodedPart, data_coding: u8, sm: &mut SubmitSm) {
    sm.data_coding = DataCoding::from(data_coding);
    sm.set_short_message(octets(&part.short_message));
    if part.udhi {
        sm.esm_class = sm.esm_class.with_udhi_indicator();
    }
    if let Some(c) = part.sar {
        sm.push_tlv(MessageSubmissionRequestTlvValue::SarMsgRefNum(c.reference));
        sm.push_tlv(MessageSubmissionRequestTlvValue::SarTotalSegments(c.total));
        sm.push_tlv(MessageSubmissionRequestTlvValue::SarSegmentSeqnum(c.seq));
    }
    if let Some(p) = &part.payload {
        sm.push_tlv(MessageSubmissionRequestTlvValue::MessagePayload(MessagePayload::new(AnyOctetString::from_slice(
            p,
        ))));
    }
}

/// The same for a deliver_sm (MOs to a customer, the fake handset).
pub fn apply_to_deliver(part: &EncodedPart, data_coding: u8, sm: &mut DeliverSm) {
    sm.data_coding = DataCoding::from(data_coding);
    sm.set_short_message(octets(&part.short_message));
    if part.udhi {
        sm.esm_class = sm.esm_class.with_udhi_indicator();
    }
    if let Some(c) = part.sar {
        sm.push_tlv(MessageDeliveryRequestTlvValue::SarMsgRefNum(c.reference));
        sm.push_tlv(MessageDeliveryRequestTlvValue::SarTotalSegments(c.total));
        sm.push_tlv(MessageDeliveryRequestTlvValue::SarSegmentSeqnum(c.seq));
    }
    if let Some(p) = &part.payload {
        sm.push_tlv(MessageDeliveryRequestTlvValue::MessagePayload(MessagePayload::new(AnyOctetString::from_slice(p))));
    }
}

/// The content of one received submit_sm / deliver_sm, UDH removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPart {
    pub concat: Option<Concat>,
    pub data_coding: u8,
    pub content: Vec<u8>,
}

const UDHI: u8 = 0x40;

/// Reads the text fields of a PDU: `message_payload` wins over
/// short_message; concatenation from the UDH (8- or 16-bit reference) or the
/// SAR TLVs. A malformed UDH leaves the bytes as they are.
pub fn received_part(esm_class: EsmClass, data_coding: DataCoding, short_message: &[u8], tlvs: &[Tlv]) -> ReceivedPart {
    let data_coding = u8::from(data_coding);
    let mut sar = (None, None, None);
    let mut payload = None;
    for tlv in tlvs {
        match tlv.value() {
            Some(TlvValue::MessagePayload(p)) => payload = Some(p.value.as_ref().to_vec()),
            Some(TlvValue::SarMsgRefNum(r)) => sar.0 = Some(*r),
            Some(TlvValue::SarTotalSegments(t)) => sar.1 = Some(*t),
            Some(TlvValue::SarSegmentSeqnum(s)) => sar.2 = Some(*s),
            _ => {}
        }
    }
    let sar = match sar {
        (Some(reference), Some(total), Some(seq)) => Some(Concat { reference, total, seq }),
        _ => None,
    };
    if let Some(content) = payload {
        return ReceivedPart { concat: sar, data_coding, content };
    }
    if u8::from(esm_class) & UDHI != 0
        && let Some((concat, content)) = split_udh(short_message)
    {
        return ReceivedPart { concat: concat.or(sar), data_coding, content: content.to_vec() };
    }
    ReceivedPart { concat: sar, data_coding, content: short_message.to_vec() }
}

fn split_udh(sm: &[u8]) -> Option<(Option<Concat>, &[u8])> {
    let udhl = usize::from(*sm.first()?);
    let header = sm.get(1..1 + udhl)?;
    let rest = sm.get(1 + udhl..)?;
    let mut concat = None;
    let mut i = 0;
    while i + 2 <= header.len() {
        let (iei, len) = (header[i], usize::from(header[i + 1]));
        let data = header.get(i + 2..i + 2 + len)?;
        match (iei, data) {
            (0x00, [r, t, s]) => concat = Some(Concat { reference: u16::from(*r), total: *t, seq: *s }),
            (0x08, [r1, r2, t, s]) => {
                concat = Some(Concat { reference: u16::from_be_bytes([*r1, *r2]), total: *t, seq: *s })
            }
            _ => {}
        }
        i += 2 + len;
    }
    Some((concat, rest))
}

/// Collects the parts of long messages until each is whole. Bounded: past
/// `max_pending` incomplete messages the oldest is given up.
#[derive(Debug)]
pub struct Reassembler {
    max_pending: usize,
    pending: HashMap<(String, u16, u8), BTreeMap<u8, Vec<u8>>>,
    order: std::collections::VecDeque<(String, u16, u8)>,
}

impl Reassembler {
    pub fn new(max_pending: usize) -> Self {
        Self { max_pending: max_pending.max(1), pending: HashMap::new(), order: Default::default() }
    }

    /// Adds a part of the conversation `key` (e.g. source + destination).
    /// Returns the whole content once every part is in (at once for an
    /// unsplit message).
    pub fn push(&mut self, key: &str, part: ReceivedPart) -> Option<Vec<u8>> {
        let Some(concat) = part.concat.filter(|c| c.total > 1 && c.seq >= 1 && c.seq <= c.total) else {
            return Some(part.content);
        };
        let id = (key.to_owned(), concat.reference, concat.total);
        let entry = self.pending.entry(id.clone()).or_insert_with(|| {
            self.order.push_back(id.clone());
            BTreeMap::new()
        });
        entry.insert(concat.seq, part.content);
        if entry.len() == usize::from(concat.total) {
            let whole = self.pending.remove(&id).map(|m| m.into_values().flatten().collect());
            self.order.retain(|k| k != &id);
            return whole;
        }
        while self.pending.len() > self.max_pending {
            let Some(oldest) = self.order.pop_front() else { break };
            self.pending.remove(&oldest);
        }
        None
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_with_extension_round_trips() {
        let text = "Hello [€] {x} ~ ^ | \\ @£ Ñ";
        let bytes = encode(text, Encoding::Gsm7);
        assert_eq!(bytes.iter().filter(|&&b| b == 0x1B).count(), 9);
        assert_eq!(decode(&bytes, Encoding::Gsm7), text);
    }

    #[test]
    fn latin1_and_ucs2_round_trip() {
        assert_eq!(decode(&encode("café ÿ", Encoding::Latin1), Encoding::Latin1), "café ÿ");
        let text = "Привет 😀";
        let bytes = encode(text, Encoding::Ucs2);
        assert_eq!(bytes.len(), 2 * text.encode_utf16().count());
        assert_eq!(decode(&bytes, Encoding::Ucs2), text);
    }

    #[test]
    fn data_coding_map() {
        let map = DataCodingMap::default();
        assert_eq!(map.encoding_of(0), Encoding::Gsm7);
        assert_eq!(map.encoding_of(8), Encoding::Ucs2);
        assert_eq!(map.encoding_of(3), Encoding::Latin1);
        assert_eq!(map.encoding_of(0xF0), Encoding::Gsm7);
        assert_eq!(map.encoding_of(0x18), Encoding::Ucs2);
        let latin_default = DataCodingMap { gsm7: 1, default_alphabet: Encoding::Latin1, ..map };
        assert_eq!(latin_default.dcs_for(Encoding::Gsm7), 1);
        assert_eq!(latin_default.encoding_of(0), Encoding::Latin1);
        assert_eq!(latin_default.encoding_of(1), Encoding::Gsm7);
    }

    #[test]
    fn short_text_is_one_plain_part() {
        let m = encode_message("hi", Encoding::Gsm7, &DataCodingMap::default(), SplitMode::Udh, 7).unwrap();
        assert_eq!(m.parts.len(), 1);
        assert_eq!(m.charged_parts, 1);
        assert!(!m.parts[0].udhi);
        assert_eq!(m.parts[0].short_message, b"hi");
    }

    fn reassemble(m: &EncodedMessage) -> Vec<u8> {
        let mut r = Reassembler::new(10);
        let mut out = None;
        for p in m.parts.iter().rev() {
            let esm = if p.udhi { EsmClass::default().with_udhi_indicator() } else { EsmClass::default() };
            let mut sm = SubmitSm::default();
            apply_to_submit(p, m.data_coding, &mut sm);
            let part = received_part(esm, sm.data_coding, sm.short_message().as_ref(), sm.tlvs());
            out = r.push("a>b", part);
        }
        assert_eq!(r.pending(), 0);
        out.unwrap()
    }

    #[test]
    fn long_gsm7_splits_by_udh_and_reassembles() {
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(200));
        let m = encode_message(&text, Encoding::Gsm7, &DataCodingMap::default(), SplitMode::Udh, 0x1234).unwrap();
        assert_eq!(m.parts.len(), 3);
        assert_eq!(m.charged_parts, 3);
        assert_eq!(&m.parts[0].short_message[..6], &[5, 0, 3, 0x34, 3, 1]);
        assert!(m.parts.iter().all(|p| p.udhi && p.short_message.len() <= 6 + 153));
        assert_eq!(decode(&reassemble(&m), Encoding::Gsm7), text);
    }

    #[test]
    fn long_ucs2_splits_by_sar_and_reassembles() {
        let text = "Ж".repeat(150);
        let m = encode_message(&text, Encoding::Ucs2, &DataCodingMap::default(), SplitMode::Sar, 9).unwrap();
        assert_eq!(m.parts.len(), 3);
        assert_eq!(m.data_coding, 8);
        assert_eq!(m.parts[1].sar, Some(Concat { reference: 9, total: 3, seq: 2 }));
        assert_eq!(decode(&reassemble(&m), Encoding::Ucs2), text);
    }

    #[test]
    fn payload_mode_is_one_pdu_charged_per_part() {
        let text = "x".repeat(400);
        let m = encode_message(&text, Encoding::Gsm7, &DataCodingMap::default(), SplitMode::Payload, 1).unwrap();
        assert_eq!(m.parts.len(), 1);
        assert_eq!(m.charged_parts, 3);
        assert!(m.parts[0].short_message.is_empty());
        assert_eq!(decode(&reassemble(&m), Encoding::Gsm7), text);
    }

    #[test]
    fn text_gsm7_cannot_carry_goes_ucs2() {
        let m = encode_message("Ж", Encoding::Gsm7, &DataCodingMap::default(), SplitMode::Udh, 1).unwrap();
        assert_eq!(m.encoding, Encoding::Ucs2);
        assert_eq!(m.data_coding, 8);
    }

    #[test]
    fn sixteen_bit_udh_and_malformed_udh() {
        let sm = [6, 8, 4, 0x01, 0x02, 2, 1, b'h', b'i'];
        let p = received_part(EsmClass::default().with_udhi_indicator(), DataCoding::default(), &sm, &[]);
        assert_eq!(p.concat, Some(Concat { reference: 0x0102, total: 2, seq: 1 }));
        assert_eq!(p.content, b"hi");
        let bad = [9, 0, 3];
        let p = received_part(EsmClass::default().with_udhi_indicator(), DataCoding::default(), &bad, &[]);
        assert_eq!(p.content, bad);
    }

    #[test]
    fn reassembler_is_bounded() {
        let mut r = Reassembler::new(2);
        for reference in 0..5u16 {
            let part =
                ReceivedPart { concat: Some(Concat { reference, total: 2, seq: 1 }), data_coding: 0, content: vec![1] };
            assert!(r.push("k", part).is_none());
        }
        assert_eq!(r.pending(), 2);
    }
}
