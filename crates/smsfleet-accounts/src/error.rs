//! The accounts role's failures (storage, bus, secrets, bad operator input).

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Context(#[from] smsfleet_runtime::MissingResource),
    #[error(transparent)]
    Store(#[from] smsfleet_store::StoreError),
    #[error(transparent)]
    Bus(#[from] smsfleet_bus::BusError),
    #[error(transparent)]
    Secrets(#[from] smsfleet_secrets::SecretsError),
    #[error("invalid account: {0}")]
    Invalid(String),
}
