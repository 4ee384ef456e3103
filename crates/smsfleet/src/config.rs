//! Command-line settings turned into the roles' typed configs. `smsfleet
//! <role>` and `smsfleet all` share these, so a flag means the same in both.

use std::time::Duration;

use anyhow::bail;

use crate::cli;

pub fn ingress(s: &cli::IngressSettings) -> anyhow::Result<smsfleet_ingress::IngressConfig> {
    Ok(smsfleet_ingress::IngressConfig {
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
        publishers: s.submit_publishers.max(1),
        smpp: smpp(&s.smpp)?,
        ..Default::default()
    })
}

pub fn smpp(a: &cli::SmppArgs) -> anyhow::Result<smsfleet_ingress::SmppSettings> {
    let tls = match (a.smpp_tls_listen, &a.smpp_tls_cert, &a.smpp_tls_key) {
        (None, _, _) => None,
        (Some(listen), Some(cert), Some(key)) => {
            Some(smsfleet_ingress::SmppTlsSettings { listen, cert_file: cert.clone(), key_file: key.clone() })
        }
        (Some(_), _, _) => bail!("SMSFLEET_SMPP_TLS_LISTEN needs SMSFLEET_SMPP_TLS_CERT and SMSFLEET_SMPP_TLS_KEY"),
    };
    let max_age = smsfleet_contract::topology::SMPP_OUT_MAX_AGE_SECS;
    Ok(smsfleet_ingress::SmppSettings {
        listen: a.smpp_listen.0,
        tls,
        system_id: a.smpp_system_id.clone(),
        window: a.smpp_window.max(1),
        max_pdu_len: a.smpp_max_pdu_bytes.max(64),
        idle_timeout: (a.smpp_idle_timeout_secs > 0).then(|| Duration::from_secs(a.smpp_idle_timeout_secs)),
        enquire_link_interval: Duration::from_secs(a.smpp_enquire_link_secs.max(1)),
        response_timeout: Duration::from_secs(a.smpp_response_timeout_secs.max(1)),
        receipt_expiry: Duration::from_secs((a.smpp_receipt_expiry_hours * 3600).min(max_age)),
        ..Default::default()
    })
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

/// The routes from the routes file or the shorthand; `None` when neither is
/// set. Read the same way by the dispatcher and the dlr role (which checks
/// each route's callbacks). A bad file stops the start with its one-line reason.
pub fn routes(a: &cli::RouteArgs) -> anyhow::Result<Option<Vec<smsfleet_dispatcher::Route>>> {
    let routes = match (&a.routes_file, &a.routes) {
        (Some(_), Some(_)) => bail!("set SMSFLEET_ROUTES_FILE or SMSFLEET_ROUTES, not both"),
        (Some(file), None) => smsfleet_dispatcher::load_routes_file(file)?,
        (None, Some(shorthand)) => smsfleet_dispatcher::parse_routes(shorthand)?,
        (None, None) => return Ok(None),
    };
    if routes.is_empty() {
        bail!("at least one route is needed (SMSFLEET_ROUTES_FILE or SMSFLEET_ROUTES)");
    }
    Ok(Some(routes))
}

/// The dispatcher's config from [`routes`]; `None` when no routes are set.
pub fn dispatcher(a: &cli::RouteArgs) -> anyhow::Result<Option<smsfleet_dispatcher::DispatcherConfig>> {
    Ok(routes(a)?.map(|routes| smsfleet_dispatcher::DispatcherConfig {
        routes,
        routes_file: a.routes_file.clone(),
        ..Default::default()
    }))
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
