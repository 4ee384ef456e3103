//! Command-line settings turned into the roles' typed configs. `smsfleet
//! <role>` and `smsfleet all` share these, so a flag means the same in both.

use std::time::Duration;

use anyhow::bail;

use crate::cli;

pub fn ingress(s: &cli::IngressSettings) -> smsfleet_ingress::IngressConfig {
    smsfleet_ingress::IngressConfig {
        max_destinations: s.max_destinations,
        max_segments: s.max_parts,
        default_sender: s.default_sender.clone(),
        validity: Duration::from_secs(s.validity_hours * 3600),
        bulk: smsfleet_ingress::BulkSettings {
            ip_blacklist: s.bulk_ip_blacklist.clone(),
            spam_patterns: s
                .bulk_spam_patterns
                .split('|')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            duplicate_window: Duration::from_secs(s.bulk_duplicate_window_secs),
        },
        login_guard: smsfleet_ingress::GuardSettings {
            limit: s.login_attempt_limit,
            window: Duration::from_secs(s.login_window_secs),
            block_for: Duration::from_secs(s.login_block_secs),
        },
        web_root: s.web_root.clone(),
        trusted_proxies: s.trusted_proxies.clone(),
        http: http_limits(&s.limits),
        store_deadline: Duration::from_secs(s.store_deadline_secs.max(1)),
        ..Default::default()
    }
}

pub fn http_limits(a: &cli::HttpLimitArgs) -> smsfleet_telemetry::HttpLimits {
    smsfleet_telemetry::HttpLimits {
        header_read_timeout: Duration::from_secs(a.http_header_timeout_secs.max(1)),
        max_connections: a.http_max_connections,
        max_connections_per_ip: a.http_max_connections_per_ip,
    }
}

/// The dlr role takes callbacks only for `routes`, with each route's
/// secret and allow-list; no routes takes any (and says so at start).
pub fn dlr(limits: &cli::HttpLimitArgs, routes: &[smsfleet_dispatcher::Route]) -> smsfleet_dlr::DlrConfig {
    let callbacks = smsfleet_dlr::CallbackAuth::new(routes.iter().map(|r| {
        let rules = smsfleet_dlr::RouteCallbacks { secret: r.callback.secret.clone(), allow: r.callback.allow.clone() };
        (r.name.to_string(), rules)
    }));
    smsfleet_dlr::DlrConfig { http: http_limits(limits), callbacks, ..Default::default() }
}

pub fn dispatcher(routes: &str) -> anyhow::Result<smsfleet_dispatcher::DispatcherConfig> {
    let routes = smsfleet_dispatcher::parse_routes(routes)?;
    if routes.is_empty() {
        bail!("at least one route is needed (SMSFLEET_ROUTES)");
    }
    Ok(smsfleet_dispatcher::DispatcherConfig { routes, ..Default::default() })
}

pub fn simulator(s: &cli::SimulatorSettings, dlr_url: Option<String>) -> smsfleet_simulator::SimulatorConfig {
    let list = |v: &str| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    smsfleet_simulator::SimulatorConfig {
        dlr_url,
        dlr_latency: Duration::from_millis(s.sim_dlr_latency_ms),
        fail_prefixes: list(&s.sim_fail_prefixes),
        reject_prefixes: list(&s.sim_reject_prefixes),
        max_mps: (s.sim_max_mps > 0).then_some(s.sim_max_mps),
        per_connection_mps: (s.sim_per_connection_mps > 0).then_some(s.sim_per_connection_mps),
        ..Default::default()
    }
}
