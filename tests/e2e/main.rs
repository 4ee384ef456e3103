//! End-to-end tests: the fleet as separate processes on a real nats-server
//! and a real PostgreSQL, driven through the playSMS HTTP API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account_cli;
mod admin;
mod admin_ops;
mod bench;
mod bulk;
mod fleet;
mod gateways;
mod incoming;
mod kannel;
mod phonebook;
mod read_your_writes;
mod smpp;
mod smpp_server;
mod spine;
mod transcripts;
