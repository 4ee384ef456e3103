//! Receipts and MOs to the customer. Each account with a receiver (RX or
//! TRX) bind on this replica has one pump reading the account's mailbox
//! (durable `smpp_out_<uid>` on `<ns>.smpp.out.<uid>`, shared with every
//! other replica holding a receiver bind of the account). A message is sent
//! as deliver_sm on one of the account's receivers here, in turn, and acked
//! on the bus only when the customer's deliver_sm_resp says ESME_ROK; any
//! other answer, a timeout or a lost bind hands it back for a retry. What
//! is older than the receipt expiry is dropped instead of sent. Messages
//! are sent in mailbox order (the order of the final statuses); with more
//! than one bind their responses may come back in any order.

use std::sync::Arc;
use std::time::Duration;

use smsfleet_bus::{Letter, MailboxSpec};
use smsfleet_contract::{Namespace, SmppDeliver, StreamKind};
use smsfleet_domain::clock::now_ms;
use smsfleet_smpp::rusmpp::{CommandStatus, Pdu};
use tokio_util::sync::CancellationToken;

use super::SmppServer;
use super::sessions::BindStats;

/// Messages handed out to this account's receivers and not yet confirmed,
/// over every replica: bounds what a redelivery after a crash repeats.
const MAX_UNCONFIRMED: i64 = 64;

/// How long a message the customer refused waits before it is offered again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub fn mailbox_spec(ns: &Namespace, uid: i64, response_timeout: Duration) -> MailboxSpec {
    MailboxSpec {
        stream: StreamKind::SmppOut,
        durable: Namespace::smpp_out_durable(uid),
        filter_subject: ns.smpp_out_subject(uid),
        // Longer than a deliver_sm may wait for its window slot and answer.
        ack_wait: response_timeout * 2 + Duration::from_secs(5),
        max_ack_pending: MAX_UNCONFIRMED,
    }
}

/// Runs account `uid`'s pump until `stop` (its last receiver here unbound).
pub async fn pump(server: Arc<SmppServer>, uid: i64, username: String, stop: CancellationToken) {
    let spec = mailbox_spec(server.app.bus.namespace(), uid, server.settings.response_timeout);
    let mut backoff = Duration::from_millis(200);
    while !stop.is_cancelled() {
        let mut mailbox = match server.app.bus.mailbox::<SmppDeliver>(&spec).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(uid, error = %e, "receipt mailbox unavailable; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let mut gauge_at = tokio::time::Instant::now();
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                next = mailbox.next() => next,
            };
            let letter = match next {
                Some(Ok(letter)) => letter,
                Some(Err(e)) => {
                    tracing::warn!(uid, error = %e, "receipt pull failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                None => break,
            };
            offer(&server, uid, &username, letter).await;
            if gauge_at.elapsed() > Duration::from_secs(5) {
                gauge_at = tokio::time::Instant::now();
                if let Ok(n) = mailbox.waiting().await {
                    metrics::gauge!("smsfleet_ingress_smpp_receipts_waiting", "account" => username.clone())
                        .set(n as f64);
                }
            }
        }
    }
}

/// Sends one message on a receiver of the account, or hands it back.
async fn offer(server: &Arc<SmppServer>, uid: i64, username: &str, letter: Letter<SmppDeliver>) {
    let body = &letter.delivery.body;
    let expiry_ms = server.settings.receipt_expiry.as_millis() as i64;
    if body.created_at_ms + expiry_ms < now_ms() {
        metrics::counter!("smsfleet_ingress_smpp_receipts_expired_total", "account" => username.to_owned())
            .increment(1);
        tracing::info!(uid, key = %body.key, "receipt expired before the customer bound; dropped");
        let _ = letter.ack().await;
        return;
    }
    let Some(bind) = server.registry.next_receiver(uid) else {
        let _ = letter.retry_after(RETRY_AFTER).await;
        return;
    };
    let pdu: Pdu = super::pdu::deliver_sm(body).into();
    let pending = match bind.handle.send(pdu).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(uid, error = %e, "deliver_sm not sent; handing it back");
            let _ = letter.retry_after(RETRY_AFTER).await;
            return;
        }
    };
    let (stats, username) = (bind.stats.clone(), username.to_owned());
    // The response is awaited apart, so the next deliver_sm goes out while
    // this one is in the window.
    tokio::spawn(async move {
        match pending.response().await {
            Ok(resp) if resp.status() == CommandStatus::EsmeRok => {
                BindStats::count(&stats.delivered);
                metrics::counter!("smsfleet_ingress_smpp_delivered_total", "account" => username).increment(1);
                if let Err(e) = letter.ack().await {
                    // Not acked: it comes back after the ack wait (at least once).
                    tracing::warn!(error = %e, "receipt delivered but not acked");
                }
            }
            Ok(resp) => {
                tracing::info!(status = ?resp.status(), "customer refused a deliver_sm; retrying later");
                let _ = letter.retry_after(RETRY_AFTER).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "no deliver_sm_resp; retrying later");
                let _ = letter.retry_after(RETRY_AFTER).await;
            }
        }
    });
}
