//! What every role is started with. Each role library exposes
//! `run(ctx: RoleContext, config: <Role>Config)`; `smsfleet <role>` and
//! `smsfleet all` build the context (connections, the server key, the
//! role's listener, its readiness flag and the shutdown token) and call it
//! the same way, so a role is wired once.
//!
//! Not every role needs every resource (the simulator has no bus, the
//! ingress no database), so they are taken out with accessors that name
//! what is missing instead of being passed positionally.

use smsfleet_bus::Bus;
use smsfleet_secrets::Secrets;
use smsfleet_store::PgPool;
pub use smsfleet_telemetry::ReadyFlag;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A role asked for a resource its starter did not provide: a wiring bug
/// in the binary or a test, reported at start-up.
#[derive(Debug, thiserror::Error)]
#[error("the {role} role needs {what}, which its starter did not provide")]
pub struct MissingResource {
    pub role: &'static str,
    pub what: &'static str,
}

pub struct RoleContext {
    role: &'static str,
    bus: Option<Bus>,
    pool: Option<PgPool>,
    secrets: Option<Secrets>,
    listener: Option<TcpListener>,
    /// Turned on once the role serves, off when it stops (`/readyz`).
    pub ready: ReadyFlag,
    /// Cancelled on Ctrl-C, SIGTERM, or when a sibling role fails.
    pub shutdown: CancellationToken,
}

impl RoleContext {
    pub fn new(role: &'static str, ready: ReadyFlag, shutdown: CancellationToken) -> Self {
        Self { role, bus: None, pool: None, secrets: None, listener: None, ready, shutdown }
    }

    pub fn with_bus(self, bus: Bus) -> Self {
        Self { bus: Some(bus), ..self }
    }

    pub fn with_pool(self, pool: PgPool) -> Self {
        Self { pool: Some(pool), ..self }
    }

    pub fn with_secrets(self, secrets: Secrets) -> Self {
        Self { secrets: Some(secrets), ..self }
    }

    /// The socket a role that serves HTTP accepts on (bound by the starter,
    /// so tests can bind port 0 and learn the address first).
    pub fn with_listener(self, listener: TcpListener) -> Self {
        Self { listener: Some(listener), ..self }
    }

    pub fn role(&self) -> &'static str {
        self.role
    }

    pub fn bus(&self) -> Result<Bus, MissingResource> {
        self.bus.clone().ok_or_else(|| self.missing("the bus (NATS)"))
    }

    pub fn pool(&self) -> Result<PgPool, MissingResource> {
        self.pool.clone().ok_or_else(|| self.missing("a database pool (PostgreSQL)"))
    }

    pub fn secrets(&self) -> Result<Secrets, MissingResource> {
        self.secrets.clone().ok_or_else(|| self.missing("the server key"))
    }

    pub fn take_listener(&mut self) -> Result<TcpListener, MissingResource> {
        self.listener.take().ok_or_else(|| self.missing("a listener"))
    }

    fn missing(&self, what: &'static str) -> MissingResource {
        MissingResource { role: self.role, what }
    }
}
