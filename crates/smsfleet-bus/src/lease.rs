//! Worker-id leases for snowflake `smslog_id`s.
//!
//! Each ingress replica needs a worker id no other live replica holds. A
//! lease is a message on `<ns>.lease.worker.<n>` in a stream whose messages
//! expire after 30 s. Taking one publishes with "expected last subject
//! sequence 0", which the server refuses while another replica's lease is
//! alive; the holder renews every 10 s with the sequence it last wrote. This
//! works on nats-server 2.9, which lacks a usable KV API for async-nats.
//!
//! A lease can still be lost, e.g. in a NATS outage longer than its life.
//! Ids are then refused from the moment the server could hand the id to
//! someone else (less a margin), however long a publish hangs, and the lease
//! is taken again: the same id if it is still ours or free, another one if
//! not. The replica keeps running; only requests that need ids fail
//! meanwhile (issue 14.3).

use std::time::Duration;

use smsfleet_contract::StreamKind;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{Bus, BusError};

const RENEW_EVERY: Duration = Duration::from_secs(10);
/// Pause between attempts while a renewal fails or no lease is held.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Ids stop this long before the server could expire the lease, for a
/// difference in clock rates and the time an acknowledgement travels.
const SAFETY_MARGIN: Duration = Duration::from_secs(5);
/// A refused take comes back at once; a slower failure means the server is
/// not answering, and scanning the other 1,023 ids would only take longer.
const REFUSAL_IS_FAST: Duration = Duration::from_secs(1);

/// A lease as the id generator sees it.
#[derive(Debug, Clone, Copy)]
struct Held {
    worker_id: u16,
    /// Ids may be issued with `worker_id` until this instant.
    usable_until: Instant,
}

/// A lease as its keeper sees it: also the sequence to renew against.
#[derive(Debug, Clone, Copy)]
struct Taken {
    held: Held,
    sequence: u64,
}

/// The worker id this replica may issue ids with right now; cheap to clone
/// into every request handler.
#[derive(Debug, Clone)]
pub struct WorkerIds(watch::Receiver<Option<Held>>);

impl WorkerIds {
    /// `None` while no lease is held: ids must not be issued then. Checks
    /// the lease's life itself, so a keeper stuck in a publish cannot
    /// leave an expired id in use.
    pub fn current(&self) -> Option<u16> {
        let held = *self.0.borrow();
        held.filter(|h| Instant::now() < h.usable_until).map(|h| h.worker_id)
    }
}

/// Holds a worker id for as long as it lives, renewing and re-taking it.
pub struct WorkerLease {
    ids: WorkerIds,
    keeper: tokio::task::JoinHandle<()>,
}

impl WorkerLease {
    /// Takes the first free worker id, starting at a random one so that
    /// replicas starting together rarely collide on the first try.
    pub async fn acquire(bus: &Bus) -> Result<WorkerLease, BusError> {
        let life = lease_life(bus);
        let taken = take_any(bus, None, life).await.ok_or(BusError::NoWorkerId)?;
        tracing::info!(worker_id = taken.held.worker_id, "worker-id lease taken");
        let (tx, rx) = watch::channel(Some(taken.held));
        let keeper = tokio::spawn(keep(bus.clone(), taken, tx, life));
        Ok(WorkerLease { ids: WorkerIds(rx), keeper })
    }

    /// The worker id held now, if any.
    pub fn worker_id(&self) -> Option<u16> {
        self.ids.current()
    }

    /// A handle that follows the lease as it is renewed or re-taken.
    pub fn ids(&self) -> WorkerIds {
        self.ids.clone()
    }
}

impl Drop for WorkerLease {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// How long a lease message lives on the server.
fn lease_life(bus: &Bus) -> Duration {
    let secs = bus.topology().stream(StreamKind::Lease).map(|s| s.max_age_secs).unwrap_or(30);
    Duration::from_secs(secs)
}

/// Publishes a lease on `worker_id` if its last sequence is `expected`.
async fn take(bus: &Bus, worker_id: u16, expected: u64, life: Duration) -> Result<Taken, BusError> {
    // The server stamps the message when it arrives, after we send it, so
    // it cannot expire before `sent + life`.
    let sent = Instant::now();
    let published = bus.publish_expecting(bus.ns.lease_subject(worker_id), expected).await?;
    let usable_until = sent + life.saturating_sub(SAFETY_MARGIN);
    Ok(Taken { held: Held { worker_id, usable_until }, sequence: published.sequence })
}

/// Takes a lease: first `previous` again (still ours, or expired and free),
/// then any free id.
async fn take_any(bus: &Bus, previous: Option<Taken>, life: Duration) -> Option<Taken> {
    // Publishes to a server that is not there would only wait out their
    // timeouts (and be sent later, when they no longer matter).
    if !bus.is_connected() {
        return None;
    }
    if let Some(p) = previous {
        let id = p.held.worker_id;
        for expected in [p.sequence, 0] {
            if let Ok(t) = take(bus, id, expected, life).await {
                return Some(t);
            }
        }
    }
    let start: u16 = rand::random::<u16>() % 1024;
    for i in 0..1024u16 {
        let id = (start + i) % 1024;
        let tried = Instant::now();
        match take(bus, id, 0, life).await {
            Ok(t) => return Some(t),
            Err(_) if tried.elapsed() < REFUSAL_IS_FAST => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take a worker-id lease now");
                return None;
            }
        }
    }
    None
}

/// Renews the lease until dropped; re-takes it when it was lost.
async fn keep(bus: Bus, mut lease: Taken, held: watch::Sender<Option<Held>>, life: Duration) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        if let Some(renewed) = renew(&bus, lease, life).await {
            lease = renewed;
            held.send_replace(Some(lease.held));
            continue;
        }
        let lost = lease.held.worker_id;
        tracing::error!(worker_id = lost, "worker-id lease lost; no ids are issued until a lease is taken again");
        held.send_replace(None);
        lease = loop {
            if let Some(t) = take_any(&bus, Some(lease), life).await {
                break t;
            }
            tokio::time::sleep(RETRY_EVERY).await;
        };
        tracing::warn!(lost, worker_id = lease.held.worker_id, "worker-id lease taken again");
        held.send_replace(Some(lease.held));
    }
}

/// Renews until shortly before the lease could expire; `None` if it could
/// not (a NATS blip should not cost the lease, an outage does).
async fn renew(bus: &Bus, lease: Taken, life: Duration) -> Option<Taken> {
    let id = lease.held.worker_id;
    let deadline = lease.held.usable_until;
    loop {
        match tokio::time::timeout_at(deadline, take(bus, id, lease.sequence, life)).await {
            Ok(Ok(renewed)) => return Some(renewed),
            Ok(Err(e)) => tracing::warn!(worker_id = id, error = %e, "lease renewal failed, retrying"),
            Err(_) => return None,
        }
        if Instant::now() + RETRY_EVERY >= deadline {
            return None;
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}
