//! Group commit for submissions.
//!
//! Each accepted request must be stored in JetStream before it is answered.
//! Publishing one JetStream message per request caps throughput at the ack
//! round trip; instead, requests that arrive while a publish is in flight are
//! gathered into the next `SubmitBatch`. Under light load a batch holds one
//! submission and adds no delay; under heavy load one ack serves many
//! requests. Several publishers run at once so the pipe stays full.

use std::sync::Arc;

use smsfleet_bus::Bus;
use smsfleet_contract::{SCHEMA_VERSION, StreamKind, Submission, SubmitBatch};
use tokio::sync::{Mutex, mpsc, oneshot};

type Job = (Submission, oneshot::Sender<Result<(), String>>);

#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Job>,
}

impl Publisher {
    pub fn start(bus: Bus, publishers: usize, max_batch: usize) -> Publisher {
        let (tx, rx) = mpsc::channel::<Job>(max_batch * publishers * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..publishers.max(1) {
            tokio::spawn(publish_loop(bus.clone(), rx.clone(), max_batch.max(1)));
        }
        Publisher { tx }
    }

    /// Resolves once the submission is durable in JetStream.
    pub async fn submit(&self, s: Submission) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx.send((s, done)).await.map_err(|_| "publisher stopped".to_owned())?;
        wait.await.map_err(|_| "publisher dropped the request".to_owned())?
    }
}

async fn publish_loop(bus: Bus, rx: Arc<Mutex<mpsc::Receiver<Job>>>, max_batch: usize) {
    let subject = bus.namespace().subject(StreamKind::Submit);
    loop {
        let mut jobs = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(j) => jobs.push(j),
                None => return,
            }
            while jobs.len() < max_batch {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
        }
        let (submissions, waiters): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        // The first queue code is unique, so it names the batch: a retried
        // publish of this exact batch is de-duplicated by the stream.
        let batch_id = format!("s.{}", submissions[0].queue);
        let batch = SubmitBatch { v: SCHEMA_VERSION, batch_id: batch_id.clone(), submissions };
        metrics::histogram!("smsfleet_ingress_submit_batch_size").record(batch.submissions.len() as f64);
        let mut result = bus.publish(subject.clone(), &batch_id, &batch).await;
        if result.is_err() {
            // One retry with the same id: if the first publish was stored
            // but its ack lost, this is a no-op.
            result = bus.publish(subject.clone(), &batch_id, &batch).await;
        }
        let outcome = result.map(|_| ()).map_err(|e| e.to_string());
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "submission batch not stored");
        }
        for w in waiters {
            let _ = w.send(outcome.clone());
        }
    }
}
