//! `GET /api/data/{key}`: validated here, served by the cache's read-through.

use edge_core::internal::{CACHE_HOST, DATA_PATH};
use edge_core::{AppError, Reply, data_key};
use spin_sdk::http::Method;

use crate::chain::{call, passthrough};
use crate::host::Ctx;

pub fn get(key: &str, ctx: &Ctx) -> Result<Reply, AppError> {
    let rid = ctx.request_id.as_str();
    let key = data_key::validate(key)?;
    let path = format!("{DATA_PATH}/{key}");
    passthrough(call(Method::Get, CACHE_HOST, &path, None, rid), rid)
}
