//! Worker-id leases for snowflake `smslog_id`s.
//!
//! Each ingress replica needs a worker id no other live replica holds. A
//! lease is a message on `<ns>.lease.worker.<n>` in a stream whose messages
//! expire after 30 s. Taking one publishes with "expected last subject
//! sequence 0", which the server refuses while another replica's lease is
//! alive; the holder renews every 10 s with the sequence it last wrote. This
//! works on nats-server 2.9, which lacks a usable KV API for async-nats.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::{Bus, BusError};

const RENEW_EVERY: Duration = Duration::from_secs(10);

pub struct WorkerLease {
    pub worker_id: u16,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl WorkerLease {
    /// Takes the first free worker id, starting at a random one so that
    /// replicas starting together rarely collide on the first try.
    pub async fn acquire(bus: &Bus) -> Result<WorkerLease, BusError> {
        let start: u16 = rand::random::<u16>() % 1024;
        for i in 0..1024u16 {
            let id = (start + i) % 1024;
            if let Ok(p) = bus.publish_expecting(bus.ns.lease_subject(id), 0).await {
                let lost = Arc::new(AtomicBool::new(false));
                let renewer = tokio::spawn(renew(bus.clone(), id, p.sequence, lost.clone()));
                tracing::info!(worker_id = id, "worker-id lease taken");
                return Ok(WorkerLease { worker_id: id, lost, renewer });
            }
        }
        Err(BusError::NoWorkerId)
    }

    /// True once a renewal failed: the id may now belong to someone else.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Drop for WorkerLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

async fn renew(bus: Bus, id: u16, mut last_sequence: u64, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let mut renewed = false;
        // A NATS blip should not cost the lease: retry until shortly before
        // it would expire.
        for _ in 0..8 {
            match bus.publish_expecting(bus.ns.lease_subject(id), last_sequence).await {
                Ok(p) => {
                    last_sequence = p.sequence;
                    renewed = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(worker_id = id, error = %e, "lease renewal failed, retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        if !renewed {
            tracing::error!(worker_id = id, "worker-id lease lost");
            lost.store(true, Ordering::Relaxed);
            return;
        }
    }
}
