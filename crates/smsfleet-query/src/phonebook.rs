//! `op=get_contact` and `op=get_contact_group`: keyword searches over the
//! caller's own phonebook. playSMS also searches groups other users share
//! (`flag_sender`); smsfleet has no sharing, so only own entries match.

use smsfleet_contract::{ContactItem, GroupItem, PhonebookReply, PhonebookRequest};
use smsfleet_store::PgPool;
use smsfleet_store::phonebook as store;

/// `c` as playSMS reads it (0 = no limit), capped so one request cannot pull
/// a whole phonebook through the ingress.
pub fn phonebook_limit(c: u32, max_rows: i64) -> i64 {
    let max_rows = max_rows.max(1);
    match i64::from(c) {
        0 => max_rows,
        n => n.min(max_rows),
    }
}

/// Answers one search. An empty keyword matches nothing (playSMS returns
/// `data: null` without a keyword); a database error is logged and answered
/// `Unavailable` so the ingress gets a prompt reply instead of a timeout.
#[tracing::instrument(skip_all)]
pub async fn phonebook_reply(pool: &PgPool, req: &PhonebookRequest, max_rows: i64) -> PhonebookReply {
    let outcome = match req {
        PhonebookRequest::Contacts { uid, keyword, limit } => {
            if keyword.is_empty() {
                return PhonebookReply::Contacts(Vec::new());
            }
            store::search_contacts(pool, *uid, keyword, phonebook_limit(*limit, max_rows)).await.map(|rows| {
                PhonebookReply::Contacts(
                    rows.into_iter()
                        .map(|c| ContactItem {
                            pid: c.pid,
                            p_desc: c.name,
                            p_num: c.mobile,
                            email: c.email,
                            tags: c.tags,
                        })
                        .collect(),
                )
            })
        }
        PhonebookRequest::Groups { uid, keyword, limit } => {
            if keyword.is_empty() {
                return PhonebookReply::Groups(Vec::new());
            }
            store::search_groups(pool, *uid, keyword, phonebook_limit(*limit, max_rows)).await.map(|rows| {
                PhonebookReply::Groups(
                    rows.into_iter()
                        .map(|g| GroupItem {
                            gpid: g.gpid,
                            group_name: g.name,
                            code: g.code,
                            flag_sender: g.flag_sender,
                        })
                        .collect(),
                )
            })
        }
    };
    outcome.unwrap_or_else(|e| {
        tracing::error!(error = %e, "phonebook search failed");
        PhonebookReply::Unavailable
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_limit_but_capped() {
        assert_eq!(phonebook_limit(0, 10_000), 10_000);
        assert_eq!(phonebook_limit(1, 10_000), 1);
        assert_eq!(phonebook_limit(50_000, 10_000), 10_000);
        assert_eq!(phonebook_limit(5, 0), 1);
    }
}
