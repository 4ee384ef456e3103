//! Message ids for this replica: snowflakes under the worker id its lease
//! holds, so no two replicas hand out the same id. The lease re-takes
//! itself after an outage, possibly on another worker id; no id is issued
//! while none is held.

use std::sync::{Arc, Mutex};

use smsfleet_bus::WorkerIds;
use smsfleet_domain::clock::now_ms;
use smsfleet_domain::{SmsLogId, SnowflakeGenerator};

#[derive(Clone)]
pub(crate) struct IdSource {
    generator: Arc<Mutex<SnowflakeGenerator>>,
    /// The leased worker id the generator must use.
    worker_ids: WorkerIds,
}

impl IdSource {
    pub fn new(generator: SnowflakeGenerator, worker_ids: WorkerIds) -> Self {
        Self { generator: Arc::new(Mutex::new(generator)), worker_ids }
    }

    /// `n` new ids, or `None` while no worker-id lease is held.
    pub fn next_ids(&self, n: usize) -> Option<Vec<SmsLogId>> {
        let worker_id = self.worker_ids.current()?;
        let mut generator = self.generator.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if generator.worker_id() != worker_id {
            // A lease taken again on another id: the id's previous holder
            // stopped using it before its lease expired, i.e. before ours.
            *generator = SnowflakeGenerator::new(worker_id).ok()?;
        }
        let ms = now_ms() as u64;
        Some((0..n).map(|_| generator.next(ms)).collect())
    }
}
