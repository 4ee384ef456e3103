//! Read-your-writes: a read waits for the projection to catch up with the
//! streams its answer depends on.
//!
//! The ingress answers OK once a submission or an incoming message is in
//! JetStream, and playSMS's clients read right after that OK (`ds` by the
//! queue just returned, `ix` after `pv` to `@user`). So before a read is
//! answered, the streams' last sequences are taken and the answer waits
//! until the `projection` durable's ack floor (kept by the server across
//! every query replica) has reached them. The wait is bounded: a projection
//! far behind (a backlog, Postgres down) gets an answer from what is there,
//! counted in `smsfleet_query_read_barrier_total{outcome="behind"}`.

use std::time::Duration;

use smsfleet_bus::{Bus, Progress};
use smsfleet_contract::StreamKind;
use tokio::time::Instant;

use crate::DURABLE;

/// `ds` answers from submissions and their statuses.
pub(crate) const OUTGOING: &[StreamKind] = &[StreamKind::Submit, StreamKind::Status];
/// `in`, `ix` and `sx` answer from routed incoming messages.
pub(crate) const INCOMING: &[StreamKind] = &[StreamKind::Incoming];

#[derive(Clone)]
pub(crate) struct ReadBarrier {
    bus: Bus,
    timeout: Duration,
}

impl ReadBarrier {
    pub(crate) fn new(bus: Bus, timeout: Duration) -> Self {
        Self { bus, timeout }
    }

    /// Returns once the projection has applied everything `streams` held
    /// when the call began, or after the timeout. Never fails: a bus error
    /// is logged and the read goes on with what the projection has.
    pub(crate) async fn wait(&self, read: &'static str, streams: &[StreamKind]) {
        let deadline = Instant::now() + self.timeout;
        let outcome = match self.wait_all(streams, deadline).await {
            Ok(Progress::Through) => "through",
            Ok(Progress::Behind) => {
                tracing::warn!(read, timeout = ?self.timeout, "projection behind; answering with what it has");
                "behind"
            }
            Err(e) => {
                tracing::warn!(read, error = %e, "cannot tell how far the projection is; answering with what it has");
                "error"
            }
        };
        metrics::counter!("smsfleet_query_read_barrier_total", "read" => read, "outcome" => outcome).increment(1);
    }

    async fn wait_all(&self, streams: &[StreamKind], deadline: Instant) -> Result<Progress, smsfleet_bus::BusError> {
        // Every mark is taken before any wait, so the answer covers all that
        // was accepted before the request arrived.
        let mut marks = Vec::with_capacity(streams.len());
        for &stream in streams {
            marks.push((stream, self.bus.stream_last_sequence(stream).await?));
        }
        for (stream, sequence) in marks {
            if self.bus.wait_consumer_through(stream, DURABLE, sequence, deadline).await? == Progress::Behind {
                return Ok(Progress::Behind);
            }
        }
        Ok(Progress::Through)
    }
}
