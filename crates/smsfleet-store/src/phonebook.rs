//! Phonebook: contacts and groups per account. Written by the operator CLI
//! (import, group add/remove), read by the query role (`get_contact`,
//! `get_contact_group`) and by the accounts role, which publishes every
//! group with its member numbers to the state stream for `#CODE` in `pv`.

use std::collections::BTreeSet;

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
/// by (uid, mobile), so importing the same file twice changes nothing. A
/// group that would end up with more than `max_members` members fails the
/// whole import (its snapshot must fit in one bus message).
pub async fn import(pool: &PgPool, uid: i64, contacts: &[ImportContact], max_members: i64) -> Result<ImportOutcome> {
    let mut tx = pool.begin().await?;
    let mut outcome = ImportOutcome::default();
    let mut touched: BTreeSet<i64> = BTreeSet::new();
    for c in contacts {
        let (pid,): (i64,) = sqlx::query_as(
            "INSERT INTO phonebook_contacts (uid, name, mobile, email, tags) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (uid, mobile) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, \
             tags = EXCLUDED.tags RETURNING pid",
        )
        .bind(uid)
        .bind(&c.name)
        .bind(&c.mobile)
        .bind(&c.email)
        .bind(&c.tags)
        .fetch_one(&mut *tx)
        .await?;
        outcome.contacts += 1;
        let before: Vec<(i64,)> = sqlx::query_as("DELETE FROM phonebook_members WHERE pid = $1 RETURNING gpid")
            .bind(pid)
            .fetch_all(&mut *tx)
            .await?;
        touched.extend(before.into_iter().map(|(g,)| g));
        for code in &c.groups {
            let created: Option<(i64,)> = sqlx::query_as(
                "INSERT INTO phonebook_groups (uid, name, code) VALUES ($1, $2, $2) \
                 ON CONFLICT (uid, code) DO NOTHING RETURNING gpid",
            )
            .bind(uid)
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?;
            let gpid = match created {
                Some((gpid,)) => {
                    outcome.created_groups.push(code.clone());
                    gpid
                }
                None => {
                    let (gpid,): (i64,) =
                        sqlx::query_as("SELECT gpid FROM phonebook_groups WHERE uid = $1 AND code = $2")
                            .bind(uid)
                            .bind(code)
                            .fetch_one(&mut *tx)
                            .await?;
                    gpid
                }
            };
            sqlx::query("INSERT INTO phonebook_members (gpid, pid) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(gpid)
                .bind(pid)
                .execute(&mut *tx)
                .await?;
            touched.insert(gpid);
        }
    }
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
    outcome.touched_gpids = gpids;
    Ok(outcome)
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
