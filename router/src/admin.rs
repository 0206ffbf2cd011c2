//! The admin routes; the bearer token is checked here, before the cache is
//! called.

use edge_core::internal::{CACHE_HOST, ENTRIES_PATH, STATS_PATH};
use edge_core::{AppError, Reply, auth};
use spin_sdk::http::Method;

use crate::chain::{call, passthrough};
use crate::host::{self, Ctx};

fn authorize(ctx: &Ctx) -> Result<(), AppError> {
    let config = host::config(&ctx.request_id)?;
    auth::authorize(config.admin_token.as_deref(), ctx.authorization.as_deref())
}

fn forward(method: Method, path: &str, ctx: &Ctx) -> Result<Reply, AppError> {
    let rid = ctx.request_id.as_str();
    passthrough(call(method, CACHE_HOST, path, None, rid), rid)
}

/// `GET /api/cache/stats`.
pub fn stats(ctx: &Ctx) -> Result<Reply, AppError> {
    authorize(ctx)?;
    forward(Method::Get, STATS_PATH, ctx)
}

/// `DELETE /api/cache`: purges every cache entry.
pub fn purge(ctx: &Ctx) -> Result<Reply, AppError> {
    authorize(ctx)?;
    forward(Method::Delete, ENTRIES_PATH, ctx)
}
