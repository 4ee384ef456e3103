//! The SMPP server under load: 4 transceiver binds, window 64, each
//! pipelining submit_sm with registered_delivery through our own session
//! layer (`smsfleet-smpp`, client side). Measured: submit_sm accepted per
//! second (all resps in), next to the JetStream publish ceiling of the same
//! run; submit→resp latency percentiles (closed loop, so they include
//! queueing in the window); and submit→receipt, until every receipt is in.
//! Then an open-loop phase at 20,000 submit_sm/s over the 4 binds, its
//! latency measured from each submit's scheduled instant (so a stall
//! counts against every submit it delays).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use smsfleet_smpp::client::{self, BindConfig};
use smsfleet_smpp::rusmpp::pdus::{DeliverSmResp, SubmitSm};
use smsfleet_smpp::rusmpp::types::OctetString;
use smsfleet_smpp::rusmpp::values::{EsmClass, RegisteredDelivery};
use smsfleet_smpp::rusmpp::{CommandStatus, Pdu};
use smsfleet_smpp::{BindKind, SessionConfig, c_string};
use tokio::task::JoinSet;

use super::{Ceilings, ScenarioResult, Sizes, at_least, below, ratio};
use crate::fleet::Fleet;

const BINDS: usize = 4;
const WINDOW: usize = 64;

pub const PASSWORD: &str = "benchpw";

struct BindOutcome {
    latencies_ms: Vec<f64>,
    refused: u64,
}

/// One bind: sends `count` submits as fast as the window allows, answers
/// every receipt, counts them in `receipts`; returns once every resp is in
/// (the receipts keep coming on the session, which lives on in `keep`).
async fn one_bind(
    port: u16,
    bind_no: usize,
    count: u64,
    rate_per_s: Option<f64>,
    receipts: Arc<AtomicU64>,
    keep: tokio::sync::oneshot::Receiver<()>,
    resps_done: tokio::sync::oneshot::Sender<BindOutcome>,
) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.context("SMPP connect")?;
    let _ = tcp.set_nodelay(true);
    let bind = BindConfig::new(BindKind::Transceiver, "bench", PASSWORD, "").context("bind config")?;
    let config = SessionConfig { window: WINDOW, inbound_window: 1024, ..SessionConfig::default() };
    let session = client::bind(tcp, &bind, config).await.context("bind")?;
    let (handle, mut inbound) = (session.handle, session.inbound);
    tokio::spawn(async move {
        while let Some(req) = inbound.recv().await {
            if matches!(req.command.pdu(), Some(Pdu::DeliverSm(_))) {
                receipts.fetch_add(1, Ordering::Relaxed);
                let _ = req.responder.respond(DeliverSmResp::default()).await;
            }
        }
    });
    let text: OctetString<0, 255> =
        OctetString::from_static_slice(b"bench message").map_err(|e| anyhow::anyhow!("text: {e:?}"))?;
    let mut answers = JoinSet::new();
    let start = Instant::now();
    for i in 0..count {
        // Open loop: each submit has its instant, and its latency counts from it.
        let scheduled = match rate_per_s {
            Some(rate) => {
                let at = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                at
            }
            None => Instant::now(),
        };
        let to = format!("62{:02}{:08}", bind_no, i);
        let sm = SubmitSm::builder()
            .source_addr(c_string("BENCH"))
            .destination_addr(c_string(&to))
            .esm_class(EsmClass::from(0))
            .registered_delivery(RegisteredDelivery::from(1))
            .short_message(text.clone())
            .build();
        let pending = handle.send(sm).await.context("submit_sm")?;
        answers.spawn(async move { (pending.response().await, scheduled.elapsed()) });
    }
    let mut out = BindOutcome { latencies_ms: Vec::with_capacity(count as usize), refused: 0 };
    while let Some(joined) = answers.join_next().await {
        let (resp, took) = joined.context("resp task")?;
        match resp {
            Ok(c) if c.status() == CommandStatus::EsmeRok => out.latencies_ms.push(took.as_secs_f64() * 1000.0),
            _ => out.refused += 1,
        }
    }
    let _ = resps_done.send(out);
    let _ = keep.await;
    let _ = tokio::time::timeout(Duration::from_secs(5), handle.unbind()).await;
    Ok(())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

struct Phase {
    latencies_ms: Vec<f64>,
    all_resps: Duration,
    all_receipts: Duration,
}

/// `total` submits over the binds (paced at `rate_per_s` in all, or as fast
/// as the windows allow), until every resp and every receipt is in.
async fn phase(fleet: &Fleet, total: u64, rate_per_s: Option<f64>, timeout: Duration) -> anyhow::Result<Phase> {
    let per_bind = (total / BINDS as u64).max(1);
    let total = per_bind * BINDS as u64;
    let receipts = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut binds = JoinSet::new();
    let (mut keeps, mut dones) = (Vec::new(), Vec::new());
    for b in 0..BINDS {
        let (keep_tx, keep_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        keeps.push(keep_tx);
        dones.push(done_rx);
        let rate = rate_per_s.map(|r| r / BINDS as f64);
        binds.spawn(one_bind(fleet.smpp_port, b, per_bind, rate, receipts.clone(), keep_rx, done_tx));
    }
    let mut latencies = Vec::new();
    let mut refused = 0;
    for done in dones {
        let outcome = match done.await {
            Ok(o) => o,
            Err(_) => {
                // The bind task ended early: its error says why.
                while let Some(r) = binds.join_next().await {
                    r??;
                }
                anyhow::bail!("an SMPP bind ended before its resps");
            }
        };
        latencies.extend(outcome.latencies_ms);
        refused += outcome.refused;
    }
    let all_resps = started.elapsed();
    ensure!(refused == 0, "{refused} of {total} submit_sm were not accepted");
    while receipts.load(Ordering::Relaxed) < total {
        ensure!(started.elapsed() < timeout, "{} of {total} receipts in", receipts.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_receipts = started.elapsed();
    for keep in keeps {
        let _ = keep.send(());
    }
    while let Some(r) = binds.join_next().await {
        r??;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Phase { latencies_ms: latencies, all_resps, all_receipts })
}

/// The open loop's rate: the 20,000/s, or less in the smoke run.
const OPEN_RATE: f64 = 20_000.0;

pub(super) async fn smpp_submit(
    fleet: &mut Fleet,
    sizes: &Sizes,
    ceilings: &Ceilings,
    result: &mut ScenarioResult,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(sizes.deliver_timeout_secs);
    let total = sizes.e2e_messages;
    let closed = phase(fleet, total, None, timeout).await?;
    let per_s = total as f64 / closed.all_resps.as_secs_f64();
    let open_rate = sizes.open_rate.min(OPEN_RATE);
    let open_total = (open_rate * sizes.open_secs) as u64;
    let open = phase(fleet, open_total, Some(open_rate), timeout).await?;
    let m = &mut result.metrics;
    m.insert("submit_sm_per_s".into(), per_s);
    m.insert("resp_p50_ms".into(), percentile(&closed.latencies_ms, 0.50));
    m.insert("resp_p99_ms".into(), percentile(&closed.latencies_ms, 0.99));
    m.insert("receipts_per_s".into(), total as f64 / closed.all_receipts.as_secs_f64());
    m.insert("submit_to_last_receipt_s".into(), closed.all_receipts.as_secs_f64());
    m.insert("open_loop_rate".into(), open_rate);
    m.insert("open_loop_resp_p50_ms".into(), percentile(&open.latencies_ms, 0.50));
    m.insert("open_loop_resp_p99_ms".into(), percentile(&open.latencies_ms, 0.99));
    result.goals.push(at_least("submit_sm accepted per second", per_s, 30_000.0));
    if open_rate >= OPEN_RATE {
        result.goals.push(below(
            "open-loop p99 submit→resp ms at 20,000/s",
            percentile(&open.latencies_ms, 0.99),
            10.0,
        ));
    }
    if let Some(r) = ratio(per_s, ceilings.jetstream) {
        result.metrics.insert("ratio_to_ceiling_jetstream".into(), r);
        result.goals.push(at_least("submit_sm per second / JetStream ceiling", r, 0.4));
    }
    Ok(())
}
