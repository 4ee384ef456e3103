//! Hostile input at the HTTP edge (issue 14, items 9, 11, 12, 13, 15):
//! every answer is the door's documented code, and nothing refused is
//! stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BULK_PASSWORD, Ingress};
use smsfleet_ingress::IngressConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WRONG_TOKEN: &str = "00000000000000000000000000000000";

/// A body just over the 8 MB every door reads.
fn oversize(prefix: &str) -> String {
    format!("{prefix}{}", "a".repeat(8 * 1024 * 1024 + 16))
}

fn err_code(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("error").or_else(|| v["data"][0].get("error")).and_then(|e| e.as_str()).map(str::to_owned)
}

impl Ingress {
    async fn pv(&self, token: &str) -> String {
        self.get(&format!("/index.php?app=ws&u=alice&h={token}&op=pv&to=628111000001&msg=hi"))
            .await
            .text()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn guesses_between_own_valid_logins_are_still_blocked() {
    let ingress = Ingress::start().await;
    for _ in 0..2 {
        for _ in 0..9 {
            assert_eq!(err_code(&ingress.pv(WRONG_TOKEN).await).as_deref(), Some("100"));
        }
        ingress.pv(&ingress.token).await;
    }
    // 18 failures within the window: blocked, good token or not.
    let after = ingress.pv(&ingress.token).await;
    assert_eq!(err_code(&after).as_deref(), Some("100"), "{after}");
}

#[tokio::test]
async fn a_forged_first_forwarded_for_line_does_not_choose_the_client() {
    let config = IngressConfig { trusted_proxies: "127.0.0.1".into(), ..IngressConfig::default() };
    let ingress = Ingress::start_configured(config, |_| Vec::new()).await;
    let pv = format!("{}/index.php?app=ws&u=alice&h={}&op=pv&to=628111000001&msg=hi", ingress.base, ingress.token);
    // Through the trusted proxy from an allowed address: OK.
    let ok = ingress.http.get(&pv).header("x-forwarded-for", "127.0.0.1").send().await.unwrap();
    assert_eq!(err_code(&ok.text().await.unwrap()).as_deref(), Some("0"));
    // The client's forged line first, the proxy's own line last: the
    // proxy's says who it is, and that address is not allowed.
    let forged = ingress
        .http
        .get(&pv)
        .header("x-forwarded-for", "127.0.0.1")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    let body = forged.text().await.unwrap();
    assert_eq!(err_code(&body).as_deref(), Some("100"), "{body}");
}

#[tokio::test]
async fn an_oversize_body_is_refused_whole_at_every_door() {
    let ingress = Ingress::start().await;
    let form = "application/x-www-form-urlencoded";
    let pv = format!("{}/index.php?app=ws&u=alice&h={}&op=pv&to=628111000001&msg=query", ingress.base, ingress.token);
    let r = ingress.http.post(&pv).header("content-type", form).body(oversize("msg=")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["connection"].to_str().unwrap()), (200, "close"));
    assert_eq!(err_code(&r.text().await.unwrap()).as_deref(), Some("102"));

    let json = format!("{}/playsms/api.php", ingress.base);
    let body = format!(
        r#"{{"user":"alice","token":"{}","op":"pv","to":"628111000001","msg":"{}"}}"#,
        ingress.token,
        oversize("")
    );
    let r = ingress.http.post(&json).header("content-type", "application/json").body(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(err_code(&r.text().await.unwrap()).as_deref(), Some("102"));

    let bulk = format!(
        "{}/bulksms/bulksms?username=alice&password={BULK_PASSWORD}&type=0&dlr=0&destination=919999999999&source=ACME&message=query",
        ingress.base
    );
    let r = ingress.http.post(&bulk).header("content-type", form).body(oversize("message=")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "1702");
    // Every answer came after any publish would have been acked.
    assert_eq!(ingress.stored_batches().await, 0);
}

#[tokio::test]
async fn a_nul_is_refused_with_each_doors_bad_input_code() {
    let ingress = Ingress::start().await;
    let t = &ingress.token;
    for query in [
        format!("/index.php?app=ws&u=alice&h={t}&op=pv&to=628111000001&msg=a%00b"),
        format!("/index.php?app=ws&u=alice&h={t}&op=pv&to=@bob&msg=a%00b"),
        format!("/index.php?app=ws&u=alice&h={t}&op=inject&from=628111000001&msg=a%00b"),
    ] {
        let body = ingress.get(&query).await.text().await.unwrap();
        assert_eq!(err_code(&body).as_deref(), Some("102"), "{query}: {body}");
    }
    let json = format!(r#"{{"user":"alice","token":"{t}","op":"pv","to":"628111000001","msg":"a\u0000b"}}"#);
    let r = ingress.http.post(format!("{}/playsms/api.php", ingress.base)).body(json).send().await.unwrap();
    assert_eq!(err_code(&r.text().await.unwrap()).as_deref(), Some("102"));
    let bulk =
        format!("/bulksms/bulksms?username=alice&password={BULK_PASSWORD}&dlr=0&destination=919999999999&source=ACME");
    assert_eq!(ingress.get(&format!("{bulk}&type=0&message=a%00b")).await.text().await.unwrap(), "1702");
    assert_eq!(ingress.get(&format!("{bulk}&type=2&message=004100000042")).await.text().await.unwrap(), "1705");
    assert_eq!(ingress.stored_batches().await, 0);
}

/// One HTTP/1.1 answer read off `stream`: its head, or `None` when the
/// server closed the connection instead.
async fn read_answer(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(head)
}

#[tokio::test]
async fn a_body_no_door_reads_leaves_the_connection_usable() {
    let ingress = Ingress::start().await;
    let addr = ingress.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Larger than any read buffer, so the server cannot have taken it in by chance.
    let text = "x".repeat(1024 * 1024);
    let post = format!(
        "POST /index.php?app=ws HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    );
    stream.write_all(post.as_bytes()).await.unwrap();
    let first = read_answer(&mut stream).await.expect("an answer");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    stream.write_all(b"GET /index.php?app=ws HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let second = read_answer(&mut stream).await.expect("the connection still answers");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
}

// ---------------------------------------------------------------------
// The general rules (issue 14, "a hostile-input test suite"): malformed
// encodings, control characters, repeated and array parameters, oversize
// values, wrong content types and slow clients. Each answer is the door's
// documented code, and a refused request stores nothing.

impl Ingress {
    fn pv_url(&self, rest: &str) -> String {
        format!("{}/index.php?app=ws&u=alice&h={}&op=pv&{rest}", self.base, self.token)
    }

    /// The text of the one submission an OK stored.
    async fn stored_text(&self) -> String {
        let batch = self.last_batch().await;
        assert_eq!(batch.submissions.len(), 1);
        batch.submissions[0].text.clone()
    }
}

/// The code of a pv answer: the envelope's or the first item's.
async fn pv_code(r: reqwest::Response) -> String {
    let body = r.text().await.unwrap();
    err_code(&body).unwrap_or_else(|| panic!("no code in {body}"))
}

#[tokio::test]
async fn broken_escapes_and_utf8_are_read_as_php_reads_them_and_stored_whole() {
    let ingress = Ingress::start().await;
    // A bad escape stays literal; invalid UTF-8 (escaped, or raw in a
    // form body) becomes U+FFFD, as PHP's mb-unaware $_GET keeps bytes the
    // projection could not store.
    for (msg, stored) in [("%zz%4", "%zz%4"), ("%FF%FEok", "\u{FFFD}\u{FFFD}ok"), ("%C3%28", "\u{FFFD}(")] {
        let r = ingress.http.get(ingress.pv_url(&format!("to=628111000001&msg={msg}"))).send().await.unwrap();
        assert_eq!(pv_code(r).await, "0", "{msg}");
        assert_eq!(ingress.stored_text().await, stored, "{msg}");
    }
    let before = ingress.stored_batches().await;
    let raw = [b"to=628111000001&msg=a".as_slice(), &[0xff, 0xfe], b"b"].concat();
    let r = ingress
        .http
        .post(ingress.pv_url(""))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(pv_code(r).await, "0");
    assert_eq!(
        (ingress.stored_batches().await, ingress.stored_text().await),
        (before + 1, "a\u{FFFD}\u{FFFD}b".into())
    );
}

#[tokio::test]
async fn raw_bytes_no_url_may_hold_are_a_400_and_the_port_stays_up() {
    let ingress = Ingress::start().await;
    let addr = ingress.base.trim_start_matches("http://");
    for line in [
        b"GET /index.php?app=ws&msg=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(),
        b"GET /index.php?app=ws&msg=a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /index.php?app=ws HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(line).await.unwrap();
        // Closed without an answer is fine too: nothing ran.
        if let Some(head) = read_answer(&mut stream).await {
            assert!(head.starts_with("HTTP/1.1 400"), "{:?}: {head}", String::from_utf8_lossy(line));
        }
    }
    assert_eq!(ingress.stored_batches().await, 0);
    let r = ingress.http.get(ingress.pv_url("to=628111000001&msg=still+up")).send().await.unwrap();
    assert_eq!(pv_code(r).await, "0");
}

#[tokio::test]
async fn control_characters_are_text_where_text_is_and_refused_where_a_name_is() {
    let ingress = Ingress::start().await;
    // In a message they are the client's text: stored as sent.
    let r = ingress.http.get(ingress.pv_url("to=628111000001&msg=a%01b%1Bc%7Fd%0Be")).send().await.unwrap();
    assert_eq!(pv_code(r).await, "0");
    assert_eq!(ingress.stored_text().await, "a\u{1}b\u{1b}c\u{7f}d\u{b}e");
    let before = ingress.stored_batches().await;
    // In a user name or token they match no account: ERR 100, nothing stored.
    for auth in [format!("u=ali%0Ace&h={}", ingress.token), format!("u=alice&h={}%01", ingress.token)] {
        let url = format!("{}/index.php?app=ws&{auth}&op=pv&to=628111000001&msg=hi", ingress.base);
        assert_eq!(pv_code(ingress.http.get(url).send().await.unwrap()).await, "100", "{auth}");
    }
    // A destination made of control characters is no number.
    let r = ingress.http.get(ingress.pv_url("to=%01%02%1B&msg=hi")).send().await.unwrap();
    assert_eq!(pv_code(r).await, "200");
    let bulk = format!(
        "/bulksms/bulksms?username=alice&password={BULK_PASSWORD}&type=0&dlr=0&source=ACME&message=hi&destination=%01%1B"
    );
    assert_eq!(ingress.get(&bulk).await.text().await.unwrap(), "1706");
    assert_eq!(ingress.stored_batches().await, before);
}

#[tokio::test]
async fn repeated_parameters_take_the_last_and_array_syntax_is_no_parameter() {
    let ingress = Ingress::start().await;
    // PHP: the last of repeated names wins, in the query and in the body.
    let r = ingress.http.get(ingress.pv_url("to=628111000001&msg=first&msg=last")).send().await.unwrap();
    assert_eq!(pv_code(r).await, "0");
    assert_eq!(ingress.stored_text().await, "last");
    let r = ingress
        .http
        .post(ingress.pv_url("to=628111000001&msg=query"))
        .form(&[("msg", "body-1"), ("msg", "body-2")])
        .send()
        .await
        .unwrap();
    assert_eq!(pv_code(r).await, "0");
    assert_eq!(ingress.stored_text().await, "body-2");
    let before = ingress.stored_batches().await;
    // `to[]` and `msg[0]` are other names (no op reads arrays): `to` or
    // `msg` is missing, ERR 201; the bulk API's is 1702.
    for rest in
        ["to[]=628111000001&to[]=628111000002&msg=hi", "to=628111000001&msg[0]=hi", "to=628111000001&msg[a][b]=hi"]
    {
        let r = ingress.http.get(ingress.pv_url(rest)).send().await.unwrap();
        assert_eq!(pv_code(r).await, "201", "{rest}");
    }
    let bulk = format!(
        "/bulksms/bulksms?username=alice&password={BULK_PASSWORD}&type=0&dlr=0&source=ACME&message=hi&destination[]=919999999999"
    );
    assert_eq!(ingress.get(&bulk).await.text().await.unwrap(), "1702");
    assert_eq!(ingress.stored_batches().await, before);
}

#[tokio::test]
async fn oversize_values_urls_and_headers_get_their_codes_and_store_nothing() {
    let ingress = Ingress::start().await;
    // A message over the part limit: pv's ERR 200 item, bulk's 1705.
    let long = "a".repeat(160 * 20);
    let r = ingress.http.get(ingress.pv_url(&format!("to=628111000001&msg={long}"))).send().await.unwrap();
    assert_eq!(pv_code(r).await, "200");
    let bulk = format!(
        "/bulksms/bulksms?username=alice&password={BULK_PASSWORD}&type=0&dlr=0&source=ACME&destination=919999999999"
    );
    assert_eq!(ingress.get(&format!("{bulk}&message={long}")).await.text().await.unwrap(), "1705");
    // More destinations than one request may carry (10,000 by default).
    let many: Vec<String> = (0..10_001).map(|i| format!("628111{i:06}")).collect();
    let r = ingress
        .http
        .post(ingress.pv_url(""))
        .form(&[("to", many.join(",")), ("msg", "hi".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(pv_code(r).await, "200");
    // A URL or a header no server buffers: refused by the HTTP layer (4xx),
    // the port keeps serving.
    let huge_query = ingress.pv_url(&format!("to=628111000001&msg={}", "a".repeat(1024 * 1024)));
    let status = match ingress.http.get(huge_query).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 431, // closed mid-send
    };
    assert!((400..500).contains(&status), "{status}");
    let r =
        ingress.http.get(ingress.pv_url("to=628111000001&msg=hi")).header("x-big", "b".repeat(512 * 1024)).send().await;
    assert!(r.map(|r| r.status().is_client_error()).unwrap_or(true));
    assert_eq!(ingress.stored_batches().await, 0);
    let r = ingress.http.get(ingress.pv_url("to=628111000001&msg=still+up")).send().await.unwrap();
    assert_eq!(pv_code(r).await, "0");
}

#[tokio::test]
async fn a_body_of_the_wrong_type_is_not_read_as_parameters() {
    let ingress = Ingress::start().await;
    let form = "to=628111000001&msg=from-the-body";
    // JSON, plain text, XML or no type on /index.php: playSMS reads only
    // forms, so `to`/`msg` are missing (ERR 201).
    for content_type in ["application/json", "text/plain", "text/xml", "application/octet-stream", ""] {
        let mut req = ingress.http.post(ingress.pv_url(""));
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        assert_eq!(pv_code(req.body(form).send().await.unwrap()).await, "201", "{content_type:?}");
    }
    // multipart without a boundary, or with one the body does not use.
    for content_type in ["multipart/form-data", "multipart/form-data; boundary=nope"] {
        let r = ingress.http.post(ingress.pv_url("")).header("content-type", content_type).body(form).send().await;
        assert_eq!(pv_code(r.unwrap()).await, "201", "{content_type}");
    }
    // The bulk API reads forms only: a multipart body is not its parameters (1702).
    let multipart = "--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--b--\r\n";
    let r = ingress
        .http
        .post(format!("{}/bulksms/bulksms", ingress.base))
        .header("content-type", "multipart/form-data; boundary=b")
        .body(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "1702");
    // The JSON door given a form: no JSON object, so no parameters and no
    // op: the bare envelope, no status.
    let r = ingress
        .http
        .post(format!("{}/playsms/api.php", ingress.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user=alice&token={}&op=pv&{form}", ingress.token))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.starts_with(r#"{"error_string":null,"timestamp":"#) && !body.contains("status"), "{body}");
    assert_eq!(ingress.stored_batches().await, 0);
}

#[tokio::test]
async fn a_client_that_stops_mid_body_holds_nothing_and_stores_nothing() {
    let ingress = Ingress::start().await;
    let addr = ingress.base.trim_start_matches("http://");
    // Promise a body, send half, go away: the request is not run.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let path = format!("/index.php?app=ws&u=alice&h={}&op=pv", ingress.token);
    let body = "to=628111000001&msg=never+finished";
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len() + 100
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..20]).await.unwrap();
    drop(stream);
    // A slow client does not hold up another: one byte at a time, with
    // other requests answered in between.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\n\r\n",
        &ingress.pv_url("to=628111000001&msg=slow")[ingress.base.len()..]
    );
    for (i, byte) in request.bytes().enumerate() {
        slow.write_all(&[byte]).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        if i % 40 == 0 {
            let r = ingress.http.get(format!("{}/healthz", ingress.base)).send().await;
            assert!(r.is_ok_and(|r| r.status().is_success() || r.status().is_client_error()));
        }
    }
    let answer = read_answer(&mut slow).await.expect("the slow request is answered");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Only the slow client's message was stored; the broken-off one never ran.
    assert_eq!((ingress.stored_batches().await, ingress.stored_text().await), (1, "slow".into()));
}

/// Resident memory of this test process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn memory_stays_bounded_under_many_oversize_bodies() {
    let ingress = Ingress::start().await;
    // Warm up the server and the client.
    let r = ingress.http.get(ingress.pv_url("to=628111000001&msg=warm")).send().await.unwrap();
    assert_eq!(pv_code(r).await, "0");
    let before = rss_kib();
    // 40 bodies of 16 MB each (640 MB sent in all), 8 at a time: each is
    // read to the 8 MB limit and refused, so the server holds at most a
    // few limits' worth however much is sent.
    let body = bytes::Bytes::from(format!("msg={}", "a".repeat(16 * 1024 * 1024)));
    let mut peak = before;
    for _ in 0..5 {
        let sends = (0..8).map(|_| {
            ingress
                .http
                .post(ingress.pv_url("to=628111000001"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
        });
        // Refused with 102, or the connection closed past the drained bytes.
        for r in futures_util::future::join_all(sends).await.into_iter().flatten() {
            assert_eq!(err_code(&r.text().await.unwrap()).as_deref(), Some("102"));
        }
        peak = peak.max(rss_kib());
    }
    assert_eq!(ingress.stored_batches().await, 1);
    // Eight requests in flight at most hold 8 × 8 MB of body; allow twice that.
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(grown_mib < 160, "resident memory grew by {grown_mib} MiB");
}
