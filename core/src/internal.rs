//! The internal API between the components, over Spin's local service
//! chaining (`http://<component>.spin.internal`; neither component has a
//! public route). Every chained request carries the caller's `x-request-id`.
//!
//! Processor (`http://processor.spin.internal`, pure, no capabilities):
//!
//! | request                                   | answer                                       |
//! |-------------------------------------------|----------------------------------------------|
//! | `POST /process` body = one item (JSON)    | 200 answer JSON, or 4xx error JSON           |
//! | `POST /process/batch` body = JSON array   | 200 JSON array, one answer or error per item |
//!
//! Cache (`http://cache.spin.internal`, key-value store "default", upstream):
//!
//! | request                         | answer                                                           |
//! |---------------------------------|------------------------------------------------------------------|
//! | `POST /entries/{digest}`        | the read-through of one answer, see below                        |
//! | `DELETE /entries`               | 200 `{"purged":n}`, 503                                          |
//! | `GET /data/{key}`               | 200 upstream JSON with `x-cache: hit\|miss\|stale`; 4xx/5xx error |
//! | `GET /stats`                    | 200 stats JSON (see [`crate::stats`]), 503                       |
//! | `GET /health`                   | 200 `{"store":"ok"\|"unavailable"}`                              |
//!
//! `{digest}` is a [`crate::cache_key::process_digest`] (64 hex chars);
//! `{key}` a validated data key.
//!
//! `POST /entries/{digest}` is the whole read-through of `POST /api/process`
//! in one chained call: it has no body; the item the router validated
//! ([`crate::Item::to_json`]) rides in the [`ITEM_HEADER`] header
//! ([`encode_item`]), because a chained request with a body costs Spin a
//! body stream between the two instances (measured: ~15 % more CPU per
//! hit), and the cache needs the item only on a miss. The cache owns the
//! rest ([`crate::chain`] has the decisions of both sides):
//!
//! | the cache's answer                         | when                                                        |
//! |--------------------------------------------|-------------------------------------------------------------|
//! | 200 the stored bytes, `x-cache: hit`       | a fresh entry (the processor is not called)                 |
//! | 200 the answer, `x-cache: miss`            | no fresh entry: the processor's answer, stored for `cache_ttl_seconds` |
//! | 200 the answer, `x-cache: bypass`          | the store failed (open, read or write): computed, not stored |
//! | 4xx the processor's error JSON             | the processor rejected the item (e.g. 422 `result_overflow`) |
//! | 502 ([`PROCESSOR_FAILED`])                 | the processor failed or was unreachable                     |
//!
//! So a miss is three instances (router, cache, processor) and a hit two.
//! Any other answer, or none, means the cache itself failed: the router asks
//! the processor itself and answers `x-cache: bypass`.

use crate::error::AppError;
use crate::routes::{require_method, strip_query};

/// Host of the processor for service chaining (scheme `http`).
pub const PROCESSOR_HOST: &str = "processor.spin.internal";
/// Host of the cache for service chaining (scheme `http`).
pub const CACHE_HOST: &str = "cache.spin.internal";
/// `http://processor.spin.internal`, as granted in spin.toml.
pub const PROCESSOR_ORIGIN: &str = "http://processor.spin.internal";
/// `http://cache.spin.internal`, as granted in spin.toml.
pub const CACHE_ORIGIN: &str = "http://cache.spin.internal";

/// Header carrying the request id, on every response and chained request.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Header carrying the cache outcome.
pub const CACHE_HEADER: &str = "x-cache";

/// The header of `POST /entries/{digest}` carrying the item, as
/// [`encode_item`] writes it.
pub const ITEM_HEADER: &str = "x-edge-item";

/// The item's JSON as a header value: every byte that a header value may
/// not hold (controls, DEL, non-ASCII) and `%` itself are `%XX`, so the
/// value is visible ASCII and [`decode_item`] gives the JSON back exactly.
pub fn encode_item(json: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(json.len());
    for &b in json.as_bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// The bytes [`encode_item`] encoded; `None` for a malformed `%` escape.
pub fn decode_item(value: &[u8]) -> Option<Vec<u8>> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'A'..=b'F' => Some(b - b'A' + 10),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let high = hex(*bytes.next()?)?;
            let low = hex(*bytes.next()?)?;
            out.push(high << 4 | low);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// The cache's status for `POST /entries/{digest}` when the processor behind
/// it failed (the router answers 500, as when it calls the processor itself).
pub const PROCESSOR_FAILED: u16 = 502;

pub const PROCESS_PATH: &str = "/process";
pub const PROCESS_BATCH_PATH: &str = "/process/batch";
pub const ENTRIES_PATH: &str = "/entries";
pub const DATA_PATH: &str = "/data";
pub const STATS_PATH: &str = "/stats";
pub const HEALTH_PATH: &str = "/health";

/// A processor request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessorRoute {
    One,
    Batch,
}

/// Matches a request to the processor.
pub fn processor_route(method: &str, path_with_query: &str) -> Result<ProcessorRoute, AppError> {
    let route = match strip_query(path_with_query) {
        PROCESS_PATH => ProcessorRoute::One,
        PROCESS_BATCH_PATH => ProcessorRoute::Batch,
        _ => return Err(AppError::no_route()),
    };
    require_method(method, "POST")?;
    Ok(route)
}

/// A cache request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheRoute<'a> {
    /// `POST /entries/{digest}`: the read-through of one answer.
    Entry {
        digest: &'a str,
    },
    Purge,
    Data {
        key: &'a str,
    },
    Stats,
    Health,
}

/// Matches a request to the cache.
pub fn cache_route<'a>(method: &str, path_with_query: &'a str) -> Result<CacheRoute<'a>, AppError> {
    let path = strip_query(path_with_query);
    match path {
        ENTRIES_PATH => require_method(method, "DELETE").map(|()| CacheRoute::Purge),
        STATS_PATH => require_method(method, "GET").map(|()| CacheRoute::Stats),
        HEALTH_PATH => require_method(method, "GET").map(|()| CacheRoute::Health),
        _ => {
            if let Some(digest) = path.strip_prefix("/entries/") {
                require_method(method, "POST").map(|()| CacheRoute::Entry { digest })
            } else if let Some(key) = path.strip_prefix("/data/") {
                require_method(method, "GET").map(|()| CacheRoute::Data { key })
            } else {
                Err(AppError::no_route())
            }
        }
    }
}

/// The `x-cache` outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Served from a fresh cache entry.
    Hit,
    /// Computed or fetched, then stored.
    Miss,
    /// The upstream failed; an expired copy was served.
    Stale,
    /// The store failed; the answer was computed but not cached.
    Bypass,
}

impl CacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Bypass => "bypass",
        }
    }

    pub fn parse(s: &str) -> Option<CacheOutcome> {
        match s {
            "hit" => Some(CacheOutcome::Hit),
            "miss" => Some(CacheOutcome::Miss),
            "stale" => Some(CacheOutcome::Stale),
            "bypass" => Some(CacheOutcome::Bypass),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processor_routes_match() {
        assert_eq!(processor_route("POST", "/process"), Ok(ProcessorRoute::One));
        assert_eq!(
            processor_route("POST", "/process/batch"),
            Ok(ProcessorRoute::Batch)
        );
        assert_eq!(
            processor_route("GET", "/process").unwrap_err().status(),
            405
        );
        assert_eq!(processor_route("POST", "/other").unwrap_err().status(), 404);
    }

    #[test]
    fn cache_routes_match() {
        let d = "ab".repeat(32);
        let get = format!("/entries/{d}");
        assert_eq!(
            cache_route("POST", &get),
            Ok(CacheRoute::Entry { digest: &d })
        );
        assert_eq!(cache_route("DELETE", "/entries"), Ok(CacheRoute::Purge));
        assert_eq!(
            cache_route("GET", "/data/k"),
            Ok(CacheRoute::Data { key: "k" })
        );
        assert_eq!(cache_route("GET", "/stats"), Ok(CacheRoute::Stats));
        assert_eq!(cache_route("GET", "/health"), Ok(CacheRoute::Health));
        for gone in ["GET", "PUT"] {
            assert_eq!(cache_route(gone, &get).unwrap_err().allow(), Some("POST"));
        }
        assert_eq!(cache_route("GET", "/entries").unwrap_err().status(), 405);
        assert_eq!(cache_route("GET", "/nope").unwrap_err().status(), 404);
    }

    #[test]
    fn an_item_travels_in_a_header_value_exactly() {
        let json = "{\"id\":\"a%b \u{7f}\u{1}é✓\",\"value\":1}";
        let value = encode_item(json);
        assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)), "{value}");
        assert_eq!(decode_item(value.as_bytes()).unwrap(), json.as_bytes());
        assert_eq!(encode_item(r#"{"id":"x"}"#), r#"{"id":"x"}"#);
        let all: Vec<u8> = (0..=255).collect();
        let text = String::from_utf8_lossy(&all).into_owned();
        assert_eq!(
            decode_item(encode_item(&text).as_bytes()).unwrap(),
            text.as_bytes()
        );
    }

    #[test]
    fn a_malformed_escape_is_no_item() {
        assert_eq!(decode_item(b"%4"), None);
        assert_eq!(decode_item(b"%zz"), None);
        assert_eq!(decode_item(b"%41"), Some(b"A".to_vec()));
    }

    #[test]
    fn origins_are_http_plus_host() {
        assert_eq!(PROCESSOR_ORIGIN, format!("http://{PROCESSOR_HOST}"));
        assert_eq!(CACHE_ORIGIN, format!("http://{CACHE_HOST}"));
    }

    #[test]
    fn cache_outcomes_round_trip() {
        for o in [
            CacheOutcome::Hit,
            CacheOutcome::Miss,
            CacheOutcome::Stale,
            CacheOutcome::Bypass,
        ] {
            assert_eq!(CacheOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(CacheOutcome::parse("HIT"), None);
    }
}
