//! `GET /data/{key}`: read-through cache of
//! `{upstream_origin}{upstream_path}/{key}` with stale-if-error. The decision
//! is `edge_core::upstream::after_fetch`; this module does the I/O.

use edge_core::cache_key::data_entry_key;
use edge_core::data_key;
use edge_core::envelope::Envelope;
use edge_core::internal::CacheOutcome;
use edge_core::stats::Counter;
use edge_core::upstream::{self as decide, DataAnswer};
use edge_core::{AppError, CacheConfig, Reply};

use crate::{store, upstream};

pub fn get(key: &str, config: &CacheConfig, request_id: &str) -> Result<Reply, AppError> {
    let key = data_key::validate(key)?;
    // Not configured (empty, or spin.toml's `http://upstream.invalid`):
    // answer before touching the network at all.
    let Some(upstream) = &config.upstream else {
        return Err(AppError::UpstreamNotConfigured);
    };
    let entry_key = data_entry_key(key);
    let now = edge_glue::now();

    // A store failure does not fail the request: without the store the
    // upstream is asked directly and the answer is a `bypass`.
    let store = store::open(request_id).ok();
    let cached = store
        .as_ref()
        .and_then(|s| store::get(s, &entry_key, request_id).ok().flatten());

    if let (Some(store), Some(copy)) = (&store, &cached)
        && decide::is_fresh(Some(copy), now)
    {
        store::count(store, Counter::Hits, request_id);
        return Ok(Reply::json(200, copy.body.clone(), request_id).with_cache(CacheOutcome::Hit));
    }

    let fetch = upstream::fetch(upstream, key, config.upstream_timeout_ms, request_id);
    match decide::after_fetch(fetch, cached, config.upstream_timeout_ms) {
        DataAnswer::Fetched(body) => {
            let outcome = match &store {
                Some(store) => {
                    let envelope = Envelope::new(body.clone(), now, config.ttl_seconds);
                    store::count(store, Counter::Misses, request_id);
                    match store::set(store, &entry_key, &envelope, request_id) {
                        Ok(()) => CacheOutcome::Miss,
                        Err(_) => CacheOutcome::Bypass,
                    }
                }
                None => CacheOutcome::Bypass,
            };
            Ok(Reply::json(200, body, request_id).with_cache(outcome))
        }
        DataAnswer::Stale(body) => {
            if let Some(store) = &store {
                store::count(store, Counter::Stale, request_id);
            }
            Ok(Reply::json(200, body, request_id).with_cache(CacheOutcome::Stale))
        }
        DataAnswer::Missing => {
            if let Some(store) = &store {
                store::delete(store, &entry_key, request_id);
            }
            Err(decide::not_found(key))
        }
        DataAnswer::Error(e) => Err(e),
    }
}
