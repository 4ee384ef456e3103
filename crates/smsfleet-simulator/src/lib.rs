//! smsfleet-simulator
