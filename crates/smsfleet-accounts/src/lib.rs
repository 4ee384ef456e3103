//! smsfleet-accounts
