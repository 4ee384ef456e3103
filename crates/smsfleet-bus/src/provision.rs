//! Creates (or updates) every stream and durable consumer of the topology.
//! Every role runs this at start-up: it is idempotent, and every durable
//! must exist before the first message, or the trimmer (`trim.rs`) would
//! purge messages it has not seen.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use smsfleet_contract::{ConsumerSpec, Retention, StreamSpec};

use crate::{Bus, BusError};

/// JetStream keeps at most five copies of a stream.
pub const MAX_STREAM_REPLICAS: usize = 5;

impl Bus {
    /// Streams provisioned through this bus keep `replicas` copies on as
    /// many servers of the cluster (1 for a single server).
    pub fn with_stream_replicas(mut self, replicas: usize) -> Result<Bus, BusError> {
        if !(1..=MAX_STREAM_REPLICAS).contains(&replicas) {
            return Err(BusError::Provision {
                what: "streams".to_owned(),
                detail: format!("SMSFLEET_STREAM_REPLICAS must be 1 to {MAX_STREAM_REPLICAS}, not {replicas}"),
            });
        }
        self.stream_replicas = replicas;
        Ok(self)
    }

    pub fn stream_replicas(&self) -> usize {
        self.stream_replicas
    }

    pub async fn provision(&self) -> Result<(), BusError> {
        // A single nats-server 2.9 accepts "3 replicas" and keeps one copy,
        // so a replicated fleet would silently not be: refuse instead.
        let server = self.client.server_info();
        if self.stream_replicas > 1 && server.cluster.is_none() {
            let said = format!("server {} at {}:{} is not in a cluster", server.server_name, server.host, server.port);
            return Err(BusError::Provision { what: "streams".to_owned(), detail: self.explain(&said) });
        }
        for spec in &self.topology.streams {
            self.ensure_stream(spec).await?;
        }
        for spec in &self.topology.consumers {
            self.ensure_consumer(spec).await?;
        }
        Ok(())
    }

    fn stream_config(&self, spec: &StreamSpec) -> stream::Config {
        stream::Config {
            name: self.ns.stream_name(spec.kind),
            subjects: vec![format!("{}.{}", self.ns.as_str(), spec.subjects)],
            retention: match spec.retention {
                // Purged by smsfleet once every durable acked (`trim.rs`).
                Retention::AckedByAll => stream::RetentionPolicy::Limits,
                Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
                Retention::Limits => stream::RetentionPolicy::Limits,
            },
            max_age: Duration::from_secs(spec.max_age_secs),
            max_messages_per_subject: if spec.max_msgs_per_subject > 0 { spec.max_msgs_per_subject } else { -1 },
            duplicate_window: Duration::from_secs(spec.duplicate_window_secs),
            storage: stream::StorageType::File,
            num_replicas: self.stream_replicas,
            allow_direct: true,
            ..Default::default()
        }
    }

    /// Creates the stream, or updates it where it differs from the spec:
    /// subjects, limits, and a replica count below `SMSFLEET_STREAM_REPLICAS`
    /// (raised with a log line; the server copies the data in the
    /// background). More replicas than configured are kept, with a warning.
    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<(), BusError> {
        let config = self.stream_config(spec);
        let name = config.name.clone();
        let err =
            |e: &dyn std::fmt::Display| BusError::Provision { what: format!("stream {name}"), detail: e.to_string() };
        match self.js.get_stream(&name).await {
            Ok(mut existing) => {
                let info = existing.info().await.map_err(|e| err(&e))?;
                let current = &info.config;
                let mut config = config;
                if current.num_replicas < config.num_replicas {
                    tracing::info!(
                        stream = %name,
                        from = current.num_replicas,
                        to = config.num_replicas,
                        "raising the stream's replica count"
                    );
                } else if current.num_replicas > config.num_replicas {
                    // A CLI run or a role started without the setting must
                    // not quietly drop a cluster's copies.
                    tracing::warn!(
                        stream = %name,
                        kept = current.num_replicas,
                        configured = config.num_replicas,
                        "stream has more replicas than SMSFLEET_STREAM_REPLICAS; keeping them (lower them with the nats CLI)"
                    );
                    config.num_replicas = current.num_replicas;
                }
                if current.retention != config.retention {
                    return self.change_retention(current.retention, info.state.messages, config).await;
                }
                if current.subjects != config.subjects
                    || current.max_age != config.max_age
                    || current.max_messages_per_subject != config.max_messages_per_subject
                    || current.duplicate_window != config.duplicate_window
                    || current.num_replicas != config.num_replicas
                {
                    self.js.update_stream(config).await.map_err(|e| err(&self.explain(&e)))?;
                }
                Ok(())
            }
            Err(_) => match self.js.create_stream(config.clone()).await {
                Ok(_) => Ok(()),
                // Another replica created it between our get and create.
                Err(_) if self.js.get_stream(&name).await.is_ok() => Ok(()),
                Err(e) => Err(err(&self.explain(&e))),
            },
        }
    }

    /// A stream made by an older smsfleet with the server's interest
    /// retention (issue 14.1). Current servers change it in place; 2.9
    /// refuses, and then an empty stream (everything acked) is made again,
    /// while one still holding messages stops the start with what to do.
    async fn change_retention(
        &self,
        from: stream::RetentionPolicy,
        messages: u64,
        config: stream::Config,
    ) -> Result<(), BusError> {
        let name = config.name.clone();
        let err = |detail: String| BusError::Provision { what: format!("stream {name}"), detail };
        let to = config.retention;
        tracing::warn!(stream = %name, ?from, ?to, "changing the stream's retention");
        let refused = match self.js.update_stream(config.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if messages > 0 {
            return Err(err(format!(
                "the server refuses to change its retention from {from:?} to {to:?} ({refused}) and it still holds \
                 {messages} messages: stop the ingress replicas, let the other roles drain the stream, and start \
                 again (an empty stream is made again), or upgrade nats-server to 2.10 or later"
            )));
        }
        tracing::warn!(stream = %name, "the server cannot change retention in place; the stream is empty, making it again");
        self.js.delete_stream(&name).await.map_err(|e| err(e.to_string()))?;
        self.js.create_stream(config).await.map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// The server's answer to a replica count it cannot place is terse
    /// ("insufficient resources", or none at all on a single 2.9 server):
    /// say what the operator has to change.
    fn explain(&self, server_said: &dyn std::fmt::Display) -> String {
        let replicas = self.stream_replicas;
        if replicas > 1 {
            format!(
                "SMSFLEET_STREAM_REPLICAS={replicas} needs a JetStream cluster of at least {replicas} servers \
                 ({server_said}); use 1 for a single server"
            )
        } else {
            server_said.to_string()
        }
    }

    pub(crate) fn consumer_config(&self, spec: &ConsumerSpec) -> consumer::pull::Config {
        // `num_replicas` stays 0: a durable consumer follows its stream.
        consumer::pull::Config {
            durable_name: Some(spec.durable.to_owned()),
            description: Some(format!("pulled by the {} role", spec.role)),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(spec.ack_wait_secs),
            max_deliver: spec.max_deliver,
            max_ack_pending: spec.max_ack_pending,
            filter_subject: self.ns.subject(spec.stream),
            ..Default::default()
        }
    }

    /// Creates the consumer, or updates an existing one whose redelivery
    /// settings (ack wait, deliveries, pending acks) differ from the spec:
    /// a fleet upgraded to a shorter ack wait must get it on its existing
    /// durables. The server takes the update through the create request
    /// (what `nats consumer edit` does), on 2.9 as on current releases.
    async fn ensure_consumer(&self, spec: &ConsumerSpec) -> Result<(), BusError> {
        let stream_name = self.ns.stream_name(spec.stream);
        let err = |e: &dyn std::fmt::Display| BusError::Provision {
            what: format!("consumer {stream_name}/{}", spec.durable),
            detail: e.to_string(),
        };
        let stream = self.js.get_stream(&stream_name).await.map_err(|e| err(&e))?;
        let wanted = self.consumer_config(spec);
        if let Ok(info) = stream.consumer_info(spec.durable).await {
            let current = &info.config;
            if current.ack_wait != wanted.ack_wait
                || current.max_deliver != wanted.max_deliver
                || current.max_ack_pending != wanted.max_ack_pending
            {
                tracing::info!(
                    stream = %stream_name,
                    consumer = spec.durable,
                    ack_wait_from = ?current.ack_wait,
                    ack_wait_to = ?wanted.ack_wait,
                    "updating the consumer's redelivery settings"
                );
                stream.create_consumer(wanted).await.map_err(|e| err(&e))?;
            }
            return Ok(());
        }
        stream.get_or_create_consumer::<consumer::pull::Config>(spec.durable, wanted).await.map_err(|e| err(&e))?;
        Ok(())
    }

    /// The durable pull consumer a worker role reads from.
    pub(crate) async fn pull_consumer(
        &self,
        spec: &ConsumerSpec,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, BusError> {
        let stream_name = self.ns.stream_name(spec.stream);
        let stream = self
            .js
            .get_stream(&stream_name)
            .await
            .map_err(|e| BusError::Consume(format!("stream {stream_name}: {e}")))?;
        stream
            .get_or_create_consumer::<consumer::pull::Config>(spec.durable, self.consumer_config(spec))
            .await
            .map_err(|e| BusError::Consume(format!("consumer {stream_name}/{}: {e}", spec.durable)))
    }

    pub(crate) async fn stream_handle(
        &self,
        kind: smsfleet_contract::StreamKind,
    ) -> Result<jetstream::stream::Stream, BusError> {
        let name = self.ns.stream_name(kind);
        self.js.get_stream(&name).await.map_err(|e| BusError::Consume(format!("stream {name}: {e}")))
    }
}
