//! smsfleet-localinfra: starts private, throw-away-or-persistent instances of
//! `nats-server` (with JetStream) and PostgreSQL for `smsfleet all` and the
//! test harness.
//!
//! Every server we start listens on 127.0.0.1 on a port of its own, keeps its
//! data under a directory the caller picks (so `smsfleet all` can reuse
//! `./.smsfleet/` between runs), runs in its own process group so a
//! terminal Ctrl-C does not kill it before our ordered shutdown does, and
//! is stopped by a watchdog if we die without stopping it; a start recovers
//! a folder a crash left behind (see `process`). PostgreSQL refuses to run
//! as root, so when we are root we drop to the `postgres` (or `nobody`)
//! user for `initdb` and `postgres`.

mod nats;
mod postgres;
mod process;

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

pub use nats::NatsServer;
pub use postgres::{PostgresOptions, PostgresServer};

/// Retries when a port picked by `free_port` was grabbed by someone else
/// between picking it and the server binding it.
const PORT_RETRIES: usize = 3;

/// Everything that can go wrong while starting or stopping local servers.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// A required binary is missing; `hint` says what to install.
    #[error("{what} not found; install it (e.g. `{hint}`)")]
    NotFound { what: String, hint: String },
    /// A filesystem or process-spawn operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Sending a signal or looking up a user failed.
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
    /// `initdb` exited unsuccessfully.
    #[error("initdb failed ({status}); see {log}:\n{tail}")]
    Initdb { status: ExitStatus, log: PathBuf, tail: String },
    /// The server process exited before it became ready.
    #[error("{what} exited during startup ({status}); see {log}:\n{tail}")]
    ExitedEarly { what: &'static str, status: ExitStatus, log: PathBuf, tail: String },
    /// The server did not become ready in time (it has been killed).
    #[error("{what} not ready after {timeout:?}; see {log}:\n{tail}")]
    StartTimeout { what: &'static str, timeout: Duration, log: PathBuf, tail: String },
    /// Running as root, the unprivileged PostgreSQL user cannot reach `path`.
    #[error(
        "PostgreSQL runs as user `{user}`, which cannot traverse {path}; \
         use a data dir outside it or `chmod o+x` it"
    )]
    NotTraversable { path: PathBuf, user: String },
    /// Running as root and neither `postgres` nor `nobody` exists.
    #[error("running as root but no unprivileged user (`postgres` or `nobody`) exists to run PostgreSQL")]
    NoUnprivilegedUser,
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> InfraError {
    let context = context.into();
    move |source| InfraError::Io { context, source }
}

/// Picks a currently free TCP port on 127.0.0.1 so parallel tests and the
/// system-wide servers on 4222/5432 never collide with ours.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

// ---------------------------------------------------------------------------
// Binary discovery
// ---------------------------------------------------------------------------

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Finds `nats-server`; Debian puts it in /usr/sbin, which is often not on a
/// normal user's PATH. `SMSFLEET_NATS_SERVER` overrides the search.
pub fn find_nats_server() -> Result<PathBuf, InfraError> {
    if let Some(p) = std::env::var_os("SMSFLEET_NATS_SERVER") {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return Ok(p);
        }
    }
    which("nats-server")
        .or_else(|| {
            ["/usr/sbin/nats-server", "/usr/local/bin/nats-server"].iter().map(PathBuf::from).find(|p| is_executable(p))
        })
        .ok_or_else(|| InfraError::NotFound { what: "nats-server".into(), hint: "apt-get install nats-server".into() })
}

/// Finds a PostgreSQL server binary (`initdb`, `postgres`, `pg_isready`);
/// Debian keeps them in /usr/lib/postgresql/<N>/bin, off the PATH.
/// `SMSFLEET_PG_BIN_DIR` overrides the search.
pub fn find_pg_bin(name: &str) -> Result<PathBuf, InfraError> {
    if let Some(dir) = std::env::var_os("SMSFLEET_PG_BIN_DIR") {
        let p = PathBuf::from(dir).join(name);
        if is_executable(&p) {
            return Ok(p);
        }
    }
    which(name).or_else(|| highest_versioned_pg_bin(name)).ok_or_else(|| InfraError::NotFound {
        what: format!("PostgreSQL's `{name}`"),
        hint: "apt-get install postgresql".into(),
    })
}

fn highest_versioned_pg_bin(name: &str) -> Option<PathBuf> {
    let entries = fs::read_dir("/usr/lib/postgresql").ok()?;
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let p = e.path().join("bin").join(name);
            is_executable(&p).then_some((v, p))
        })
        .collect();
    versions.sort_by_key(|(v, _)| *v);
    versions.pop().map(|(_, p)| p)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }
}
