//! The report: JSON (everything), Markdown (the tables for the README) and
//! a PNG chart of throughput and latency percentiles over time.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::scenarios::{ScenarioResult, Sizes};

#[derive(Debug, serde::Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gb: f64,
    pub kernel: String,
    pub note: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kb: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu_model,
            memory_gb: (memory_kb / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
            note: "shared machine: other builds may run during the benchmark, so compare ratios to the ceilings".into(),
        }
    }
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub started_at: String,
    pub mode: &'static str,
    pub build: &'static str,
    pub machine: Machine,
    pub sizes: Sizes,
    pub scenarios: Vec<ScenarioResult>,
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The headline throughput of a scenario with its unit.
fn headline(s: &ScenarioResult) -> String {
    let m = &s.metrics;
    let pick = |k: &str, unit: &str| m.get(k).map(|v| format!("{} {unit}", fmt_num(*v)));
    let group_commit = match (m.get("mean_submissions_per_publish"), m.get("mean_publish_to_puback_ms")) {
        (Some(n), Some(ms)) => format!("; group commit: {n:.1} submissions per publish, {ms:.1} ms to PubAck"),
        _ => String::new(),
    };
    match s.name.as_str() {
        "bulk-pv" => pick("recipients_per_s", "recipients/s"),
        "transactional" | "transactional-all" => pick("messages_per_s", "msg/s delivered").map(|h| h + &group_commit),
        "end-to-end" => pick("messages_per_s", "msg/s delivered"),
        "burst" | "burst-all" => m.get("requests_per_s").zip(m.get("backlog_delivered_after_s")).map(|(r, b)| {
            format!(
                "{} req/s accepted; backlog delivered and in ds {b:.1} s after the burst{group_commit}",
                fmt_num(*r)
            )
        }),
        "campaign" => m
            .get("all_accepted_s")
            .zip(m.get("all_delivered_s"))
            .map(|(a, d)| format!("accepted in {a:.1} s, delivered and in ds in {d:.1} s")),
        "scale-out" => m.get("scale_ratio").map(|r| {
            format!(
                "{:.2}× ({} → {} msg/s)",
                r,
                fmt_num(m.get("one_dispatcher_msgs_per_s").copied().unwrap_or(0.0)),
                fmt_num(m.get("two_dispatchers_msgs_per_s").copied().unwrap_or(0.0))
            )
        }),
        "ingress-pv" => pick("requests_per_s", "req/s").map(|h| h + &group_commit),
        _ => pick("requests_per_s", "req/s"),
    }
    .unwrap_or_else(|| "—".into())
}

/// The scenario's name as the table shows it, with what it leaves out.
fn label(s: &ScenarioResult) -> String {
    match s.name.as_str() {
        "ingress-pv" | "bulk-pv" => format!("{} (no consumer runs behind it)", s.name),
        name if name.ends_with("-all") => format!("{name} (`smsfleet all`, one process)"),
        "burst" | "transactional" => format!("{} (one process per role)", s.name),
        name => name.to_owned(),
    }
}

fn latency(s: &ScenarioResult) -> String {
    if matches!(s.name.as_str(), "end-to-end" | "transactional" | "transactional-all") {
        let m = &s.metrics;
        return match (m.get("accept_to_delivered_p50_ms"), m.get("accept_to_delivered_p99_ms")) {
            (Some(a), Some(b)) => format!("accept→delivered {} / {} / — ms", fmt_num(*a), fmt_num(*b)),
            _ => "—".into(),
        };
    }
    let mut parts = Vec::new();
    for (label, run) in &s.runs {
        let l = &run.latency;
        parts.push(format!("{label}: {} / {} / {} ms", fmt_num(l.p50_ms), fmt_num(l.p99_ms), fmt_num(l.p999_ms)));
    }
    if parts.is_empty() { "—".into() } else { parts.join("<br>") }
}

fn ratios(s: &ScenarioResult) -> String {
    let mut out = Vec::new();
    if let Some(r) = s.metrics.get("ratio_to_ceiling_jetstream") {
        out.push(format!("{r:.2}× JetStream"));
    }
    if let Some(r) = s.metrics.get("ratio_to_ceiling_http") {
        out.push(format!("{r:.2}× HTTP"));
    }
    if out.is_empty() { "—".into() } else { out.join(", ") }
}

fn goals(s: &ScenarioResult) -> String {
    if let Some(e) = &s.error {
        return format!("**FAILED**: {}", e.replace('\n', " ").replace('|', "/"));
    }
    if s.goals.is_empty() {
        return "—".into();
    }
    s.goals
        .iter()
        .map(|g| format!("{} {} ({})", if g.met { "✅" } else { "❌" }, g.what, fmt_num(g.value)))
        .collect::<Vec<_>>()
        .join("<br>")
}

pub fn markdown(r: &Report) -> String {
    let mut md = String::new();
    let m = &r.machine;
    let _ = writeln!(md, "# smsfleet benchmark, {} ({} mode, {} build)\n", r.started_at, r.mode, r.build);
    let _ = writeln!(
        md,
        "Machine: {} CPUs ({}), {} GB RAM, Linux {}; {}.\n",
        m.cpus, m.cpu_model, m.memory_gb, m.kernel, m.note
    );
    md.push_str("| scenario | throughput | latency p50 / p99 / p99.9 | vs ceilings | goals |\n");
    md.push_str("| --- | --- | --- | --- | --- |\n");
    for s in &r.scenarios {
        let _ = writeln!(md, "| {} | {} | {} | {} | {} |", label(s), headline(s), latency(s), ratios(s), goals(s));
    }
    md.push_str("\nCPU seconds and peak RSS (MB) of every process during each scenario:\n\n");
    md.push_str("| scenario | process | CPU s | peak RSS MB |\n| --- | --- | --- | --- |\n");
    for s in &r.scenarios {
        for u in &s.usage {
            let _ = writeln!(md, "| {} | {} | {:.1} | {:.0} |", s.name, u.name, u.cpu_secs, u.peak_rss_mb);
        }
    }
    md
}

/// A font for chart labels, if the system has one; plotters needs one to
/// draw any text, and a minimal system may have none.
fn register_font() -> bool {
    const CANDIDATES: [&str; 4] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    for path in CANDIDATES {
        if let Ok(bytes) = std::fs::read(path) {
            // plotters keeps the font for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

type ChartResult = Result<(), Box<dyn std::error::Error>>;

/// One row per load run: throughput per second (left) and p50/p99/p99.9
/// latency per second (right, log scale).
pub fn chart(r: &Report, path: &Path) -> ChartResult {
    let runs: Vec<(String, &smsfleet_loadgen::RunReport)> = r
        .scenarios
        .iter()
        .flat_map(|s| s.runs.iter().map(move |(label, run)| (format!("{} ({label})", s.name), run)))
        .filter(|(_, run)| !run.series.is_empty())
        .collect();
    if runs.is_empty() {
        return Ok(());
    }
    let text = register_font();
    let root = BitMapBackend::new(path, (1400, 260 * runs.len() as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let rows = root.split_evenly((runs.len(), 2));
    for (i, (label, run)) in runs.iter().enumerate() {
        let secs = run.series.len() as u64;
        let max_tp = run.series.iter().map(|p| p.ok).max().unwrap_or(1).max(1) as f64 * 1.1;
        let mut c = ChartBuilder::on(&rows[2 * i]);
        c.margin(10);
        if text {
            c.caption(format!("{label}: requests/s"), ("sans-serif", 18)).x_label_area_size(30).y_label_area_size(70);
        }
        let mut chart = c.build_cartesian_2d(0u64..secs.max(1), 0f64..max_tp)?;
        if text {
            chart.configure_mesh().x_desc("s").draw()?;
        }
        chart.draw_series(LineSeries::new(run.series.iter().map(|p| (p.t, p.ok as f64)), BLUE.stroke_width(2)))?;

        let max_lat = run.series.iter().map(|p| p.p999_ms).fold(0.1, f64::max) * 1.5;
        let mut c = ChartBuilder::on(&rows[2 * i + 1]);
        c.margin(10);
        if text {
            c.caption(format!("{label}: latency ms (p50 green, p99 orange, p99.9 red)"), ("sans-serif", 18))
                .x_label_area_size(30)
                .y_label_area_size(70);
        }
        let mut chart = c.build_cartesian_2d(0u64..secs.max(1), (0.01f64..max_lat).log_scale())?;
        if text {
            chart.configure_mesh().x_desc("s").draw()?;
        }
        let pick = |f: fn(&smsfleet_loadgen::SecondPoint) -> f64| {
            run.series.iter().filter(|p| p.ok > 0).map(move |p| (p.t, f(p).max(0.01))).collect::<Vec<_>>()
        };
        chart.draw_series(LineSeries::new(pick(|p| p.p50_ms), GREEN.stroke_width(2)))?;
        chart.draw_series(LineSeries::new(pick(|p| p.p99_ms), RGBColor(255, 140, 0).stroke_width(2)))?;
        chart.draw_series(LineSeries::new(pick(|p| p.p999_ms), RED.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(fmt_num(1_234_567.4), "1,234,567");
        assert_eq!(fmt_num(123.0), "123");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
    }
}
