//! smsfleet-query
