//! submit_sm → the one accept path → submit_sm_resp. [`plan`] reads the
//! PDU's fields into a [`SendRequest`] (pure; the SMPP rules are here), the
//! acceptor does the rest, and [`answer`] renders its outcome as a command
//! status or the message_id: the `smslog_id` in decimal, the id `op=ds`
//! shows. The mapping is in COMPATIBILITY.md.

use std::sync::Arc;
use std::time::Duration;

use smsfleet_contract::{AccountState, Api};
use smsfleet_domain::account::SenderRule;
use smsfleet_domain::{Msisdn, SmsLogId, text};
use smsfleet_smpp::rusmpp::CommandStatus;
use time::OffsetDateTime;

use crate::accept::{Accepted, Checks, Fate, Refusal, SendRequest};

/// A submit_sm's fields as the planner needs them, text already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitFields {
    pub source_addr: String,
    pub destination_addr: String,
    pub registered_delivery: u8,
    /// Whether the customer sent UCS-2 (data_coding 8), kept as Unicode.
    pub unicode: bool,
    pub text: String,
    /// Already parsed from `schedule_delivery_time` / `validity_period`.
    pub schedule_at: Option<OffsetDateTime>,
    pub validity_until: Option<OffsetDateTime>,
}

/// What the planner needs besides the PDU.
#[derive(Debug, Clone)]
pub struct SubmitLimits {
    pub max_segments: u32,
    pub default_sender: String,
    /// Used when the customer asks for no validity, and the longest allowed.
    pub validity: Duration,
}

/// registered_delivery bits 1-0: 01 receipt on success or failure, 10 on
/// failure only; both are answered with the final receipt.
fn wants_receipt(registered_delivery: u8) -> bool {
    registered_delivery & 0x03 != 0
}

pub fn plan(
    account: Arc<AccountState>,
    f: SubmitFields,
    limits: &SubmitLimits,
    now: OffsetDateTime,
) -> Result<SendRequest, CommandStatus> {
    let destination = Msisdn::clean(&f.destination_addr).ok_or(CommandStatus::EsmeRinvdstadr)?;
    let source = f.source_addr.trim();
    let sender = if source.is_empty() {
        if account.sender.is_empty() { limits.default_sender.clone() } else { account.sender.clone() }
    } else if SenderRule::PLAYSMS.allows(source) {
        source.to_owned()
    } else {
        return Err(CommandStatus::EsmeRinvsrcadr);
    };
    if f.text.is_empty() {
        return Err(CommandStatus::EsmeRinvmsglen);
    }
    let encoding = text::detect(&f.text, f.unicode);
    let segments = text::count_segments(&f.text, encoding).segments;
    if segments > limits.max_segments {
        return Err(CommandStatus::EsmeRinvmsglen);
    }
    let schedule_at = f.schedule_at.filter(|at| *at > now);
    let from = schedule_at.unwrap_or(now);
    let validity = match f.validity_until {
        None => limits.validity,
        Some(until) if until <= from => return Err(CommandStatus::EsmeRinvexpiry),
        Some(until) => {
            let wanted = Duration::try_from(until - from).map_err(|_| CommandStatus::EsmeRinvexpiry)?;
            wanted.min(limits.validity)
        }
    };
    Ok(SendRequest {
        account,
        api: Api::Smpp,
        sender,
        text: f.text,
        footer: String::new(),
        encoding,
        segments,
        flash: false,
        msg_type: "smpp".to_owned(),
        destinations: vec![destination.as_str().to_owned()],
        schedule_at,
        validity,
        dlr_requested: wants_receipt(f.registered_delivery),
        // No store timeout: the publisher answers within its own deadline,
        // and an error then means "not stored", so the customer may resend.
        checks: Checks { do_not_disturb: true, templates: true, duplicates: false, store_timeout: None },
    })
}

/// The submit_sm_resp: the message_id, or why not.
pub fn answer(outcome: Result<Accepted, Refusal>) -> Result<SmsLogId, CommandStatus> {
    match outcome {
        Ok(accepted) => match accepted.fates.first() {
            Some(Fate::Accepted(id)) => Ok(*id),
            Some(Fate::StopListed | Fate::DoNotDisturb) => Err(CommandStatus::EsmeRinvdstadr),
            Some(Fate::Duplicate) | None => Err(CommandStatus::EsmeRsubmitfail),
        },
        Err(Refusal::NoCredit | Refusal::Template) => Err(CommandStatus::EsmeRsubmitfail),
        Err(Refusal::NotStored { .. } | Refusal::StoreTimeout) => Err(CommandStatus::EsmeRsyserr),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use smsfleet_domain::QueueCode;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-02 12:00 UTC);

    fn limits() -> SubmitLimits {
        SubmitLimits { max_segments: 10, default_sender: "smsfleet".into(), validity: Duration::from_secs(48 * 3600) }
    }

    fn fields(text: &str) -> SubmitFields {
        SubmitFields {
            source_addr: "ACME".into(),
            destination_addr: "+628111000001".into(),
            registered_delivery: 1,
            unicode: false,
            text: text.into(),
            schedule_at: None,
            validity_until: None,
        }
    }

    fn account() -> Arc<AccountState> {
        Arc::new(crate::test_fixtures::account())
    }

    #[test]
    fn a_plain_submit_becomes_one_destination_with_a_receipt() {
        let r = plan(account(), fields("hello"), &limits(), NOW).unwrap();
        assert_eq!(r.destinations, vec!["+628111000001"]);
        assert_eq!((r.sender.as_str(), r.segments, r.dlr_requested), ("ACME", 1, true));
        assert_eq!(r.api, Api::Smpp);
        assert_eq!(r.encoding, text::Encoding::Gsm7);
        let no_receipt = SubmitFields { registered_delivery: 0, ..fields("x") };
        assert!(!plan(account(), no_receipt, &limits(), NOW).unwrap().dlr_requested);
        let ucs2 = SubmitFields { unicode: true, ..fields("hello") };
        assert_eq!(plan(account(), ucs2, &limits(), NOW).unwrap().encoding, text::Encoding::Ucs2);
    }

    #[test]
    fn bad_addresses_and_lengths_get_their_statuses() {
        let bad_dst = SubmitFields { destination_addr: "abc".into(), ..fields("x") };
        assert_eq!(plan(account(), bad_dst, &limits(), NOW).err(), Some(CommandStatus::EsmeRinvdstadr));
        let bad_src = SubmitFields { source_addr: "a;b".into(), ..fields("x") };
        assert_eq!(plan(account(), bad_src, &limits(), NOW).err(), Some(CommandStatus::EsmeRinvsrcadr));
        assert_eq!(plan(account(), fields(""), &limits(), NOW).err(), Some(CommandStatus::EsmeRinvmsglen));
        let long = "x".repeat(153 * 10 + 1);
        assert_eq!(plan(account(), fields(&long), &limits(), NOW).err(), Some(CommandStatus::EsmeRinvmsglen));
        let no_src = SubmitFields { source_addr: String::new(), ..fields("x") };
        assert_eq!(plan(account(), no_src, &limits(), NOW).unwrap().sender, "smsfleet");
    }

    #[test]
    fn schedule_and_validity() {
        let later = NOW + time::Duration::hours(1);
        let f = SubmitFields {
            schedule_at: Some(later),
            validity_until: Some(later + time::Duration::minutes(30)),
            ..fields("x")
        };
        let r = plan(account(), f, &limits(), NOW).unwrap();
        assert_eq!(r.schedule_at, Some(later));
        assert_eq!(r.validity, Duration::from_secs(1800));
        let past = SubmitFields { validity_until: Some(NOW - time::Duration::minutes(1)), ..fields("x") };
        assert_eq!(plan(account(), past, &limits(), NOW).err(), Some(CommandStatus::EsmeRinvexpiry));
        let far = SubmitFields { validity_until: Some(NOW + time::Duration::days(30)), ..fields("x") };
        assert_eq!(plan(account(), far, &limits(), NOW).unwrap().validity, limits().validity);
        let passed = SubmitFields { schedule_at: Some(NOW - time::Duration::minutes(1)), ..fields("x") };
        assert_eq!(plan(account(), passed, &limits(), NOW).unwrap().schedule_at, None);
    }

    #[test]
    fn outcomes_in_command_statuses() {
        let queue = QueueCode::from_bytes([1; 16]);
        let accepted = |fate| Ok(Accepted { queue: queue.clone(), fates: vec![fate] });
        assert_eq!(answer(accepted(Fate::Accepted(SmsLogId(42)))), Ok(SmsLogId(42)));
        assert_eq!(answer(accepted(Fate::StopListed)), Err(CommandStatus::EsmeRinvdstadr));
        assert_eq!(answer(accepted(Fate::DoNotDisturb)), Err(CommandStatus::EsmeRinvdstadr));
        assert_eq!(answer(Err(Refusal::NoCredit)), Err(CommandStatus::EsmeRsubmitfail));
        assert_eq!(answer(Err(Refusal::Template)), Err(CommandStatus::EsmeRsubmitfail));
        assert_eq!(answer(Err(Refusal::NotStored { queue })), Err(CommandStatus::EsmeRsyserr));
        assert_eq!(answer(Err(Refusal::StoreTimeout)), Err(CommandStatus::EsmeRsyserr));
    }
}
