//! Typed publishing. Every JetStream publish awaits its PubAck: a message
//! counts as accepted only once the server has stored it. A deterministic
//! `Nats-Msg-Id` makes a retried publish (after a timeout, or a redelivered
//! input) a no-op inside the stream's duplicate window.
//!
//! Header values are checked here, never trusted: async-nats panics on a
//! CR or LF in a header set from a string, and message ids are built from
//! outside input (route names, upstream ids). A bad value is a
//! [`BusError::Codec`], answered like any other unencodable message.

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use smsfleet_contract::{BusMessage, SCHEMA_HEADER, SCHEMA_VERSION};

use crate::{Bus, BusError};

/// Where a message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub sequence: u64,
    /// The stream already held a message with this id: nothing was added.
    pub duplicate: bool,
}

pub(crate) fn encode<T: BusMessage>(payload: &T) -> Result<Bytes, BusError> {
    serde_json::to_vec(payload)
        .map(Bytes::from)
        .map_err(|e| BusError::Codec { schema: T::SCHEMA, detail: e.to_string() })
}

/// The current span's context wins; a payload published outside any span
/// (a batching task, a release hours later) carries its own. A trace
/// context that cannot be a header value is dropped: tracing is optional.
pub(crate) fn headers_for<T: BusMessage>(payload: &T) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SCHEMA_HEADER, format!("{}.v{}", T::SCHEMA, SCHEMA_VERSION).as_str());
    let tp = smsfleet_telemetry::current_traceparent().or_else(|| payload.trace_parent().map(str::to_owned));
    if let Some(tp) = tp.and_then(|tp| tp.parse::<HeaderValue>().ok()) {
        headers.insert("traceparent", tp);
    }
    headers
}

/// The complete message for one publish, or an error for a value that
/// cannot travel in a header.
fn message_for<T: BusMessage>(payload: &T, msg_id: Option<&str>) -> Result<PublishMessage, BusError> {
    let mut msg = PublishMessage::build().payload(encode(payload)?).headers(headers_for(payload));
    if let Some(id) = msg_id {
        let value = id.parse::<HeaderValue>().map_err(|_| BusError::Codec {
            schema: T::SCHEMA,
            detail: format!("message id {id:?} cannot be a header value (CR or LF)"),
        })?;
        msg = msg.header(NATS_MESSAGE_ID, value);
    }
    Ok(msg)
}

impl Bus {
    /// Publishes and waits for the PubAck.
    pub async fn publish<T: BusMessage>(
        &self,
        subject: String,
        msg_id: &str,
        payload: &T,
    ) -> Result<Published, BusError> {
        let pending = self.start_publish(subject, Some(msg_id), payload).await?;
        finish(pending).await
    }

    /// Sends a publish and returns the ack future, so a caller can pipeline
    /// several publishes and await them together.
    pub async fn start_publish<T: BusMessage>(
        &self,
        subject: String,
        msg_id: Option<&str>,
        payload: &T,
    ) -> Result<PublishAckFuture, BusError> {
        let msg = message_for(payload, msg_id)?;
        self.js.send_publish(subject, msg).await.map_err(|e| BusError::Publish(e.to_string()))
    }

    /// Publishes several messages with their ids and waits for every ack.
    /// Every message is built before the first is sent, so one that cannot
    /// be encoded stores none of them.
    pub async fn publish_all<T: BusMessage>(
        &self,
        items: Vec<(String, String, T)>,
    ) -> Result<Vec<Published>, BusError> {
        let messages = items
            .iter()
            .map(|(subject, id, payload)| Ok((subject.clone(), message_for(payload, Some(id))?)))
            .collect::<Result<Vec<_>, BusError>>()?;
        let mut pending = Vec::with_capacity(messages.len());
        for (subject, msg) in messages {
            pending.push(self.js.send_publish(subject, msg).await.map_err(|e| BusError::Publish(e.to_string()))?);
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(finish(p).await?);
        }
        Ok(out)
    }

    /// Publishes a state snapshot (last value per subject wins).
    pub async fn publish_state<T: BusMessage>(&self, subject: String, payload: &T) -> Result<Published, BusError> {
        let pending = self.start_publish(subject, None, payload).await?;
        finish(pending).await
    }

    /// When the stream stored the message at `sequence`, on the server's
    /// clock: the receive time a consumer sees in the message's info.
    pub async fn stored_at(
        &self,
        kind: smsfleet_contract::StreamKind,
        sequence: u64,
    ) -> Result<time::OffsetDateTime, BusError> {
        let name = self.ns.stream_name(kind);
        let stream =
            self.js.get_stream_no_info(&name).await.map_err(|e| BusError::Consume(format!("stream {name}: {e}")))?;
        let message = stream
            .get_raw_message(sequence)
            .await
            .map_err(|e| BusError::Consume(format!("stream {name} message {sequence}: {e}")))?;
        Ok(message.time)
    }

    pub(crate) async fn publish_expecting(
        &self,
        subject: String,
        expected_last_subject_sequence: u64,
    ) -> Result<Published, BusError> {
        let msg = PublishMessage::build()
            .payload(Bytes::new())
            .expected_last_subject_sequence(expected_last_subject_sequence);
        let pending = self.js.send_publish(subject, msg).await.map_err(|e| BusError::Publish(e.to_string()))?;
        finish(pending).await
    }
}

pub(crate) async fn finish(pending: PublishAckFuture) -> Result<Published, BusError> {
    let ack = pending.await.map_err(|e| BusError::Publish(e.to_string()))?;
    Ok(Published { sequence: ack.sequence, duplicate: ack.duplicate })
}
