//! smsfleet-dispatcher
