//! Between PDUs and our types, through the session layer's helpers (text
//! coding, SMPP times, the receipt format): the fields of a customer's
//! submit_sm, and the deliver_sm a receipt or an MO becomes.

use smsfleet_contract::{DeliveryStatus, SmppDeliver, SmppDeliverBody};
use smsfleet_smpp::receipt::{Receipt, ReceiptState, to_deliver_sm};
use smsfleet_smpp::rusmpp::CommandStatus;
use smsfleet_smpp::rusmpp::pdus::{DeliverSm, SubmitSm};
use smsfleet_smpp::rusmpp::values::{EsmClass, MessageState};
use smsfleet_smpp::text::{self, DataCodingMap, Encoding, SplitMode};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::submit::SubmitFields;

/// data_coding 8: the customer sent UCS-2.
const DCS_UCS2: u8 = 8;

/// A submit_sm read: its fields, and its content as one part (UDH
/// removed; `message_payload` wins over short_message) with the
/// concatenation it declares, if any.
pub struct ReadSubmit {
    pub fields: SubmitFields,
    pub part: text::ReceivedPart,
}

/// The text of `content` sent with `data_coding`, and whether it is UCS-2.
pub fn decode(content: &[u8], data_coding: u8) -> (String, bool) {
    let encoding = DataCodingMap::default().encoding_of(data_coding);
    (text::decode(content, encoding), encoding == Encoding::Ucs2 || data_coding == DCS_UCS2)
}

/// Reads a submit_sm; `fields.text` is this part's text.
pub fn read_submit(sm: &SubmitSm, now: OffsetDateTime) -> Result<ReadSubmit, CommandStatus> {
    let part = text::received_part(sm.esm_class, sm.data_coding, sm.short_message().as_ref(), sm.tlvs());
    let (text, unicode) = decode(&part.content, part.data_coding);
    let when = |raw: &str, bad: CommandStatus| match smsfleet_smpp::time::parse(raw) {
        Ok(t) => Ok(t.map(|t| t.resolve(now))),
        Err(_) => Err(bad),
    };
    let fields = SubmitFields {
        source_addr: sm.source_addr.as_str().to_owned(),
        destination_addr: sm.destination_addr.as_str().to_owned(),
        registered_delivery: u8::from(sm.registered_delivery),
        unicode,
        text,
        schedule_at: when(sm.schedule_delivery_time.as_str(), CommandStatus::EsmeRinvsched)?,
        validity_until: when(sm.validity_period.as_str(), CommandStatus::EsmeRinvexpiry)?,
    };
    Ok(ReadSubmit { fields, part })
}

/// The SMPP state of a message as `ds` has it.
pub fn message_state(status: DeliveryStatus) -> MessageState {
    match status {
        DeliveryStatus::Pending | DeliveryStatus::Sent => MessageState::Enroute,
        DeliveryStatus::Delivered => MessageState::Delivered,
        DeliveryStatus::Failed => MessageState::Undeliverable,
    }
}

fn utc(ms: i64) -> Option<PrimitiveDateTime> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let t = t.to_offset(UtcOffset::UTC);
    Some(PrimitiveDateTime::new(t.date(), t.time()))
}

/// The deliver_sm for one mailbox message: a receipt (esm_class 0x04,
/// standard text whose `id:` is the submit_sm_resp message_id, with the
/// `receipted_message_id` and `message_state` TLVs), or an MO.
pub fn deliver_sm(d: &SmppDeliver) -> DeliverSm {
    match &d.body {
        SmppDeliverBody::Receipt { smslog_id, status, submitted_at_ms, done_at_ms, text_start } => {
            let delivered = *status == DeliveryStatus::Delivered;
            let receipt = Receipt {
                id: smslog_id.to_string(),
                submitted: Some(1),
                delivered: Some(u32::from(delivered)),
                submit_date: utc(*submitted_at_ms),
                done_date: utc(*done_at_ms),
                state: if delivered { ReceiptState::Delivered } else { ReceiptState::Undeliverable },
                error: None,
                text: Some(text_start.clone()),
            };
            to_deliver_sm(&receipt, &d.source_addr, &d.destination_addr)
        }
        SmppDeliverBody::Mo { text: body } => {
            let map = DataCodingMap::default();
            let encoding = smsfleet_domain::text::detect(body, false);
            let mut sm = DeliverSm::builder()
                .source_addr(super::cstring(&d.source_addr))
                .destination_addr(super::cstring(&d.destination_addr))
                // Default message type: an MO, not a receipt (the builder's
                // default esm_class is not 0).
                .esm_class(EsmClass::from(0x00))
                .build();
            // One PDU whatever the length: a long MO goes in message_payload.
            if let Ok(encoded) = text::encode_message(body, encoding, &map, SplitMode::Payload, 0)
                && let Some(part) = encoded.parts.first()
            {
                text::apply_to_deliver(part, encoded.data_coding, &mut sm);
            }
            sm
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use smsfleet_smpp::rusmpp::tlvs::TlvValue;

    use super::*;

    fn receipt(status: DeliveryStatus) -> SmppDeliver {
        SmppDeliver {
            v: 1,
            uid: 2,
            key: "receipt:42".into(),
            source_addr: "628111000001".into(),
            destination_addr: "ACME".into(),
            created_at_ms: 0,
            body: SmppDeliverBody::Receipt {
                smslog_id: 4_200_000_000_123,
                status,
                submitted_at_ms: 1_764_676_800_000,
                done_at_ms: 1_764_676_860_000,
                text_start: "hello there, this is longer than twenty".into(),
            },
        }
    }

    #[test]
    fn a_receipt_carries_the_resp_id_in_text_and_tlvs() {
        let sm = deliver_sm(&receipt(DeliveryStatus::Delivered));
        assert_eq!(u8::from(sm.esm_class), 0x04);
        let text = String::from_utf8(sm.short_message().as_ref().to_vec()).unwrap();
        assert!(
            text.starts_with("id:4200000000123 sub:001 dlvrd:001 submit date:2512021200 done date:2512021201"),
            "{text}"
        );
        assert!(text.ends_with("stat:DELIVRD err:000 text:hello there, this is"), "{text}");
        let id = sm.tlvs().iter().find_map(|t| match t.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => Some(id.as_str().to_owned()),
            _ => None,
        });
        assert_eq!(id.as_deref(), Some("4200000000123"));
        let failed = deliver_sm(&receipt(DeliveryStatus::Failed));
        let text = String::from_utf8(failed.short_message().as_ref().to_vec()).unwrap();
        assert!(text.contains("dlvrd:000") && text.contains("stat:UNDELIV"), "{text}");
        assert!(
            failed
                .tlvs()
                .iter()
                .any(|t| matches!(t.value(), Some(TlvValue::MessageState(MessageState::Undeliverable))))
        );
    }

    #[test]
    fn states_for_query_sm() {
        assert_eq!(message_state(DeliveryStatus::Pending), MessageState::Enroute);
        assert_eq!(message_state(DeliveryStatus::Delivered), MessageState::Delivered);
        assert_eq!(message_state(DeliveryStatus::Failed), MessageState::Undeliverable);
    }
}
