//! Group commit for submissions.
//!
//! Each accepted request must be stored in JetStream before it is answered.
//! Publishing one JetStream message per request caps throughput at the ack
//! round trip; instead, requests that arrive while a publish is in flight are
//! gathered into the next `SubmitBatch`. Under light load a batch holds one
//! submission and adds no delay; under heavy load one ack serves many
//! requests. Several publishers run at once so the pipe stays full.
//!
//! A batch that cannot be stored at once (a leader election, a NATS
//! restart) is published again with backoff until its deadline, always
//! with the same `Nats-Msg-Id`, so a retry after a lost ack is a no-op. The
//! deadline travels in the batch: the ledger fails a copy the stream
//! receives after it, so an error answer never turns into a send.

use std::sync::Arc;
use std::time::Duration;

use smsfleet_bus::{Bus, BusError, Published};
use smsfleet_contract::{SCHEMA_VERSION, StreamKind, Submission, SubmitBatch};
use smsfleet_domain::clock::{now_ms, unix_ms};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;

type Job = (Submission, oneshot::Sender<Result<(), String>>);

/// How far the ingress's clock and the NATS server's may drift apart. An
/// ack that arrives this close to the deadline is checked against the
/// stream's own receive time, and an error is answered only this long
/// after the deadline, once no copy can be stored in time any more.
const CLOCK_MARGIN: Duration = Duration::from_secs(1);
/// A publish that gets no ack within this is sent again: a stream between
/// leaders may drop it without an answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Job>,
}

impl Publisher {
    /// `store_deadline`: how long a batch may take to be stored before its
    /// requests are answered with an error.
    pub fn start(bus: Bus, publishers: usize, max_batch: usize, store_deadline: Duration) -> Publisher {
        let (tx, rx) = mpsc::channel::<Job>(max_batch * publishers * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..publishers.max(1) {
            tokio::spawn(publish_loop(bus.clone(), rx.clone(), max_batch.max(1), store_deadline));
        }
        Publisher { tx }
    }

    /// Resolves once the submission is durable in JetStream, or with an
    /// error once it can no longer become so.
    pub async fn submit(&self, s: Submission) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx.send((s, done)).await.map_err(|_| "publisher stopped".to_owned())?;
        wait.await.map_err(|_| "publisher dropped the request".to_owned())?
    }
}

async fn publish_loop(bus: Bus, rx: Arc<Mutex<mpsc::Receiver<Job>>>, max_batch: usize, store_deadline: Duration) {
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
        let deadline = Deadline::after(store_deadline);
        // The first queue code is unique, so it names the batch: a retried
        // publish of this exact batch is de-duplicated by the stream.
        let batch = SubmitBatch {
            v: SCHEMA_VERSION,
            batch_id: format!("s.{}", submissions[0].queue),
            submissions,
            deadline_ms: Some(deadline.unix_ms),
        };
        metrics::histogram!("smsfleet_ingress_submit_batch_size").record(batch.submissions.len() as f64);
        // Publish to PubAck: with the batch size, what bounds one-recipient
        // accepts (issue 13.2: it grows when the consumers run).
        let started = Instant::now();
        let outcome = store(&bus, &subject, &batch, deadline).await;
        metrics::histogram!("smsfleet_ingress_submit_store_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "submission batch not stored");
        }
        for w in waiters {
            let _ = w.send(outcome.clone());
        }
    }
}

/// One instant on two clocks: ours, to stop retrying, and Unix ms, for the
/// ledger to compare with the stream's receive time.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    unix_ms: i64,
}

impl Deadline {
    fn after(wait: Duration) -> Deadline {
        Deadline { at: Instant::now() + wait, unix_ms: now_ms() + wait.as_millis() as i64 }
    }
}

/// Publishes until the stream acks or the deadline passes. An error is
/// answered only when no copy of the batch can be accepted any more: an
/// unencodable batch (never sent), or once the deadline plus the clock
/// margin has passed, because the client library may still be holding an
/// earlier attempt to deliver after a reconnect, and the ledger fails only
/// copies received after the deadline.
async fn store(bus: &Bus, subject: &str, batch: &SubmitBatch, deadline: Deadline) -> Result<(), String> {
    let mut pause = FIRST_PAUSE;
    let mut last_error: String;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let attempt = bus.publish(subject.to_owned(), &batch.batch_id, batch);
        let give_up = (Instant::now() + ATTEMPT_TIMEOUT).min(deadline.at + CLOCK_MARGIN);
        match tokio::time::timeout_at(give_up, attempt).await {
            Ok(Ok(published)) => return confirm(bus, published, deadline).await,
            Ok(Err(e @ BusError::Codec { .. })) => return Err(e.to_string()),
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = format!("no acknowledgement within {ATTEMPT_TIMEOUT:?}"),
        }
        if Instant::now() + pause >= deadline.at {
            break;
        }
        if attempts == 1 {
            tracing::warn!(error = %last_error, "submission batch not stored yet; retrying until its deadline");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
    tokio::time::sleep_until(deadline.at + CLOCK_MARGIN).await;
    Err(format!("{last_error} (after {attempts} attempts)"))
}

/// An ack well before the deadline means the ledger will take the batch.
/// One that arrives near it may be for a copy stored just after it, which
/// the ledger will fail: then the stream's receive time decides, exactly as
/// the ledger will.
async fn confirm(bus: &Bus, published: Published, deadline: Deadline) -> Result<(), String> {
    if Instant::now() + CLOCK_MARGIN <= deadline.at {
        return Ok(());
    }
    match bus.stored_at(StreamKind::Submit, published.sequence).await {
        Ok(stored) if unix_ms(stored) > deadline.unix_ms => {
            Err("stored after the deadline; the ledger will fail it".to_owned())
        }
        Ok(_) => Ok(()),
        // Cannot tell: an OK that the ledger might fail (visible in `ds`)
        // is better than an error for a message that will be sent.
        Err(e) => {
            tracing::warn!(error = %e, "late ack not checked against the deadline; answering OK");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use futures_util::StreamExt;
    use smsfleet_contract::{Api, Destination, Namespace};
    use smsfleet_domain::Encoding;
    use smsfleet_testkit::TestEnv;

    fn submission(queue: &str) -> Submission {
        Submission {
            queue: queue.into(),
            uid: 1,
            api: Api::Playsms,
            sender: "ACME".into(),
            text: "hello".into(),
            footer: String::new(),
            encoding: Encoding::Gsm7,
            flash: false,
            segments: 1,
            msg_type: "text".into(),
            dlr_requested: false,
            accepted_at_ms: now_ms(),
            schedule_at_ms: None,
            validity_until_ms: now_ms() + 60_000,
            destinations: vec![Destination { smslog_id: 1, to: "628110001".into() }],
            traceparent: None,
        }
    }

    /// A bus in a namespace of its own whose streams do not exist yet: a
    /// publish finds no stream to answer it, as during a leader election.
    async fn unprovisioned_bus(env: &TestEnv) -> Bus {
        let ns = Namespace::new(&format!("{}_p", env.ns.as_str())).unwrap();
        Bus::connect(&env.nats_url, ns, "publisher-test").await.unwrap()
    }

    #[tokio::test]
    async fn a_publish_rides_out_a_stream_without_a_leader() {
        let env = TestEnv::start().await;
        let bus = unprovisioned_bus(&env).await;
        // Every attempt, seen on the wire: the same batch each time.
        let mut wire = bus.client().subscribe(bus.namespace().subject(StreamKind::Submit)).await.unwrap();
        let publisher = Publisher::start(bus.clone(), 1, 8, Duration::from_secs(10));
        let started = Instant::now();
        let sent_at = now_ms();
        let pending = tokio::spawn(async move { publisher.submit(submission("Q1")).await });
        tokio::time::sleep(Duration::from_millis(1500)).await;
        bus.provision().await.unwrap();
        assert_eq!(pending.await.unwrap(), Ok(()));
        // An unanswered attempt is given up after 2 s, not the 10 s ack timeout.
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

        let mut attempts = Vec::new();
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(200), wire.next()).await {
            let id = msg.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_owned());
            attempts.push((id, serde_json::from_slice::<SubmitBatch>(&msg.payload).unwrap()));
        }
        assert!(attempts.len() >= 2, "published {} times", attempts.len());
        let (id, batch) = &attempts[0];
        assert_eq!(id.as_deref(), Some("s.Q1"));
        assert!(attempts.iter().all(|a| a == &attempts[0]), "every retry is the same batch under the same id");
        assert_eq!(batch.submissions[0].queue, "Q1");
        let deadline = batch.deadline_ms.expect("the batch carries its deadline");
        assert!((sent_at + 10_000..=now_ms() + 10_000).contains(&deadline), "{deadline}");
    }

    #[tokio::test]
    async fn an_error_is_answered_only_after_the_deadline() {
        let env = TestEnv::start().await;
        let bus = unprovisioned_bus(&env).await;
        let publisher = Publisher::start(bus, 1, 8, Duration::from_millis(1500));
        let started = Instant::now();
        let outcome = publisher.submit(submission("Q2")).await;
        assert!(outcome.is_err(), "{outcome:?}");
        assert!(started.elapsed() >= Duration::from_millis(1500) + CLOCK_MARGIN);
    }
}
