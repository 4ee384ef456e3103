//! Account rules that do not need storage: roles, username and token
//! shapes, and what can go wrong when an account changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// playSMS's `status` column: 2 admin, 3 user, 4 subuser (with a parent).
// Named `AccountRole` in the bus schemas (`proto/`), which predate it; a
// plain comment, so the schema stays a bare string enum.
// A plain user unless said otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "AccountRole")]
pub enum Role {
    Admin,
    #[default]
    User,
    Subuser,
}

impl Role {
    pub fn code(self) -> i16 {
        match self {
            Role::Admin => 2,
            Role::User => 3,
            Role::Subuser => 4,
        }
    }

    /// playSMS forces any status other than 2 or 3 to subuser.
    pub fn from_code_lenient(code: &str) -> Role {
        match code.trim() {
            "2" => Role::Admin,
            "3" => Role::User,
            _ => Role::Subuser,
        }
    }

    pub fn from_code(code: i16) -> Option<Role> {
        match code {
            2 => Some(Role::Admin),
            3 => Some(Role::User),
            4 => Some(Role::Subuser),
            _ => None,
        }
    }

    /// Whether `parentset` may make this account someone's parent: playSMS
    /// sets a parent only when it is a user (status 3), never an admin or a
    /// subuser (ERR 608).
    pub fn may_be_set_as_parent(self) -> bool {
        self == Role::User
    }
}

/// Reseller billing as playSMS does it: a subuser whose parent is an admin
/// or a user spends its parent's credit too, so a send needs both balances
/// to cover it and lowers both. Any other account pays alone.
pub fn bills_parent(account: Role, parent: Role) -> bool {
    account == Role::Subuser && matches!(parent, Role::Admin | Role::User)
}

/// Why the accounts role refused or failed an account change. The role says
/// what went wrong; each front door turns it into its own codes and texts
/// (the playSMS ones live in the ingress).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum AccountError {
    #[error("a required field is missing")]
    MissingField,
    #[error("invalid username {username:?}")]
    InvalidUsername { username: String },
    #[error("invalid email {email:?}")]
    InvalidEmail { email: String },
    #[error("username {username:?} is taken")]
    UsernameTaken { username: String },
    #[error("email {email:?} is in use by another account")]
    EmailTaken { email: String },
    #[error("mobile {mobile:?} is in use by another account")]
    MobileTaken { mobile: String },
    #[error("invalid webservices IP allow-list {list:?}")]
    InvalidIpList { list: String },
    #[error("invalid webservices token")]
    InvalidToken,
    #[error("password too short")]
    PasswordTooShort,
    /// SMPP 3.4 carries at most 8 password characters (9 with the NUL).
    #[error("SMPP password must be 1 to 8 printable ASCII characters")]
    InvalidSmppPassword,
    #[error("invalid timezone")]
    InvalidTimezone,
    #[error("footer too long")]
    FooterTooLong,
    #[error("invalid local number length")]
    InvalidLocalLength,
    #[error("sender ID not approved for the account")]
    SenderNotApproved,
    #[error("unknown account")]
    UnknownAccount,
    #[error("nothing to change")]
    NothingToChange,
    /// The first admin cannot be removed.
    #[error("account {username:?} cannot be removed")]
    Immune { username: String },
    #[error("the account still has subusers")]
    HasSubusers,
    /// The change makes no sense for this account (the first admin banned,
    /// an account that is not banned unbanned, an account its own parent).
    #[error("not allowed for this account")]
    NotAllowed,
    #[error("login refused")]
    LoginRefused,
    #[error("invalid phone number")]
    InvalidNumber,
    #[error("already on the list")]
    AlreadyListed,
    /// Postgres or hashing failed; the detail is in the accounts role's log.
    #[error("storage failure")]
    StorageFailure,
}

pub const MAX_USERNAME_LEN: usize = 30;

/// Usernames are stored lower-case and matched case-insensitively, which is
/// what playSMS 1.4.7 does through MySQL's collation.
pub fn normalize_username(raw: &str) -> Option<String> {
    let u = raw.trim().to_ascii_lowercase();
    let ok = !u.is_empty()
        && u.len() <= MAX_USERNAME_LEN
        && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    ok.then_some(u)
}

/// playSMS accepts only non-empty alphanumeric tokens; anything else fails
/// authentication before any lookup.
pub fn token_shape_ok(token: &str) -> bool {
    !token.is_empty() && token.len() <= 255 && token.chars().all(char::is_alphanumeric)
}

/// `u` that looks like an email is mapped to the account with that email.
pub fn looks_like_email(u: &str) -> bool {
    match u.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.split_once('.').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        }
        None => false,
    }
}

/// playSMS refuses passwords of four characters or fewer at login.
pub fn password_long_enough(p: &str) -> bool {
    p.trim().chars().count() > 4
}

/// Shortest password `accountadd` and `accountpref` store, in bytes after
/// trimming (PHP's `strlen`).
pub const MIN_NEW_PASSWORD_BYTES: usize = 4;

/// playSMS's rule for a password being set: at least four bytes. Looser
/// than the login rule ([`password_long_enough`]), as in playSMS, where a
/// four-character password can be set but not used for `get_token`.
pub fn new_password_acceptable(p: &str) -> bool {
    p.trim().len() >= MIN_NEW_PASSWORD_BYTES
}

/// Longest SMPP bind password: SMPP 3.4's `password` is a C-string of at
/// most 9 octets with its NUL.
pub const MAX_SMPP_PASSWORD_LEN: usize = 8;

/// An SMPP password clients can send: 1 to 8 printable ASCII characters
/// (the codec refuses anything else in a bind).
pub fn smpp_password_acceptable(p: &str) -> bool {
    !p.is_empty() && p.len() <= MAX_SMPP_PASSWORD_LEN && p.bytes().all(|b| b.is_ascii_graphic())
}

/// playSMS's email check (`core_sanitize` + filter_var): one `@`, a dotted
/// domain, no spaces or control characters.
pub fn email_valid(email: &str) -> bool {
    let ok_chars = email.chars().all(|c| c.is_ascii_graphic());
    ok_chars && email.matches('@').count() == 1 && looks_like_email(email) && !email.ends_with('.')
}

/// The one sender-id rule: a number of up to `max_digits` digits with an
/// optional `+`, or up to 11 ASCII letters, digits and spaces. The doors
/// differ only in these two parameters, each fixed by the API it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderRule {
    pub max_digits: usize,
    /// An alphanumeric id must hold at least one letter.
    pub letter_required: bool,
}

impl SenderRule {
    /// An account's configured sender (`accountconf data_sender`).
    pub const ACCOUNT: SenderRule = SenderRule { max_digits: 16, letter_required: true };
    /// playSMS `op=pv` `from` (an invalid one falls back to the account's).
    pub const PLAYSMS: SenderRule = SenderRule { max_digits: 16, letter_required: false };
    /// The bulk API's `source` (1707 otherwise): it documents 18 digits.
    pub const BULK: SenderRule = SenderRule { max_digits: 18, letter_required: false };

    pub fn allows(&self, sender: &str) -> bool {
        let digits = sender.strip_prefix('+').unwrap_or(sender);
        let is_number =
            !digits.is_empty() && digits.len() <= self.max_digits && digits.bytes().all(|b| b.is_ascii_digit());
        let is_alpha = !sender.is_empty()
            && sender.len() <= 11
            && sender.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
            && (!self.letter_required || sender.bytes().any(|b| b.is_ascii_alphabetic()));
        is_number || is_alpha
    }
}

/// Sender IDs an SMSC accepts for an account ([`SenderRule::ACCOUNT`]).
pub fn sender_id_shape_ok(sender: &str) -> bool {
    SenderRule::ACCOUNT.allows(sender)
}

/// A new account's footer in playSMS: `@username`.
pub fn default_footer(username: &str) -> String {
    format!("@{username}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(email_valid("alice@example.com"));
        assert!(!email_valid("not-an-email"));
        assert!(!email_valid("a b@example.com"));
        assert!(!email_valid("a@b@example.com"));
        assert!(!email_valid("a@example."));
    }

    #[test]
    fn sender_ids() {
        assert!(sender_id_shape_ok("ALICECO"));
        assert!(sender_id_shape_ok("+6281234567890"));
        assert!(!sender_id_shape_ok("TWELVECHARSX"));
        assert!(!sender_id_shape_ok(""));
        assert!(!sender_id_shape_ok("a;b"));
        assert!(!sender_id_shape_ok("12 34"));
    }

    #[test]
    fn sender_rules_of_the_doors() {
        let (pv, bulk) = (SenderRule::PLAYSMS, SenderRule::BULK);
        assert!(pv.allows("ACME") && pv.allows("12 34") && pv.allows("+1234567890123456"));
        assert!(!pv.allows("12345678901234567") && !pv.allows("this-is-not-valid") && !pv.allows(""));
        assert!(bulk.allows("+123456789012345678") && bulk.allows("ABCDEFGHIJK"));
        assert!(!bulk.allows("1234567890123456789") && !bulk.allows("ABCDEFGHIJKL") && !bulk.allows("AC&ME"));
        assert!(!bulk.allows("+"));
    }

    #[test]
    fn usernames() {
        assert_eq!(normalize_username(" ADMIN ").as_deref(), Some("admin"));
        assert_eq!(normalize_username("a b"), None);
        assert_eq!(normalize_username(""), None);
    }

    #[test]
    fn tokens_and_emails() {
        assert!(token_shape_ok("abc123"));
        assert!(!token_shape_ok("abc-123"));
        assert!(!token_shape_ok(""));
        assert!(looks_like_email("noreply@playsms.org"));
        assert!(!looks_like_email("admin"));
        assert!(!password_long_enough("abcd"));
        assert!(password_long_enough("abcde"));
        assert!(!new_password_acceptable(" abc "));
        assert!(new_password_acceptable("abcd"));
        assert!(smpp_password_acceptable("secret08"));
        assert!(!smpp_password_acceptable("ninechars"));
        assert!(!smpp_password_acceptable(""));
        assert!(!smpp_password_acceptable("a b"));
    }

    #[test]
    fn only_users_become_parents_and_subusers_bill_theirs() {
        assert!(Role::User.may_be_set_as_parent());
        assert!(!Role::Admin.may_be_set_as_parent());
        assert!(!Role::Subuser.may_be_set_as_parent());
        assert!(bills_parent(Role::Subuser, Role::User));
        assert!(bills_parent(Role::Subuser, Role::Admin));
        assert!(!bills_parent(Role::Subuser, Role::Subuser));
        assert!(!bills_parent(Role::User, Role::User));
    }

    #[test]
    fn roles() {
        assert_eq!(Role::from_code_lenient("9"), Role::Subuser);
        assert_eq!(Role::from_code_lenient("2"), Role::Admin);
        assert_eq!(Role::Admin.code(), 2);
    }
}
