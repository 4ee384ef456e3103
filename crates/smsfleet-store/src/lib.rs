//! smsfleet-store
