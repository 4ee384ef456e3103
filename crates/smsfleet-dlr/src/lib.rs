//! smsfleet-dlr
