//! smsfleet-testkit
