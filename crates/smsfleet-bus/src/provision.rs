//! Creates (or updates) every stream and durable consumer of the topology.
//! Every role runs this at start-up: it is idempotent, and with Interest
//! retention a consumer must exist before the first message, or that
//! message is dropped for it.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use smsfleet_contract::{ConsumerSpec, Retention, StreamSpec};

use crate::{Bus, BusError};

impl Bus {
    pub async fn provision(&self) -> Result<(), BusError> {
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
                Retention::Interest => stream::RetentionPolicy::Interest,
                Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
                Retention::Limits => stream::RetentionPolicy::Limits,
            },
            max_age: Duration::from_secs(spec.max_age_secs),
            max_messages_per_subject: if spec.max_msgs_per_subject > 0 { spec.max_msgs_per_subject } else { -1 },
            duplicate_window: Duration::from_secs(spec.duplicate_window_secs),
            storage: stream::StorageType::File,
            allow_direct: true,
            ..Default::default()
        }
    }

    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<(), BusError> {
        let config = self.stream_config(spec);
        let name = config.name.clone();
        let err =
            |e: &dyn std::fmt::Display| BusError::Provision { what: format!("stream {name}"), detail: e.to_string() };
        match self.js.get_stream(&name).await {
            Ok(mut existing) => {
                let info = existing.info().await.map_err(|e| err(&e))?;
                let current = &info.config;
                if current.subjects != config.subjects
                    || current.max_age != config.max_age
                    || current.max_messages_per_subject != config.max_messages_per_subject
                    || current.duplicate_window != config.duplicate_window
                {
                    self.js.update_stream(config).await.map_err(|e| err(&e))?;
                }
                Ok(())
            }
            Err(_) => match self.js.create_stream(config.clone()).await {
                Ok(_) => Ok(()),
                // Another replica created it between our get and create.
                Err(_) if self.js.get_stream(&name).await.is_ok() => Ok(()),
                Err(e) => Err(err(&e)),
            },
        }
    }

    pub(crate) fn consumer_config(&self, spec: &ConsumerSpec) -> consumer::pull::Config {
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

    async fn ensure_consumer(&self, spec: &ConsumerSpec) -> Result<(), BusError> {
        let stream_name = self.ns.stream_name(spec.stream);
        let err = |e: &dyn std::fmt::Display| BusError::Provision {
            what: format!("consumer {stream_name}/{}", spec.durable),
            detail: e.to_string(),
        };
        let stream = self.js.get_stream(&stream_name).await.map_err(|e| err(&e))?;
        stream
            .get_or_create_consumer::<consumer::pull::Config>(spec.durable, self.consumer_config(spec))
            .await
            .map_err(|e| err(&e))?;
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
