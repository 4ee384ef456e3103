//! The real ingress router on a `127.0.0.1:0` listener against the
//! testkit's nats-server, spoken to over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BULK_PASSWORD, Ingress};

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
