//! Message ids for this replica: snowflakes under the worker id its lease
//! holds, so no two replicas hand out the same id.

use std::sync::{Arc, Mutex};

use smsfleet_domain::clock::now_ms;
use smsfleet_domain::{SmsLogId, SnowflakeGenerator};

#[derive(Clone)]
pub(crate) struct IdSource(Arc<Mutex<SnowflakeGenerator>>);

impl IdSource {
    pub fn new(generator: SnowflakeGenerator) -> Self {
        Self(Arc::new(Mutex::new(generator)))
    }

    pub fn next_ids(&self, n: usize) -> Vec<SmsLogId> {
        let ms = now_ms() as u64;
        let mut generator = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (0..n).map(|_| generator.next(ms)).collect()
    }
}
