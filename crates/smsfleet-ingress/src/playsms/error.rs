//! The failure of a playSMS op: an ERR code and, for the account admin
//! ops, an `info` text. playSMS's own text for the code (`error_string`)
//! comes from its table in `smsfleet_playsms::envelope`, looked up when the
//! reply is rendered.
//!
//! The accounts role answers with what went wrong ([`AccountError`]); this
//! is the one place that turns it into the playSMS code and `info` text of
//! the op that asked (byte for byte what playSMS answers).

use smsfleet_contract::{AccountCommand, AccountReply};
use smsfleet_domain::account::{AccountError, normalize_username};

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
/// onto an ERR: the refusal's code for `cmd` (with its `info`), else
/// `failed` (the op's "fail to …" code), also when the role could not be
/// reached.
pub(crate) fn account_error(cmd: &AccountCommand, reply: Option<AccountReply>, failed: u16) -> ApiError {
    match reply {
        Some(AccountReply::Refused(e)) => {
            let (code, info) = playsms_refusal(cmd, &e);
            ApiError { code, info }
        }
        Some(_) | None => ApiError::new(failed),
    }
}

/// playSMS's code, and its `info` text where it sends one.
pub(crate) fn playsms_refusal(cmd: &AccountCommand, e: &AccountError) -> (u16, Option<String>) {
    use AccountError as E;
    let info = |code: u16, text: String| (code, Some(text));
    match cmd {
        // playSMS answers ERR 100 when the update fails.
        AccountCommand::SetToken { .. } | AccountCommand::UseLoginKey { .. } => (100, None),
        AccountCommand::SetBanned { banned, .. } => {
            let (unknown, failed) = if *banned { (611, 612) } else { (613, 614) };
            (if *e == E::UnknownAccount { unknown } else { failed }, None)
        }
        AccountCommand::Add(add) => match e {
            E::MissingField => (603, None),
            E::PasswordTooShort => info(604, password_too_short()),
            E::InvalidUsername { username } => info(604, invalid_username(username)),
            E::InvalidEmail { email } => info(604, format!("Your email format is invalid ({email})")),
            E::UsernameTaken { username } => info(604, format!("Account already exists (username: {username})")),
            E::EmailTaken { email } => info(604, email_taken(email)),
            E::MobileTaken { mobile } => info(604, mobile_taken(mobile)),
            E::InvalidIpList { list } => info(604, format!("Invalid webservices IP allow-list ({list})")),
            E::InvalidToken => info(604, "Invalid webservices token (letters and digits only)".to_owned()),
            E::InvalidSmppPassword => info(604, smpp_password_invalid()),
            _ => {
                let username = normalize_username(add.username.trim()).unwrap_or_default();
                info(604, format!("Fail to add account (username: {username})"))
            }
        },
        AccountCommand::Remove { .. } => match e {
            E::UnknownAccount => (605, None),
            E::Immune { username } => info(606, format!("User is immune to deletion (username: {username})")),
            E::HasSubusers => {
                info(606, "Unable to delete this user until all subusers under this user have been removed".to_owned())
            }
            _ => (606, None),
        },
        AccountCommand::SetParent { .. } => (if *e == E::UnknownAccount { 607 } else { 608 }, None),
        AccountCommand::Preferences { .. } => match e {
            E::UnknownAccount | E::NothingToChange => (615, None),
            E::InvalidEmail { email } => info(616, format!("Your email format is invalid ({email})")),
            E::EmailTaken { email } => info(616, email_taken(email)),
            E::MobileTaken { mobile } => info(616, mobile_taken(mobile)),
            E::PasswordTooShort => info(616, password_too_short()),
            E::InvalidSmppPassword => info(616, smpp_password_invalid()),
            _ => (616, None),
        },
        AccountCommand::Configuration { .. } => match e {
            E::UnknownAccount | E::NothingToChange => (617, None),
            E::InvalidTimezone => info(618, "Invalid timezone".to_owned()),
            E::FooterTooLong => info(618, "Footer is too long (30 characters at most)".to_owned()),
            E::InvalidLocalLength => info(618, "Invalid local number length".to_owned()),
            E::SenderNotApproved => info(618, "Invalid sender ID".to_owned()),
            _ => (618, None),
        },
        AccountCommand::SetLoginKey { .. } => (626, None),
        AccountCommand::AddStop { .. } => (if *e == E::AlreadyListed { 627 } else { 102 }, None),
    }
}

// playSMS's `user_add_validate` texts, shared by accountadd and accountpref
// (playSMS validates both with it).

fn password_too_short() -> String {
    format!("Password should be at least {} characters", smsfleet_domain::account::MIN_NEW_PASSWORD_BYTES)
}

/// Our extension `data_smpp_password`: SMPP 3.4 limits it to 8 characters.
fn smpp_password_invalid() -> String {
    let max = smsfleet_domain::account::MAX_SMPP_PASSWORD_LEN;
    format!("SMPP password must be 1 to {max} printable characters without spaces")
}

fn invalid_username(username: &str) -> String {
    let max = smsfleet_domain::account::MAX_USERNAME_LEN;
    if username.trim().len() > max {
        format!("Username must be at least 3 characters and maximum {max} characters ({username})")
    } else {
        format!("Valid characters for username are alphabets, numbers, dot or dash ({username})")
    }
}

fn email_taken(email: &str) -> String {
    format!("Account with this email already exists (email: {email})")
}

fn mobile_taken(mobile: &str) -> String {
    format!("Account with this mobile already exists (mobile: {mobile})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_replies_to_codes() {
        let conf = AccountCommand::Configuration { username: "x".into(), changes: Default::default() };
        let refused = AccountReply::Refused(AccountError::InvalidTimezone);
        assert_eq!(
            account_error(&conf, Some(refused), 618),
            ApiError { code: 618, info: Some("Invalid timezone".into()) }
        );
        let key = AccountCommand::SetLoginKey { username: "x".into() };
        assert_eq!(account_error(&key, None, 626), ApiError::new(626));
    }

    #[test]
    fn the_same_error_gets_each_ops_code() {
        let unknown = AccountError::UnknownAccount;
        let remove = AccountCommand::Remove { username: "x".into() };
        let parent = AccountCommand::SetParent { username: "x".into(), parent: "y".into() };
        let ban = AccountCommand::SetBanned { username: "x".into(), banned: true };
        let unban = AccountCommand::SetBanned { username: "x".into(), banned: false };
        assert_eq!(playsms_refusal(&remove, &unknown), (605, None));
        assert_eq!(playsms_refusal(&parent, &unknown), (607, None));
        assert_eq!(playsms_refusal(&ban, &unknown), (611, None));
        assert_eq!(playsms_refusal(&unban, &AccountError::NotAllowed), (614, None));
    }

    #[test]
    fn add_and_pref_refusals_use_playsms_words() {
        let add = AccountCommand::Add(Box::default());
        let pref = AccountCommand::Preferences { username: "x".into(), changes: Default::default() };
        let email = AccountError::EmailTaken { email: "a@example.com".into() };
        let mobile = AccountError::MobileTaken { mobile: "+628111".into() };
        let short = AccountError::PasswordTooShort;
        let text = |cmd: &AccountCommand, e: &AccountError| playsms_refusal(cmd, e);
        let dup_email = Some("Account with this email already exists (email: a@example.com)".to_owned());
        assert_eq!(text(&add, &email), (604, dup_email.clone()));
        assert_eq!(text(&pref, &email), (616, dup_email));
        let dup_mobile = Some("Account with this mobile already exists (mobile: +628111)".to_owned());
        assert_eq!(text(&add, &mobile), (604, dup_mobile.clone()));
        assert_eq!(text(&pref, &mobile), (616, dup_mobile));
        let short_text = Some("Password should be at least 4 characters".to_owned());
        assert_eq!(text(&add, &short), (604, short_text.clone()));
        assert_eq!(text(&pref, &short), (616, short_text));
        let bad = AccountError::InvalidUsername { username: "a b".into() };
        assert_eq!(
            text(&add, &bad).1.as_deref(),
            Some("Valid characters for username are alphabets, numbers, dot or dash (a b)")
        );
        let long = AccountError::InvalidUsername { username: "a".repeat(31) };
        assert_eq!(
            text(&add, &long).1,
            Some(format!("Username must be at least 3 characters and maximum 30 characters ({})", "a".repeat(31)))
        );
    }

    #[test]
    fn a_failed_add_names_the_normalized_username() {
        let add = AccountCommand::Add(Box::new(smsfleet_contract::NewAccountCommand {
            username: " Alice ".into(),
            ..Default::default()
        }));
        let (code, info) = playsms_refusal(&add, &AccountError::StorageFailure);
        assert_eq!((code, info.as_deref()), (604, Some("Fail to add account (username: alice)")));
    }
}
