//! End-to-end tests that run the fleet as separate processes.
