//! Who owns which incoming keyword, as the operator changes it (`smsfleet
//! keyword ...`). Routing reads the same table for every message, so a
//! change applies to the next message without a restart.

use smsfleet_domain::keyword::normalize_keyword;
use smsfleet_store::{PgPool, StoreError, keywords};

#[derive(Debug, thiserror::Error)]
pub enum KeywordError {
    #[error("keyword {0:?}: one word of at most 50 characters")]
    Invalid(String),
    #[error("keyword {0} is taken")]
    Taken(String),
    #[error("no keyword {0}")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn parse(raw: &str) -> Result<String, KeywordError> {
    normalize_keyword(raw).ok_or_else(|| KeywordError::Invalid(raw.to_owned()))
}

/// Registers `raw` for `uid`; returns the keyword as stored (upper-case).
pub async fn add_keyword(pool: &PgPool, raw: &str, uid: i64) -> Result<String, KeywordError> {
    let keyword = parse(raw)?;
    match keywords::add(pool, &keyword, uid).await {
        Ok(()) => Ok(keyword),
        Err(StoreError::Conflict(_)) => Err(KeywordError::Taken(keyword)),
        Err(e) => Err(e.into()),
    }
}

/// Removes `raw`; returns the keyword as stored.
pub async fn remove_keyword(pool: &PgPool, raw: &str) -> Result<String, KeywordError> {
    let keyword = parse(raw)?;
    if keywords::remove(pool, &keyword).await? { Ok(keyword) } else { Err(KeywordError::Unknown(keyword)) }
}

/// Every keyword with its owner's uid and username, by keyword.
pub async fn list_keywords(pool: &PgPool) -> Result<Vec<(String, i64, String)>, KeywordError> {
    Ok(keywords::list(pool).await?)
}
