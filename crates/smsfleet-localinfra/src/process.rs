//! What both servers share: logs, the supervised child, the one "wait until
//! ready" loop, stopping, and making sure a server never outlives us.
//!
//! A server must not outlive the process that started it, even one killed
//! with SIGKILL (issue 12.2). `PR_SET_PDEATHSIG` would need `unsafe` in a
//! `pre_exec` hook, which the workspace forbids, so every server gets a
//! watchdog instead: a tiny `sh` in a process group of its own that polls
//! our pid and, once we are gone, stops the server the way `stop` does
//! (its stop signal, then SIGKILL to its group). A start also stops what a
//! crash left running on the same data folder ([`stop_stray`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::{InfraError, PORT_RETRIES, free_port, io_err};

/// How often the watchdog looks for our pid (and readiness is polled at
/// most this slowly).
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// Opens a server log in append mode so history survives restarts.
pub(crate) fn open_log(path: &Path) -> Result<(File, File), InfraError> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    let f2 = f.try_clone().map_err(io_err(format!("cloning {}", path.display())))?;
    Ok((f, f2))
}

/// Last few KiB of a log, so errors show the server's own complaint.
pub(crate) fn log_tail(path: &Path) -> String {
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

pub(crate) enum StartFailure {
    /// Retryable when we picked the port ourselves (it may have been stolen).
    Exited(InfraError),
    Fatal(InfraError),
}

/// Runs `attempt` on `fixed`, or on a free port retried a few times when
/// the server exits during start-up (the port may have been taken between
/// our pick and its bind).
pub(crate) async fn start_with_port_retries<T>(
    what: &str,
    fixed: Option<u16>,
    mut attempt: impl AsyncFnMut(u16) -> Result<T, StartFailure>,
) -> Result<T, InfraError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let port = match fixed {
            Some(p) => p,
            None => free_port().map_err(io_err("picking a free port"))?,
        };
        match attempt(port).await {
            Ok(s) => return Ok(s),
            Err(StartFailure::Exited(e)) if fixed.is_none() && attempts < PORT_RETRIES => {
                tracing::warn!(%what, error = %e, "server exited during startup; retrying on another port");
            }
            Err(StartFailure::Exited(e) | StartFailure::Fatal(e)) => return Err(e),
        }
    }
}

/// How a server is stopped: by `stop`, by its watchdog, or when a later
/// start finds it left over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StopWith {
    pub what: &'static str,
    pub signal: Signal,
    pub timeout: Duration,
}

/// The child, where it listens and keeps its data, and how it is stopped
/// (gracefully by `stop`, killed on drop, stopped by its watchdog if we die).
#[derive(Debug)]
pub(crate) struct Supervised {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    stop_with: StopWith,
}

impl Supervised {
    /// Spawns `cmd` in a process group of its own (a terminal Ctrl-C must
    /// not kill it before our ordered shutdown does) with its watchdog.
    pub fn spawn(cmd: &mut Command, port: u16, dir: &Path, stop_with: StopWith) -> Result<Supervised, InfraError> {
        let child = cmd.process_group(0).spawn().map_err(io_err(format!("spawning {}", stop_with.what)))?;
        let server = Supervised { child: Some(child), port, dir: dir.to_path_buf(), stop_with };
        if let Some(pid) = server.pid() {
            watch_parent(pid, stop_with)?;
        }
        Ok(server)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Polls `ready` until it answers true, the process exits, or
    /// `timeout` passes (then the process is killed with `self`).
    pub async fn wait_ready<F, Fut>(
        &mut self,
        log: &Path,
        timeout: Duration,
        every: Duration,
        mut ready: F,
    ) -> Result<(), StartFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let what = self.stop_with.what;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.exited_early(log) {
                return Err(StartFailure::Exited(e));
            }
            if ready().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tail = log_tail(log);
                return Err(StartFailure::Fatal(InfraError::StartTimeout { what, timeout, log: log.into(), tail }));
            }
            tokio::time::sleep(every.min(WATCH_EVERY)).await;
        }
    }

    /// `Some(error)` if the process has already exited during start-up.
    fn exited_early(&mut self, log: &Path) -> Option<InfraError> {
        let status = match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => status,
            _ => return None,
        };
        self.child = None;
        Some(InfraError::ExitedEarly { what: self.stop_with.what, status, log: log.to_path_buf(), tail: log_tail(log) })
    }

    /// Sends the stop signal to the leader, waits up to the stop timeout,
    /// then SIGKILLs the whole process group (the leader's children too).
    pub async fn stop(mut self) -> Result<(), InfraError> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let StopWith { what, signal, timeout } = self.stop_with;
        let Some(pid) = child_pid(&child) else {
            // Already reaped.
            return Ok(());
        };
        if let Err(e) = kill(pid, signal)
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
}

impl Drop for Supervised {
    /// Best-effort kill, so a panicking test never leaks a server.
    fn drop(&mut self) {
        let Some(child) = self.child.as_mut() else { return };
        if let Ok(None) = child.try_wait() {
            if let Some(pid) = child_pid(child) {
                let _ = killpg(pid, Signal::SIGKILL);
            }
            let _ = child.start_kill();
        }
    }
}

/// Starts the watchdog of `server`: once our pid is gone it stops the
/// server as [`Supervised::stop`] would; it ends by itself when the server
/// does. Dropping its handle is fine: tokio reaps it when it exits.
fn watch_parent(server: u32, stop_with: StopWith) -> Result<(), InfraError> {
    const SCRIPT: &str = r#"
        parent=$1 server=$2 signal=$3 ticks=$4
        while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.5; done
        kill -0 "$server" 2>/dev/null || exit 0
        kill -"$signal" "$server" 2>/dev/null
        i=0
        while kill -0 "$server" 2>/dev/null && [ "$i" -lt "$ticks" ]; do sleep 0.5; i=$((i + 1)); done
        kill -KILL -"$server" 2>/dev/null
        exit 0
    "#;
    let ticks = stop_with.timeout.as_millis() / WATCH_EVERY.as_millis();
    Command::new("sh")
        .args(["-c", SCRIPT, "smsfleet-watchdog"])
        .arg(std::process::id().to_string())
        .arg(server.to_string())
        .arg(stop_with.signal.as_str().trim_start_matches("SIG"))
        .arg(ticks.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(io_err(format!("starting the watchdog of {}", stop_with.what)))?;
    Ok(())
}

/// True while `pid` runs; a zombie waiting to be reaped does not count.
fn running(pid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, state)| !state.starts_with('Z')),
        // No procfs (not Linux): ask the kernel, zombies included.
        Err(_) => kill(pid, None).is_ok(),
    }
}

/// Whether `pid`'s command line names `data` (the server's data folder).
fn serves(pid: Pid, data: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let data = data.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == data)
}

/// Recovers a data folder a crash left behind: if `pid_file` names a
/// server still running on `data`, stops it as `stop` would; a pid file
/// naming a process that is gone is stale and removed. A live process that
/// does not serve `data` is left alone (the server's own lock check then
/// explains why it cannot start).
pub(crate) async fn stop_stray(pid_file: &Path, data: &Path, stop_with: StopWith) -> Result<(), InfraError> {
    let Ok(text) = std::fs::read_to_string(pid_file) else { return Ok(()) };
    let pid = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()).filter(|p| *p > 0).map(Pid::from_raw);
    let Some(pid) = pid.filter(|p| running(*p)) else { return remove_stale(pid_file, stop_with.what) };
    if !serves(pid, data) {
        return Ok(());
    }
    let StopWith { what, signal, timeout } = stop_with;
    tracing::warn!(%what, %pid, data = %data.display(), "a server of this folder is still running, left by a crash; stopping it");
    let _ = kill(pid, signal);
    if !wait_gone(pid, timeout).await {
        tracing::warn!(%what, %pid, "left-over server did not stop in time; killing it");
        let _ = killpg(pid, Signal::SIGKILL);
        wait_gone(pid, Duration::from_secs(5)).await;
    }
    // A server killed outright leaves its pid file behind.
    if pid_file.exists() && !running(pid) {
        remove_stale(pid_file, what)?;
    }
    Ok(())
}

/// Waits up to `timeout` for `pid` to end; true if it did.
async fn wait_gone(pid: Pid, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while running(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

fn remove_stale(pid_file: &Path, what: &str) -> Result<(), InfraError> {
    tracing::warn!(%what, file = %pid_file.display(), "removing a stale pid file left by a crash");
    match std::fs::remove_file(pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(InfraError::Io { context: format!("removing {}", pid_file.display()), source: e })
        }
        _ => Ok(()),
    }
}
