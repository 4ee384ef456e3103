//! Request/reply services over core NATS (queue groups, no persistence):
//! reads such as `ds` and `cr`, and account commands. Replicas of a role
//! join one queue group, so each request is answered once.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use smsfleet_contract::{BusMessage, Service};
use tokio_util::sync::CancellationToken;

use crate::publish::encode;
use crate::{Bus, BusError};

impl Bus {
    /// Sends a request to `service` and decodes its reply.
    pub async fn request<Req: BusMessage, Rep: BusMessage>(
        &self,
        service: Service<Req, Rep>,
        body: &Req,
        timeout: Duration,
    ) -> Result<Rep, BusError> {
        let subject = service.subject(&self.ns);
        let payload = encode(body)?;
        let call = self.client.request(subject.clone(), payload);
        let reply = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| BusError::Request { subject: subject.clone(), detail: "timed out".to_owned() })?
            .map_err(|e| BusError::Request { subject: subject.clone(), detail: e.to_string() })?;
        serde_json::from_slice(&reply.payload)
            .map_err(|e| BusError::Codec { schema: Rep::SCHEMA, detail: e.to_string() })
    }

    /// Asks every replica serving a broadcast `service` and collects the
    /// replies that arrive within `wait` (undecodable ones are skipped).
    pub async fn gather<Req: BusMessage, Rep: BusMessage>(
        &self,
        service: Service<Req, Rep>,
        body: &Req,
        wait: Duration,
    ) -> Result<Vec<Rep>, BusError> {
        let subject = service.subject(&self.ns);
        let inbox = self.client.new_inbox();
        let mut replies = self.client.subscribe(inbox.clone()).await.map_err(|e| BusError::Consume(e.to_string()))?;
        self.client
            .publish_with_reply(subject.clone(), inbox, encode(body)?)
            .await
            .map_err(|e| BusError::Request { subject, detail: e.to_string() })?;
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, replies.next()).await {
            if let Ok(rep) = serde_json::from_slice(&msg.payload) {
                out.push(rep);
            }
        }
        Ok(out)
    }
}

/// Answers requests to `service` in its queue group until `stop` is
/// cancelled. Each request runs in its own task so a slow query does not
/// hold up the next.
pub async fn serve_requests<Req, Rep, F, Fut>(
    bus: Bus,
    service: Service<Req, Rep>,
    stop: CancellationToken,
    handler: F,
) -> Result<(), BusError>
where
    Req: BusMessage + Send + 'static,
    Rep: BusMessage + Send + 'static,
    F: Fn(Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Rep> + Send + 'static,
{
    let subject = service.subject(&bus.ns);
    let subscribed = if service.is_broadcast() {
        bus.client.subscribe(subject.clone()).await
    } else {
        bus.client.queue_subscribe(subject.clone(), service.group().to_owned()).await
    };
    let mut sub = subscribed.map_err(|e| BusError::Consume(e.to_string()))?;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            next = sub.next() => {
                let Some(msg) = next else { break };
                let Some(reply_to) = msg.reply.clone() else { continue };
                let req: Req = match serde_json::from_slice(&msg.payload) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(%subject, error = %e, "undecodable request dropped");
                        continue;
                    }
                };
                let handler = handler.clone();
                let client = bus.client.clone();
                tokio::spawn(async move {
                    let rep = handler(req).await;
                    match encode(&rep) {
                        Ok(bytes) => {
                            if let Err(e) = client.publish(reply_to, bytes).await {
                                tracing::warn!(error = %e, "reply not sent");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "reply not encodable"),
                    }
                });
            }
        }
    }
    let _ = sub.unsubscribe().await;
    Ok(())
}
