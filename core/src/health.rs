//! The health answers: the cache's internal `{"store":…}` and the public
//! `{"status":"ok","version":…,"store":…}`.

use serde::{Deserialize, Serialize};

/// Whether the key-value store answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreStatus {
    Ok,
    Unavailable,
}

#[derive(Serialize, Deserialize)]
struct StoreHealth {
    store: StoreStatus,
}

/// The cache's `GET /health` body.
pub fn store_json(store: StoreStatus) -> String {
    serde_json::to_string(&StoreHealth { store }).unwrap_or_default()
}

/// Reads the cache's health body; anything unreadable means unavailable.
pub fn parse_store_json(body: &[u8]) -> StoreStatus {
    serde_json::from_slice::<StoreHealth>(body)
        .map(|h| h.store)
        .unwrap_or(StoreStatus::Unavailable)
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    version: &'a str,
    store: StoreStatus,
}

/// The public `GET /api/health` body. The app is healthy (it still
/// processes) even when the store is not; the body says which.
pub fn health_json(version: &str, store: StoreStatus) -> String {
    serde_json::to_string(&Health {
        status: "ok",
        version,
        store,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_body_reports_the_store() {
        assert_eq!(
            health_json("0.1.0", StoreStatus::Unavailable),
            r#"{"status":"ok","version":"0.1.0","store":"unavailable"}"#
        );
    }

    #[test]
    fn the_internal_body_round_trips() {
        for s in [StoreStatus::Ok, StoreStatus::Unavailable] {
            assert_eq!(parse_store_json(store_json(s).as_bytes()), s);
        }
        assert_eq!(parse_store_json(b"<html>"), StoreStatus::Unavailable);
    }
}
