//! `allowed_outbound_hosts` entries and the check of a destination against
//! them (pure): the ONE parser and matcher, used by the loader's check, by
//! outgoing HTTP and by `wasi:sockets`.
//!
//! Spin's rules and words (spinframework/spin v4.0.2,
//! `crates/outbound-networking-config/src/allowed_hosts.rs`,
//! `AllowedHostConfig::parse` and `allows`):
//! - an entry is `scheme://host[:port]`; the scheme is alphabetic, as
//!   written (`HTTP://` never matches, since a URL's scheme is lowercase),
//!   or `*` for any;
//! - the host is `*` (any), `*.domain` (any name ending in `.domain`, as
//!   written), `self`/`self.alt` (the app itself: no network destination
//!   matches it), an IP network `10.0.0.0/8` (host bits truncated, as
//!   `ip_network`'s `from_str_truncate`; it matches addresses of its family
//!   only, never a name), or a name or address as a URL parses it (names
//!   lowercased, `127.1` is `127.0.0.1`);
//! - the port is a number, a range `a..b` (end exclusive; `a >= b` allows
//!   nothing), `*`, or omitted for a scheme with a well-known port;
//! - a path is an error, a trailing `/` is not.
//!
//! A destination is `scheme`, host and port: `http`/`https` for outgoing
//! HTTP, `tcp`/`udp` for sockets (Spin checks `tcp://<ip>:<port>`), so an
//! `http://` entry never allows a socket, and `*://` allows both.
//! `{{ variable }}` templates are resolved by the caller before parsing.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use anyhow::{Context, bail};
use url::Host;

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// `None` for `*`.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: stored as `.example.com`, as written.
    AnySubdomain(String),
    /// `self` or `self.alt`: only a relative request, which the runner does
    /// not make, so it matches no destination.
    ToSelf,
    Literal(Host),
    Network(IpNetwork),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Port(u16),
    Range(Range<u16>),
}

/// An IP network, its address truncated to the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// `addr/prefix`, as `ip_network::IpNetwork::from_str_truncate`: the
    /// address as std parses it, a `u8` prefix no longer than the family's.
    fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = s.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return None;
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(prefix)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(prefix)).into()),
        };
        Some(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// The well-known port of a scheme, as Spin knows them.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one entry as Spin does; the errors are Spin's.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            match url {
                "*" | ":" | "" | "?" => bail!(
                    "{url:?} is not an allowed outbound host format.\nHosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each.\nIf you intended to allow all outbound networking, you can use '*://*:*' - this will obviate all network sandboxing."
                ),
                _ => bail!("{url:?} does not contain a scheme (e.g., 'http://' or '*://')"),
            }
        };
        let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match rest.split_once('/') {
            Some((port, path)) => {
                if !path.is_empty() {
                    bail!("{url:?} has a path but is not allowed to");
                }
                port
            }
            None => rest,
        };
        let port = PortPattern::parse(port, scheme)
            .with_context(|| format!("Invalid allowed host port {port:?}"))?;
        let scheme = parse_scheme(scheme)
            .with_context(|| format!("Invalid allowed host scheme {scheme:?}"))?;
        let host =
            HostPattern::parse(host).with_context(|| format!("Invalid allowed host {host:?}"))?;
        Ok(Self { scheme, host, port })
    }

    /// Whether this entry allows `scheme://host[:port]` (`port` as the URL
    /// gives it; none means the scheme's well-known port).
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        Host::parse(host).is_ok_and(|host| self.allows_host(scheme, &host, port))
    }

    fn allows_host(&self, scheme: &str, host: &Host, port: Option<u16>) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.host.allows(host)
            && self.port.allows(port, scheme)
    }
}

fn parse_scheme(scheme: &str) -> anyhow::Result<Option<String>> {
    if scheme == "*" {
        return Ok(None);
    }
    if scheme.starts_with('{') {
        bail!("scheme lists are not supported");
    }
    if scheme.chars().any(|c| !c.is_alphabetic()) {
        bail!("only alphabetic characters are allowed");
    }
    Ok(Some(scheme.to_string()))
}

impl HostPattern {
    fn parse(host: &str) -> anyhow::Result<Self> {
        let host = host.trim();
        if host == "*" {
            return Ok(Self::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(Self::ToSelf);
        }
        if host.starts_with('{') {
            bail!("host lists are not yet supported");
        }
        if let Some(net) = IpNetwork::parse(host) {
            return Ok(Self::Network(net));
        }
        let host = host.trim_end_matches('/');
        if host.contains('/') {
            bail!("must not include a path");
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("wildcards are allowed only as prefixes");
            }
            return Ok(Self::AnySubdomain(format!(".{domain}")));
        }
        if host.contains('*') {
            bail!("wildcards are allowed only as subdomains");
        }
        Ok(Self::Literal(Host::parse(host)?))
    }

    /// `host` as a URL parses it (Spin parses the destination's host with
    /// `url::Host::parse`; one that does not parse is allowed by nothing).
    fn allows(&self, host: &Host) -> bool {
        match (self, host) {
            (Self::Any, _) => true,
            (Self::AnySubdomain(suffix), Host::Domain(domain)) => domain.ends_with(suffix.as_str()),
            (Self::Literal(literal), host) => host == literal,
            (Self::Network(net), Host::Ipv4(ip)) => net.contains((*ip).into()),
            (Self::Network(net), Host::Ipv6(ip)) => net.contains((*ip).into()),
            (Self::AnySubdomain(_), _)
            | (Self::Network(_), Host::Domain(_))
            | (Self::ToSelf, _) => false,
        }
    }
}

impl PortPattern {
    fn parse(port: &str, scheme: &str) -> anyhow::Result<Self> {
        if port.is_empty() {
            return well_known_port(scheme).map(Self::Port).with_context(|| {
                format!(
                    "no port was provided and the scheme {scheme:?} does not have a known default port number"
                )
            });
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        if port.starts_with('{') {
            bail!("port lists are not yet supported");
        }
        if let Some((start, end)) = port.split_once("..") {
            let number = |p: &str| {
                p.parse::<u16>()
                    .with_context(|| format!("port range {port:?} contains non-number"))
            };
            return Ok(Self::Range(number(start)?..number(end)?));
        }
        let port = port
            .parse()
            .with_context(|| format!("port {port:?} is not a number"))?;
        Ok(Self::Port(port))
    }

    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        let Some(port) = port.or_else(|| well_known_port(scheme)) else {
            return matches!(self, Self::Any);
        };
        match self {
            Self::Any => true,
            Self::Port(p) => *p == port,
            Self::Range(r) => r.contains(&port),
        }
    }
}

/// A component's whole allow-list.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<AllowedHost>);

impl AllowList {
    /// Parses every entry (already template-resolved). As on Spin, one bad
    /// entry (an empty one included: a template that resolved to "") fails
    /// the whole list, and a list that fails allows nothing.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> anyhow::Result<Self> {
        let entries: Vec<&str> = entries.into_iter().collect();
        if entries == ["insecure:allow-all"] {
            bail!(
                "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic'"
            );
        }
        entries
            .into_iter()
            .map(AllowedHost::parse)
            .collect::<anyhow::Result<Vec<_>>>()
            .map(AllowList)
    }

    /// Whether any entry allows `scheme://host[:port]`.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let Ok(host) = Host::parse(host) else {
            return false;
        };
        self.0.iter().any(|h| h.allows_host(scheme, &host, port))
    }

    /// Whether any entry allows a socket to `addr` with `scheme` (`tcp` or
    /// `udp`): Spin checks `addr.to_string()` as `scheme://<addr>`, so an
    /// IPv6 address with a zone (`[fe80::1%2]:80`), which is no URL host,
    /// is never allowed.
    pub fn allows_socket(&self, scheme: &str, addr: SocketAddr) -> bool {
        if let SocketAddr::V6(v6) = addr
            && v6.scope_id() != 0
        {
            return false;
        }
        let host = match addr.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        self.allows(scheme, &host, Some(addr.port()))
    }

    /// Spin's `expand_wildcard_service_chaining`: an entry whose host is
    /// exactly `*.spin.internal` stands for `<id>.spin.internal` for each
    /// component `id` of the app (same scheme and port), so it allows no
    /// other `.spin.internal` host (`a.b.spin.internal` stays denied).
    /// Other wildcards (`*`, `*.internal`) are left as they are.
    pub fn expand_service_chaining<'a>(
        self,
        component_ids: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let ids: Vec<&str> = component_ids.into_iter().collect();
        let suffix = format!(".{}", crate::routing::SERVICE_CHAINING_DOMAIN);
        let expanded = self
            .0
            .into_iter()
            .flat_map(|entry| match &entry.host {
                HostPattern::AnySubdomain(s) if *s == suffix => ids
                    .iter()
                    .map(|id| AllowedHost {
                        host: HostPattern::Literal(Host::Domain(format!("{id}{suffix}"))),
                        ..entry.clone()
                    })
                    .collect::<Vec<_>>(),
                _ => vec![entry],
            })
            .collect();
        AllowList(expanded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entry: &str, scheme: &str, host: &str, port: u16) -> bool {
        AllowedHost::parse(entry)
            .unwrap()
            .allows(scheme, host, Some(port))
    }

    fn socket(entries: &[&str], scheme: &str, addr: &str) -> bool {
        AllowList::parse(entries.iter().copied())
            .unwrap()
            .allows_socket(scheme, addr.parse().unwrap())
    }

    #[test]
    fn an_exact_entry_allows_its_scheme_host_and_default_port() {
        assert!(allows(
            "https://api.example.com",
            "https",
            "api.example.com",
            443
        ));
        assert!(!allows(
            "https://api.example.com",
            "http",
            "api.example.com",
            80
        ));
        assert!(!allows(
            "https://api.example.com",
            "https",
            "api.example.com",
            8443
        ));
        assert!(!allows("https://api.example.com", "https", "evil.com", 443));
        let entry = AllowedHost::parse("https://api.example.com").unwrap();
        assert!(entry.allows("https", "api.example.com", None));
    }

    #[test]
    fn names_compare_as_a_url_parses_them_but_schemes_and_wildcards_as_written() {
        assert!(allows(
            "https://API.example.com",
            "https",
            "api.EXAMPLE.com",
            443
        ));
        assert!(allows("http://127.1:80", "http", "127.0.0.1", 80));
        // Spin keeps the scheme and a wildcard's domain as written, and a
        // URL's are lowercase: these allow nothing.
        assert!(!allows(
            "HTTP://api.example.com:80",
            "http",
            "api.example.com",
            80
        ));
        assert!(AllowedHost::parse("HTTP://api.example.com").is_err());
        assert!(!allows("http://*.EXAMPLE.com", "http", "a.example.com", 80));
    }

    #[test]
    fn an_explicit_port_replaces_the_default() {
        assert!(allows("http://127.0.0.1:8080", "http", "127.0.0.1", 8080));
        assert!(!allows("http://127.0.0.1:8080", "http", "127.0.0.1", 80));
    }

    #[test]
    fn the_highest_port_can_be_allowed() {
        assert!(allows("http://h:65535", "http", "h", 65535));
    }

    #[test]
    fn port_ranges_exclude_their_end_and_an_empty_range_allows_nothing() {
        assert!(allows("http://h:8000..8002", "http", "h", 8001));
        assert!(!allows("http://h:8000..8002", "http", "h", 8002));
        assert!(!allows("http://h:8002..8000", "http", "h", 8001));
        assert!(!allows("http://h:8000..8000", "http", "h", 8000));
    }

    #[test]
    fn wildcards_cover_subdomains_schemes_and_ports() {
        assert!(allows(
            "http://*.spin.internal",
            "http",
            "cache.spin.internal",
            80
        ));
        assert!(!allows(
            "http://*.spin.internal",
            "http",
            "spin.internal",
            80
        ));
        assert!(allows("*://*:*", "https", "anything", 1));
        assert!(allows("*://h:*", "redis", "h", 6379));
        assert!(allows("http://*:*", "http", "x", 9));
        // A name wildcard matches names only.
        assert!(!allows("http://*.0.0.1:80", "http", "127.0.0.1", 80));
    }

    #[test]
    fn self_matches_no_network_destination() {
        assert!(!allows("http://self", "http", "self", 80));
        assert!(!allows("http://self.alt", "http", "self.alt", 80));
    }

    #[test]
    fn malformed_entries_are_errors_that_say_why() {
        let e = |entry: &str| format!("{:#}", AllowedHost::parse(entry).unwrap_err());
        assert!(e("api.example.com").contains("does not contain a scheme"));
        assert!(e("").contains("is not an allowed outbound host format"));
        assert!(e("https://api.example.com/data").contains("must not include a path"));
        assert!(e("https://api.example.com:443/data").contains("has a path"));
        assert!(e("*://api.example.com").contains("does not have a known default port"));
        assert!(e("tcp://127.0.0.1").contains("does not have a known default port"));
        assert!(e("http://h:eighty").contains("is not a number"));
        assert!(e("http://h:1..x").contains("contains non-number"));
        assert!(e("h2c://h:80").contains("only alphabetic characters"));
        assert!(e("http://a*b.com").contains("wildcards are allowed only as subdomains"));
        assert!(e("http://*.a*.com").contains("wildcards are allowed only as prefixes"));
        assert!(e("http://invalid host").contains("invalid international domain name"));
        assert!(e("http://[::1]").contains("Invalid allowed host port"));
        assert!(e("tcp://10.0.0.0/33:80").contains("must not include a path"));
    }

    #[test]
    fn a_tcp_entry_allows_its_address_and_port_only() {
        let list = ["tcp://127.0.0.1:5000"];
        assert!(socket(&list, "tcp", "127.0.0.1:5000"));
        assert!(!socket(&list, "tcp", "127.0.0.1:5001"));
        assert!(!socket(&list, "tcp", "127.0.0.2:5000"));
        assert!(!socket(&list, "udp", "127.0.0.1:5000"));
        // IPv4-mapped IPv6 is another address, as a URL host.
        assert!(!socket(&list, "tcp", "[::ffff:127.0.0.1]:5000"));
    }

    #[test]
    fn an_http_entry_allows_no_socket_and_a_scheme_wildcard_allows_both() {
        assert!(!socket(&["http://127.0.0.1:5000"], "tcp", "127.0.0.1:5000"));
        assert!(socket(&["*://127.0.0.1:5000"], "tcp", "127.0.0.1:5000"));
        assert!(socket(&["*://127.0.0.1:5000"], "udp", "127.0.0.1:5000"));
        assert!(socket(&["*://*:*"], "tcp", "[::1]:1"));
        // A name never matches an address: there is no lookup.
        assert!(!socket(&["tcp://localhost:5000"], "tcp", "127.0.0.1:5000"));
    }

    #[test]
    fn ip_networks_match_their_addresses_of_the_same_family() {
        let list = [
            "tcp://10.0.0.0/8:80",
            "*://127.0.0.1/24:63551",
            "tcp://fd00::/8:*",
        ];
        assert!(socket(&list, "tcp", "10.1.2.3:80"));
        assert!(!socket(&list, "tcp", "11.0.0.1:80"));
        assert!(!socket(&list, "tcp", "10.1.2.3:81"));
        // Host bits are truncated: 127.0.0.1/24 is 127.0.0.0/24.
        assert!(socket(&list, "tcp", "127.0.0.254:63551"));
        assert!(socket(&list, "tcp", "[fd12::1]:9"));
        assert!(!socket(&list, "tcp", "[fe80::1]:9"));
        // A zoned address is no URL host: never allowed.
        assert!(!socket(&["*://*:*"], "tcp", "[fe80::1%2]:9"));
        assert!(socket(&["tcp://0.0.0.0/0:*"], "tcp", "192.0.2.1:9"));
        assert!(!socket(&["tcp://0.0.0.0/0:*"], "tcp", "[::1]:9"));
        // A network never matches a name.
        assert!(!allows("http://127.0.0.0/8:80", "http", "localhost", 80));
    }

    #[test]
    fn a_service_chaining_wildcard_stands_for_each_component_of_the_app() {
        let list = AllowList::parse(["http://*.spin.internal", "https://*.example.com"])
            .unwrap()
            .expand_service_chaining(["cache", "processor"]);
        assert!(list.allows("http", "cache.spin.internal", None));
        assert!(list.allows("http", "processor.spin.internal", Some(80)));
        assert!(!list.allows("http", "nope.spin.internal", None));
        assert!(!list.allows("http", "a.cache.spin.internal", None));
        assert!(!list.allows("https", "cache.spin.internal", None));
        assert!(list.allows("https", "a.b.example.com", None));
    }

    #[test]
    fn a_broader_wildcard_is_not_expanded_and_still_allows_any_internal_host() {
        let list = AllowList::parse(["*://*:*"])
            .unwrap()
            .expand_service_chaining(["cache"]);
        assert!(list.allows("http", "nope.spin.internal", None));
        let list = AllowList::parse(["http://*.internal"])
            .unwrap()
            .expand_service_chaining(["cache"]);
        assert!(list.allows("http", "a.b.spin.internal", None));
    }

    #[test]
    fn an_empty_entry_fails_the_whole_list_as_on_spin() {
        assert!(AllowList::parse(["https://api.example.com", ""]).is_err());
        assert!(AllowList::parse(["insecure:allow-all"]).is_err());
        assert!(AllowList::parse([]).unwrap().0.is_empty());
    }

    #[test]
    fn a_list_allows_what_any_entry_allows() {
        let list = AllowList::parse([
            "http://cache.spin.internal",
            "http://processor.spin.internal",
        ])
        .unwrap();
        assert!(list.allows("http", "cache.spin.internal", None));
        assert!(list.allows("http", "processor.spin.internal", None));
        assert!(!list.allows("http", "router.spin.internal", None));
        assert!(!list.allows("https", "cache.spin.internal", None));
    }
}
