#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    #[error("cannot provision {what}: {detail}")]
    Provision { what: String, detail: String },
    #[error("publish failed: {0}")]
    Publish(String),
    #[error("consumer failed: {0}")]
    Consume(String),
    #[error("request to {subject} failed: {detail}")]
    Request { subject: String, detail: String },
    #[error("cannot encode or decode {schema}: {detail}")]
    Codec { schema: &'static str, detail: String },
}
