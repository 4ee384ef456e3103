//! smsfleet-localinfra: starts private, throw-away-or-persistent instances of
//! `nats-server` (with JetStream) and PostgreSQL for `smsfleet all` and the
//! test harness.
//!
//! Every server we start listens on 127.0.0.1 on a port of its own, keeps its
//! data under a directory the caller picks (so `smsfleet all` can reuse
//! `./.smsfleet/` between runs), and runs in its own process group so a
//! terminal Ctrl-C does not kill it before our ordered shutdown does.
//! PostgreSQL refuses to run as root, so when we are root we drop to the
//! `postgres` (or `nobody`) user for `initdb` and `postgres`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, User, geteuid};
use tokio::process::{Child, Command};

/// How long we give nats-server to accept TCP connections.
const NATS_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long we give nats-server to exit after SIGTERM before SIGKILL.
const NATS_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long we give PostgreSQL (incl. crash recovery) to accept connections.
const PG_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long we give PostgreSQL's fast shutdown before SIGKILL.
const PG_STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Retries when a port picked by `free_port` was grabbed by someone else
/// between picking it and the server binding it.
const PORT_RETRIES: usize = 3;
/// Unix socket paths are limited to 108 bytes (incl. NUL); stay well below.
const MAX_SOCKET_PATH: usize = 100;

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

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> InfraError {
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

// ---------------------------------------------------------------------------
// Shared process helpers
// ---------------------------------------------------------------------------

/// Opens a server log in append mode so history survives restarts.
fn open_log(path: &Path) -> Result<(File, File), InfraError> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    let f2 = f.try_clone().map_err(io_err(format!("cloning {}", path.display())))?;
    Ok((f, f2))
}

/// Last few KiB of a log, so errors show the server's own complaint.
fn log_tail(path: &Path) -> String {
    const TAIL: u64 = 3000;
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if f.seek(SeekFrom::Start(len.saturating_sub(TAIL))).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn child_pid(child: &Child) -> Option<Pid> {
    child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw)
}

/// Sends `sig` to the leader, waits up to `timeout`, then SIGKILLs the whole
/// process group (the leader's own children included).
async fn graceful_stop(mut child: Child, sig: Signal, timeout: Duration, what: &str) -> Result<(), InfraError> {
    let Some(pid) = child_pid(&child) else {
        // Already reaped.
        return Ok(());
    };
    if let Err(e) = kill(pid, sig)
        && e != nix::errno::Errno::ESRCH
    {
        return Err(InfraError::Sys { context: format!("signalling {what}"), source: e });
    }
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(res) => {
            res.map_err(io_err(format!("waiting for {what}")))?;
        }
        Err(_) => {
            tracing::warn!(%what, ?timeout, "server did not stop in time; killing it");
            let _ = killpg(pid, Signal::SIGKILL);
            child.wait().await.map_err(io_err(format!("waiting for killed {what}")))?;
        }
    }
    Ok(())
}

/// Best-effort kill from `Drop`, so a panicking test never leaks a server.
fn kill_on_drop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        if let Some(pid) = child_pid(child) {
            let _ = killpg(pid, Signal::SIGKILL);
        }
        let _ = child.start_kill();
    }
}

enum StartFailure {
    /// Retryable when we picked the port ourselves (it may have been stolen).
    Exited(InfraError),
    Fatal(InfraError),
}

// ---------------------------------------------------------------------------
// A supervised server process
// ---------------------------------------------------------------------------

/// What both servers share: the child, where it listens and keeps its data,
/// and how it is stopped (gracefully by `stop`, killed on drop).
#[derive(Debug)]
struct Supervised {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    what: &'static str,
    stop_signal: Signal,
    stop_timeout: Duration,
}

impl Supervised {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// `Some(error)` if the process has already exited during start-up.
    fn exited_early(&mut self, log: &Path) -> Option<InfraError> {
        let status = match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => status,
            _ => return None,
        };
        self.child = None;
        Some(InfraError::ExitedEarly { what: self.what, status, log: log.to_path_buf(), tail: log_tail(log) })
    }

    async fn stop(mut self) -> Result<(), InfraError> {
        match self.child.take() {
            Some(child) => graceful_stop(child, self.stop_signal, self.stop_timeout, self.what).await,
            None => Ok(()),
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_on_drop(child);
        }
    }
}

// ---------------------------------------------------------------------------
// NATS
// ---------------------------------------------------------------------------

/// A private nats-server with JetStream, stopped on `stop()` or killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    process: Supervised,
}

impl NatsServer {
    /// Starts nats-server with JetStream storing under `<dir>/jetstream`
    /// (reused across runs) and logging to `<dir>/nats.log`.
    pub async fn start(dir: &Path) -> Result<NatsServer, InfraError> {
        let bin = find_nats_server()?;
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let dir = dir.canonicalize().map_err(io_err(format!("resolving {}", dir.display())))?;
        let store = dir.join("jetstream");
        fs::create_dir_all(&store).map_err(io_err(format!("creating {}", store.display())))?;
        let log = dir.join("nats.log");

        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port().map_err(io_err("picking a free port"))?;
            match Self::try_start(&bin, &dir, &store, &log, port).await {
                Ok(s) => return Ok(s),
                Err(StartFailure::Exited(e)) if attempt < PORT_RETRIES => {
                    tracing::warn!(error = %e, "nats-server exited during startup; retrying on another port");
                }
                Err(StartFailure::Exited(e) | StartFailure::Fatal(e)) => return Err(e),
            }
        }
    }

    async fn try_start(
        bin: &Path,
        dir: &Path,
        store: &Path,
        log: &Path,
        port: u16,
    ) -> Result<NatsServer, StartFailure> {
        let (out, err) = open_log(log).map_err(StartFailure::Fatal)?;
        let mut cmd = Command::new(bin);
        cmd.arg("-a")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(port.to_string())
            .arg("-js")
            .arg("-sd")
            .arg(store)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(io_err(format!("spawning {}", bin.display()))).map_err(StartFailure::Fatal)?;
        tracing::info!(port, dir = %dir.display(), "started nats-server");
        let mut server = NatsServer {
            process: Supervised {
                child: Some(child),
                port,
                dir: dir.to_path_buf(),
                what: "nats-server",
                stop_signal: Signal::SIGTERM,
                stop_timeout: NATS_STOP_TIMEOUT,
            },
        };

        let deadline = Instant::now() + NATS_START_TIMEOUT;
        loop {
            if let Some(e) = server.process.exited_early(log) {
                return Err(StartFailure::Exited(e));
            }
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                // Dropping `server` kills the process.
                return Err(StartFailure::Fatal(InfraError::StartTimeout {
                    what: "nats-server",
                    timeout: NATS_START_TIMEOUT,
                    log: log.to_path_buf(),
                    tail: log_tail(log),
                }));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Client URL for async-nats.
    /// The server's pid, which is also its process group id.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.process.port)
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// The directory holding the JetStream store and log.
    pub fn dir(&self) -> &Path {
        &self.process.dir
    }

    /// Graceful shutdown (SIGTERM) so JetStream flushes; SIGKILL after 10 s.
    pub async fn stop(self) -> Result<(), InfraError> {
        self.process.stop().await
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

/// Knobs for [`PostgresServer::start`].
#[derive(Debug, Default, Clone)]
pub struct PostgresOptions {
    /// Turns off fsync, synchronous_commit and full_page_writes: much faster,
    /// but an OS crash can corrupt the cluster, so for tests only.
    pub fast: bool,
    /// Fixed port; `None` picks a free one.
    pub port: Option<u16>,
}

/// The identity the PostgreSQL processes run as (only set when we are root).
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

/// A private PostgreSQL server, stopped on `stop()` or killed on drop.
#[derive(Debug)]
pub struct PostgresServer {
    process: Supervised,
    superuser: String,
}

impl PostgresServer {
    /// Initialises `<dir>/pgdata` unless it already holds a cluster, then
    /// starts postgres on 127.0.0.1 and waits until it accepts connections.
    pub async fn start(dir: &Path, opts: PostgresOptions) -> Result<PostgresServer, InfraError> {
        let initdb = find_pg_bin("initdb")?;
        let postgres = find_pg_bin("postgres")?;
        let pg_isready = find_pg_bin("pg_isready").ok();

        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let dir = dir.canonicalize().map_err(io_err(format!("resolving {}", dir.display())))?;
        let run_as = unprivileged_user()?;
        let pgdata = dir.join("pgdata");
        let sock = dir.join("sock");
        prepare_dirs(&dir, &[&pgdata, &sock], run_as.as_ref())?;

        if !pgdata.join("PG_VERSION").exists() {
            run_initdb(&initdb, &dir, &pgdata, run_as.as_ref(), opts.fast).await?;
        } else {
            tracing::debug!(pgdata = %pgdata.display(), "reusing existing PostgreSQL cluster");
        }

        let log = dir.join("postgres.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = match opts.port {
                Some(p) => p,
                None => free_port().map_err(io_err("picking a free port"))?,
            };
            let res = Self::try_start(
                &postgres,
                pg_isready.as_deref(),
                &dir,
                &pgdata,
                &sock,
                &log,
                port,
                run_as.as_ref(),
                opts.fast,
            )
            .await;
            match res {
                Ok(s) => return Ok(s),
                Err(StartFailure::Exited(e)) if opts.port.is_none() && attempt < PORT_RETRIES => {
                    tracing::warn!(error = %e, "postgres exited during startup; retrying on another port");
                }
                Err(StartFailure::Exited(e) | StartFailure::Fatal(e)) => return Err(e),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_start(
        bin: &Path,
        pg_isready: Option<&Path>,
        dir: &Path,
        pgdata: &Path,
        sock: &Path,
        log: &Path,
        port: u16,
        run_as: Option<&RunAs>,
        fast: bool,
    ) -> Result<PostgresServer, StartFailure> {
        let (out, err) = open_log(log).map_err(StartFailure::Fatal)?;
        // A too-long socket path makes postgres refuse to start; TCP is all we
        // need, so fall back to no Unix socket at all.
        let sock_file = sock.join(format!(".s.PGSQL.{port}"));
        let sock_arg = if sock_file.as_os_str().len() <= MAX_SOCKET_PATH {
            sock.as_os_str().to_owned()
        } else {
            tracing::warn!(path = %sock.display(), "socket path too long; disabling Unix socket");
            std::ffi::OsString::new()
        };
        let mut cmd = Command::new(bin);
        cmd.arg("-D").arg(pgdata).arg("-p").arg(port.to_string()).arg("-h").arg("127.0.0.1").arg("-k").arg(sock_arg);
        if fast {
            for setting in ["fsync=off", "synchronous_commit=off", "full_page_writes=off"] {
                cmd.arg("-c").arg(setting);
            }
        }
        cmd.current_dir(pgdata)
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        if let Some(u) = run_as {
            cmd.uid(u.uid).gid(u.gid);
        }
        let child = cmd.spawn().map_err(io_err(format!("spawning {}", bin.display()))).map_err(StartFailure::Fatal)?;
        tracing::info!(port, dir = %dir.display(), "started postgres");
        let mut server = PostgresServer {
            process: Supervised {
                child: Some(child),
                port,
                dir: dir.to_path_buf(),
                what: "postgres",
                stop_signal: Signal::SIGINT,
                stop_timeout: PG_STOP_TIMEOUT,
            },
            superuser: "postgres".into(),
        };

        let deadline = Instant::now() + PG_START_TIMEOUT;
        loop {
            if let Some(e) = server.process.exited_early(log) {
                return Err(StartFailure::Exited(e));
            }
            if pg_ready(pg_isready, port).await {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(StartFailure::Fatal(InfraError::StartTimeout {
                    what: "postgres",
                    timeout: PG_START_TIMEOUT,
                    log: log.to_path_buf(),
                    tail: log_tail(log),
                }));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Connection URL for `database`, as the trust-authenticated superuser.
    /// The postmaster's pid, which is also its process group id.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://{}@127.0.0.1:{}/{}", self.superuser, self.process.port, database)
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// The directory holding `pgdata`, the socket dir and the log.
    pub fn dir(&self) -> &Path {
        &self.process.dir
    }

    /// Fast shutdown (SIGINT: abort sessions, checkpoint); SIGKILL after 15 s.
    pub async fn stop(self) -> Result<(), InfraError> {
        self.process.stop().await
    }
}

/// PostgreSQL refuses to run as root, so pick who to run it as instead.
fn unprivileged_user() -> Result<Option<RunAs>, InfraError> {
    if !geteuid().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        let user = User::from_name(name)
            .map_err(|source| InfraError::Sys { context: format!("looking up user {name}"), source })?;
        if let Some(u) = user {
            return Ok(Some(RunAs { name: name.into(), uid: u.uid.as_raw(), gid: u.gid.as_raw() }));
        }
    }
    Err(InfraError::NoUnprivilegedUser)
}

/// Creates the PostgreSQL-owned dirs (0700 as postgres demands) and, when we
/// drop privileges, hands them over and makes sure the user can reach them.
fn prepare_dirs(dir: &Path, owned: &[&Path], run_as: Option<&RunAs>) -> Result<(), InfraError> {
    for d in owned {
        fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
        fs::set_permissions(d, fs::Permissions::from_mode(0o700)).map_err(io_err(format!("chmod {}", d.display())))?;
        if let Some(u) = run_as {
            std::os::unix::fs::chown(d, Some(u.uid), Some(u.gid)).map_err(io_err(format!("chown {}", d.display())))?;
        }
    }
    let Some(u) = run_as else {
        return Ok(());
    };
    // `dir` is ours (e.g. a 0700 TempDir): add search permission only, so the
    // unprivileged user can reach pgdata without listing our other files.
    let meta = fs::metadata(dir).map_err(io_err(format!("stat {}", dir.display())))?;
    let mode = meta.permissions().mode() & 0o7777;
    if !traversable(&meta, u) {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o011))
            .map_err(io_err(format!("chmod {}", dir.display())))?;
    }
    // Ancestors belong to someone else; we do not loosen them, just explain.
    for anc in dir.ancestors().skip(1) {
        let meta = fs::metadata(anc).map_err(io_err(format!("stat {}", anc.display())))?;
        if !traversable(&meta, u) {
            return Err(InfraError::NotTraversable { path: anc.to_path_buf(), user: u.name.clone() });
        }
    }
    Ok(())
}

fn traversable(meta: &fs::Metadata, u: &RunAs) -> bool {
    let mode = meta.mode();
    if meta.uid() == u.uid {
        mode & 0o100 != 0
    } else if meta.gid() == u.gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

async fn run_initdb(
    initdb: &Path,
    dir: &Path,
    pgdata: &Path,
    run_as: Option<&RunAs>,
    fast: bool,
) -> Result<(), InfraError> {
    let log = dir.join("initdb.log");
    let (out, err) = open_log(&log)?;
    let mut cmd = Command::new(initdb);
    cmd.arg("-D").arg(pgdata).arg("-U").arg("postgres").arg("--auth=trust").arg("-E").arg("UTF8").arg("--no-locale");
    if fast {
        cmd.arg("--no-sync");
    }
    cmd.current_dir(pgdata).env_remove("PGDATA").stdin(Stdio::null()).stdout(out).stderr(err);
    if let Some(u) = run_as {
        cmd.uid(u.uid).gid(u.gid);
    }
    tracing::info!(pgdata = %pgdata.display(), "running initdb");
    let status = cmd.status().await.map_err(io_err(format!("running {}", initdb.display())))?;
    if !status.success() {
        return Err(InfraError::Initdb { status, tail: log_tail(&log), log });
    }
    Ok(())
}

/// Readiness probe: `pg_isready` knows "starting up" from "accepting";
/// without it, a TCP connect plus a grace period is the best we can do.
async fn pg_ready(pg_isready: Option<&Path>, port: u16) -> bool {
    match pg_isready {
        Some(bin) => Command::new(bin)
            .args(["-q", "-h", "127.0.0.1", "-t", "2", "-d", "postgres", "-U"])
            .arg("postgres")
            .arg("-p")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map(|s| s.success())
            .unwrap_or(false),
        None => {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(500)).await;
                true
            } else {
                false
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }

    #[tokio::test]
    async fn nats_starts_with_jetstream_and_stops() {
        let tmp = tempfile::tempdir().unwrap();
        let nats = NatsServer::start(tmp.path()).await.unwrap();
        assert_ne!(nats.port(), 4222);
        assert_eq!(nats.url(), format!("nats://127.0.0.1:{}", nats.port()));

        let stream = tokio::net::TcpStream::connect(("127.0.0.1", nats.port())).await.unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.unwrap();
        assert!(line.starts_with("INFO {"), "{line}");
        assert!(line.contains("\"jetstream\":true"), "{line}");

        nats.stop().await.unwrap();
        assert!(tmp.path().join("jetstream").is_dir());
        assert!(tmp.path().join("nats.log").is_file());
    }

    fn psql(port: u16, sql: &str) -> String {
        let out = std::process::Command::new("psql")
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
            .arg("-p")
            .arg(port.to_string())
            .arg("-c")
            .arg(sql)
            .output()
            .unwrap();
        assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[tokio::test]
    async fn postgres_starts_persists_and_restarts() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = PostgresOptions { fast: true, port: None };

        let pg = PostgresServer::start(tmp.path(), opts.clone()).await.unwrap();
        assert_ne!(pg.port(), 5432);
        assert_eq!(pg.url("smsfleet"), format!("postgres://postgres@127.0.0.1:{}/smsfleet", pg.port()));
        assert_eq!(psql(pg.port(), "select 1"), "1");
        psql(pg.port(), "create table persisted (v int); insert into persisted values (42)");
        pg.stop().await.unwrap();

        if geteuid().is_root() {
            // PostgreSQL refuses root, so the cluster must belong to someone else.
            assert_ne!(fs::metadata(tmp.path().join("pgdata")).unwrap().uid(), 0);
        }
        let initdb_log = tmp.path().join("initdb.log");
        let initdb_len = fs::metadata(&initdb_log).unwrap().len();

        let pg = PostgresServer::start(tmp.path(), opts).await.unwrap();
        assert_eq!(psql(pg.port(), "select v from persisted"), "42");
        pg.stop().await.unwrap();
        // initdb was skipped the second time.
        assert_eq!(fs::metadata(&initdb_log).unwrap().len(), initdb_len);
    }

    #[tokio::test]
    async fn drop_kills_postgres() {
        let tmp = tempfile::tempdir().unwrap();
        let pg = PostgresServer::start(tmp.path(), PostgresOptions { fast: true, port: None }).await.unwrap();
        let port = pg.port();
        drop(pg);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            assert!(Instant::now() < deadline, "postgres still listening");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
