//! Long messages a customer split itself (UDH or SAR parts), per bind.
//! Each part's submit_sm waits, unanswered, until the last part is in; the
//! whole text then goes through the accept path once (charged per part as
//! any long message), and every part is answered with the same outcome and
//! message_id, so the one receipt's id matches each part's resp. A bind
//! holds at most its window of unanswered parts; a message whose parts do
//! not all arrive within [`PART_WAIT`] is answered ESME_RSYSERR part by part
//! (a Responder dropped unanswered does that too, e.g. when the bind ends).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use smsfleet_smpp::Responder;
use smsfleet_smpp::text::Concat;

/// How long the first part of a message waits for the others.
pub const PART_WAIT: Duration = Duration::from_secs(60);

/// Which message a part belongs to: the customer's reference is only
/// unique per source and destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey {
    pub source: String,
    pub destination: String,
    pub reference: u16,
    pub total: u8,
}

struct Pending {
    started: Instant,
    data_coding: u8,
    parts: BTreeMap<u8, Vec<u8>>,
    waiting: Vec<Responder>,
}

/// What adding a part gives.
pub enum Added {
    /// More parts to come; the responder is kept.
    Waiting,
    /// Every part is in: the content in order, the data_coding of the
    /// first part, and every part's responder (this one included).
    Whole { content: Vec<u8>, data_coding: u8, responders: Vec<Responder> },
}

#[derive(Default)]
pub struct Parts {
    pending: Mutex<HashMap<MessageKey, Pending>>,
}

impl Parts {
    /// Adds one part. A repeated sequence number replaces the earlier
    /// content (the earlier responder is answered with the rest).
    pub fn add(
        &self,
        key: MessageKey,
        concat: Concat,
        data_coding: u8,
        content: Vec<u8>,
        responder: Responder,
    ) -> Added {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pending.entry(key.clone()).or_insert_with(|| Pending {
            started: Instant::now(),
            data_coding,
            parts: BTreeMap::new(),
            waiting: Vec::new(),
        });
        entry.parts.insert(concat.seq, content);
        entry.waiting.push(responder);
        if entry.parts.len() < usize::from(concat.total) {
            return Added::Waiting;
        }
        match pending.remove(&key) {
            Some(done) => Added::Whole {
                content: done.parts.into_values().flatten().collect(),
                data_coding: done.data_coding,
                responders: done.waiting,
            },
            None => Added::Waiting,
        }
    }

    /// Takes the responders of messages that waited longer than `wait`.
    pub fn expired(&self, now: Instant, wait: Duration) -> Vec<Responder> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let old: Vec<MessageKey> =
            pending.iter().filter(|(_, p)| now.duration_since(p.started) > wait).map(|(k, _)| k.clone()).collect();
        old.into_iter().filter_map(|k| pending.remove(&k)).flat_map(|p| p.waiting).collect()
    }
}

/// Whether a part's fields are a usable part of a long message.
pub fn valid(c: &Concat) -> bool {
    c.total > 1 && c.seq >= 1 && c.seq <= c.total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbered_parts_of_a_many_part_message_are_parts() {
        assert!(valid(&Concat { reference: 1, total: 3, seq: 1 }));
        assert!(!valid(&Concat { reference: 1, total: 1, seq: 1 }));
        assert!(!valid(&Concat { reference: 1, total: 3, seq: 0 }));
        assert!(!valid(&Concat { reference: 1, total: 3, seq: 4 }));
    }
}
