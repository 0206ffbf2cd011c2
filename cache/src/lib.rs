//! The cache component: a TTL cache over Spin's key-value store "default",
//! and the read-through front of the upstream API.
//!
//! Private (`route = { private = true }`); only the router calls it, through
//! Spin's local service chaining at `http://cache.spin.internal`.
//! Capabilities: `key_value_stores = ["default"]` and
//! `allowed_outbound_hosts = ["http://processor.spin.internal",
//! "{{ upstream_origin }}"]`: the processor for the read-through of
//! `/api/process` answers, the upstream for `/api/data` — and no upstream
//! call at all while `upstream_origin` is unset (empty, or the default
//! `http://upstream.invalid`).
//!
//! Internal API (every answer echoes `x-request-id`; errors are the public
//! error JSON):
//! - `POST /entries/{digest}`, the validated item in `x-edge-item`
//!   (`edge_core::internal::encode_item`), no body → 200 the answer
//!   with `x-cache: hit` (the stored bytes), `miss` (the processor's answer,
//!   stored for `cache_ttl_seconds`) or `bypass` (the store failed: not
//!   stored); the processor's 4xx error JSON as is; 502 when the processor
//!   failed (an expired entry is a miss and is deleted);
//! - `DELETE /entries` → 200 `{"purged":n}` (counters are kept);
//! - `GET /data/{key}` → 200 upstream JSON with `x-cache: hit|miss|stale`
//!   (or `bypass` when the store failed), 400 bad key, 404 upstream has no
//!   such key, 502 upstream failed, 503 upstream not configured, 504 timeout;
//! - `GET /stats` → 200 `{"hits","misses","stale","entries","approximate",
//!   "sample_every"}` (sampled counters, see `edge_core::stats`);
//! - `GET /health` → 200 `{"store":"ok"|"unavailable"}`.
//!
//! `{digest}` is `edge_core::cache_key::process_digest` of the input and
//! the rule (64 hex chars). Variables, read only by the routes that use
//! them: `cache_ttl_seconds` when an answer is stored (so a hit reads
//! none); all four (`upstream_origin`, `upstream_path`,
//! `upstream_timeout_ms` too) by `/data`.

mod admin;
mod data;
mod entries;
mod store;
mod upstream;

use edge_core::internal::{CacheRoute, ITEM_HEADER, REQUEST_ID_HEADER, cache_route, decode_item};
use edge_core::{AppError, CacheConfig, Reply};
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    let header = req.header(REQUEST_ID_HEADER).and_then(|v| v.as_str());
    // Failures are logged where they happen (store, upstream, config).
    edge_glue::respond(header, |request_id| dispatch(&req, request_id))
}

fn dispatch(req: &Request, request_id: &str) -> Result<Reply, AppError> {
    let method = req.method().to_string();
    let route = cache_route(&method, req.path_and_query().unwrap_or("/"))?;
    let config = || {
        CacheConfig::from_vars(|name| edge_glue::var("cache", name)).map_err(|e| {
            eprintln!("cache: request_id={request_id} configuration error: {e}");
            AppError::Internal
        })
    };
    match route {
        CacheRoute::Entry { digest } => {
            let item = req
                .header(ITEM_HEADER)
                .and_then(|v| decode_item(v.as_bytes()))
                .ok_or(AppError::MalformedJson {
                    detail: format!("`{ITEM_HEADER}` is missing or malformed"),
                })?;
            entries::read_through(digest, &item, request_id)
        }
        CacheRoute::Purge => admin::purge(request_id),
        CacheRoute::Data { key } => data::get(key, &config()?, request_id),
        CacheRoute::Stats => admin::stats(request_id),
        CacheRoute::Health => Ok(admin::health(request_id)),
    }
}
