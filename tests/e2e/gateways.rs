//! Routes files and HTTP gateways as upstreams, end to end: another
//! smsfleet as a RouteSMS-style upstream (its bulk API takes the message,
//! its callbacks role reports back to ours), bad routes files stopping a
//! start with one line, and a SIGHUP reload that keeps messages in flight.

use std::time::Duration;

use serde_json::Value;
use smsfleet_testkit::eventually;

use crate::fleet::{BIN, Fleet, port};

const WAIT: Duration = Duration::from_secs(60);

async fn pv(f: &Fleet, user: &str, token: &str, to: &str, msg: &str) -> Vec<i64> {
    let sent = f.ws(&[("u", user), ("h", token), ("op", "pv"), ("to", to), ("msg", msg), ("from", "ACME")]).await;
    let items = sent["data"].as_array().unwrap_or_else(|| panic!("pv refused: {sent}"));
    items.iter().map(|i| i["smslog_id"].as_i64().unwrap_or_else(|| panic!("{sent}"))).collect()
}

async fn ds(f: &Fleet, user: &str, token: &str) -> Vec<Value> {
    let ds = f.ws(&[("u", user), ("h", token), ("op", "ds"), ("c", "1000")]).await;
    ds["data"].as_array().cloned().unwrap_or_default()
}

/// Waits until `n` of the user's messages are delivered (status 3).
async fn wait_delivered(f: &Fleet, user: &str, token: &str, n: usize) -> Vec<Value> {
    eventually(WAIT, || async {
        let rows = ds(f, user, token).await;
        (rows.len() == n && rows.iter().all(|r| r["status"] == 3)).then_some(rows)
    })
    .await
    .unwrap_or_else(|| panic!("not all {n} delivered"))
}

async fn stats(url: &str) -> Value {
    reqwest::get(format!("{url}/stats")).await.expect("stats").json().await.expect("json")
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// smsfleet A sends through smsfleet B's `/bulksms/bulksms` (profile
/// `routesms`); B's `1701|<dest>|<id>` is read as taken with B's id, and
/// B's callbacks role posts the final status to A's `/dlr/<route>/bulk`,
/// which A matches by that id. B sent the message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_smsfleet_as_routesms_upstream_sends_once_and_reports_back() {
    let mut a = Fleet::prepare(&[]).await;
    let b = Fleet::start(&[]).await;
    let callback = format!("{}/dlr/gw-b/bulk", a.dlr);
    b.cli(&[
        "account",
        "create",
        "--username",
        "fleet-a",
        "--password",
        "upstreampw1",
        "--role",
        "user",
        "--dlr-callback-url",
        &callback,
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let routes = write(
        &dir,
        "routes.toml",
        &format!(
            r#"
dlr_base_url = "{dlr}"
[[route]]
name = "gw-b"
protocol = "http"
[route.limits]
concurrency = 4
[route.http]
profile = "routesms"
url = "{b}/bulksms/bulksms"
username = "fleet-a"
password_env = "GW_B_PASSWORD"

# The same gateway described wrongly: its `1701|…` answer matches none of
# these rules. The issue's duplicate send: this must go out exactly once.
[[route]]
name = "gw-b-misread"
protocol = "http"
prefixes = ["44"]
[route.http]
url = "{b}/bulksms/bulksms?username=fleet-a&password={{password}}&type=0&dlr=0&destination={{to}}&source={{from}}&message={{text}}"
password_env = "GW_B_PASSWORD"
success_regex = "^OK"
"#,
            dlr = a.dlr,
            b = b.ingress
        ),
    );
    a.dispatcher_env = vec![("SMSFLEET_ROUTES_FILE".into(), routes), ("GW_B_PASSWORD".into(), "upstreampw1".into())];
    a.start_roles().await;
    let token = a.user("alice").await;
    let ids = pv(&a, "alice", &token, "628111000001,628111000002", "through another gateway").await;
    assert_eq!(ids.len(), 2);
    let rows = wait_delivered(&a, "alice", &token, 2).await;
    assert!(rows.iter().all(|r| r["msg"] == "through another gateway"), "{rows:?}");
    let s = stats(&b.simulator).await;
    assert_eq!((s["accepted"].as_u64(), s["submits"].as_u64()), (Some(2), Some(2)), "{s}");
    // Nothing of ours reached our own simulator.
    assert_eq!(a.sim_stats().await["submits"], 0);

    // An answer the route cannot classify: failed at once, never resent
    // (neither by the dispatcher's retries nor by a redelivery).
    pv(&a, "alice", &token, "447700900001", "read wrongly").await;
    let failed = eventually(WAIT, || async {
        let rows = ds(&a, "alice", &token).await;
        rows.iter().find(|r| r["dst"] == "447700900001" && r["status"] == 2).cloned()
    })
    .await;
    assert!(failed.is_some(), "not failed: {:?}", ds(&a, "alice", &token).await);
    a.wait_consumer_idle(smsfleet_contract::StreamKind::Dispatch, "dispatcher").await;
    let s = stats(&b.simulator).await;
    assert_eq!((s["accepted"].as_u64(), s["submits"].as_u64()), (Some(3), Some(3)), "sent once: {s}");
}

/// A routes file that does not check out stops the dispatcher before it
/// connects to anything, with one line naming the route and the field;
/// `smsfleet routes check` says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_routes_file_stops_the_start_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"
dlr_base_url = "http://127.0.0.1:8081"
[[route]]
name = "kannel"
protocol = "http"
prefixes = ["62"]
[route.http]
profile = "kannel"
url = "http://127.0.0.1:13013/cgi-bin/sendsms"
username = "u"
password_env = "KANNEL_PW"
"#;
    let cases = [
        (good.replace("username", "usrname"), r#"route "kannel": [route.http] unknown field `usrname`"#),
        (good.replace("\"62\"", "\"6x2\""), r#"route "kannel": prefixes: "6x2" is not a digit prefix"#),
        (
            good.replace("KANNEL_PW", "NOT_SET_ANYWHERE"),
            r#"route "kannel": [route.http] password_env: NOT_SET_ANYWHERE is not set"#,
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = write(&dir, &format!("bad{i}.toml"), text);
        for args in [vec!["dispatcher"], vec!["routes", "check", path.as_str()]] {
            let out = tokio::process::Command::new(BIN)
                .args(&args)
                .env_clear()
                .env("SMSFLEET_ROUTES_FILE", &path)
                .env("KANNEL_PW", "secret")
                // Nothing listens here: the start must stop before connecting.
                .env("NATS_URL", "nats://127.0.0.1:1")
                .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
                .output()
                .await
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} started with {text}");
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
            assert!(lines[0].contains(expected), "{args:?}: {stderr}");
        }
    }
    let path = write(&dir, "good.toml", good);
    let out = tokio::process::Command::new(BIN)
        .args(["routes", "check", &path])
        .env_clear()
        .env("KANNEL_PW", "secret")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 routes, ok"));
}

/// SIGHUP re-reads the routes file: a chunk in flight finishes on the
/// upstream it started on, the next goes to the new one, and nothing is
/// lost or sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reload_keeps_messages_in_flight() {
    let mut f = Fleet::prepare(&[("SMSFLEET_SIM_MAX_MPS", "20")]).await;
    let second = format!("127.0.0.1:{}", port());
    f.spawn_extra(&["simulator"], &[("SMSFLEET_SIMULATOR_LISTEN", &second)]);
    let second = format!("http://{second}");
    let dlr = f.dlr.clone();
    let file = |sim: &str| {
        format!(
            r#"
dlr_base_url = "{dlr}"
[[route]]
name = "sim"
protocol = "sim"
[route.limits]
concurrency = 1
batch = 1
[route.sim]
url = "{sim}/submit"
"#
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let routes = write(&dir, "routes.toml", &file(&f.simulator));
    f.dispatcher_env = vec![("SMSFLEET_ROUTES_FILE".into(), routes)];
    f.start_roles().await;
    let up = eventually(WAIT, || async { reqwest::get(format!("{second}/healthz")).await.ok().map(|_| ()) }).await;
    assert!(up.is_some(), "second simulator not up");
    let token = f.user("alice").await;

    // 30 messages, one per call at 20/s: well over a second in flight.
    let first: Vec<String> = (0..30).map(|i| format!("62811{i:07}")).collect();
    pv(&f, "alice", &token, &first.join(","), "before the reload").await;
    let started = eventually(WAIT, || async {
        let n = f.sim_stats().await["accepted"].as_u64()?;
        (n >= 1).then_some(n)
    })
    .await
    .expect("first chunk under way");
    assert!(started < 30, "the first chunk finished before the reload ({started})");

    std::fs::write(dir.path().join("routes.toml"), file(&second)).unwrap();
    let pid = f.pid("dispatcher").unwrap().to_string();
    let ok = tokio::process::Command::new("kill").args(["-HUP", &pid]).status().await.unwrap().success();
    assert!(ok);
    let reloaded = eventually(WAIT, || async {
        let m = f.metrics("dispatcher").await;
        m.lines().any(|l| l.starts_with("smsfleet_dispatch_route_reloads_total{outcome=\"ok\"} 1")).then_some(())
    })
    .await;
    assert!(reloaded.is_some(), "no reload counted");
    pv(&f, "alice", &token, "628119000001,628119000002", "after the reload").await;

    let rows = wait_delivered(&f, "alice", &token, 32).await;
    assert_eq!(rows.len(), 32);
    let (old, new) = (f.sim_stats().await, stats(&second).await);
    assert_eq!(old["accepted"], 30, "in flight finished on the old upstream: {old}");
    assert_eq!(new["accepted"], 2, "the next chunk went to the new one: {new}");
    assert_eq!((old["duplicate_submits"].as_u64(), new["duplicate_submits"].as_u64()), (Some(0), Some(0)));
}

/// Kannel (Debian's bearerbox and smsbox, configured here) in both roles:
/// our upstream through its `/cgi-bin/sendsms`, and a client of smsfleet
/// B's bulk API through its generic HTTP SMSC. The report comes back the
/// whole way: B's callbacks role calls Kannel's generic port with the
/// account's callback template (and counts it done only on Kannel's
/// `Sent`), Kannel calls our dlr-url with `%d` and the route's callback
/// secret, and our message is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_as_upstream_relays_and_its_report_comes_back() {
    let mut a = Fleet::prepare(&[]).await;
    let b = Fleet::start(&[]).await;
    let (admin, boxes, receive, sendsms) = (port(), port(), port(), port());
    let callback = format!(
        "GET http://127.0.0.1:{receive}/?dlr-mid={{message_id}}&dlr-mask={{status_code}}&to={{destination}} match=^Sent"
    );
    b.cli(&[
        "account",
        "create",
        "--username",
        "kannel-k",
        "--password",
        "kannelpw1",
        "--role",
        "user",
        "--dlr-callback-url",
        &callback,
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = write(
        &dir,
        "kannel.conf",
        &format!(
            r#"
group = core
admin-port = {admin}
admin-password = "adm"
smsbox-port = {boxes}
log-file = "{d}/bearerbox.log"
log-level = 1
box-allow-ip = "127.0.0.1"
dlr-storage = internal

group = smsc
smsc = http
smsc-id = fleetb
system-type = generic
port = {receive}
connect-allow-ip = "127.0.0.1"
send-url = "{b}/bulksms/bulksms?username=kannel-k&password=kannelpw1&type=0&dlr=1&destination=%p&source=%P&message=%b"
status-success-regex = "^1701"
generic-foreign-id-regex = "^1701\|[^|]*\|([^,]+)"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {boxes}
sendsms-port = {sendsms}
log-file = "{d}/smsbox.log"
log-level = 1

group = sendsms-user
username = smsfleet
password = kpw
max-messages = 10
"#,
            b = b.ingress
        ),
    );
    let kannel_box = |bin: &str| {
        tokio::process::Command::new(bin)
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{bin}: {e} (scripts/setup.sh installs kannel)"))
    };
    let _bearerbox = kannel_box("/usr/sbin/bearerbox");
    let up = eventually(WAIT, || async { tokio::net::TcpStream::connect(("127.0.0.1", boxes)).await.ok().map(|_| ()) })
        .await;
    assert!(up.is_some(), "bearerbox not up");
    let _smsbox = kannel_box("/usr/sbin/smsbox");
    let up =
        eventually(WAIT, || async { tokio::net::TcpStream::connect(("127.0.0.1", sendsms)).await.ok().map(|_| ()) })
            .await;
    assert!(up.is_some(), "smsbox not up");

    let routes = write(
        &dir,
        "routes.toml",
        &format!(
            r#"
dlr_base_url = "{dlr}"
[[route]]
name = "kannel"
protocol = "http"
callback_secret_env = "KANNEL_CALLBACK_SECRET"
callback_allow = ["127.0.0.1"]
[route.http]
profile = "kannel"
url = "http://127.0.0.1:{sendsms}/cgi-bin/sendsms"
username = "smsfleet"
password_env = "KANNEL_PW"
"#,
            dlr = a.dlr
        ),
    );
    // The report only counts if Kannel hands back the secret we put in its dlr-url.
    a.dispatcher_env = vec![
        ("SMSFLEET_ROUTES_FILE".into(), routes),
        ("KANNEL_PW".into(), "kpw".into()),
        ("KANNEL_CALLBACK_SECRET".into(), "k-cb.Secret~1".into()),
    ];
    a.start_roles().await;
    let forged = reqwest::get(format!("{}/dlr/kannel/kannel?id=1&status=1", a.dlr)).await.unwrap();
    assert_eq!(forged.status(), 401, "a report without the route's secret");
    let token = a.user("alice").await;
    pv(&a, "alice", &token, "628111000001", "through kannel").await;
    let delivered = eventually(WAIT, || async {
        let rows = ds(&a, "alice", &token).await;
        (rows.len() == 1 && rows[0]["status"] == 3).then_some(())
    })
    .await;
    if delivered.is_none() {
        for log in ["bearerbox.log", "smsbox.log"] {
            let text = std::fs::read_to_string(dir.path().join(log)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            eprintln!("--- {log}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        panic!("not delivered through Kannel: {:?}", ds(&a, "alice", &token).await);
    }
    let s = stats(&b.simulator).await;
    assert_eq!(s["accepted"], 1, "{s}");
    // B counted its callback done only because Kannel answered `Sent`.
    let drained = eventually(WAIT, || async {
        smsfleet_store::callbacks::pending(&b.env.pool).await.ok()?.is_empty().then_some(())
    })
    .await;
    assert!(drained.is_some(), "B's callback to Kannel still pending");
}
