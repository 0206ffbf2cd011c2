//! `allowed_outbound_hosts` entries and the check of a URL against them (pure).
//!
//! Spin's rules (spinframework/spin, outbound-networking `config.rs`):
//! an entry is `scheme://host[:port]`; the scheme is required (`*` for any);
//! the host is a name, `*` (any), or `*.example.com` (any subdomain); the
//! port is a number, a range `a..b` (end exclusive), or `*`; without a port,
//! the scheme's well-known port is meant, and `*://` needs an explicit port.
//! A path is an error. `{{ variable }}` templates are resolved by the caller
//! before parsing (Spin resolves them at the first outbound request).

use std::ops::RangeInclusive;

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: stored as `.example.com`.
    AnySubdomain(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Ports(RangeInclusive<u16>),
}

/// The well-known port of a scheme, as Spin knows them.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" => Some(6379),
        "mysql" => Some(3306),
        "postgres" => Some(5432),
        "mqtt" => Some(1883),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one entry; the error names the entry and the fix.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            return Err(format!(
                "{entry:?} does not contain a scheme: write it as `scheme://host[:port]`, e.g. \"https://{entry}\" (or \"*://{entry}:*\" for any scheme)"
            ));
        };
        if scheme.is_empty() {
            return Err(format!("{entry:?} has an empty scheme"));
        }
        let scheme = (scheme != "*").then(|| scheme.to_ascii_lowercase());
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !path.is_empty() && path != "/" {
            return Err(format!(
                "{entry:?} has a path: allowed_outbound_hosts takes `scheme://host[:port]` only; remove {path:?}"
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
            _ => (authority, None),
        };
        if host.is_empty() {
            return Err(format!("{entry:?} has no host"));
        }
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return Err(format!("{entry:?}: a wildcard host is `*` or `*.domain`"));
            }
            HostPattern::AnySubdomain(format!(".{domain}"))
        } else if host.contains('*') {
            return Err(format!("{entry:?}: a wildcard host is `*` or `*.domain`"));
        } else {
            HostPattern::Exact(host)
        };
        let port = match port {
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Ports(parse_port(entry, p)?),
            None => {
                let Some(scheme) = scheme.as_deref() else {
                    return Err(format!(
                        "{entry:?} does not contain a port: with `*://` give one, e.g. \"{entry}:*\""
                    ));
                };
                match well_known_port(scheme) {
                    Some(p) => PortPattern::Ports(p..=p),
                    None => {
                        return Err(format!(
                            "{entry:?} does not contain a port and `{scheme}` has no well-known port; add `:port`"
                        ));
                    }
                }
            }
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::AnySubdomain(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(h) => *h == host,
        };
        let port_ok = match &self.port {
            PortPattern::Any => true,
            PortPattern::Ports(range) => range.contains(&port),
        };
        scheme_ok && host_ok && port_ok
    }
}

/// A port, or a range `a..b` (end exclusive, as Spin writes it).
fn parse_port(entry: &str, p: &str) -> Result<RangeInclusive<u16>, String> {
    let bad = || format!("{entry:?}: port {p:?} is not a number, a range `a..b` or `*`");
    if let Some((a, b)) = p.split_once("..") {
        let a: u16 = a.parse().map_err(|_| bad())?;
        let b: u16 = b.parse().map_err(|_| bad())?;
        if a >= b {
            return Err(bad());
        }
        Ok(a..=b - 1)
    } else {
        let p: u16 = p.parse().map_err(|_| bad())?;
        Ok(p..=p)
    }
}

/// A component's whole allow-list.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<AllowedHost>);

impl AllowList {
    /// Parses every entry (already template-resolved); entries that resolve
    /// to the empty string (an unset `{{ upstream_origin }}`) allow nothing.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        entries
            .into_iter()
            .filter(|e| !e.trim().is_empty())
            .map(AllowedHost::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(AllowList)
    }

    /// Whether any entry allows `scheme://host:port`.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.0.iter().any(|h| h.allows(scheme, host, port))
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
                        host: HostPattern::Exact(format!("{id}{suffix}")),
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
            .allows(scheme, host, port)
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
    }

    #[test]
    fn hosts_compare_case_insensitively() {
        assert!(allows(
            "https://API.example.com",
            "https",
            "api.EXAMPLE.com",
            443
        ));
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
    fn port_ranges_exclude_their_end() {
        assert!(allows("http://h:8000..8002", "http", "h", 8001));
        assert!(!allows("http://h:8000..8002", "http", "h", 8002));
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
    }

    #[test]
    fn malformed_entries_are_errors_that_say_why() {
        let e = AllowedHost::parse("api.example.com").unwrap_err();
        assert!(e.contains("scheme"), "{e}");
        let e = AllowedHost::parse("https://api.example.com/data").unwrap_err();
        assert!(e.contains("path"), "{e}");
        let e = AllowedHost::parse("*://api.example.com").unwrap_err();
        assert!(e.contains("port"), "{e}");
        let e = AllowedHost::parse("http://h:eighty").unwrap_err();
        assert!(e.contains("port"), "{e}");
        assert!(AllowedHost::parse("http://a*b.com").is_err());
    }

    #[test]
    fn a_service_chaining_wildcard_stands_for_each_component_of_the_app() {
        let list = AllowList::parse(["http://*.spin.internal", "https://*.example.com"])
            .unwrap()
            .expand_service_chaining(["cache", "processor"]);
        assert!(list.allows("http", "cache.spin.internal", 80));
        assert!(list.allows("http", "processor.spin.internal", 80));
        assert!(!list.allows("http", "nope.spin.internal", 80));
        assert!(!list.allows("http", "a.cache.spin.internal", 80));
        assert!(!list.allows("https", "cache.spin.internal", 443));
        assert!(list.allows("https", "a.b.example.com", 443));
    }

    #[test]
    fn a_broader_wildcard_is_not_expanded_and_still_allows_any_internal_host() {
        let list = AllowList::parse(["*://*:*"])
            .unwrap()
            .expand_service_chaining(["cache"]);
        assert!(list.allows("http", "nope.spin.internal", 80));
        let list = AllowList::parse(["http://*.internal"])
            .unwrap()
            .expand_service_chaining(["cache"]);
        assert!(list.allows("http", "a.b.spin.internal", 80));
    }

    #[test]
    fn an_empty_entry_allows_nothing() {
        let list = AllowList::parse([""]).unwrap();
        assert!(!list.allows("https", "api.example.com", 443));
    }

    #[test]
    fn a_list_allows_what_any_entry_allows() {
        let list = AllowList::parse([
            "http://cache.spin.internal",
            "http://processor.spin.internal",
        ])
        .unwrap();
        assert!(list.allows("http", "cache.spin.internal", 80));
        assert!(list.allows("http", "processor.spin.internal", 80));
        assert!(!list.allows("http", "router.spin.internal", 80));
        assert!(!list.allows("https", "cache.spin.internal", 443));
    }
}
