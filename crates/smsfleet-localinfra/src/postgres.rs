//! A private PostgreSQL server.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::{User, geteuid};
use tokio::process::Command;

use crate::process::{StartFailure, StopWith, Supervised, log_tail, open_log, start_with_port_retries, stop_stray};
use crate::{InfraError, find_pg_bin, io_err};

/// How long we give PostgreSQL (incl. crash recovery) to accept connections.
const PG_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Fast shutdown (SIGINT: abort sessions, checkpoint); SIGKILL after 15 s.
const PG_STOP: StopWith = StopWith { what: "postgres", signal: Signal::SIGINT, timeout: Duration::from_secs(15) };
/// Unix socket paths are limited to 108 bytes (incl. NUL); stay well below.
const MAX_SOCKET_PATH: usize = 100;

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

/// Where one cluster lives: its folder, data dir, socket dir and log.
#[derive(Clone, Copy)]
struct Paths<'a> {
    dir: &'a Path,
    pgdata: &'a Path,
    sock: &'a Path,
    log: &'a Path,
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

        stop_stray(&pgdata.join("postmaster.pid"), &pgdata, PG_STOP).await?;
        let log = dir.join("postgres.log");
        start_with_port_retries("postgres", opts.port, async |port| {
            let paths = Paths { dir: &dir, pgdata: &pgdata, sock: &sock, log: &log };
            Self::try_start(&postgres, pg_isready.as_deref(), paths, port, run_as.as_ref(), opts.fast).await
        })
        .await
    }

    async fn try_start(
        bin: &Path,
        pg_isready: Option<&Path>,
        paths: Paths<'_>,
        port: u16,
        run_as: Option<&RunAs>,
        fast: bool,
    ) -> Result<PostgresServer, StartFailure> {
        let Paths { dir, pgdata, sock, log } = paths;
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
            .stderr(err);
        if let Some(u) = run_as {
            cmd.uid(u.uid).gid(u.gid);
        }
        let process = Supervised::spawn(&mut cmd, port, dir, PG_STOP).map_err(StartFailure::Fatal)?;
        tracing::info!(port, dir = %dir.display(), "started postgres");
        let mut server = PostgresServer { process, superuser: "postgres".into() };
        server
            .process
            .wait_ready(log, PG_START_TIMEOUT, Duration::from_millis(100), async || pg_ready(pg_isready, port).await)
            .await?;
        Ok(server)
    }

    /// The postmaster's pid, which is also its process group id.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Connection URL for `database`, as the trust-authenticated superuser.
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
    use std::time::Instant;

    use super::*;

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
