//! Process-wide observability and lifecycle plumbing shared by every smsfleet role.
//!
//! Each role's `run` starts by calling [`install_crypto_provider`] and [`init`], serves
//! [`serve_admin`] on its admin port so Prometheus and the orchestrator can see it, carries
//! W3C trace context across NATS with [`inject_current`] / [`set_parent_from`], and stops on
//! [`shutdown_on_signal`]. Keeping all of it here means every role logs, exports and shuts down
//! the same way.

mod admin;
mod init;
mod prom;
mod propagation;
mod serve;
mod shutdown;

pub use admin::{Readiness, ReadyFlag, admin_router, serve_admin};
pub use init::{TelemetryError, TelemetryGuard, init};
pub use prom::prometheus_handle;
pub use propagation::{current_traceparent, inject_current, set_parent_from, set_parent_from_traceparent};
pub use serve::{HttpLimits, serve};
pub use shutdown::shutdown_on_signal;

/// Installs the aws-lc-rs rustls provider as the process default.
///
/// async-nats and reqwest build rustls configs with `ClientConfig::builder()`, which panics
/// when no process-level provider is installed and the dependency tree cannot pick one on its
/// own. Installing it first thing in `main` removes that trap. Idempotent: a second call (or a
/// provider installed by someone else) is fine, because all that matters is that one exists.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is exactly the state we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
