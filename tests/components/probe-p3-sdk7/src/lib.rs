//! A WASI 0.3 probe component for edge-runner's tests (instance reuse,
//! concurrency, traps, deadlines, the Spin 3.0.0 interfaces). The same
//! source builds with spin-sdk 7 (`probe-p3-sdk7`, `wasi:http@0.3.0`) and
//! spin-sdk 6 (`probe-p3-sdk6`, `wasi:http@0.3.0-rc-2026-03-15`).
//!
//! Every answer to a counted route starts with `served=<n> inflight=<k>
//! instance=<id>`: `n` is how many requests this instance has taken (this one
//! included), `k` how many it is handling at once (this one included), `id`
//! a random number the instance drew at its first request; all kept in
//! statics, which live as long as the instance.
//!
//! Routes (path info after the component's route):
//! - `GET /count`                 → `served=<n> inflight=<k> instance=<id>`
//! - `GET /hold?ms=<n>`           → the same, after an async sleep of n ms
//! - `GET /trap`                  → panics (a trap: the whole instance ends)
//! - `GET /loop`                  → never returns (busy loop)
//! - `GET /fetch?url=<url>`       → the outbound response `<status> <body>`, or 502 `<error>`
//! - `GET /var?name=<n>`          → the variable's value, or 500 `<error>`
//! - `GET /kv?store=<s>&op=<op>&key=<k>&value=<v>` → key-value result, or 500 `<error>`

#[path = "../../probe/src/query.rs"]
mod query;

use query::query_param;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use spin_sdk::http::{IntoResponse, Request, StatusCode};
use spin_sdk::http_service;

static SERVED: AtomicU64 = AtomicU64::new(0);
static INFLIGHT: AtomicU64 = AtomicU64::new(0);
static INSTANCE: AtomicU64 = AtomicU64::new(0);

/// This instance's id, drawn (from wasi:random, through std's hasher seed)
/// at its first request.
fn instance_id() -> u64 {
    use std::hash::BuildHasher;
    let id = INSTANCE.load(SeqCst);
    if id != 0 {
        return id;
    }
    let drawn = std::collections::hash_map::RandomState::new().hash_one(0u8) | 1;
    match INSTANCE.compare_exchange(0, drawn, SeqCst, SeqCst) {
        Ok(_) => drawn,
        Err(existing) => existing,
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight;

impl InFlight {
    fn enter() -> (Self, String) {
        let served = SERVED.fetch_add(1, SeqCst) + 1;
        let inflight = INFLIGHT.fetch_add(1, SeqCst) + 1;
        let instance = instance_id();
        (
            Self,
            format!("served={served} inflight={inflight} instance={instance}"),
        )
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        INFLIGHT.fetch_sub(1, SeqCst);
    }
}

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let path = req
        .headers()
        .get("spin-path-info")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(req.uri().path())
        .to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let param = |name: &str| query_param(&query, name);
    let (_guard, counted) = InFlight::enter();
    match path.as_str() {
        "/count" => (StatusCode::OK, counted),
        "/hold" => {
            let ms: u64 = param("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
            spin_sdk::time::sleep(Duration::from_millis(ms)).await;
            (StatusCode::OK, counted)
        }
        "/trap" => panic!("the probe was asked to trap"),
        "/loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "/fetch" => fetch(&param("url").unwrap_or_default()).await,
        "/var" => match spin_sdk::variables::get(param("name").unwrap_or_default()).await {
            Ok(v) => (StatusCode::OK, v),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:?}")),
        },
        "/kv" => {
            kv(
                &param("store").unwrap_or_default(),
                &param("op").unwrap_or_default(),
                param("key").unwrap_or_default(),
                param("value").unwrap_or_default(),
            )
            .await
        }
        _ => (StatusCode::NOT_FOUND, "no such probe route".to_string()),
    }
}

async fn fetch(url: &str) -> (StatusCode, String) {
    use spin_sdk::http::{EmptyBody, Response};
    let request = match spin_sdk::http::Request::get(url).body(EmptyBody::new()) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()),
    };
    match spin_sdk::http::send(request).await {
        Ok(resp) => {
            let resp: Response = resp;
            let status = resp.status();
            match body_text(resp).await {
                Ok(body) => (StatusCode::OK, format!("{} {body}", status.as_u16())),
                Err(e) => (StatusCode::BAD_GATEWAY, e),
            }
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("{e:?}")),
    }
}

async fn body_text(resp: spin_sdk::http::Response) -> Result<String, String> {
    use http_body_util::BodyExt;
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn kv(store: &str, op: &str, key: String, value: String) -> (StatusCode, String) {
    use spin_sdk::key_value::Store;
    let store = match Store::open(store).await {
        Ok(s) => s,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:?}")),
    };
    let result = match op {
        "get" => store.get(&key).await.map(|v| {
            v.map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_else(|| "<none>".into())
        }),
        "set" => store.set(&key, value.as_bytes()).await.map(|_| "ok".into()),
        "delete" => store.delete(&key).await.map(|_| "ok".into()),
        "exists" => store.exists(&key).await.map(|b| b.to_string()),
        "keys" => store.get_keys().await.collect().await.map(|mut k| {
            k.sort();
            k.join(",")
        }),
        _ => return (StatusCode::BAD_REQUEST, "unknown op".into()),
    };
    match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:?}")),
    }
}
