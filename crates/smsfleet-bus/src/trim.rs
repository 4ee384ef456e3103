//! Cleanup of the fan-out streams (SUBMIT, STATUS, INCOMING: retention
//! `AckedByAll` in the topology). The server keeps them by age alone
//! (limits retention), and this purges what every durable consumer of the
//! stream has acked, so they stay as small as interest retention kept them
//! without its loss on a 2.9 server's graceful restart (issue 14.1).
//!
//! Safe to run in any number of replicas: a durable's ack floor only moves
//! forward, and purging below the lowest floor twice purges nothing more.
//! A stream without consumers is left alone.

use std::time::Duration;

use futures_util::StreamExt;
use smsfleet_contract::{Retention, StreamKind};
use tokio_util::sync::CancellationToken;

use crate::{Bus, BusError};

/// How often [`run_trimmer`] trims.
pub const TRIM_EVERY: Duration = Duration::from_secs(30);

impl Bus {
    /// Purges the messages of `stream` every durable consumer on it has
    /// acked; returns how many.
    pub async fn trim_acknowledged(&self, stream: StreamKind) -> Result<u64, BusError> {
        let handle = self.stream_handle(stream).await?;
        let name = self.ns.stream_name(stream);
        let fail = |e: &dyn std::fmt::Display| BusError::Consume(format!("trimming {name}: {e}"));
        let mut consumers = handle.consumers();
        let mut floor: Option<u64> = None;
        while let Some(info) = consumers.next().await {
            let info = info.map_err(|e| fail(&e))?;
            let acked = info.ack_floor.stream_sequence;
            floor = Some(floor.map_or(acked, |f| f.min(acked)));
        }
        let Some(floor) = floor.filter(|f| *f > 0 && *f >= handle.cached_info().state.first_sequence) else {
            return Ok(0);
        };
        // Purges every message below the given sequence.
        let purged = handle.purge().sequence(floor + 1).await.map_err(|e| fail(&e))?.purged;
        if purged > 0 {
            metrics::counter!("smsfleet_bus_trimmed_total", "stream" => name.clone()).increment(purged);
        }
        Ok(purged)
    }
}

/// Trims every fan-out stream of the topology every [`TRIM_EVERY`] until
/// `shutdown`; a failed round is logged and tried again next time.
pub async fn run_trimmer(bus: Bus, shutdown: CancellationToken) {
    let streams: Vec<StreamKind> =
        bus.topology().streams.iter().filter(|s| s.retention == Retention::AckedByAll).map(|s| s.kind).collect();
    loop {
        for &stream in &streams {
            if let Err(e) = bus.trim_acknowledged(stream).await {
                tracing::warn!(error = %e, "stream not trimmed; trying again later");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(TRIM_EVERY) => {}
        }
    }
}
