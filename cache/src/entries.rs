//! The `/api/process` answer cache: entries keyed by the digest of input and
//! rule, stored in TTL envelopes.

use edge_core::cache_key::{is_digest, process_entry_key};
use edge_core::envelope::Envelope;
use edge_core::stats::Counter;
use edge_core::upstream::MAX_UPSTREAM_BODY_BYTES;
use edge_core::{AppError, CacheConfig, Reply};

use crate::store;

fn entry_key(digest: &str) -> Result<String, AppError> {
    if is_digest(digest) {
        Ok(process_entry_key(digest))
    } else {
        Err(AppError::InvalidKey {
            reason: "an entry digest is 64 lower-case hex characters",
        })
    }
}

/// `GET /entries/{digest}`: 200 with the stored bytes, 404 on a miss. An
/// expired entry is a miss and is deleted now (lazy eviction).
pub fn get(digest: &str, request_id: &str) -> Result<Reply, AppError> {
    let key = entry_key(digest)?;
    let store = store::open(request_id)?;
    let cached = store::get(&store, &key, request_id)?;
    match cached {
        Some(envelope) if !envelope.is_expired(edge_glue::now()) => {
            store::count(&store, Counter::Hits, request_id);
            Ok(Reply::json(200, envelope.body, request_id))
        }
        expired => {
            if expired.is_some() {
                store::delete(&store, &key, request_id);
            }
            store::count(&store, Counter::Misses, request_id);
            Ok(Reply::error(
                &AppError::NotFound {
                    message: "no cached answer".into(),
                },
                request_id,
            ))
        }
    }
}

/// `PUT /entries/{digest}`: stores the body for `cache_ttl_seconds`.
pub fn put(
    digest: &str,
    body: &[u8],
    config: &CacheConfig,
    request_id: &str,
) -> Result<Reply, AppError> {
    let key = entry_key(digest)?;
    if body.len() > MAX_UPSTREAM_BODY_BYTES {
        return Err(AppError::PayloadTooLarge {
            max: MAX_UPSTREAM_BODY_BYTES,
        });
    }
    let store = store::open(request_id)?;
    let envelope = Envelope::new(body.to_vec(), edge_glue::now(), config.ttl_seconds);
    store::set(&store, &key, &envelope, request_id)?;
    Ok(Reply::empty(204, request_id))
}
