//! smsfleet-bus
