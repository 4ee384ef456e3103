//! smsfleet-ledger
