//! smsfleet-scheduler
