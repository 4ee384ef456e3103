//! Phonebook: contacts and groups per account. Written by the operator CLI
//! (import, group add/remove), read by the query role (`get_contact`,
//! `get_contact_group`) and by the accounts role, which publishes every
//! group with its member numbers to the state stream for `#CODE` in `pv`.

use std::collections::{BTreeSet, HashMap};

use sqlx::PgPool;

use crate::{Result, StoreError};

#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct ContactRow {
    pub pid: i64,
    pub uid: i64,
    pub name: String,
    pub mobile: String,
    pub email: String,
    pub tags: String,
}

#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct GroupRow {
    pub gpid: i64,
    pub uid: i64,
    pub name: String,
    pub code: String,
    pub flag_sender: i16,
    pub revision: i64,
}

/// A group with its members' numbers as stored, in contact order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub group: GroupRow,
    pub members: Vec<String>,
}

/// One contact to import. `groups` are group codes (upper-case) and replace
/// the contact's memberships.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportContact {
    pub name: String,
    pub mobile: String,
    pub email: String,
    pub tags: String,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Contacts inserted or updated.
    pub contacts: usize,
    /// Groups created because a row named an unknown code.
    pub created_groups: Vec<String>,
    /// Groups whose membership may have changed; to be republished.
    pub touched_gpids: Vec<i64>,
}

const GROUP_COLUMNS: &str = "gpid, uid, name, code, flag_sender, revision";

/// Imports contacts in one transaction: all rows or none. A contact is keyed
/// by (uid, mobile), so importing the same file twice changes nothing; the
/// mobiles in one call must be distinct. A group that would end up with
/// more than `max_members` members fails the whole import (its snapshot
/// must fit in one bus message). A fixed number of statements, whatever
/// the size of the file.
pub async fn import(pool: &PgPool, uid: i64, contacts: &[ImportContact], max_members: i64) -> Result<ImportOutcome> {
    let column = |f: fn(&ImportContact) -> &str| contacts.iter().map(f).collect::<Vec<&str>>();
    let mut tx = pool.begin().await?;
    let upserted: Vec<(i64, String)> = sqlx::query_as(
        "INSERT INTO phonebook_contacts (uid, name, mobile, email, tags) \
         SELECT $1, n, m, e, t FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[]) AS u(n, m, e, t) \
         ON CONFLICT (uid, mobile) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, \
         tags = EXCLUDED.tags RETURNING pid, mobile",
    )
    .bind(uid)
    .bind(column(|c| &c.name))
    .bind(column(|c| &c.mobile))
    .bind(column(|c| &c.email))
    .bind(column(|c| &c.tags))
    .fetch_all(&mut *tx)
    .await?;
    let pid_of: HashMap<String, i64> = upserted.into_iter().map(|(pid, mobile)| (mobile, pid)).collect();
    let pids: Vec<i64> = pid_of.values().copied().collect();

    // A row's groups replace the contact's memberships.
    let before: Vec<(i64,)> = sqlx::query_as("DELETE FROM phonebook_members WHERE pid = ANY($1) RETURNING gpid")
        .bind(&pids)
        .fetch_all(&mut *tx)
        .await?;
    let mut touched: BTreeSet<i64> = before.into_iter().map(|(g,)| g).collect();

    let codes: Vec<&str> = contacts
        .iter()
        .flat_map(|c| c.groups.iter().map(String::as_str))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let created: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO phonebook_groups (uid, name, code) SELECT $1, c, c FROM unnest($2::TEXT[]) AS c \
         ON CONFLICT (uid, code) DO NOTHING RETURNING code",
    )
    .bind(uid)
    .bind(&codes)
    .fetch_all(&mut *tx)
    .await?;
    let gpid_of: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT code, gpid FROM phonebook_groups WHERE uid = $1 AND code = ANY($2)")
            .bind(uid)
            .bind(&codes)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let (mut member_gpids, mut member_pids) = (Vec::new(), Vec::new());
    for c in contacts {
        for code in &c.groups {
            if let (Some(gpid), Some(pid)) = (gpid_of.get(code), pid_of.get(&c.mobile)) {
                member_gpids.push(*gpid);
                member_pids.push(*pid);
                touched.insert(*gpid);
            }
        }
    }
    sqlx::query(
        "INSERT INTO phonebook_members (gpid, pid) SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&member_gpids)
    .bind(&member_pids)
    .execute(&mut *tx)
    .await?;

    let gpids: Vec<i64> = touched.into_iter().collect();
    let oversized: Option<(String, i64)> = sqlx::query_as(
        "SELECT g.code, count(*) FROM phonebook_members m JOIN phonebook_groups g USING (gpid) \
         WHERE m.gpid = ANY($1) GROUP BY g.code HAVING count(*) > $2 ORDER BY g.code LIMIT 1",
    )
    .bind(&gpids)
    .bind(max_members)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((code, count)) = oversized {
        return Err(StoreError::Invalid(format!(
            "group {code} would have {count} members; at most {max_members} are allowed"
        )));
    }
    sqlx::query("UPDATE phonebook_groups SET revision = revision + 1 WHERE gpid = ANY($1)")
        .bind(&gpids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut created_groups: Vec<String> = created.into_iter().map(|(code,)| code).collect();
    created_groups.sort();
    Ok(ImportOutcome { contacts: pid_of.len(), created_groups, touched_gpids: gpids })
}

/// Creates a group, or renames it when the code exists.
pub async fn add_group(pool: &PgPool, uid: i64, code: &str, name: &str) -> Result<GroupRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO phonebook_groups (uid, name, code) VALUES ($1, $2, $3) \
         ON CONFLICT (uid, code) DO UPDATE SET name = EXCLUDED.name, \
         revision = phonebook_groups.revision + 1 RETURNING {GROUP_COLUMNS}"
    )))
    .bind(uid)
    .bind(name)
    .bind(code)
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// Deletes a group and its memberships (the contacts stay). Returns the
/// removed group with its revision raised, for the deletion snapshot.
pub async fn remove_group(pool: &PgPool, uid: i64, code: &str) -> Result<Option<GroupRow>> {
    let row: Option<GroupRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM phonebook_groups WHERE uid = $1 AND code = $2 RETURNING {GROUP_COLUMNS}"
    )))
    .bind(uid)
    .bind(code)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|g| GroupRow { revision: g.revision + 1, ..g }))
}

/// Groups with their member numbers: all of them (`gpids` None, for the
/// republish at start-up), or the given ones.
pub async fn group_snapshots(pool: &PgPool, gpids: Option<&[i64]>) -> Result<Vec<GroupSnapshot>> {
    let rows: Vec<SnapshotRow> = sqlx::query_as(
        "SELECT g.gpid, g.uid, g.name, g.code, g.flag_sender, g.revision, \
         coalesce(array_agg(c.mobile ORDER BY c.pid) FILTER (WHERE c.pid IS NOT NULL), '{}') AS members \
         FROM phonebook_groups g \
         LEFT JOIN phonebook_members m ON m.gpid = g.gpid \
         LEFT JOIN phonebook_contacts c ON c.pid = m.pid \
         WHERE $1::BIGINT[] IS NULL OR g.gpid = ANY($1) \
         GROUP BY g.gpid ORDER BY g.gpid",
    )
    .bind(gpids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| GroupSnapshot { group: r.group, members: r.members }).collect())
}

#[derive(sqlx::FromRow)]
struct SnapshotRow {
    #[sqlx(flatten)]
    group: GroupRow,
    members: Vec<String>,
}

/// The account's groups with members, for the CLI listing.
pub async fn groups_of(pool: &PgPool, uid: i64) -> Result<Vec<GroupSnapshot>> {
    let all = group_snapshots(pool, None).await?;
    Ok(all.into_iter().filter(|g| g.group.uid == uid).collect())
}

/// The account's contacts in pid order.
pub async fn contacts_of(pool: &PgPool, uid: i64) -> Result<Vec<ContactRow>> {
    let rows = sqlx::query_as(
        "SELECT pid, uid, name, mobile, email, tags FROM phonebook_contacts WHERE uid = $1 ORDER BY pid",
    )
    .bind(uid)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// `get_contact`: the keyword as a case-insensitive substring of name,
/// mobile, email or tags (playSMS's `LIKE '%kwd%'`, but `%` and `_` in the
/// keyword are literal here).
pub async fn search_contacts(pool: &PgPool, uid: i64, keyword: &str, limit: i64) -> Result<Vec<ContactRow>> {
    let rows = sqlx::query_as(
        "SELECT pid, uid, name, mobile, email, tags FROM phonebook_contacts WHERE uid = $1 AND ( \
         strpos(lower(name), lower($2)) > 0 OR strpos(lower(mobile), lower($2)) > 0 OR \
         strpos(lower(email), lower($2)) > 0 OR strpos(lower(tags), lower($2)) > 0) \
         ORDER BY pid LIMIT $3",
    )
    .bind(uid)
    .bind(keyword)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// `get_contact_group`: the keyword as a case-insensitive substring of the
/// group's name or code.
pub async fn search_groups(pool: &PgPool, uid: i64, keyword: &str, limit: i64) -> Result<Vec<GroupRow>> {
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM phonebook_groups WHERE uid = $1 AND ( \
         strpos(lower(name), lower($2)) > 0 OR strpos(lower(code), lower($2)) > 0) ORDER BY gpid LIMIT $3"
    )))
    .bind(uid)
    .bind(keyword)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}
