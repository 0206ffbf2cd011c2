//! `GET /api/health`: always 200 while the router runs; the body says
//! whether the store is reachable (through the cache).

use edge_core::Reply;
use edge_core::VERSION;
use edge_core::health::{StoreStatus, health_json, parse_store_json};
use edge_core::internal::{CACHE_HOST, HEALTH_PATH};
use spin_sdk::http::Method;

use crate::chain::call;
use crate::host::Ctx;

pub fn get(ctx: &Ctx) -> Reply {
    let rid = ctx.request_id.as_str();
    let answer = call(Method::Get, CACHE_HOST, HEALTH_PATH, None, rid);
    let store = match answer {
        Some(a) if a.status == 200 => parse_store_json(&a.body),
        _ => StoreStatus::Unavailable,
    };
    Reply::json(200, health_json(VERSION, store), rid)
}
