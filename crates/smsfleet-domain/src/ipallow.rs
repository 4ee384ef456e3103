//! The per-account webservices IP allow-list, with playSMS's rules: a comma
//! list of single addresses, CIDR ranges (`10.0.0.0/8`) or wildcards
//! (`192.168.*.*`). An empty entry matches nothing, and so does any entry
//! starting with `*` or `0`, so no account can be opened to the whole world
//! by accident.

use std::net::IpAddr;

pub fn allows(list: &str, client: IpAddr) -> bool {
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    list.split(',').map(str::trim).any(|entry| entry_matches(entry, client))
}

/// Whether a list is well-formed enough to store (every entry parses).
pub fn is_valid_list(list: &str) -> bool {
    !list.trim().is_empty() && list.split(',').map(str::trim).all(|e| !e.is_empty() && parse_entry(e).is_some())
}

enum Entry {
    Exact(IpAddr),
    Cidr(IpAddr, u8),
    Wildcard([Option<u8>; 4]),
}

fn parse_entry(entry: &str) -> Option<Entry> {
    if entry.is_empty() || entry.starts_with('*') || entry.starts_with('0') {
        return None;
    }
    if let Some((addr, bits)) = entry.split_once('/') {
        let addr: IpAddr = addr.trim().parse().ok()?;
        let bits: u8 = bits.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        return (bits <= max).then_some(Entry::Cidr(addr, bits));
    }
    if entry.contains('*') {
        let mut octets = [None; 4];
        let parts: Vec<&str> = entry.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        for (slot, p) in octets.iter_mut().zip(parts) {
            *slot = if p == "*" { None } else { Some(p.parse().ok()?) };
        }
        return Some(Entry::Wildcard(octets));
    }
    entry.parse().ok().map(Entry::Exact)
}

fn entry_matches(entry: &str, client: IpAddr) -> bool {
    match parse_entry(entry) {
        None => false,
        Some(Entry::Exact(a)) => a == client,
        Some(Entry::Cidr(net, bits)) => in_cidr(net, bits, client),
        Some(Entry::Wildcard(pattern)) => match client {
            IpAddr::V4(v4) => pattern.iter().zip(v4.octets()).all(|(p, o)| p.is_none_or(|p| p == o)),
            IpAddr::V6(_) => false,
        },
    }
}

fn in_cidr(net: IpAddr, bits: u8, client: IpAddr) -> bool {
    match (net, client) {
        (IpAddr::V4(n), IpAddr::V4(c)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(n) & mask == u32::from(c) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(c)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(n) & mask == u128::from(c) & mask
        }
        _ => false,
    }
}

/// The client behind reverse proxies. When the TCP peer is one of
/// `trusted_proxies` (allow-list syntax; empty = trust none), the client is
/// the right-most `X-Forwarded-For` address that is not itself a trusted
/// proxy: entries further left were written by the client and can be
/// forged. Otherwise the peer is the client. `forwarded_for` holds every
/// header line in the order received: several lines form one list (RFC
/// 9110), so a forged first line cannot hide the proxy's own last one.
/// Allow-lists and the brute-force guard both depend on this being right.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted_proxies: &str) -> IpAddr {
    if trusted_proxies.trim().is_empty() || !allows(trusted_proxies, peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.iter().rev().flat_map(|line| line.rsplit(',')).map(str::trim) {
        let Ok(ip) = hop.parse::<IpAddr>() else { return client };
        client = ip;
        if !allows(trusted_proxies, ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_behind_trusted_proxies() {
        use super::client_ip;
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let proxy = ip("10.1.0.5");
        // No trusted proxies: the header is ignored.
        assert_eq!(client_ip(proxy, &["203.0.113.9"], ""), proxy);
        // A trusted peer: the right-most untrusted hop; forged left entries are skipped.
        assert_eq!(client_ip(proxy, &["1.2.3.4, 203.0.113.9"], "10.0.0.0/8"), ip("203.0.113.9"));
        assert_eq!(client_ip(proxy, &["203.0.113.9, 10.1.0.7"], "10.0.0.0/8"), ip("203.0.113.9"));
        // An untrusted peer cannot set its own address.
        assert_eq!(client_ip(ip("198.51.100.1"), &["127.0.0.1"], "10.0.0.0/8"), ip("198.51.100.1"));
        // Garbage stops the walk at the last good hop.
        assert_eq!(client_ip(proxy, &["junk, 10.1.0.7"], "10.0.0.0/8"), ip("10.1.0.7"));
        assert_eq!(client_ip(proxy, &[], "10.0.0.0/8"), proxy);
    }

    #[test]
    fn every_forwarded_for_line_is_one_list() {
        use super::client_ip;
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let proxy = ip("10.1.0.5");
        // A forged first line and the proxy's own line: the proxy's wins.
        assert_eq!(client_ip(proxy, &["127.0.0.1", "203.0.113.9"], "10.0.0.0/8"), ip("203.0.113.9"));
        assert_eq!(client_ip(proxy, &["1.2.3.4", "203.0.113.9, 10.1.0.7"], "10.0.0.0/8"), ip("203.0.113.9"));
        // Trusted hops are walked across lines.
        assert_eq!(client_ip(proxy, &["203.0.113.9", "10.1.0.7"], "10.0.0.0/8"), ip("203.0.113.9"));
        // An unreadable line stops the walk like any garbage hop.
        assert_eq!(client_ip(proxy, &["203.0.113.9", ""], "10.0.0.0/8"), proxy);
    }

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn playsms_default_admin_list() {
        let list = "127.0.0.1, 192.168.*.*";
        assert!(allows(list, ip("127.0.0.1")));
        assert!(allows(list, ip("192.168.4.9")));
        assert!(!allows(list, ip("10.0.0.1")));
        assert!(allows(list, ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn cidr_and_refused_entries() {
        assert!(allows("10.0.0.0/8", ip("10.200.1.1")));
        assert!(!allows("10.0.0.0/8", ip("11.0.0.1")));
        assert!(!allows("*.*.*.*", ip("1.2.3.4")));
        assert!(!allows("0.0.0.0/0", ip("1.2.3.4")));
        assert!(!allows("", ip("127.0.0.1")));
        assert!(!allows("127.0.0.1,", ip("10.0.0.1")));
        assert!(allows("::1", ip("::1")));
        assert!(allows("2001:db8::/32", ip("2001:db8::5")));
    }

    #[test]
    fn validity() {
        assert!(is_valid_list("127.0.0.1, 10.0.0.0/8, 192.168.*.*"));
        assert!(!is_valid_list("127.0.0.1,,"));
        assert!(!is_valid_list("*"));
        assert!(!is_valid_list("nonsense"));
    }
}
