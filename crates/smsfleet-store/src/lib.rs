//! Postgres access for every role: migrations and plain query functions,
//! one module per table or aggregate. Roles never write SQL; the
//! queries are checked by the integration tests against a real PostgreSQL.
//!
//! Batch writes use `unnest` over arrays so one statement carries a whole
//! batch of messages.

pub mod accounts;
pub mod callbacks;
pub mod dispatch;
pub mod incoming;
pub mod keywords;
pub mod ledger;
pub mod phonebook;
pub mod projection;
pub mod rates;
pub mod scheduler;
pub mod smpp_receipts;
pub mod stoplist;

use std::time::Duration;

use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
pub use sqlx::{PgConnection, PgPool};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid data: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A text column of a batch insert. Postgres text cannot hold U+0000 and
/// refuses the whole statement over one, so a NUL that got past the edge
/// would dead-letter a batch of accepted messages: it is stored as U+FFFD
/// instead (the text is otherwise kept; only rows with a NUL are copied).
pub(crate) fn text_column<'a>(values: impl Iterator<Item = &'a str>) -> Vec<std::borrow::Cow<'a, str>> {
    values.map(|v| if v.contains('\0') { v.replace('\0', "\u{FFFD}").into() } else { v.into() }).collect()
}

/// Opens a pool. Waits for the server for a while: in Kubernetes the
/// database may start after us.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool> {
    let opts = PgConnectOptions::from_str(url)?;
    let mut last = None;
    for _ in 0..60 {
        match PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone())
            .await
        {
            Ok(pool) => return Ok(pool),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    Err(StoreError::Db(last.unwrap_or(sqlx::Error::PoolTimedOut)))
}

pub async fn migrate(pool: &PgPool) -> Result<()> {
    sqlx::migrate!("../../migrations").run(pool).await?;
    Ok(())
}

/// Creates `database` on the server of `admin_url` unless it exists.
pub async fn create_database_if_missing(admin_url: &str, database: &str) -> Result<()> {
    if !database.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StoreError::Invalid(format!("database name {database:?}")));
    }
    let pool = PgPoolOptions::new().max_connections(1).connect(admin_url).await?;
    let exists: Option<(i32,)> =
        sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1").bind(database).fetch_optional(&pool).await?;
    if exists.is_none() {
        let created = sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {database}"))).execute(&pool).await;
        if let Err(e) = created {
            // A concurrent creator won the race.
            let again: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(database)
                .fetch_optional(&pool)
                .await?;
            if again.is_none() {
                return Err(e.into());
            }
        }
    }
    pool.close().await;
    Ok(())
}

/// For `/readyz`.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}
