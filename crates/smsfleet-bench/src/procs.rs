//! CPU seconds and peak RSS of the processes under test, from /proc.
//! Each scenario resets the peak (`clear_refs` 5) at its start, so VmHWM
//! at its end is that scenario's peak.

use std::collections::BTreeMap;

/// Linux reports CPU times in /proc in USER_HZ, which is 100 on every
/// architecture the kernel supports for userspace.
const USER_HZ: f64 = 100.0;

/// A process (or a group, such as PostgreSQL's backends) we account for.
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
    /// Count the process's children too (PostgreSQL forks a backend per connection).
    pub with_children: bool,
}

/// What one process (group) used during a scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Usage {
    pub name: String,
    pub cpu_secs: f64,
    pub peak_rss_mb: f64,
}

/// utime + stime in seconds, from the 14th and 15th fields of /proc/<pid>/stat.
pub fn parse_cpu_secs(stat: &str) -> Option<f64> {
    // The command name (field 2) may contain spaces; the fields after its
    // closing parenthesis are space separated, starting with field 3.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// `VmHWM` (peak resident set) in MB from /proc/<pid>/status.
pub fn parse_peak_rss_mb(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

fn pids_of(w: &Watched) -> Vec<u32> {
    let mut pids = vec![w.pid];
    if w.with_children
        && let Ok(dir) = std::fs::read_dir("/proc")
    {
        for entry in dir.flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                && parent_of(pid) == Some(w.pid)
            {
                pids.push(pid);
            }
        }
    }
    pids
}

fn cpu_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| parse_cpu_secs(&s)).unwrap_or(0.0)
}

fn peak_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|s| parse_peak_rss_mb(&s)).unwrap_or(0.0)
}

/// `Pss` in MB from /proc/<pid>/smaps_rollup.
pub fn parse_pss_mb(rollup: &str) -> Option<f64> {
    let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn pss_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok().and_then(|s| parse_pss_mb(&s)).unwrap_or(0.0)
}

/// CPU seconds so far per watched name; taken at the start of a scenario.
pub struct Baseline {
    cpu: BTreeMap<String, f64>,
}

/// Resets the peak RSS of every watched process and notes CPU so far.
pub fn start(watched: &[Watched]) -> Baseline {
    let mut cpu = BTreeMap::new();
    for w in watched {
        let mut total = 0.0;
        for pid in pids_of(w) {
            // Best effort: without permission the peak covers the process's life.
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
            total += cpu_of(pid);
        }
        *cpu.entry(w.name.clone()).or_insert(0.0) += total;
    }
    Baseline { cpu }
}

/// Usage since `baseline`. For groups (PostgreSQL) the memory figure is the
/// group's Pss at the end, not a peak.
pub fn finish(watched: &[Watched], baseline: &Baseline) -> Vec<Usage> {
    let mut out: BTreeMap<String, Usage> = BTreeMap::new();
    for w in watched {
        let pids = pids_of(w);
        let cpu: f64 = pids.iter().map(|p| cpu_of(*p)).sum();
        // Summing the members' peaks would count PostgreSQL's shared
        // buffers once per backend; their proportional share (Pss) at the
        // end of the scenario counts each page once.
        let peak: f64 = if w.with_children { pids.iter().map(|p| pss_of(*p)).sum() } else { peak_of(pids[0]) };
        let usage =
            out.entry(w.name.clone()).or_insert(Usage { name: w.name.clone(), cpu_secs: 0.0, peak_rss_mb: 0.0 });
        usage.cpu_secs += cpu;
        usage.peak_rss_mb = usage.peak_rss_mb.max(peak);
    }
    for usage in out.values_mut() {
        usage.cpu_secs = (usage.cpu_secs - baseline.cpu.get(&usage.name).copied().unwrap_or(0.0)).max(0.0);
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_utime_plus_stime() {
        let stat = "1234 (smsfleet ingress) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_cpu_secs(stat), Some(3.0));
        assert_eq!(parse_cpu_secs("garbage"), None);
    }

    #[test]
    fn peak_rss_is_vmhwm() {
        let status = "Name:\tsmsfleet\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_peak_rss_mb(status), Some(50.0));
        assert_eq!(parse_peak_rss_mb("Name:\tx\n"), None);
        assert_eq!(parse_pss_mb("Rss:\t 2048 kB\nPss:\t 1024 kB\n"), Some(1.0));
    }

    #[test]
    fn our_own_process_is_measurable() {
        let me = Watched { name: "me".into(), pid: std::process::id(), with_children: false };
        let base = start(std::slice::from_ref(&me));
        let usage = finish(&[me], &base);
        assert_eq!(usage.len(), 1);
        assert!(usage[0].peak_rss_mb > 0.0);
    }
}
