//! The phonebook end to end: an operator loads alice's contacts with the
//! CLI, she searches them with get_contact / get_contact_group, and `#CODE`
//! in pv sends to the group's members, expanded by the ingress from memory.

use std::time::Duration;

use serde_json::{Value, json};
use smsfleet_testkit::eventually;

use crate::fleet::Fleet;

/// alice's phonebook from the reference fixture.
const ALICE_CSV: &str = "name,mobile,email,tags,groups\n\
    Andy Friend,+628111000101,andy@example.com,friend,FRIENDS\n\
    Anita Friend,08111000102,anita@example.com,,FRIENDS\n\
    Other Person,628111000103,,,\n";

/// The raw body, to check key order and the XML form.
async fn ws_text(f: &Fleet, query: &[(&str, &str)]) -> String {
    let url = format!("{}/index.php?app=ws", f.ingress);
    let resp = reqwest::Client::new().get(url).query(query).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("text")
}

fn tos(reply: &Value) -> Vec<String> {
    reply["data"]
        .as_array()
        .map(|d| d.iter().map(|i| i["to"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phonebook_import_search_and_group_send() {
    let f = Fleet::start(&[]).await;
    let token = f.user("alice").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("alice.csv");
    std::fs::write(&csv, ALICE_CSV).unwrap();
    let csv = csv.to_str().unwrap();

    f.cli(&["phonebook", "group", "add", "--user", "alice", "--code", "friends", "--name", "Friends"]).await;
    f.cli(&["phonebook", "group", "add", "--user", "alice", "--code", "FAMILY", "--name", "Family"]).await;
    let out = f.cli(&["phonebook", "import", "--user", "alice", csv]).await;
    assert!(out.contains("contacts=3"), "{out}");
    // Importing again changes nothing.
    f.cli(&["phonebook", "import", "--user", "alice", csv]).await;
    let list = f.cli(&["phonebook", "list", "--user", "alice"]).await;
    assert_eq!(list.lines().filter(|l| l.starts_with("contact ")).count(), 3, "{list}");
    assert!(list.contains("code=FRIENDS name=Friends members=+628111000101;08111000102"), "{list}");

    // A bad line: the whole file is refused with its line number.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "name,mobile\nNew Person,628111000104\nBroken,no-number\n").unwrap();
    let out = tokio::process::Command::new(crate::fleet::BIN)
        .args(["phonebook", "import", "--user", "alice", bad.to_str().unwrap()])
        .env("NATS_URL", &f.env.nats_url)
        .env("DATABASE_URL", &f.env.database_url)
        .env("SMSFLEET_NAMESPACE", f.env.ns.as_str())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 3: mobile \"no-number\" is not a phone number"), "{stderr}");
    let list = f.cli(&["phonebook", "list", "--user", "alice"]).await;
    assert!(!list.contains("628111000104"), "nothing of the bad file was written: {list}");

    // get_contact: exact keys and order, numbers as numbers.
    let body = ws_text(&f, &[("u", "alice"), ("h", &token), ("op", "get_contact"), ("kwd", "friend")]).await;
    let expected = r#"{"status":"OK","error":"0","data":[{"pid":1,"p_desc":"Andy Friend","p_num":"+628111000101","email":"andy@example.com","tags":"friend"},{"pid":2,"p_desc":"Anita Friend","p_num":"08111000102","email":"anita@example.com","tags":""}],"error_string":null,"timestamp":"#;
    assert!(body.starts_with(expected), "{body}");
    let one = f.ws(&[("u", "alice"), ("h", &token), ("op", "get_contact"), ("kwd", "friend"), ("c", "1")]).await;
    assert_eq!(one["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["data"][0]["p_desc"], "Andy Friend");
    let single = f.ws(&[("u", "alice"), ("h", &token), ("op", "get_contact"), ("kwd", "a")]).await;
    assert_eq!(single["data"].as_array().map(Vec::len), Some(2), "1.4.7 accepts one character: {single}");
    let none = f.ws(&[("u", "alice"), ("h", &token), ("op", "get_contact")]).await;
    assert_eq!((none["status"].clone(), none["data"].clone()), (json!("OK"), Value::Null));
    let nomatch = f.ws(&[("u", "alice"), ("h", &token), ("op", "get_contact"), ("kwd", "zzzz")]).await;
    assert_eq!(nomatch["data"], Value::Null);
    let xml =
        ws_text(&f, &[("u", "alice"), ("h", &token), ("op", "get_contact"), ("kwd", "zzzz"), ("format", "xml")]).await;
    assert!(
        xml.starts_with("<?xml version=\"1.0\"?>\n<response><status>OK</status><error>0</error><data/><error_string/>"),
        "{xml}"
    );
    let bad = f.ws(&[("u", "alice"), ("h", "wrong"), ("op", "get_contact"), ("kwd", "friend")]).await;
    assert_eq!(bad["error"], "100");

    // get_contact_group.
    let body = ws_text(&f, &[("u", "alice"), ("h", &token), ("op", "get_contact_group"), ("kwd", "fri")]).await;
    let expected = r#"{"status":"OK","error":"0","data":[{"gpid":1,"group_name":"Friends","code":"FRIENDS","flag_sender":0}],"error_string":null,"timestamp":"#;
    assert!(body.starts_with(expected), "{body}");
    let xml = ws_text(
        &f,
        &[("u", "alice"), ("h", &token), ("op", "get_contact_group"), ("kwd", "FRIENDS"), ("format", "xml")],
    )
    .await;
    assert!(
        xml.contains("<data><item><gpid>1</gpid><group_name>Friends</group_name><code>FRIENDS</code><flag_sender>0</flag_sender></item></data>"),
        "{xml}"
    );

    // #FRIENDS: both members, one queue, both delivered.
    let sent = eventually(Duration::from_secs(10), || async {
        let r = f.ws(&[("u", "alice"), ("h", &token), ("op", "pv"), ("to", "#FRIENDS"), ("msg", "hi friends")]).await;
        (r["data"][0]["status"] == "OK").then_some(r)
    })
    .await
    .expect("group known to the ingress");
    assert_eq!(tos(&sent), vec!["+628111000101", "08111000102"]);
    let items = sent["data"].as_array().unwrap();
    assert!(items.iter().all(|i| i["status"] == "OK" && i["error"] == "0" && i["queue"] == items[0]["queue"]));
    let ids: Vec<i64> = items.iter().map(|i| i["smslog_id"].as_i64().unwrap()).collect();
    for id in ids {
        let delivered = eventually(Duration::from_secs(20), || async {
            let id = id.to_string();
            let ds = f.ws(&[("u", "alice"), ("h", &token), ("op", "ds"), ("smslog_id", &id)]).await;
            (ds["data"][0]["status"] == 3).then_some(())
        })
        .await;
        assert!(delivered.is_some(), "smslog_id {id} not delivered");
    }

    // Exact match only (1.4.7): #FAM is no group, so nothing is left to send.
    let fam = f.ws(&[("u", "alice"), ("h", &token), ("op", "pv"), ("to", "#FAM"), ("msg", "partial")]).await;
    assert_eq!(fam["data"], json!([{"status":"ERR","error":"200","smslog_id":"","queue":"","to":""}]));
    // Mixed with numbers, case-insensitive, de-duplicated.
    let mixed = f
        .ws(&[("u", "alice"), ("h", &token), ("op", "pv"), ("to", "#friends,628111000007,08111000102"), ("msg", "mix")])
        .await;
    assert_eq!(tos(&mixed), vec!["+628111000101", "08111000102", "628111000007"]);
    // The group's name works too.
    let by_name = f.ws(&[("u", "alice"), ("h", &token), ("op", "pv"), ("to", "#Friends"), ("msg", "name")]).await;
    assert_eq!(tos(&by_name).len(), 2);

    // Removing the group reaches the ingress.
    f.cli(&["phonebook", "group", "remove", "--user", "alice", "--code", "FRIENDS"]).await;
    let gone = eventually(Duration::from_secs(10), || async {
        let r = f.ws(&[("u", "alice"), ("h", &token), ("op", "pv"), ("to", "#FRIENDS"), ("msg", "x")]).await;
        (r["data"][0]["error"] == "200").then_some(())
    })
    .await;
    assert!(gone.is_some(), "removed group still expands");
}
