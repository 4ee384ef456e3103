//! smsfleet-ingress
