//! The upstream API behind `GET /api/data/{key}`: its address (validated
//! configuration) and the read-through / stale-if-error decision.
//!
//! The address is split in two variables because Spin's
//! `allowed_outbound_hosts` accepts only `scheme://host[:port]`: spin.toml
//! grants the cache exactly `{{ upstream_origin }}`, and the path lives in
//! `upstream_path`.
//!
//! Decision, given the cached envelope (if any) and the fetch result:
//! - fresh cached copy → serve it, `x-cache: hit` (no fetch at all);
//! - upstream 2xx with a JSON body → serve and store it, `miss`;
//! - upstream 404 → 404, and forget any cached copy;
//! - upstream failure (other status, transport error, non-JSON body, body
//!   too large) or timeout, with a cached copy (even expired) → serve it,
//!   `stale`;
//! - failure without a copy → 502; timeout without a copy → 504.

use crate::config::{ConfigError, names};
use crate::envelope::Envelope;
use crate::error::AppError;

/// The largest upstream body the cache accepts (and stores; Spin documents
/// values up to 1 MB). A larger body counts as an upstream failure.
pub const MAX_UPSTREAM_BODY_BYTES: usize = 512 * 1024;

/// A validated upstream address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    origin: String,
    path: String,
}

impl Upstream {
    /// Validates `upstream_origin` and `upstream_path`. An empty origin, or
    /// one whose host is under `.invalid`, means "not configured"
    /// (`Ok(None)`): spin.toml's default is `http://upstream.invalid`
    /// because Spin checks the allow-list template with the default at load
    /// and refuses an empty host, and a `.invalid` name is reserved (RFC
    /// 6761, 6.4) and never resolves, so no request to it could succeed.
    pub fn parse(origin: &str, path: &str) -> Result<Option<Upstream>, ConfigError> {
        let origin = origin.trim();
        if origin.is_empty() {
            return Ok(None);
        }
        validate_origin(origin)
            .map_err(|reason| ConfigError::new(names::UPSTREAM_ORIGIN, origin, reason))?;
        if is_reserved_invalid(origin) {
            return Ok(None);
        }
        let path = normalize_path(path.trim())
            .map_err(|reason| ConfigError::new(names::UPSTREAM_PATH, path, reason))?;
        Ok(Some(Upstream {
            origin: origin.to_owned(),
            path,
        }))
    }

    /// `scheme://host[:port]`, exactly as granted in spin.toml.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The path prefix, empty or `/…` without a trailing slash.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the origin is `https`.
    pub fn is_https(&self) -> bool {
        self.origin.starts_with("https://")
    }

    /// `host[:port]`.
    pub fn authority(&self) -> &str {
        self.origin
            .split_once("://")
            .map_or("", |(_, authority)| authority)
    }

    /// The path and query of the request for a (validated) data key.
    pub fn path_for(&self, key: &str) -> String {
        format!("{}/{key}", self.path)
    }

    /// The full URL for a (validated) data key.
    pub fn url_for(&self, key: &str) -> String {
        format!("{}{}", self.origin, self.path_for(key))
    }
}

/// Whether a (validated) origin's host is `invalid` or ends in `.invalid`.
fn is_reserved_invalid(origin: &str) -> bool {
    let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
    if authority.starts_with('[') {
        return false;
    }
    let host = authority.split(':').next().unwrap_or("");
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "invalid" || host.ends_with(".invalid")
}

const ORIGIN_FORM: &str = "must be scheme://host[:port] with scheme http or https and no path (put the path in `upstream_path`)";

fn validate_origin(origin: &str) -> Result<(), String> {
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or(ORIGIN_FORM)?;
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        // IPv6 literal: [addr] or [addr]:port.
        let (addr, after) = rest.split_once(']').ok_or(ORIGIN_FORM)?;
        if addr.is_empty()
            || !addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(ORIGIN_FORM.into());
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(ORIGIN_FORM)?),
        };
        (None, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(authority), None),
        }
    };
    if let Some(host) = host {
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && !host.starts_with(['.', '-']);
        if !ok {
            return Err(ORIGIN_FORM.into());
        }
    }
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && matches!(port.parse::<u32>(), Ok(1..=65535));
        if !ok {
            return Err(format!("{ORIGIN_FORM}; the port must be 1 to 65535"));
        }
    }
    Ok(())
}

fn normalize_path(path: &str) -> Result<String, String> {
    const FORM: &str = "must be empty or a path like /data (characters A-Z a-z 0-9 . _ ~ - /, no query, no `.` or `..` segments)";
    if path.is_empty() || path == "/" {
        return Ok(String::new());
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Err(FORM.into());
    };
    let segments_ok = rest.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
    });
    if segments_ok {
        Ok(trimmed.to_owned())
    } else {
        Err(FORM.into())
    }
}

/// What one upstream request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// 2xx with a JSON body of acceptable size.
    Body(Vec<u8>),
    /// 404: the upstream has no such key.
    NotFound,
    /// Anything else; the text is for the log.
    Failed(String),
    /// No complete answer within `upstream_timeout_ms`.
    TimedOut,
}

/// Classifies a complete upstream response.
pub fn classify(status: u16, body: Vec<u8>) -> Fetch {
    match status {
        200..=299 => {
            if body.len() > MAX_UPSTREAM_BODY_BYTES {
                Fetch::Failed(format!(
                    "upstream body larger than {MAX_UPSTREAM_BODY_BYTES} bytes"
                ))
            } else if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
                Fetch::Failed(format!(
                    "upstream answered {status} with a body that is not JSON"
                ))
            } else {
                Fetch::Body(body)
            }
        }
        404 => Fetch::NotFound,
        _ => Fetch::Failed(format!("upstream answered {status}")),
    }
}

/// What the cache does after a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataAnswer {
    /// 200 `x-cache: miss`; store the body.
    Fetched(Vec<u8>),
    /// 200 `x-cache: stale`; the upstream failed, the old copy is served.
    Stale(Vec<u8>),
    /// 404; delete any cached copy.
    Missing,
    /// 502 or 504.
    Error(AppError),
}

/// Whether a cached copy can be served without asking the upstream.
pub fn is_fresh(cached: Option<&Envelope>, now: u64) -> bool {
    cached.is_some_and(|e| !e.is_expired(now))
}

/// The read-through / stale-if-error decision after a fetch.
pub fn after_fetch(fetch: Fetch, cached: Option<Envelope>, timeout_ms: u64) -> DataAnswer {
    match (fetch, cached) {
        (Fetch::Body(body), _) => DataAnswer::Fetched(body),
        (Fetch::NotFound, _) => DataAnswer::Missing,
        (Fetch::Failed(_) | Fetch::TimedOut, Some(copy)) => DataAnswer::Stale(copy.body),
        (Fetch::Failed(_), None) => DataAnswer::Error(AppError::UpstreamFailed),
        (Fetch::TimedOut, None) => DataAnswer::Error(AppError::UpstreamTimeout { timeout_ms }),
    }
}

/// The 404 for a key the upstream does not have.
pub fn not_found(key: &str) -> AppError {
    AppError::NotFound {
        message: format!("the upstream API has no data for key `{key}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(origin: &str, path: &str) -> Result<Option<Upstream>, ConfigError> {
        Upstream::parse(origin, path)
    }

    #[test]
    fn an_empty_origin_means_not_configured() {
        assert_eq!(up("", "/data"), Ok(None));
        assert_eq!(up("  ", ""), Ok(None));
    }

    #[test]
    fn the_reserved_invalid_domain_means_not_configured() {
        // spin.toml's default: valid for Spin's load-time allow-list check,
        // never a reachable upstream.
        assert_eq!(up("http://upstream.invalid", "/data"), Ok(None));
        assert_eq!(up("https://API.Invalid:8443", ""), Ok(None));
        assert!(up("https://invalid.example.com", "").unwrap().is_some());
        assert!(up("https://notinvalid", "").unwrap().is_some());
    }

    #[test]
    fn origins_of_the_documented_form_are_accepted() {
        for origin in [
            "https://api.example.com",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "https://[::1]:443",
            "http://[2001:db8::1]",
        ] {
            assert!(up(origin, "").unwrap().is_some(), "{origin}");
        }
    }

    #[test]
    fn origins_with_a_path_userinfo_or_bad_scheme_are_rejected() {
        for origin in [
            "api.example.com",
            "ftp://x",
            "https://",
            "https://a.com/",
            "https://a.com/data",
            "https://user@a.com",
            "https://a.com?x",
            "https://a.com:0",
            "https://a.com:65536",
            "https://a.com:",
            "https://a.com:80:90",
            "https://a b.com",
            "https://[zz]",
            "https://.a.com",
        ] {
            let err = up(origin, "").unwrap_err();
            assert_eq!(err.variable, "upstream_origin", "{origin}");
        }
    }

    #[test]
    fn paths_are_normalised_or_rejected() {
        let path = |p: &str| up("https://a.com", p).map(|u| u.unwrap().path().to_owned());
        assert_eq!(path(""), Ok("".into()));
        assert_eq!(path("/"), Ok("".into()));
        assert_eq!(path("/data"), Ok("/data".into()));
        assert_eq!(path("/v1/data/"), Ok("/v1/data".into()));
        for bad in ["data", "/a//b", "/a/../b", "/a?x=1", "/a#f", "/a b", "//"] {
            assert_eq!(path(bad).unwrap_err().variable, "upstream_path", "{bad}");
        }
    }

    #[test]
    fn the_url_joins_origin_path_and_key() {
        let u = up("https://api.example.com", "/data").unwrap().unwrap();
        assert_eq!(u.url_for("k-1"), "https://api.example.com/data/k-1");
        assert_eq!(u.authority(), "api.example.com");
        assert!(u.is_https());
        let u = up("http://localhost:9000", "").unwrap().unwrap();
        assert_eq!(u.path_for("k"), "/k");
        assert_eq!(u.authority(), "localhost:9000");
        assert!(!u.is_https());
    }

    #[test]
    fn upstream_answers_are_classified() {
        assert_eq!(
            classify(200, b"{\"a\":1}".to_vec()),
            Fetch::Body(b"{\"a\":1}".to_vec())
        );
        assert_eq!(classify(404, vec![]), Fetch::NotFound);
        assert!(matches!(classify(500, vec![]), Fetch::Failed(_)));
        assert!(matches!(
            classify(200, b"<html>".to_vec()),
            Fetch::Failed(_)
        ));
        assert!(matches!(classify(301, vec![]), Fetch::Failed(_)));
        let huge = format!("\"{}\"", "x".repeat(MAX_UPSTREAM_BODY_BYTES));
        assert!(matches!(classify(200, huge.into_bytes()), Fetch::Failed(_)));
    }

    fn copy() -> Option<Envelope> {
        Some(Envelope::new(b"old".to_vec(), 0, 1))
    }

    #[test]
    fn a_fresh_copy_needs_no_fetch() {
        assert!(is_fresh(copy().as_ref(), 0));
        assert!(!is_fresh(copy().as_ref(), 1));
        assert!(!is_fresh(None, 0));
    }

    #[test]
    fn a_failing_upstream_serves_the_stale_copy() {
        assert_eq!(
            after_fetch(Fetch::Failed("x".into()), copy(), 5),
            DataAnswer::Stale(b"old".to_vec())
        );
        assert_eq!(
            after_fetch(Fetch::TimedOut, copy(), 5),
            DataAnswer::Stale(b"old".to_vec())
        );
    }

    #[test]
    fn without_a_copy_failures_are_502_and_timeouts_504() {
        let status = |a: DataAnswer| match a {
            DataAnswer::Error(e) => e.status(),
            other => panic!("{other:?}"),
        };
        assert_eq!(status(after_fetch(Fetch::Failed("x".into()), None, 5)), 502);
        assert_eq!(status(after_fetch(Fetch::TimedOut, None, 5)), 504);
    }

    #[test]
    fn a_good_fetch_replaces_the_copy_and_404_forgets_it() {
        assert_eq!(
            after_fetch(Fetch::Body(b"new".to_vec()), copy(), 5),
            DataAnswer::Fetched(b"new".to_vec())
        );
        assert_eq!(after_fetch(Fetch::NotFound, copy(), 5), DataAnswer::Missing);
    }
}
