//! The real ingress router on a `127.0.0.1:0` listener against the
//! testkit's nats-server, spoken to over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use smsfleet_contract::{AccountState, BalanceState, GroupState, SCHEMA_VERSION, StopState};
use smsfleet_domain::account::Role;
use smsfleet_secrets::{Secrets, generate_token};
use smsfleet_testkit::eventually;
use std::time::Duration;

use common::*;

#[tokio::test]
async fn pv_answers_ok_once_the_batch_is_on_the_submit_stream() {
    let ingress = Ingress::start().await;
    let r =
        ingress.get(&format!("/index.php?app=ws&u=alice&h={}&op=pv&to=628111000001&msg=hello", ingress.token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let body: serde_json::Value = r.json().await.unwrap();
    let item = &body["data"][0];
    assert_eq!((item["status"].as_str(), item["error"].as_str()), (Some("OK"), Some("0")), "{body}");
    assert_eq!(item["to"], "628111000001");
    assert!(body["error_string"].is_null() && body["timestamp"].is_i64(), "{body}");
    // The OK is sent only after the PubAck, so the batch is already stored.
    let batch = ingress.last_batch().await;
    assert_eq!(batch.submissions.len(), 1);
    let submission = &batch.submissions[0];
    assert_eq!(submission.queue, item["queue"].as_str().unwrap());
    assert_eq!((submission.uid, submission.text.as_str()), (2, "hello"));
    assert_eq!(submission.destinations.len(), 1);
    assert_eq!(submission.destinations[0].smslog_id, item["smslog_id"].as_i64().unwrap());
    assert_eq!(submission.destinations[0].to, "628111000001");
}

#[tokio::test]
async fn a_wrong_token_is_err_100_in_json_and_xml_and_sends_nothing() {
    let ingress = Ingress::start().await;
    let pv = "/index.php?app=ws&u=alice&h=00000000000000000000000000000000&op=pv&to=628111000001&msg=hello";
    let r = ingress.get(pv).await;
    assert_eq!(r.headers()["content-type"], "application/json");
    let body = r.text().await.unwrap();
    assert!(
        body.starts_with(r#"{"status":"ERR","error":"100","error_string":"authentication failed","timestamp":"#),
        "{body}"
    );
    let r = ingress.get(&format!("{pv}&format=xml")).await;
    assert_eq!(r.headers()["content-type"], "text/xml;charset=UTF-8");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<status>ERR</status><error>100</error><error_string>authentication failed</error_string>"),
        "{body}"
    );
    // Refused before the accept path: the reply is only sent after any
    // publish would have been acked, so an empty stream now is final.
    assert_eq!(ingress.stored_batches().await, 0);
}

#[tokio::test]
async fn an_unknown_op_is_an_empty_html_page() {
    let ingress = Ingress::start().await;
    let r = ingress.get(&format!("/index.php?app=ws&u=alice&h={}&op=nosuchop", ingress.token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=UTF-8");
    assert_eq!(r.headers()["cache-control"], "max-age=0, no-cache, no-store, must-revalidate");
    assert_eq!(r.text().await.unwrap(), "");
}

#[tokio::test]
async fn bulk_answers_1701_with_the_stored_id() {
    let ingress = Ingress::start().await;
    let r = ingress
        .get(&format!(
            "/bulksms/bulksms?username=alice&password={BULK_PASSWORD}&type=0&dlr=1&destination=919999999999,abc&source=ACME&message=hi"
        ))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let body = r.text().await.unwrap();
    let batch = ingress.last_batch().await;
    let submission = &batch.submissions[0];
    assert!(submission.dlr_requested);
    assert_eq!(body, format!("1701|919999999999|{},1706|abc", submission.destinations[0].smslog_id));
    let r = ingress
        .get("/bulksms/bulksms?username=alice&password=wrong&type=0&dlr=0&destination=1&source=A&message=hi")
        .await;
    assert_eq!(r.text().await.unwrap(), "1703");
}

/// The token of `sub` (uid 4), a subuser of `reseller` (uid 3).
const SUB_TOKEN: &str = "5ab0000000000000000000000000000f";

/// `reseller` (uid 3), the parent of `sub`; it never logs in here.
fn reseller(banned: bool, revision: i64, secrets: &Secrets) -> State {
    State::Account(Box::new(AccountState { banned, revision, ..account(secrets, 3, "reseller", &generate_token()) }))
}

/// Issue 12.7: playSMS refuses a subuser whose parent is banned (ERR 100);
/// so do we, at every door, and the parent's own snapshot is all it takes
/// either way.
#[tokio::test]
async fn a_subuser_of_a_banned_parent_is_refused_at_every_door_until_the_unban() {
    let ingress = Ingress::start_with(|secrets| {
        let sub = AccountState { role: Role::Subuser, parent_uid: Some(3), ..account(secrets, 4, "sub", SUB_TOKEN) };
        vec![reseller(true, 1, secrets), State::Account(Box::new(sub))]
    })
    .await;
    let bulk = format!(
        "/bulksms/bulksms?username=sub&password={BULK_PASSWORD}&type=0&dlr=0&destination=919999999999&source=ACME&message=hi"
    );
    let cr = format!("/index.php?app=ws&u=sub&h={SUB_TOKEN}&op=cr");
    let pv = format!("/index.php?app=ws&u=sub&h={SUB_TOKEN}&op=pv&to=628111000001&msg=hi");
    let json = |r: reqwest::Response| async move { r.json::<serde_json::Value>().await.unwrap() };
    assert_eq!(json(ingress.get(&pv).await).await["error"], "100");
    assert_eq!(json(ingress.get(&cr).await).await["error"], "100");
    assert_eq!(ingress.get(&bulk).await.text().await.unwrap(), "1709");

    // The unban is a newer snapshot of the parent only (1709 is no failed
    // login, so polling with it cannot trip the login guard).
    let secrets = Secrets::from_hex(&Secrets::generate_key()).unwrap();
    publish(&ingress.env, &reseller(false, 2, &secrets)).await;
    let sent = eventually(Duration::from_secs(5), || async {
        let body = ingress.get(&bulk).await.text().await.unwrap();
        body.starts_with("1701|").then_some(())
    })
    .await;
    assert!(sent.is_some(), "the unban reaches the subuser");
    assert_eq!(json(ingress.get(&pv).await).await["data"][0]["status"], "OK");

    publish(&ingress.env, &reseller(true, 3, &secrets)).await;
    let refused = eventually(Duration::from_secs(5), || async {
        (ingress.get(&bulk).await.text().await.unwrap() == "1709").then_some(())
    })
    .await;
    assert!(refused.is_some(), "the ban reaches the subuser");
    assert_eq!(json(ingress.get(&cr).await).await["error"], "100");
}

/// Issue 12.15: `op=credit` is the balance as bare text, `0.00` for a
/// caller who does not authenticate.
#[tokio::test]
async fn op_credit_answers_the_balance_as_plain_text() {
    let ingress = Ingress::start_with(|_| {
        let balance = BalanceState { v: SCHEMA_VERSION, uid: 2, revision: 1, balance: "87.5".into() };
        vec![State::Balance(balance)]
    })
    .await;
    let r = ingress.get(&format!("/index.php?app=ws&u=alice&h={}&op=credit", ingress.token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.headers()["pragma"], "no-cache");
    assert_eq!(r.text().await.unwrap(), "87.50");
    let r = ingress.get("/index.php?app=ws&u=alice&h=00000000000000000000000000000000&op=CREDIT").await;
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "0.00");
    // playSMS's own clients call it without credentials: no failed logins.
    for _ in 0..12 {
        assert_eq!(ingress.get("/index.php?app=ws&op=credit").await.text().await.unwrap(), "0.00");
    }
    let r = ingress.get(&format!("/index.php?app=ws&u=alice&h={}&op=credit", ingress.token)).await;
    assert_eq!(r.text().await.unwrap(), "87.50", "not blocked by the login guard");
}

/// Issue 12.17: PHP reads form bodies for POST only; a PUT's body is not
/// read.
#[tokio::test]
async fn only_a_post_body_is_read() {
    let ingress = Ingress::start().await;
    let form = format!("u=alice&h={}&op=cr", ingress.token);
    let send = |method: reqwest::Method| {
        ingress
            .http
            .request(method, format!("{}/index.php?app=ws", ingress.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone())
            .send()
    };
    let posted: serde_json::Value = send(reqwest::Method::POST).await.unwrap().json().await.unwrap();
    assert_eq!(posted["status"], "OK", "{posted}");
    let put: serde_json::Value = send(reqwest::Method::PUT).await.unwrap().json().await.unwrap();
    assert_eq!(put.as_object().map(|o| o.len()), Some(2), "no op, the bare envelope: {put}");
    assert!(put["error_string"].is_null() && put["timestamp"].is_i64(), "{put}");
}

/// Issue 12.11: a stop-listed number gets playSMS's ERR 200 item next to
/// the OK items, whether it was typed or came from a group; a request
/// that sends nothing fails as a whole.
#[tokio::test]
async fn stop_listed_numbers_get_an_err_200_item_in_place() {
    let ingress = Ingress::start_with(|_| {
        let friends = GroupState {
            v: SCHEMA_VERSION,
            uid: 2,
            gpid: 1,
            revision: 1,
            code: "FRIENDS".into(),
            name: "Friends".into(),
            members: vec!["+628111000101".into(), "08111000102".into()],
            deleted: false,
        };
        let stop = StopState { v: SCHEMA_VERSION, number: "628111000101".into(), uid: None, listed: true };
        vec![State::Group(friends), State::Stop(stop)]
    })
    .await;
    let pv = |to: &str| format!("/index.php?app=ws&u=alice&h={}&op=pv&to={to}&msg=hi", ingress.token);
    for to in ["%23FRIENDS,628111000103", "%2B628111000101,08111000102,628111000103"] {
        let body: serde_json::Value = ingress.get(&pv(to)).await.json().await.unwrap();
        let items = body["data"].as_array().unwrap();
        let shape: Vec<(&str, &str, &str)> = items
            .iter()
            .map(|i| (i["status"].as_str().unwrap(), i["error"].as_str().unwrap(), i["to"].as_str().unwrap()))
            .collect();
        assert_eq!(
            shape,
            vec![("ERR", "200", "+628111000101"), ("OK", "0", "08111000102"), ("OK", "0", "628111000103")],
            "{to}: {body}"
        );
        assert_eq!(items[0]["smslog_id"], 0);
        assert_eq!(items[0]["queue"], items[1]["queue"], "the request's queue");
        let batch = ingress.last_batch().await;
        let sent: Vec<&str> = batch.submissions[0].destinations.iter().map(|d| d.to.as_str()).collect();
        assert_eq!(sent, vec!["08111000102", "628111000103"], "the stop-listed number is not sent");
    }
    let body: serde_json::Value = ingress.get(&pv("628111000101")).await.json().await.unwrap();
    assert_eq!(body["data"], serde_json::json!([{"status":"ERR","error":"200","smslog_id":"","queue":"","to":""}]));
}
