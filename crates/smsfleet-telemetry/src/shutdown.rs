//! The shutdown signal: a CancellationToken every part of a role watches, so on SIGTERM the
//! role stops fetching, finishes in-flight work, acks and flushes telemetry before exiting.
//!
//! That first stop can take seconds with a backlog (every batch in hand is finished), so a
//! second Ctrl-C or SIGTERM exits at once. Nothing answered OK is lost by it: accepted
//! messages are in JetStream, and work in hand that was not acked is redelivered at the next
//! start, as after a crash. Private servers of `smsfleet all` are then stopped cleanly by
//! their watchdogs (see `smsfleet-localinfra`).

use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled on Ctrl-C or SIGTERM; a second one exits the process
/// at once with status 130 (Ctrl-C) or 143 (SIGTERM).
///
/// Spawns a tokio task, so it must be called inside a runtime. If a signal handler cannot be
/// installed the token is cancelled immediately: a role that cannot be stopped cleanly should
/// not start.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let first = wait_for_signal().await;
        trigger.cancel();
        if first.is_none() {
            return;
        }
        tracing::info!("finishing the work in hand; Ctrl-C again stops at once (accepted messages are kept)");
        if let Some(signal) = wait_for_signal().await {
            tracing::warn!(?signal, "second signal: stopping at once; unacked work is redelivered at the next start");
            std::process::exit(signal.exit_status());
        }
    });
    token
}

/// The signal that asked us to stop.
#[derive(Debug, Clone, Copy)]
enum StopSignal {
    CtrlC,
    Terminate,
}

impl StopSignal {
    /// 128 + the signal number, as a shell reports a process killed by it.
    fn exit_status(self) -> i32 {
        match self {
            StopSignal::CtrlC => 130,
            StopSignal::Terminate => 143,
        }
    }
}

/// The next stop signal; `None` (at once) if no handler could be installed.
#[cfg(unix)]
async fn wait_for_signal() -> Option<StopSignal> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut sigterm = match signal(SignalKind::terminate()) {
        Ok(sigterm) => sigterm,
        Err(error) => {
            tracing::error!(%error, "cannot install the SIGTERM handler; shutting down");
            return None;
        }
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if let Err(error) = result {
                tracing::error!(%error, "cannot listen for Ctrl-C; shutting down");
                return None;
            }
            tracing::info!("Ctrl-C received, shutting down");
            Some(StopSignal::CtrlC)
        }
        _ = sigterm.recv() => {
            tracing::info!("SIGTERM received, shutting down");
            Some(StopSignal::Terminate)
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Option<StopSignal> {
    match tokio::signal::ctrl_c().await {
        Ok(()) => {
            tracing::info!("Ctrl-C received, shutting down");
            Some(StopSignal::CtrlC)
        }
        Err(error) => {
            tracing::error!(%error, "cannot listen for Ctrl-C; shutting down");
            None
        }
    }
}
