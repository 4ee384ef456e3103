//! smsfleet-playsms
