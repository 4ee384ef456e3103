//! Runs a role's loops together: if one fails or ends before shutdown, the
//! role stops all of them and reports it, so the process restarts instead
//! of limping on with half its work undone.

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::BusError;

#[derive(Debug, thiserror::Error)]
pub enum LoopFailure {
    #[error("{task}: {source}")]
    Bus { task: &'static str, source: BusError },
    /// A loop ended although nobody asked it to, e.g. the NATS connection
    /// was closed for good.
    #[error("{0} stopped unexpectedly")]
    Stopped(&'static str),
    #[error("a task panicked: {0}")]
    Panicked(String),
}

/// Waits for every task; on the first failure marks the role not ready and
/// cancels `stop` so the others finish. Returns the first failure.
pub async fn supervise(
    mut tasks: JoinSet<(&'static str, Result<(), BusError>)>,
    stop: &CancellationToken,
    ready: &smsfleet_telemetry::ReadyFlag,
) -> Result<(), LoopFailure> {
    let mut outcome = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let failure = match joined {
            Ok((_, Ok(()))) if stop.is_cancelled() => None,
            Ok((task, Ok(()))) => Some(LoopFailure::Stopped(task)),
            Ok((task, Err(source))) => Some(LoopFailure::Bus { task, source }),
            Err(e) => Some(LoopFailure::Panicked(e.to_string())),
        };
        if let Some(e) = failure {
            tracing::error!(error = %e, "loop failed; stopping the role");
            ready.set(false);
            stop.cancel();
            if outcome.is_ok() {
                outcome = Err(e);
            }
        }
    }
    ready.set(false);
    outcome
}
