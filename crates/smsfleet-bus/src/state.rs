//! The replicated state feed: account, balance and rate snapshots, last
//! value per subject, that every ingress replica keeps in memory so its send
//! path never asks Postgres. An ordered consumer replays the latest value of
//! every subject at start-up, then follows changes within milliseconds.

use std::time::Duration;

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use futures_util::StreamExt;
use smsfleet_contract::{
    AccountState, BalanceState, BlockState, BusMessage, GroupState, RatesState, StopState, StreamKind,
};
use tokio::sync::watch;

use crate::{Bus, BusError};

#[derive(Debug, Clone)]
pub enum StateEvent {
    Account(Box<AccountState>),
    Balance(BalanceState),
    Rates(RatesState),
    /// A stop-list or do-not-disturb entry (bulk HTTP API).
    Stop(StopState),
    /// A client IP blocked after too many failed logins.
    Block(BlockState),
    /// A phonebook group and its member numbers (`#CODE` in `pv`).
    Group(GroupState),
}

/// Follows the feed until dropped.
pub struct StateFeed {
    caught_up: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl StateFeed {
    /// Starts following; `apply` sees every snapshot in stream order.
    pub async fn start<F>(bus: &Bus, apply: F) -> Result<StateFeed, BusError>
    where
        F: FnMut(StateEvent) + Send + 'static,
    {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(follow(bus.clone(), apply, tx));
        Ok(StateFeed { caught_up: rx, task })
    }

    /// Resolves once every snapshot that existed at start has been applied.
    pub async fn wait_caught_up(&mut self, timeout: Duration) -> Result<(), BusError> {
        let wait = self.caught_up.wait_for(|c| *c);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(BusError::Consume("state feed did not catch up in time".to_owned())),
        }
    }

    pub fn is_caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }
}

impl Drop for StateFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow<F>(bus: Bus, mut apply: F, caught_up: watch::Sender<bool>)
where
    F: FnMut(StateEvent) + Send + 'static,
{
    loop {
        if let Err(e) = follow_once(&bus, &mut apply, &caught_up).await {
            tracing::warn!(error = %e, "state feed interrupted, resubscribing");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn follow_once<F>(bus: &Bus, apply: &mut F, caught_up: &watch::Sender<bool>) -> Result<(), BusError>
where
    F: FnMut(StateEvent),
{
    let mut stream = bus.stream_handle(StreamKind::State).await?;
    let info = stream.info().await.map_err(|e| BusError::Consume(e.to_string()))?;
    // Everything that existed when we subscribed has been applied once a
    // message at or past the stream's last sequence of that moment arrives.
    // A message's own pending count is not enough: nats-server 2.9 reports
    // it wrongly when snapshots are republished during the replay, so the 0
    // may never come (issue 12.1).
    let replayed_up_to = info.state.last_sequence;
    if info.state.messages == 0 {
        caught_up.send_replace(true);
    }
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: bus.ns.state_filter(),
            deliver_policy: DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await
        .map_err(|e| BusError::Consume(e.to_string()))?;
    let mut messages = consumer.messages().await.map_err(|e| BusError::Consume(e.to_string()))?;
    let prefix = format!("{}.state.", bus.ns.as_str());
    while let Some(next) = messages.next().await {
        let msg = next.map_err(|e| BusError::Consume(e.to_string()))?;
        let kind = msg.subject.as_str().strip_prefix(&prefix).unwrap_or_default();
        let event = if kind.starts_with("account.") {
            decode::<AccountState>(&msg.payload).map(|a| StateEvent::Account(Box::new(a)))
        } else if kind.starts_with("balance.") {
            decode::<BalanceState>(&msg.payload).map(StateEvent::Balance)
        } else if kind.starts_with("stop.") || kind.starts_with("dnd.") {
            decode::<StopState>(&msg.payload).map(StateEvent::Stop)
        } else if kind.starts_with("block.") {
            decode::<BlockState>(&msg.payload).map(StateEvent::Block)
        } else if kind.starts_with("group.") {
            decode::<GroupState>(&msg.payload).map(StateEvent::Group)
        } else if kind == "rates" {
            decode::<RatesState>(&msg.payload).map(StateEvent::Rates)
        } else {
            None
        };
        match event {
            Some(e) => apply(e),
            None => tracing::warn!(subject = %msg.subject, "ignoring unreadable state message"),
        }
        let replay_done = msg.info().map(|i| i.stream_sequence >= replayed_up_to || i.pending == 0).unwrap_or(false);
        if replay_done {
            caught_up.send_replace(true);
        }
    }
    Err(BusError::Consume("state feed ended".to_owned()))
}

fn decode<T: BusMessage>(payload: &[u8]) -> Option<T> {
    serde_json::from_slice(payload).ok()
}
