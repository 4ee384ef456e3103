//! smsfleet-contract
