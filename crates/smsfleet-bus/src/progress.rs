//! How far a durable consumer has got through its stream, as the server
//! sees it: the basis of read-your-writes in the roles that answer reads
//! from what their workers project.
//!
//! A worker acks a message only after its effects are durable, so the
//! durable's ack floor (every message up to it acked or terminated, by
//! whichever replica pulled it) is a watermark of work done that holds
//! across replicas, unlike any one process's memory.

use std::time::Duration;

use smsfleet_contract::StreamKind;
use tokio::time::Instant;

use crate::{Bus, BusError};

/// First pause between two looks at the consumer; doubled up to
/// [`MAX_POLL`], so a read right after a write waits about one projection
/// batch and a lagging projection is not flooded with info requests.
const FIRST_POLL: Duration = Duration::from_millis(2);
const MAX_POLL: Duration = Duration::from_millis(25);

/// What [`Bus::wait_consumer_through`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Everything up to the sequence is done.
    Through,
    /// The deadline passed first.
    Behind,
}

impl Bus {
    /// The sequence of the last message `stream` holds now (0 when it never
    /// held one).
    pub async fn stream_last_sequence(&self, stream: StreamKind) -> Result<u64, BusError> {
        let handle = self.stream_handle(stream).await?;
        Ok(handle.cached_info().state.last_sequence)
    }

    /// Whether the durable `durable` on `stream` is done with every message
    /// up to `sequence`: its ack floor reached it, or nothing is pending or
    /// unacked at all (the floor of a filtered consumer need not move past
    /// messages it never had to deliver).
    pub async fn consumer_through(&self, stream: StreamKind, durable: &str, sequence: u64) -> Result<bool, BusError> {
        let name = self.ns.stream_name(stream);
        let handle =
            self.js.get_stream_no_info(&name).await.map_err(|e| BusError::Consume(format!("stream {name}: {e}")))?;
        let info = handle
            .consumer_info(durable)
            .await
            .map_err(|e| BusError::Consume(format!("consumer {name}/{durable}: {e}")))?;
        Ok(info.ack_floor.stream_sequence >= sequence || (info.num_pending == 0 && info.num_ack_pending == 0))
    }

    /// Waits until [`Bus::consumer_through`] holds or `deadline` passes.
    pub async fn wait_consumer_through(
        &self,
        stream: StreamKind,
        durable: &str,
        sequence: u64,
        deadline: Instant,
    ) -> Result<Progress, BusError> {
        let mut pause = FIRST_POLL;
        loop {
            if self.consumer_through(stream, durable, sequence).await? {
                return Ok(Progress::Through);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Progress::Behind);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}
