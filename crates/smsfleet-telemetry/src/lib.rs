//! smsfleet-telemetry
