//! `GET /api/data/{key}`: validated here, served by the cache's read-through.

use edge_core::chain::passthrough;
use edge_core::internal::{CACHE_HOST, CacheOutcome, DATA_PATH};
use edge_core::{AppError, Reply, data_key};
use spin_sdk::http::Method;

use crate::chain::call;
use crate::host::Ctx;

pub fn get(key: &str, ctx: &Ctx) -> Result<Reply, AppError> {
    let rid = ctx.request_id.as_str();
    let key = data_key::validate(key)?;
    let path = format!("{DATA_PATH}/{key}");
    let answer = call(Method::Get, CACHE_HOST, &path, None, rid);
    let outcome = answer
        .as_ref()
        .and_then(|a| a.cache.as_deref())
        .and_then(CacheOutcome::parse);
    let (status, body) = passthrough(answer.map(|a| (a.status, a.body)))?;
    let reply = Reply::json(status, body, rid);
    Ok(match outcome {
        Some(outcome) => reply.with_cache(outcome),
        None => reply,
    })
}
