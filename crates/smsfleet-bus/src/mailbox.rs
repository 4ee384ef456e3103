//! Mailboxes: one durable pull consumer per key (an SMPP account's
//! deliveries, `smpp_out_<uid>` on `smpp.out.<uid>`), created by the first
//! reader and shared by every replica that reads it. Unlike a worker, the
//! reader acks each message itself once its own peer confirmed it (the
//! customer's deliver_sm_resp), so what the peer never confirmed comes back
//! after the ack wait, to this replica or another.

use std::marker::PhantomData;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use futures_util::StreamExt;
use smsfleet_contract::{BusMessage, StreamKind};

use crate::{Bus, BusError, Delivery};

/// Where a mailbox lives and how patient it is.
#[derive(Debug, Clone)]
pub struct MailboxSpec {
    pub stream: StreamKind,
    pub durable: String,
    pub filter_subject: String,
    /// How long a message handed out may go without an ack before it is
    /// handed out again: longer than the peer's response timeout.
    pub ack_wait: Duration,
    /// Messages handed out and not yet acked, over all readers.
    pub max_ack_pending: i64,
}

/// A message taken from a mailbox; ack it when its work is confirmed.
pub struct Letter<T> {
    pub delivery: Delivery<T>,
    msg: jetstream::Message,
}

impl<T> Letter<T> {
    pub async fn ack(&self) -> Result<(), BusError> {
        self.msg.ack().await.map_err(|e| BusError::Consume(format!("ack: {e}")))
    }

    /// Hands the message back for another reader after `delay`.
    pub async fn retry_after(&self, delay: Duration) -> Result<(), BusError> {
        self.msg.ack_with(AckKind::Nak(Some(delay))).await.map_err(|e| BusError::Consume(format!("nak: {e}")))
    }
}

pub struct Mailbox<T> {
    consumer: consumer::Consumer<consumer::pull::Config>,
    messages: consumer::pull::Stream,
    _payload: PhantomData<fn() -> T>,
}

impl Bus {
    /// Opens (creating on first use) the durable mailbox of `spec`.
    pub async fn mailbox<T: BusMessage>(&self, spec: &MailboxSpec) -> Result<Mailbox<T>, BusError> {
        let stream = self.stream_handle(spec.stream).await?;
        let config = consumer::pull::Config {
            durable_name: Some(spec.durable.clone()),
            description: Some("a mailbox, read by whichever replica serves its key".to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_ack_pending: spec.max_ack_pending,
            filter_subject: spec.filter_subject.clone(),
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer::<consumer::pull::Config>(&spec.durable, config)
            .await
            .map_err(|e| BusError::Consume(format!("mailbox {}: {e}", spec.durable)))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(spec.max_ack_pending.clamp(1, 256) as usize)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| BusError::Consume(e.to_string()))?;
        Ok(Mailbox { consumer, messages, _payload: PhantomData })
    }
}

impl<T: BusMessage> Mailbox<T> {
    /// The next message; `None` when the pull stream ended. An undecodable
    /// payload is terminated (logged) and skipped.
    pub async fn next(&mut self) -> Option<Result<Letter<T>, BusError>> {
        loop {
            let msg = match self.messages.next().await? {
                Ok(m) => m,
                Err(e) => return Some(Err(BusError::Consume(e.to_string()))),
            };
            match crate::worker::decode::<T>(&msg) {
                Ok(delivery) => return Some(Ok(Letter { delivery, msg })),
                Err(why) => {
                    tracing::error!(why, subject = %msg.subject, "mailbox message dropped");
                    let _ = msg.ack_with(AckKind::Term).await;
                }
            }
        }
    }

    /// Messages waiting in the mailbox, handed out or not.
    pub async fn waiting(&mut self) -> Result<u64, BusError> {
        let info = self.consumer.info().await.map_err(|e| BusError::Consume(e.to_string()))?;
        Ok(info.num_pending + info.num_ack_pending as u64)
    }
}
