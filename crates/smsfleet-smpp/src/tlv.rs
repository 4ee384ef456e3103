//! TLVs kept as they came: unknown tags are tolerated by the codec, and
//! vendor tags (0x1400–0x3FFF) are carried on (a customer's submit_sm to
//! the upstream's) byte for byte.

use rusmpp::{
    encode::{Encode, Length},
    tlvs::{MessageDeliveryRequestTlvValue, MessageSubmissionRequestTlvValue, Tlv, TlvTag},
    types::AnyOctetString,
};

/// The SMPP 3.4 vendor-specific range.
pub const VENDOR_TAGS: std::ops::RangeInclusive<u16> = 0x1400..=0x3FFF;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawTlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

impl RawTlv {
    pub fn from_tlv(tlv: &Tlv) -> Self {
        let value = match tlv.value() {
            Some(v) => {
                let mut buf = vec![0; v.length()];
                let n = v.encode(&mut buf);
                buf.truncate(n);
                buf
            }
            None => Vec::new(),
        };
        Self { tag: u16::from(tlv.tag()), value }
    }

    pub fn is_vendor(&self) -> bool {
        VENDOR_TAGS.contains(&self.tag)
    }

    pub fn to_submission(&self) -> MessageSubmissionRequestTlvValue {
        MessageSubmissionRequestTlvValue::Other {
            tag: TlvTag::from(self.tag),
            value: AnyOctetString::from_slice(&self.value),
        }
    }

    pub fn to_delivery(&self) -> MessageDeliveryRequestTlvValue {
        MessageDeliveryRequestTlvValue::Other {
            tag: TlvTag::from(self.tag),
            value: AnyOctetString::from_slice(&self.value),
        }
    }
}

/// The vendor TLVs of a PDU, in order, to pass on.
pub fn vendor_tlvs(tlvs: &[Tlv]) -> Vec<RawTlv> {
    tlvs.iter().filter(|t| VENDOR_TAGS.contains(&u16::from(t.tag()))).map(RawTlv::from_tlv).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, decode_all};
    use rusmpp::{Command, CommandStatus, Pdu, pdus::SubmitSm, tokio_codec::CommandCodec};
    use tokio_util::codec::Encoder;

    #[test]
    fn vendor_and_unknown_tlvs_survive_a_round_trip() {
        let mut sm = SubmitSm::default();
        let vendor = RawTlv { tag: 0x1403, value: b"carrier-x".to_vec() };
        let unknown = RawTlv { tag: 0x0777, value: vec![1, 2, 3] };
        sm.push_tlv(vendor.to_submission());
        sm.push_tlv(unknown.to_submission());
        let mut buf = bytes::BytesMut::new();
        CommandCodec::new().encode(Command::new(CommandStatus::EsmeRok, 1, sm), &mut buf).unwrap();
        let frames = decode_all(&buf, 4096);
        let Some(Frame::Pdu(cmd)) = frames.first() else { panic!("{frames:?}") };
        let Some(Pdu::SubmitSm(back)) = cmd.pdu() else { panic!() };
        assert_eq!(vendor_tlvs(back.tlvs()), vec![vendor]);
        assert_eq!(back.tlvs().iter().map(RawTlv::from_tlv).nth(1), Some(unknown));
    }
}
