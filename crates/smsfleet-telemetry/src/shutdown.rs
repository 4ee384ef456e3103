//! The shutdown signal: a CancellationToken every part of a role watches, so on SIGTERM the
//! role stops fetching, finishes in-flight work, acks and flushes telemetry before exiting.

use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled on Ctrl-C or SIGTERM.
///
/// Spawns a tokio task, so it must be called inside a runtime. If a signal handler cannot be
/// installed the token is cancelled immediately: a role that cannot be stopped cleanly should
/// not start.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};

    let mut sigterm = match signal(SignalKind::terminate()) {
        Ok(sigterm) => sigterm,
        Err(error) => {
            tracing::error!(%error, "cannot install the SIGTERM handler; shutting down");
            return;
        }
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if let Err(error) = result {
                tracing::error!(%error, "cannot listen for Ctrl-C; shutting down");
            } else {
                tracing::info!("Ctrl-C received, shutting down");
            }
        }
        _ = sigterm.recv() => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!("Ctrl-C received, shutting down"),
        Err(error) => tracing::error!(%error, "cannot listen for Ctrl-C; shutting down"),
    }
}
