//! Kannel (Debian's bearerbox and smsbox, not ours) as a customer gateway
//! bound to our SMPP server: a message sent through Kannel's sendsms is
//! accepted by smsfleet, and our receipt comes back to Kannel, which
//! matches it to its message and calls its `dlr-url`.

use std::process::Stdio;
use std::time::Duration;

use smsfleet_testkit::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::fleet::{Fleet, port};

fn kannel_conf(smpp_port: u16, admin: u16, smsbox: u16, sendsms: u16, dir: &std::path::Path) -> String {
    format!(
        r#"group = core
admin-port = {admin}
admin-password = adminpw
smsbox-port = {smsbox}
log-level = 1
log-file = "{log}/bearerbox.log"
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = smsfleet
host = 127.0.0.1
port = {smpp_port}
transceiver-mode = true
smsc-username = kanuser
smsc-password = smpp8pwd
system-type = VMA
msg-id-type = 0x00
max-pending-submits = 10

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
log-file = "{log}/smsbox.log"
log-level = 1

group = sendsms-user
username = tester
password = testerpw
"#,
        log = dir.display()
    )
}

/// Accepts HTTP requests and hands their request lines over.
async fn dlr_listener() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned();
                let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                let _ = tx.send(head);
            });
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_as_a_customer_gets_our_receipt_at_its_dlr_url() {
    let f = Fleet::start(&[]).await;
    let out =
        f.cli(&["account", "create", "--username", "kanuser", "--password", "secretpass1", "--role", "user"]).await;
    let token = out.split("token=").nth(1).unwrap().trim().to_owned();
    f.cli(&["account", "set", "kanuser", "--smpp-password", "smpp8pwd"]).await;
    let dir = tempfile_dir();
    let (admin, smsbox, sendsms) = (port(), port(), port());
    let conf = dir.join("kannel.conf");
    std::fs::write(&conf, kannel_conf(f.smpp_port(), admin, smsbox, sendsms, &dir)).unwrap();
    let spawn = |bin: &str| {
        Command::new(bin)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{bin}: {e} (scripts/setup.sh installs kannel)"))
    };
    let _bearerbox = spawn("/usr/sbin/bearerbox");
    // Kannel's status page says "online" once the SMPP bind is up.
    let status = format!("http://127.0.0.1:{admin}/status.txt?password=adminpw");
    let online = eventually(Duration::from_secs(30), || async {
        let body = reqwest::get(&status).await.ok()?.text().await.ok()?;
        body.contains("smsfleet").then_some(()).filter(|_| body.contains("online"))
    })
    .await;
    assert!(online.is_some(), "Kannel bound to our SMPP server; logs in {}", dir.display());
    let _smsbox = spawn("/usr/sbin/smsbox");
    let (dlr_port, mut dlrs) = dlr_listener().await;
    let dlr_url = format!("http://127.0.0.1:{dlr_port}/dlr?type=%d&id=%F");
    let send = eventually(Duration::from_secs(20), || async {
        let r = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{sendsms}/cgi-bin/sendsms"))
            .query(&[
                ("username", "tester"),
                ("password", "testerpw"),
                ("from", "ACME"),
                ("to", "628111000201"),
                ("text", "hello from kannel"),
                ("dlr-mask", "1"),
                ("dlr-url", dlr_url.as_str()),
            ])
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    assert!(send.is_some(), "Kannel accepted the sendsms request");
    let hit = tokio::time::timeout(Duration::from_secs(30), dlrs.recv()).await.expect("Kannel called its dlr-url");
    let line = hit.unwrap();
    assert!(line.contains("type=1"), "a delivered report: {line}");
    // The message Kannel submitted is the account's, delivered, in ds.
    let q = [("u", "kanuser"), ("h", token.as_str()), ("op", "ds")];
    let rows = f.ws(&q).await["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["dst"].as_str(), rows[0]["msg"].as_str()), (Some("628111000201"), Some("hello from kannel")));
    assert!(line.contains(&format!("id={}", rows[0]["smslog_id"])), "the receipt matched our id: {line}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("smsfleet-kannel-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}
