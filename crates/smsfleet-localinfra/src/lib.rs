//! smsfleet-localinfra
