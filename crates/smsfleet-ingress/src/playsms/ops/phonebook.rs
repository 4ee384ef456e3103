//! `op=get_contact` and `op=get_contact_group`: the caller's phonebook,
//! searched by the query role over request/reply (a read, so it may wait on
//! Postgres there; the send path never does). No keyword or no match gives
//! `"data":null` (`<data/>`), as playSMS does.

use std::net::IpAddr;

use smsfleet_contract::{ContactItem, GroupItem, PhonebookReply, PhonebookRequest};
use smsfleet_playsms::{Node, Params};

use crate::app::App;
use crate::playsms::caller;
use crate::playsms::error::ApiError;
use crate::playsms::reply::Payload;

/// Reported when the query role cannot answer; playSMS itself never fails
/// these ops, but an empty answer would hide the outage from the client.
const ERR_UNAVAILABLE: u16 = 501;

pub(crate) async fn contacts(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    let account = caller::user(app, p, client)?;
    let (keyword, limit) = search_params(p);
    search(app, PhonebookRequest::Contacts { uid: account.uid, keyword, limit }).await
}

pub(crate) async fn groups(app: &App, p: &Params, client: IpAddr) -> Result<Payload, ApiError> {
    let account = caller::user(app, p, client)?;
    let (keyword, limit) = search_params(p);
    let keyword = group_keyword(&keyword);
    search(app, PhonebookRequest::Groups { uid: account.uid, keyword, limit }).await
}

/// playSMS reduces a group search keyword to letters, digits, `_` and `-`
/// (the characters of a group code) before it searches.
fn group_keyword(kwd: &str) -> String {
    kwd.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).collect()
}

/// `kwd` as given (1.4.7 accepts a single character) and `c` (0, empty or
/// unreadable = no limit).
fn search_params(p: &Params) -> (String, u32) {
    let keyword = p.get("kwd").unwrap_or("").to_owned();
    let limit = p.get_nonempty("c").and_then(|c| c.trim().parse::<i64>().ok()).unwrap_or(0);
    (keyword, limit.clamp(0, i64::from(u32::MAX)) as u32)
}

async fn search(app: &App, req: PhonebookRequest) -> Result<Payload, ApiError> {
    match app.bus.request(smsfleet_contract::services::PHONEBOOK, &req, app.query_timeout).await {
        Ok(PhonebookReply::Contacts(items)) => Ok(found(items.into_iter().map(contact_node).collect())),
        Ok(PhonebookReply::Groups(items)) => Ok(found(items.into_iter().map(group_node).collect())),
        Ok(PhonebookReply::Unavailable) => Err(ApiError::new(ERR_UNAVAILABLE)),
        Err(e) => {
            tracing::error!(error = %e, "phonebook query failed");
            Err(ApiError::new(ERR_UNAVAILABLE))
        }
    }
}

/// An empty result is `null`, not `[]`.
fn found(items: Vec<Node>) -> Payload {
    let data = if items.is_empty() { Node::Null } else { Node::List(items) };
    Payload::one("data", data)
}

fn contact_node(c: ContactItem) -> Node {
    Node::map()
        .with("pid", c.pid)
        .with("p_desc", c.p_desc)
        .with("p_num", c.p_num)
        .with("email", c.email)
        .with("tags", c.tags)
}

fn group_node(g: GroupItem) -> Node {
    Node::map()
        .with("gpid", g.gpid)
        .with("group_name", g.group_name)
        .with("code", g.code)
        .with("flag_sender", i64::from(g.flag_sender))
}

#[cfg(test)]
mod tests {
    use smsfleet_playsms::render::to_json;

    use super::*;
    use crate::playsms::reply::envelope_of;

    #[test]
    fn items_keep_playsms_key_order_and_types() {
        let c = ContactItem {
            pid: 1,
            p_desc: "Andy Friend".into(),
            p_num: "+628111000101".into(),
            email: "andy@example.com".into(),
            tags: "friend".into(),
        };
        assert_eq!(
            to_json(&contact_node(c)),
            r#"{"pid":1,"p_desc":"Andy Friend","p_num":"+628111000101","email":"andy@example.com","tags":"friend"}"#
        );
        let g = GroupItem { gpid: 1, group_name: "Friends".into(), code: "FRIENDS".into(), flag_sender: 0 };
        assert_eq!(to_json(&group_node(g)), r#"{"gpid":1,"group_name":"Friends","code":"FRIENDS","flag_sender":0}"#);
    }

    #[test]
    fn no_result_is_null_data() {
        let json = to_json(&envelope_of(Ok(found(Vec::new())), 7));
        assert!(
            json.starts_with(r#"{"status":"OK","error":"0","data":null,"error_string":null,"timestamp":"#),
            "{json}"
        );
    }

    #[test]
    fn group_keywords_keep_letters_digits_underscore_and_dash() {
        assert_eq!(group_keyword("fri ends!"), "friends");
        assert_eq!(group_keyword(" Team_A-1 (old)%"), "Team_A-1old");
        assert_eq!(group_keyword("%_"), "_");
        assert_eq!(group_keyword("?! "), "");
    }

    #[test]
    fn keyword_and_limit() {
        assert_eq!(search_params(&Params::from_query("kwd=a&c=1")), ("a".to_owned(), 1));
        assert_eq!(search_params(&Params::from_query("c=")), (String::new(), 0));
        assert_eq!(search_params(&Params::from_query("kwd=x&c=-3")), ("x".to_owned(), 0));
        assert_eq!(search_params(&Params::from_query("kwd=x&c=abc")), ("x".to_owned(), 0));
    }
}
