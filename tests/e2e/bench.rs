//! End-to-end throughput, measured (never asserted): run with
//! `cargo test --release -p smsfleet --test e2e -- --ignored --nocapture throughput`.
//! `E2E_MESSAGES` (default 10,000) messages go through every role as
//! separate processes, 100 destinations per `pv`, 8 clients at once.

use std::time::{Duration, Instant};

use smsfleet_testkit::eventually;

use crate::fleet::Fleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it by name"]
async fn throughput_end_to_end() {
    let total: usize = std::env::var("E2E_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let per_request = 100;
    let f = Fleet::start(&[("SMSFLEET_SIM_DLR_LATENCY_MS", "10")]).await;
    let token = f.user("bench").await;
    let requests = total / per_request;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let client = reqwest::Client::new();
    let url = format!("{}/index.php?app=ws", f.ingress);
    for worker in 0..8 {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.spawn(async move {
            let mut r = worker;
            while r < requests {
                let to: Vec<String> = (0..per_request).map(|i| format!("628{:05}{:04}", r, i)).collect();
                let form = [
                    ("u", "bench"),
                    ("h", token.as_str()),
                    ("op", "pv"),
                    ("msg", "bench message"),
                    ("to", &to.join(",")),
                ];
                let resp = client.post(&url).form(&form).send().await.expect("send");
                assert_eq!(resp.status(), 200);
                r += 8;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let accepted = started.elapsed();
    let done = eventually(Duration::from_secs(600), || async {
        let counts = smsfleet_store::projection::status_counts(&f.env.pool, None).await.ok()?;
        (counts.iter().find(|c| c.0 == 3).map(|c| c.1 as usize) == Some(total)).then_some(())
    })
    .await;
    let delivered = started.elapsed();
    assert!(done.is_some(), "not all delivered");
    println!(
        "end-to-end: {total} messages accepted in {:.2} s ({:.0}/s), delivered and visible in ds in {:.2} s ({:.0} msg/s)",
        accepted.as_secs_f64(),
        total as f64 / accepted.as_secs_f64(),
        delivered.as_secs_f64(),
        total as f64 / delivered.as_secs_f64()
    );
}
