//! The `/api/process` answer cache: entries keyed by the digest of input and
//! rule, stored in TTL envelopes, read through to the processor. The
//! decisions are `edge_core::chain`'s; this module does the I/O.

use edge_core::cache_key::{is_digest, process_entry_key};
use edge_core::chain::{self as decide, Lookup, Processed};
use edge_core::envelope::Envelope;
use edge_core::internal::{CacheOutcome, PROCESS_PATH, PROCESSOR_FAILED, PROCESSOR_HOST};
use edge_core::stats::Counter;
use edge_core::{AppError, Reply, config};
use edge_glue::chain::Call;
use spin_sdk::http::Method;

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

/// `POST /entries/{digest}`, `item` = the item the router validated: the
/// stored answer if fresh (`x-cache: hit`); else the processor's answer,
/// stored for `cache_ttl_seconds` (`miss`), or not stored when the store
/// failed (`bypass`). An expired entry is deleted on the way (lazy
/// eviction). A processor rejection passes through; a processor failure is
/// [`PROCESSOR_FAILED`]. The store is opened once; a hit reads no variable.
pub fn read_through(digest: &str, item: &[u8], request_id: &str) -> Result<Reply, AppError> {
    let key = entry_key(digest)?;
    // A store failure does not fail the request: the answer is computed and
    // not stored (every failure is logged by `store`).
    let store = store::open(request_id).ok();
    let read = store
        .as_ref()
        .and_then(|s| store::get(s, &key, request_id).ok());
    let now = edge_glue::now();
    let lookup = decide::lookup(read, now);
    if let Some(store) = &store {
        match &lookup {
            Lookup::Hit(_) => store::count(store, Counter::Hits, request_id),
            Lookup::Expired => {
                store::delete(store, &key, request_id);
                store::count(store, Counter::Misses, request_id);
            }
            Lookup::Miss => store::count(store, Counter::Misses, request_id),
            Lookup::Unavailable => {}
        }
    }
    if let Lookup::Hit(stored) = lookup {
        return Ok(Reply::json(200, stored, request_id).with_cache(CacheOutcome::Hit));
    }

    let request = Call {
        method: Method::Post,
        host: PROCESSOR_HOST,
        path: PROCESS_PATH,
        header: None,
        body: Some(item),
    };
    let answer = edge_glue::chain::call("cache", request, request_id);
    let answer = match decide::processed(answer.map(|a| a.status_and_body())) {
        Ok(Processed::Ok(answer)) => answer,
        Ok(Processed::Rejected(status, error)) => {
            return Ok(Reply::json(status, error, request_id));
        }
        Err(reason) => {
            eprintln!("cache: request_id={request_id} {reason}");
            return Ok(Reply::json(
                PROCESSOR_FAILED,
                AppError::Internal.to_json(request_id),
                request_id,
            ));
        }
    };
    let (answer, stored) = match (&store, lookup.stores()) {
        (Some(store), true) => store_answer(store, &key, answer, now, request_id),
        _ => (answer, false),
    };
    let outcome = decide::computed_outcome(&lookup, stored);
    Ok(Reply::json(200, answer, request_id).with_cache(outcome))
}

/// Stores `answer` for `cache_ttl_seconds` (the one variable this route
/// reads, and only on a miss); gives it back, and whether it was stored.
fn store_answer(
    store: &spin_sdk::key_value::Store,
    key: &str,
    answer: Vec<u8>,
    now: u64,
    request_id: &str,
) -> (Vec<u8>, bool) {
    let ttl = match config::ttl_from(|name| edge_glue::var("cache", name)) {
        Ok(ttl) => ttl,
        Err(e) => {
            eprintln!("cache: request_id={request_id} configuration error: {e}");
            return (answer, false);
        }
    };
    let envelope = Envelope::new(answer, now, ttl);
    let stored = store::set(store, key, &envelope, request_id).is_ok();
    (envelope.body, stored)
}
