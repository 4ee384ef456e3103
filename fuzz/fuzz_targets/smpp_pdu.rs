//! Arbitrary bytes from a peer: framing and decoding must never panic, and
//! whatever decodes must survive what the session and the receipt path do
//! with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsfleet_smpp::{
    frame::{Frame, decode_all},
    receipt,
    rusmpp::Pdu,
    text::{self, DataCodingMap},
    time as smpp_time,
};

fuzz_target!(|data: &[u8]| {
    for frame in decode_all(data, 4096) {
        let Frame::Pdu(command) = frame else { continue };
        match command.pdu() {
            Some(Pdu::DeliverSm(sm)) => {
                let _ = receipt::from_deliver_sm(sm, &DataCodingMap::default());
                let part = text::received_part(sm.esm_class, sm.data_coding, sm.short_message().as_ref(), sm.tlvs());
                let mut r = text::Reassembler::new(4);
                if let Some(bytes) = r.push("k", part) {
                    let _ = text::decode(&bytes, text::Encoding::Ucs2);
                }
            }
            Some(Pdu::SubmitSm(sm)) => {
                let _ = smpp_time::parse(sm.validity_period.as_str());
                let _ = smpp_time::parse(sm.schedule_delivery_time.as_str());
                let _ = smsfleet_smpp::tlv::vendor_tlvs(sm.tlvs());
            }
            _ => {}
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = receipt::parse_text(s);
        let _ = smpp_time::parse(s);
    }
    let _ = text::decode(data, text::Encoding::Gsm7);
});
