//! The allow-list check of an address a guest opens a Redis or MQTT
//! connection to, as Spin's `OutboundAllowedHosts::check_url(address,
//! scheme)` (crates/outbound-networking-config `allowed_hosts.rs`):
//!
//! - the address is read as a URL (its userinfo percent-encoded first); if
//!   that fails or it has no host, `<scheme>://` is put in front and it is
//!   read again; an address that still does not parse is denied;
//! - the port is the URL's, else the scheme's well-known one (`redis` 6379,
//!   `mqtt` 1883);
//! - the component's `allowed_outbound_hosts` (templates resolved, through
//!   [`ComponentOutbound::allow_list`]) decides; a denial prints Spin's
//!   warning with the entry to add;
//! - an allow-list that cannot be resolved (an unset variable) is an error,
//!   which the guest sees as `other(<message>)`.

use std::sync::Arc;

use crate::outbound::{ComponentOutbound, OutboundApp};

/// One instance's outbound permission: its component's allow-list and the
/// app that resolves its templates.
#[derive(Clone)]
pub struct Permit {
    app: Arc<dyn OutboundApp>,
    component: Arc<ComponentOutbound>,
}

/// An address read as Spin reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundUrl {
    /// The URL's scheme.
    pub scheme: String,
    /// Its host, as the URL parser writes it (IPv6 in brackets; lowercased
    /// only for special schemes such as http).
    pub host: String,
    /// Its explicit port.
    pub port: Option<u16>,
}

impl OutboundUrl {
    /// Spin's `OutboundUrl::parse(url, scheme)`.
    pub fn parse(address: &str, scheme: &str) -> Option<Self> {
        let mut url = address.to_string();
        if let Some(at) = url.find('@') {
            let scheme_end = url.find("://").map(|e| e + 3).unwrap_or(0);
            let path_start = url[scheme_end..]
                .find('/')
                .map(|e| e + scheme_end)
                .unwrap_or(usize::MAX);
            if at < path_start && at >= scheme_end {
                let encoded = percent_encode(&url[scheme_end..at]);
                url = format!("{}{encoded}{}", &url[..scheme_end], &url[at..]);
            }
        }
        let parsed = match url::Url::parse(&url) {
            Ok(u) if u.has_host() => u,
            _ => url::Url::parse(&format!("{scheme}://{url}")).ok()?,
        };
        Some(Self {
            scheme: parsed.scheme().to_owned(),
            host: parsed.host_str()?.to_owned(),
            port: parsed.port(),
        })
    }

    /// `scheme://host[:port]`, as Spin names a denied destination.
    pub fn pattern(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }
}

/// `urlencoding::encode`: everything but `A-Z a-z 0-9 - _ . ~` as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Permit {
    /// The permission of `component`, whose templates `app` resolves.
    pub fn new(app: Arc<dyn OutboundApp>, component: Arc<ComponentOutbound>) -> Self {
        Self { app, component }
    }

    /// Whether `address` may be connected to, read with `scheme` as Spin's
    /// default; `Err` when the allow-list itself cannot be resolved.
    pub fn allows(&self, address: &str, scheme: &str) -> Result<bool, String> {
        let Some(url) = OutboundUrl::parse(address, scheme) else {
            eprintln!(
                "[{}] A component tried to make a request to a url that could not be parsed: {address}",
                self.component.id
            );
            return Ok(false);
        };
        let list = self.component.allow_list(&*self.app)?;
        // No port: the scheme's well-known one (the allow-list's rule, as
        // Spin's `PortConfig::allows`).
        let allowed = list.allows(&url.scheme, &url.host, url.port);
        if !allowed {
            let pattern = url.pattern();
            eprintln!(
                "Warning: A component tried to make an outbound network connection to disallowed destination '{pattern}'.\n\
                 To allow this request, add 'allowed_outbound_hosts = [\"{pattern}\"]' to the manifest component section."
            );
        }
        Ok(allowed)
    }
}

/// A [`Permit`] for unit tests: a component with `allowed_outbound_hosts`
/// = `entries`, whose `{{ name }}` templates resolve from `variables`.
#[cfg(test)]
pub(crate) fn test_permit(entries: &[&str], variables: &[(&str, &str)]) -> Permit {
    let app = crate::outbound::test_app::TestApp::new(&["subject"]).with_variables(variables);
    Permit::new(
        Arc::new(app),
        Arc::new(ComponentOutbound::new(
            "subject",
            entries.iter().map(|e| e.to_string()).collect(),
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::{OutboundUrl, test_permit};

    fn url(address: &str, scheme: &str) -> Option<(String, String, Option<u16>)> {
        OutboundUrl::parse(address, scheme).map(|u| (u.scheme, u.host, u.port))
    }

    #[test]
    fn an_address_is_read_as_spin_reads_it() {
        assert_eq!(
            url("redis://LocalHost:6380/2", "redis"),
            // Not a special scheme: the parser keeps the host's case (the
            // allow-list compares hosts case-insensitively, as Spin's does).
            Some(("redis".into(), "LocalHost".into(), Some(6380)))
        );
        // No scheme: Spin puts the default one in front.
        assert_eq!(
            url("localhost:6379", "redis"),
            Some(("redis".into(), "localhost".into(), Some(6379)))
        );
        assert_eq!(
            url("mqtt://broker?client_id=x", "mqtt"),
            Some(("mqtt".into(), "broker".into(), None))
        );
        // A password with URL-reserved characters is encoded, not misread.
        assert_eq!(
            url("redis://user:p#ss@redis.internal:6379", "redis"),
            Some(("redis".into(), "redis.internal".into(), Some(6379)))
        );
        assert_eq!(url("", "redis"), None);
    }

    #[test]
    fn the_allow_list_decides_with_the_schemes_well_known_port() {
        let permit = test_permit(
            &["redis://localhost", "mqtt://{{ host }}:1884"],
            &[("host", "broker")],
        );
        assert_eq!(permit.allows("redis://localhost", "redis"), Ok(true));
        assert_eq!(permit.allows("redis://localhost:6379/3", "redis"), Ok(true));
        assert_eq!(permit.allows("redis://LOCALHOST", "redis"), Ok(true));
        assert_eq!(permit.allows("localhost", "redis"), Ok(true));
        assert_eq!(permit.allows("redis://localhost:6380", "redis"), Ok(false));
        assert_eq!(permit.allows("rediss://localhost:6379", "redis"), Ok(false));
        assert_eq!(
            permit.allows("mqtt://broker:1884?client_id=a", "mqtt"),
            Ok(true)
        );
        assert_eq!(
            permit.allows("mqtt://broker?client_id=a", "mqtt"),
            Ok(false)
        );
        assert_eq!(permit.allows("not a url at all", "redis"), Ok(false));
    }

    #[test]
    fn an_allow_list_that_cannot_be_resolved_is_an_error() {
        let permit = test_permit(&["redis://{{ missing }}"], &[]);
        let err = permit.allows("redis://localhost", "redis").unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }
}
