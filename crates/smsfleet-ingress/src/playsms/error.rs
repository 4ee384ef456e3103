//! The failure of a playSMS op: an ERR code and, for the account admin
//! ops, an `info` text. playSMS's own text for the code (`error_string`)
//! comes from its table in `smsfleet_playsms::envelope`, looked up when the
//! reply is rendered.

use smsfleet_contract::AccountReply;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub code: u16,
    /// Shown between `error` and `error_string` (accountadd and friends).
    pub info: Option<String>,
}

impl ApiError {
    pub fn new(code: u16) -> Self {
        Self { code, info: None }
    }
}

/// The one mapping of an accounts-role answer that is not the op's success
/// onto an ERR: the code it names (with its `info`), else `failed` (the
/// op's "fail to …" code), also when the role could not be reached.
pub(crate) fn account_error(reply: Option<AccountReply>, failed: u16) -> ApiError {
    match reply {
        Some(AccountReply::Refused { code, info }) => ApiError { code, info: Some(info) },
        Some(AccountReply::Error(code)) => ApiError::new(code),
        Some(_) | None => ApiError::new(failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_replies_to_codes() {
        assert_eq!(account_error(Some(AccountReply::Error(609)), 608), ApiError::new(609));
        let refused = AccountReply::Refused { code: 604, info: "Invalid timezone".into() };
        assert_eq!(account_error(Some(refused), 618), ApiError { code: 604, info: Some("Invalid timezone".into()) });
        assert_eq!(account_error(None, 626), ApiError::new(626));
    }
}
