//! The key-value store "default", seen through TTL envelopes and sampled
//! counters. Every store error is logged here and surfaces as
//! `AppError::StoreUnavailable` (503 on the internal API, which the router
//! turns into `x-cache: bypass`).

use edge_core::AppError;
use edge_core::envelope::Envelope;
use edge_core::stats::{self, Counter};
use spin_sdk::key_value::Store;

/// Opens the store.
pub fn open(request_id: &str) -> Result<Store, AppError> {
    Store::open_default().map_err(|e| unavailable(request_id, "open", &e))
}

fn unavailable(request_id: &str, op: &str, e: &dyn std::fmt::Display) -> AppError {
    eprintln!("cache: request_id={request_id} store {op} failed: {e}");
    AppError::StoreUnavailable
}

/// Reads an envelope; an entry that does not decode is deleted and reads as
/// absent.
pub fn get(store: &Store, key: &str, request_id: &str) -> Result<Option<Envelope>, AppError> {
    let Some(bytes) = store
        .get(key)
        .map_err(|e| unavailable(request_id, "get", &e))?
    else {
        return Ok(None);
    };
    match Envelope::decode(&bytes) {
        Some(envelope) => Ok(Some(envelope)),
        None => {
            eprintln!("cache: request_id={request_id} dropping undecodable entry {key}");
            delete(store, key, request_id);
            Ok(None)
        }
    }
}

/// Writes an envelope.
pub fn set(
    store: &Store,
    key: &str,
    envelope: &Envelope,
    request_id: &str,
) -> Result<(), AppError> {
    store
        .set(key, &envelope.encode())
        .map_err(|e| unavailable(request_id, "set", &e))
}

/// Deletes a key; a failure is only logged (the entry will be retried or
/// overwritten later).
pub fn delete(store: &Store, key: &str, request_id: &str) {
    if let Err(e) = store.delete(key) {
        eprintln!("cache: request_id={request_id} store delete of {key} failed: {e}");
    }
}

/// Counts an event, sampled: only one call in `stats::SAMPLE_EVERY` touches
/// the store (a read and a write adding `SAMPLE_EVERY`), so a hit does not
/// cost a write. Failures are logged and ignored: statistics never fail a
/// request. See `edge_core::stats` for how exact this is.
pub fn count(store: &Store, counter: Counter, request_id: &str) {
    if !stats::is_sampled(edge_glue::random()) {
        return;
    }
    let key = counter.key();
    let current = store.get(&key).ok().flatten();
    if let Err(e) = store.set(&key, &stats::bump(current.as_deref())) {
        eprintln!("cache: request_id={request_id} counter {key} not updated: {e}");
    }
}

/// Reads a counter (0 when absent).
pub fn read_count(store: &Store, counter: Counter, request_id: &str) -> Result<u64, AppError> {
    let value = store
        .get(&counter.key())
        .map_err(|e| unavailable(request_id, "get", &e))?;
    Ok(stats::decode_count(value.as_deref()))
}

/// All cache entry keys (not counters).
pub fn entry_keys(store: &Store, request_id: &str) -> Result<Vec<String>, AppError> {
    let keys = store
        .get_keys()
        .map_err(|e| unavailable(request_id, "get_keys", &e))?;
    Ok(keys
        .into_iter()
        .filter(|k| edge_core::cache_key::is_entry_key(k))
        .collect())
}
