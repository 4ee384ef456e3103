#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Byte-exact checks against bodies captured from a real playSMS 1.4.7
//! (`shared/reference/playsms-transcripts/NNN-*.txt`), plus request parsing
//! cases from the same transcripts.

use serde_json::json;
use smsfleet_playsms::envelope::{bare, credit_value, err, err_with, list, ok};
use smsfleet_playsms::{Format, Node, Params, render};

const TS: i64 = 1795422042;

fn kv(entries: Vec<(&str, Node)>) -> Vec<(String, Node)> {
    entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn json(node: &Node) -> String {
    let r = render(node, Format::Json);
    assert_eq!(r.content_type, "application/json");
    r.body
}

fn xml(node: &Node) -> String {
    let r = render(node, Format::Xml);
    assert_eq!(r.content_type, "text/xml;charset=UTF-8");
    r.body
}

fn cr_ok() -> Node {
    ok(kv(vec![("credit", credit_value(0.0))]), TS)
}

#[test]
fn t004_005_cr_json() {
    assert_eq!(
        json(&cr_ok()),
        r#"{"status":"OK","error":"0","credit":"0","error_string":null,"timestamp":1795422042}"#
    );
}

#[test]
fn t012_xml_error() {
    assert_eq!(
        xml(&err(100, TS)),
        "<?xml version=\"1.0\"?>\n<response><status>ERR</status><error>100</error><error_string>authentication failed</error_string><timestamp>1795422042</timestamp></response>\n"
    );
}

#[test]
fn t013_xml_ok() {
    assert_eq!(
        xml(&cr_ok()),
        "<?xml version=\"1.0\"?>\n<response><status>OK</status><error>0</error><credit>0</credit><error_string/><timestamp>1795422042</timestamp></response>\n"
    );
}

#[test]
fn t014_serialize() {
    let r = render(&cr_ok(), Format::Serialize);
    assert_eq!(r.content_type, "text/plain;charset=UTF-8");
    assert_eq!(
        r.body,
        r#"a:5:{s:6:"status";s:2:"OK";s:5:"error";s:1:"0";s:6:"credit";s:1:"0";s:12:"error_string";N;s:9:"timestamp";i:1795422042;}"#
    );
}

fn query_admin() -> Node {
    let user = Node::map()
        .with("username", "admin")
        .with("uid", 1i64)
        .with("status", 2i64)
        .with("name", "Administrator")
        .with("email", "noreply@playsms.org")
        .with("mobile", "+62000000000")
        .with("credit", credit_value(0.0));
    let last_id = Node::map().with("user_inbox", 0i64).with("user_incoming", 0i64).with("user_outgoing", 0i64);
    let data = Node::map().with("user", user).with("last_id", last_id);
    ok(kv(vec![("data", data)]), TS)
}

#[test]
fn t017_query_json() {
    assert_eq!(
        json(&query_admin()),
        r#"{"status":"OK","error":"0","data":{"user":{"username":"admin","uid":1,"status":2,"name":"Administrator","email":"noreply@playsms.org","mobile":"+62000000000","credit":"0"},"last_id":{"user_inbox":0,"user_incoming":0,"user_outgoing":0}},"error_string":null,"timestamp":1795422042}"#
    );
}

#[test]
fn t018_query_xml() {
    assert_eq!(
        xml(&query_admin()),
        "<?xml version=\"1.0\"?>\n<response><status>OK</status><error>0</error><data><user><username>admin</username><uid>1</uid><status>2</status><name>Administrator</name><email>noreply@playsms.org</email><mobile>+62000000000</mobile><credit>0</credit></user><last_id><user_inbox>0</user_inbox><user_incoming>0</user_incoming><user_outgoing>0</user_outgoing></last_id></data><error_string/><timestamp>1795422042</timestamp></response>\n"
    );
}

#[test]
fn t028_193_err_with_info() {
    let n = err_with(604, kv(vec![("info", "Account already exists (username: alice)".into())]), 1795422043);
    assert_eq!(
        json(&n),
        r#"{"status":"ERR","error":"604","info":"Account already exists (username: alice)","error_string":"fail to add account","timestamp":1795422043}"#
    );
    let n = err_with(606, kv(vec![("info", "User is immune to deletion (username: admin)".into())]), 1795422140);
    assert_eq!(
        json(&n),
        r#"{"status":"ERR","error":"606","info":"User is immune to deletion (username: admin)","error_string":"fail to remove account","timestamp":1795422140}"#
    );
}

#[test]
fn t060_061_creditadd() {
    let n = ok(kv(vec![("amount", 50.25.into()), ("balance", Node::Null)]), 1795422046);
    assert_eq!(
        json(&n),
        r#"{"status":"OK","error":"0","amount":50.25,"balance":null,"error_string":null,"timestamp":1795422046}"#
    );
    let n = ok(kv(vec![("amount", 7.0.into()), ("balance", Node::Null)]), 1795422046);
    assert_eq!(
        xml(&n),
        "<?xml version=\"1.0\"?>\n<response><status>OK</status><error>0</error><amount>7</amount><balance/><error_string/><timestamp>1795422046</timestamp></response>\n"
    );
}

#[test]
fn t074_float_credit_xml() {
    let n = ok(kv(vec![("credit", credit_value(50.25))]), 1795422086);
    assert_eq!(
        xml(&n),
        "<?xml version=\"1.0\"?>\n<response><status>OK</status><error>0</error><credit>50.25</credit><error_string/><timestamp>1795422086</timestamp></response>\n"
    );
}

fn pv_item(smslog_id: Option<i64>, queue: &str, to: &str) -> Node {
    Node::map().with("status", "OK").with("error", "0").with("smslog_id", smslog_id).with("queue", queue).with("to", to)
}

#[test]
fn t077_pv_xml_item() {
    let n = list(vec![pv_item(Some(2), "bbf0419cb55b710dab673aeb59ddfecb", "628111000002")], 1795422087);
    assert_eq!(
        xml(&n),
        "<?xml version=\"1.0\"?>\n<response><data><item><status>OK</status><error>0</error><smslog_id>2</smslog_id><queue>bbf0419cb55b710dab673aeb59ddfecb</queue><to>628111000002</to></item></data><error_string/><timestamp>1795422087</timestamp></response>\n"
    );
}

#[test]
fn t083_pv_null_smslog_id() {
    let n = list(vec![pv_item(None, "08bc011afa460394e0489f3a8d0b391e", "@alice")], 1795422087);
    assert_eq!(
        json(&n),
        r#"{"data":[{"status":"OK","error":"0","smslog_id":null,"queue":"08bc011afa460394e0489f3a8d0b391e","to":"@alice"}],"error_string":null,"timestamp":1795422087}"#
    );
}

#[test]
fn t086_pv_two_items() {
    let q = "5e87c2e2c1412acd1d25e66b9067a9dc";
    let n = list(vec![pv_item(Some(6), q, "+628111000101"), pv_item(Some(7), q, "08111000102")], 1795422087);
    assert_eq!(
        json(&n),
        r#"{"data":[{"status":"OK","error":"0","smslog_id":6,"queue":"5e87c2e2c1412acd1d25e66b9067a9dc","to":"+628111000101"},{"status":"OK","error":"0","smslog_id":7,"queue":"5e87c2e2c1412acd1d25e66b9067a9dc","to":"08111000102"}],"error_string":null,"timestamp":1795422087}"#
    );
}

fn ds_item(smslog_id: i64, dst: &str, msg: &str, dt: &str, update: &str) -> Node {
    Node::map()
        .with("smslog_id", smslog_id)
        .with("src", "1234")
        .with("dst", dst)
        .with("msg", msg)
        .with("dt", dt)
        .with("update", update)
        .with("status", 3i64)
}

fn ds_unicode() -> Node {
    let item = ds_item(8, "628111000008", "Привет мир", "2026-11-23 01:21:30", "2026-11-23 01:21:30");
    list(vec![item], 1795422133)
}

#[test]
fn t118_unicode_json() {
    assert_eq!(
        json(&ds_unicode()),
        r#"{"data":[{"smslog_id":8,"src":"1234","dst":"628111000008","msg":"\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440","dt":"2026-11-23 01:21:30","update":"2026-11-23 01:21:30","status":3}],"error_string":null,"timestamp":1795422133}"#
    );
}

#[test]
fn t119_unicode_xml() {
    assert_eq!(
        xml(&ds_unicode()),
        "<?xml version=\"1.0\"?>\n<response><data><item><smslog_id>8</smslog_id><src>1234</src><dst>628111000008</dst><msg>&#x41F;&#x440;&#x438;&#x432;&#x435;&#x442; &#x43C;&#x438;&#x440;</msg><dt>2026-11-23 01:21:30</dt><update>2026-11-23 01:21:30</update><status>3</status></item></data><error_string/><timestamp>1795422133</timestamp></response>\n"
    );
}

fn ds_special(timestamp: i64) -> Node {
    let item = ds_item(
        15,
        "628111000015",
        r"He said \'hi\' & <b>bold</b> it\'s ab  5<6 {x}",
        "2026-11-23 01:21:32",
        "2026-11-23 01:21:33",
    );
    list(vec![item], timestamp)
}

#[test]
fn t117_197_special_chars_json_serialize() {
    let expected_json = r#"{"data":[{"smslog_id":15,"src":"1234","dst":"628111000015","msg":"He said \\'hi\\' & <b>bold<\/b> it\\'s ab  5<6 {x}","dt":"2026-11-23 01:21:32","update":"2026-11-23 01:21:33","status":3}],"error_string":null,"timestamp":1795422133}"#;
    assert_eq!(json(&ds_special(1795422133)), expected_json);
    assert_eq!(
        render(&ds_special(1795422153), Format::Serialize).body,
        r#"a:3:{s:4:"data";a:1:{i:0;a:7:{s:9:"smslog_id";i:15;s:3:"src";s:4:"1234";s:3:"dst";s:12:"628111000015";s:3:"msg";s:46:"He said \'hi\' & <b>bold</b> it\'s ab  5<6 {x}";s:2:"dt";s:19:"2026-11-23 01:21:32";s:6:"update";s:19:"2026-11-23 01:21:33";s:6:"status";i:3;}}s:12:"error_string";N;s:9:"timestamp";i:1795422153;}"#
    );
}

#[test]
fn t196_ampersand_xml_is_escaped_not_dropped() {
    // Deliberate deviation: playSMS emits `<msg/>` here (SimpleXML bug).
    assert!(
        xml(&ds_special(1795422153))
            .contains(r"<msg>He said \'hi\' &amp; &lt;b&gt;bold&lt;/b&gt; it\'s ab  5&lt;6 {x}</msg>")
    );
}

#[test]
fn t150_152_data_null() {
    let n = ok(kv(vec![("data", Node::Null)]), 1795422139);
    assert_eq!(json(&n), r#"{"status":"OK","error":"0","data":null,"error_string":null,"timestamp":1795422139}"#);
    assert_eq!(
        xml(&n),
        "<?xml version=\"1.0\"?>\n<response><status>OK</status><error>0</error><data/><error_string/><timestamp>1795422139</timestamp></response>\n"
    );
}

#[test]
fn t157_error_627_null_string() {
    assert_eq!(
        json(&err(627, 1795422140)),
        r#"{"status":"ERR","error":"627","error_string":null,"timestamp":1795422140}"#
    );
}

#[test]
fn t001_160_025_bare() {
    assert_eq!(json(&bare(1795422140)), r#"{"error_string":null,"timestamp":1795422140}"#);
}

// ---------------------------------------------------------------- parsing

#[test]
fn t004_op_case_insensitive() {
    let p = Params::from_query("app=ws&u=admin&h=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&op=CR");
    assert_eq!(p.op().as_deref(), Some("cr"));
    assert_eq!(p.format(), Format::Json);
}

#[test]
fn t016_format_fallback() {
    for (q, f) in [
        ("op=cr&format=plain", Format::Json),
        ("op=cr&format=json", Format::Json),
        ("op=cr&format=xml", Format::Xml),
        ("op=cr&format=XML", Format::Xml),
        ("op=cr&format=serialize", Format::Serialize),
        ("op=cr", Format::Json),
    ] {
        assert_eq!(Params::from_query(q).format(), f, "{q}");
    }
}

#[test]
fn t023_body_overrides_query() {
    let query = Params::from_query("app=ws&op=cr&u=admin&h=bad");
    let body = Params::from_query("h=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let p = Params::merge(query, body);
    assert_eq!(p.get("h"), Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_eq!(p.get("u"), Some("admin"));
    assert_eq!(p.op().as_deref(), Some("cr"));
}

#[test]
fn t024_multipart_pairs() {
    let p = Params::merge(
        Params::from_query("app=ws"),
        Params::from_pairs([
            ("u".to_owned(), "admin".to_owned()),
            ("h".to_owned(), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned()),
            ("op".to_owned(), "cr".to_owned()),
        ]),
    );
    assert_eq!(p.get("u"), Some("admin"));
    assert_eq!(p.op().as_deref(), Some("cr"));
}

#[test]
fn t081_082_plus_vs_encoded_plus() {
    let raw = Params::from_query("op=pv&to=+628111000005&msg=plus+raw");
    assert_eq!(raw.get("to"), Some("628111000005"));
    assert_eq!(raw.get("msg"), Some("plus raw"));
    let enc = Params::from_query("op=pv&to=%2B628111000006&msg=plus%20encoded");
    assert_eq!(enc.get("to"), Some("+628111000006"));
    assert_eq!(enc.get("msg"), Some("plus encoded"));
}

#[test]
fn raw_space_in_query() {
    let p = Params::from_query("op=pv&schedule=2030-01-01 10:00:00&msg=a b");
    assert_eq!(p.get("schedule"), Some("2030-01-01 10:00:00"));
    assert_eq!(p.get("msg"), Some("a b"));
}

#[test]
fn json_body_user_token_mapping() {
    let p = Params::from_json_body(&json!({
        "user": "admin", "token": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "op": "CR"
    }));
    assert_eq!(p.get("u"), Some("admin"));
    assert_eq!(p.get("h"), Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_eq!(p.op().as_deref(), Some("cr"));
}
