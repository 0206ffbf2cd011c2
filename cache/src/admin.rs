//! Statistics, purge and health (the router checks the admin token before
//! calling the first two).

use edge_core::health::{StoreStatus, store_json};
use edge_core::stats::{Counter, Stats};
use edge_core::{AppError, Reply};

use crate::store;

/// `GET /stats`: the sampled counters and the exact number of entries.
pub fn stats(request_id: &str) -> Result<Reply, AppError> {
    let store = store::open(request_id)?;
    let stats = Stats::new(
        store::read_count(&store, Counter::Hits, request_id)?,
        store::read_count(&store, Counter::Misses, request_id)?,
        store::read_count(&store, Counter::Stale, request_id)?,
        store::entry_keys(&store, request_id)?.len() as u64,
    );
    Ok(Reply::json(200, stats.to_json(), request_id))
}

/// `DELETE /entries`: deletes every cache entry (answers and upstream
/// copies); the counters are statistics, not cache, and are kept.
pub fn purge(request_id: &str) -> Result<Reply, AppError> {
    let store = store::open(request_id)?;
    let keys = store::entry_keys(&store, request_id)?;
    let mut purged = 0u64;
    for key in &keys {
        match store.delete(key) {
            Ok(()) => purged += 1,
            Err(e) => {
                eprintln!("cache: request_id={request_id} purge of {key} failed: {e}");
                return Err(AppError::StoreUnavailable);
            }
        }
    }
    Ok(Reply::json(
        200,
        format!(r#"{{"purged":{purged}}}"#),
        request_id,
    ))
}

/// `GET /health`: whether the store answers a read.
pub fn health(request_id: &str) -> Reply {
    let status = match store::open(request_id) {
        Ok(store) => match store.exists(&Counter::Hits.key()) {
            Ok(_) => StoreStatus::Ok,
            Err(e) => {
                eprintln!("cache: request_id={request_id} store health read failed: {e}");
                StoreStatus::Unavailable
            }
        },
        Err(_) => StoreStatus::Unavailable,
    };
    Reply::json(200, store_json(status), request_id)
}
