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
