//! The phonebook's write side: CSV import and group changes from the
//! operator CLI, and the group snapshots on the state stream that let every
//! ingress replica expand `#CODE` in `pv` from memory. Postgres is written
//! first; the affected groups are published after the commit, and all of
//! them again whenever the accounts role starts.
//!
//! CSV format (header required, columns in any order, only `mobile`
//! required): `name,mobile,email,tags,groups`, where `groups` is a
//! `;`-separated list of group codes.

use std::collections::HashMap;
use std::io::Read;

use smsfleet_bus::Bus;
use smsfleet_contract::{GroupState, SCHEMA_VERSION};
use smsfleet_store::PgPool;
use smsfleet_store::phonebook::{self as store, GroupRow, GroupSnapshot, ImportContact, ImportOutcome};

/// Most members per group: a group travels as one state message, and NATS
/// refuses payloads over 1 MB by default (20,000 numbers are about 400 KB).
pub const MAX_GROUP_MEMBERS: usize = 20_000;

/// Longest group code; codes are letters, digits, `_` and `-`.
const MAX_CODE_LEN: usize = 40;

const COLUMNS: [&str; 5] = ["name", "mobile", "email", "tags", "groups"];

#[derive(Debug, thiserror::Error)]
pub enum PhonebookError {
    /// A bad CSV line; nothing was written.
    #[error("line {line}: {reason}")]
    Line { line: u64, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] smsfleet_store::StoreError),
    #[error(transparent)]
    Bus(#[from] smsfleet_bus::BusError),
}

/// Lets the accounts role's start-up republish use `?`.
impl From<PhonebookError> for crate::AccountsError {
    fn from(e: PhonebookError) -> Self {
        match e {
            PhonebookError::Store(e) => Self::Store(e),
            PhonebookError::Bus(e) => Self::Bus(e),
            other => Self::Invalid(other.to_string()),
        }
    }
}

/// A group code as stored: trimmed, upper-case, letters, digits, `_`, `-`.
pub fn normalize_code(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    let ok = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(code)
}

/// Reads and checks a whole phonebook CSV before anything is written.
pub fn parse_csv<R: Read>(input: R) -> Result<Vec<ImportContact>, PhonebookError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::All).from_reader(input);
    let headers = reader.headers().map_err(|e| PhonebookError::Line { line: 1, reason: e.to_string() })?.clone();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        // Spreadsheets often start a UTF-8 file with a byte-order mark.
        let h = h.trim_start_matches('\u{feff}');
        let name = COLUMNS.iter().find(|c| c.eq_ignore_ascii_case(h)).ok_or_else(|| PhonebookError::Line {
            line: 1,
            reason: format!("unknown column {h:?} (expected {})", COLUMNS.join(",")),
        })?;
        if index.insert(name, i).is_some() {
            return Err(PhonebookError::Line { line: 1, reason: format!("column {name:?} appears twice") });
        }
    }
    if !index.contains_key("mobile") {
        return Err(PhonebookError::Line { line: 1, reason: "the header has no mobile column".to_owned() });
    }
    let mut contacts = Vec::new();
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            PhonebookError::Line { line, reason: e.to_string() }
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let field = |name: &str| index.get(name).and_then(|i| record.get(*i)).unwrap_or("").to_owned();
        let bad = |reason: String| PhonebookError::Line { line, reason };
        let mobile = field("mobile");
        if mobile.is_empty() {
            return Err(bad("mobile is empty".to_owned()));
        }
        if smsfleet_domain::Msisdn::clean(&mobile).is_none() {
            return Err(bad(format!("mobile {mobile:?} is not a phone number")));
        }
        if let Some(first) = first_line_of.insert(mobile.clone(), line) {
            return Err(bad(format!("mobile {mobile:?} already on line {first}")));
        }
        let mut groups: Vec<String> = Vec::new();
        for raw in field("groups").split(';').filter(|g| !g.trim().is_empty()) {
            let code = normalize_code(raw)
                .ok_or_else(|| bad(format!("group code {raw:?}: use 1 to {MAX_CODE_LEN} letters, digits, _ or -")))?;
            if !groups.contains(&code) {
                groups.push(code);
            }
        }
        contacts.push(ImportContact {
            name: field("name"),
            mobile,
            email: field("email"),
            tags: field("tags"),
            groups,
        });
    }
    Ok(contacts)
}

/// Imports parsed contacts for `uid` in one transaction, then publishes the
/// groups whose membership changed.
pub async fn import(
    pool: &PgPool,
    bus: &Bus,
    uid: i64,
    contacts: &[ImportContact],
) -> Result<ImportOutcome, PhonebookError> {
    let outcome = store::import(pool, uid, contacts, MAX_GROUP_MEMBERS as i64).await?;
    publish_groups(pool, bus, Some(&outcome.touched_gpids)).await?;
    Ok(outcome)
}

/// Creates a group (or renames it) and publishes it.
pub async fn add_group(pool: &PgPool, bus: &Bus, uid: i64, code: &str, name: &str) -> Result<GroupRow, PhonebookError> {
    let code = normalize_code(code)
        .ok_or_else(|| PhonebookError::Invalid(format!("group code {code:?}: use letters, digits, _ or -")))?;
    let name = if name.trim().is_empty() { code.clone() } else { name.trim().to_owned() };
    let row = store::add_group(pool, uid, &code, &name).await?;
    publish_groups(pool, bus, Some(&[row.gpid])).await?;
    Ok(row)
}

/// An account's groups (with members) and contacts, for the operator's listing.
pub async fn list(pool: &PgPool, uid: i64) -> Result<(Vec<GroupSnapshot>, Vec<store::ContactRow>), PhonebookError> {
    Ok((store::groups_of(pool, uid).await?, store::contacts_of(pool, uid).await?))
}

/// Removes a group (its contacts stay) and publishes the removal.
pub async fn remove_group(pool: &PgPool, bus: &Bus, uid: i64, code: &str) -> Result<GroupRow, PhonebookError> {
    let normalized = normalize_code(code).unwrap_or_default();
    let row = store::remove_group(pool, uid, &normalized)
        .await?
        .ok_or_else(|| PhonebookError::Invalid(format!("no group {code:?}")))?;
    let snapshot = GroupSnapshot { group: row.clone(), members: Vec::new() };
    publish(bus, &snapshot, true).await?;
    Ok(row)
}

/// Publishes the given groups, or every group (`None`, at start-up so a
/// fresh or purged state stream is complete).
pub async fn publish_groups(pool: &PgPool, bus: &Bus, gpids: Option<&[i64]>) -> Result<usize, PhonebookError> {
    let snapshots = store::group_snapshots(pool, gpids).await?;
    for s in &snapshots {
        publish(bus, s, false).await?;
    }
    Ok(snapshots.len())
}

pub fn to_state(s: &GroupSnapshot, deleted: bool) -> GroupState {
    GroupState {
        v: SCHEMA_VERSION,
        uid: s.group.uid,
        gpid: s.group.gpid,
        revision: s.group.revision,
        code: s.group.code.clone(),
        name: s.group.name.clone(),
        members: s.members.clone(),
        deleted,
    }
}

async fn publish(bus: &Bus, s: &GroupSnapshot, deleted: bool) -> Result<(), PhonebookError> {
    let subject = bus.namespace().group_state_subject(s.group.uid, s.group.gpid);
    bus.publish_state(subject, &to_state(s, deleted)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn line_of(e: PhonebookError) -> (u64, String) {
        match e {
            PhonebookError::Line { line, reason } => (line, reason),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reads_the_documented_header() {
        let csv = "name,mobile,email,tags,groups\n\
                   Andy Friend,+628111000101,andy@example.com,friend,friends\n\
                   Anita Friend,08111000102,anita@example.com,,FRIENDS; family ;friends\n\
                   \"Person, Other\",628111000103,,,\n";
        let rows = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].mobile, "+628111000101");
        assert_eq!(rows[0].groups, vec!["FRIENDS"]);
        assert_eq!(rows[1].tags, "");
        assert_eq!(rows[1].groups, vec!["FRIENDS", "FAMILY"]);
        assert_eq!(rows[2].name, "Person, Other");
        assert!(rows[2].groups.is_empty());
    }

    #[test]
    fn columns_in_any_order_and_only_mobile_required() {
        let rows = parse_csv("Mobile,Name\n0811 1000 102,Anita\n".as_bytes()).unwrap();
        assert_eq!(rows[0].mobile, "0811 1000 102");
        assert_eq!(rows[0].name, "Anita");
        assert_eq!(rows[0].email, "");
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let rows = parse_csv("\u{feff}name,mobile\nAndy,+628111000101\n".as_bytes()).unwrap();
        assert_eq!(rows[0].name, "Andy");
    }

    #[test]
    fn bad_rows_name_their_line() {
        let (line, reason) = line_of(parse_csv("name,mobile\na,1\nb,\n".as_bytes()).unwrap_err());
        assert_eq!((line, reason.as_str()), (3, "mobile is empty"));
        let (line, reason) = line_of(parse_csv("name,mobile\na,1\nb,abc\n".as_bytes()).unwrap_err());
        assert_eq!(line, 3);
        assert!(reason.contains("not a phone number"));
        let (line, reason) = line_of(parse_csv("mobile\n1\n2\n1\n".as_bytes()).unwrap_err());
        assert_eq!(line, 4);
        assert!(reason.contains("already on line 2"));
        let (line, reason) = line_of(parse_csv("mobile,groups\n1,a b\n".as_bytes()).unwrap_err());
        assert_eq!(line, 2);
        assert!(reason.contains("group code"));
        let (line, _) = line_of(parse_csv("mobile,name\n1,a,extra\n".as_bytes()).unwrap_err());
        assert_eq!(line, 2);
    }

    #[test]
    fn bad_headers() {
        let (line, reason) = line_of(parse_csv("name,phone\na,1\n".as_bytes()).unwrap_err());
        assert_eq!(line, 1);
        assert!(reason.contains("unknown column \"phone\""));
        let (_, reason) = line_of(parse_csv("name,email\na,b\n".as_bytes()).unwrap_err());
        assert!(reason.contains("no mobile column"));
        let (_, reason) = line_of(parse_csv("mobile,MOBILE\n1,2\n".as_bytes()).unwrap_err());
        assert!(reason.contains("twice"));
    }

    #[test]
    fn codes_are_upper_case_words() {
        assert_eq!(normalize_code(" friends "), Some("FRIENDS".to_owned()));
        assert_eq!(normalize_code("team_2-b"), Some("TEAM_2-B".to_owned()));
        assert_eq!(normalize_code(""), None);
        assert_eq!(normalize_code("#X"), None);
        assert_eq!(normalize_code(&"A".repeat(41)), None);
    }
}
