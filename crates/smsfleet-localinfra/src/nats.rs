//! A private nats-server with JetStream.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::process::Command;

use crate::process::{StartFailure, StopWith, Supervised, open_log, start_with_port_retries, stop_stray};
use crate::{InfraError, find_nats_server, io_err};

/// How long we give nats-server to accept TCP connections.
const NATS_START_TIMEOUT: Duration = Duration::from_secs(20);
/// SIGTERM lets JetStream flush; SIGKILL after 10 s.
const NATS_STOP: StopWith = StopWith { what: "nats-server", signal: Signal::SIGTERM, timeout: Duration::from_secs(10) };
/// Where the server writes its pid, so a later start finds it after a crash.
const PID_FILE: &str = "nats.pid";

/// A private nats-server with JetStream, stopped on `stop()` or killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    process: Supervised,
}

impl NatsServer {
    /// Starts nats-server with JetStream storing under `<dir>/jetstream`
    /// (reused across runs) and logging to `<dir>/nats.log`, on a free port.
    pub async fn start(dir: &Path) -> Result<NatsServer, InfraError> {
        Self::start_with(dir, None).await
    }

    /// As [`NatsServer::start`], on `port`: a server restarted on the same
    /// port is found again by clients that reconnect (tests of outages).
    pub async fn start_on(dir: &Path, port: u16) -> Result<NatsServer, InfraError> {
        Self::start_with(dir, Some(port)).await
    }

    /// One member of a local JetStream cluster (the chaos suite's): server
    /// `name` on `port`, its cluster listener on `cluster_port`, routes to
    /// the other members' cluster ports. Ready when it accepts clients;
    /// JetStream is usable once the cluster has elected its meta leader.
    pub async fn start_clustered(
        dir: &Path,
        port: u16,
        name: &str,
        cluster_port: u16,
        routes: &[u16],
    ) -> Result<NatsServer, InfraError> {
        let routes: Vec<String> = routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
        let cluster = vec![
            "--name".to_owned(),
            name.to_owned(),
            "--cluster_name".to_owned(),
            "smsfleet".to_owned(),
            "--cluster".to_owned(),
            format!("nats://127.0.0.1:{cluster_port}"),
            "--routes".to_owned(),
            routes.join(","),
        ];
        Self::start_args(dir, Some(port), &cluster).await
    }

    async fn start_with(dir: &Path, port: Option<u16>) -> Result<NatsServer, InfraError> {
        Self::start_args(dir, port, &[]).await
    }

    async fn start_args(dir: &Path, port: Option<u16>, extra: &[String]) -> Result<NatsServer, InfraError> {
        let bin = find_nats_server()?;
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let dir = dir.canonicalize().map_err(io_err(format!("resolving {}", dir.display())))?;
        let store = dir.join("jetstream");
        fs::create_dir_all(&store).map_err(io_err(format!("creating {}", store.display())))?;
        stop_stray(&dir.join(PID_FILE), &store, NATS_STOP).await?;
        let log = dir.join("nats.log");
        start_with_port_retries("nats-server", port, async |port| {
            Self::try_start(&bin, &dir, &store, &log, port, extra).await
        })
        .await
    }

    async fn try_start(
        bin: &Path,
        dir: &Path,
        store: &Path,
        log: &Path,
        port: u16,
        extra: &[String],
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
            .arg("-P")
            .arg(dir.join(PID_FILE))
            .args(extra)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let process = Supervised::spawn(&mut cmd, port, dir, NATS_STOP).map_err(StartFailure::Fatal)?;
        tracing::info!(port, dir = %dir.display(), "started nats-server");
        let mut server = NatsServer { process };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        server
            .process
            .wait_ready(log, NATS_START_TIMEOUT, Duration::from_millis(50), async || {
                tokio::net::TcpStream::connect(addr).await.is_ok()
            })
            .await?;
        Ok(server)
    }

    /// The server's pid, which is also its process group id.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Client URL for async-nats.
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
        let pid_file = self.process.dir.join(PID_FILE);
        self.process.stop().await?;
        // Left behind, it would read as a crash at the next start.
        let _ = fs::remove_file(pid_file);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};

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
}
