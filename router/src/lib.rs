//! The router component: the only public component (`route = "/..."`).
//!
//! It validates requests, enforces the limits, assigns request ids, maps
//! errors, and orchestrates the other two components through Spin's local
//! service chaining. It holds no key-value store and may call only
//! `http://processor.spin.internal` and `http://cache.spin.internal`.
//!
//! Calls it makes (every one carries `x-request-id`; see
//! `edge_core::internal` for the full internal API):
//! - `POST /api/process`: one call, cache `POST /entries/{digest}` with the
//!   validated item, which answers the stored copy (`x-cache: hit`) or asks
//!   the processor, stores and answers (`miss`; `bypass` when its store
//!   failed); if the cache itself fails, the router asks the processor
//!   `POST /process` and answers `bypass`;
//! - `POST /api/process/batch`: processor `POST /process/batch` (not cached);
//! - `GET /api/data/{key}`: cache `GET /data/{key}`, passed through;
//! - `GET /api/cache/stats`, `DELETE /api/cache`: admin token checked here,
//!   then cache `GET /stats`, `DELETE /entries`;
//! - `GET /api/health`: cache `GET /health` for the store's status.
//!
//! One access-log line per request goes to stdout; diagnostics to stderr.
//! Variables, each read only by the routes that use it: `threshold`,
//! `multiplier` (part of cache keys) and `max_body_bytes` by
//! `/api/process`; `max_body_bytes` and `max_batch_items` by the batch; all
//! five (`admin_token` too) by the admin routes.

mod admin;
mod chain;
mod data;
mod health;
mod host;
mod process;

use std::time::Instant;

use edge_core::log::AccessLog;
use edge_core::routes::{self, Route, strip_query};
use edge_core::{AppError, Reply};
use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;

use crate::host::{Body, Ctx};

#[http_component]
fn handle(req: IncomingRequest) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.path_with_query().unwrap_or_else(|| "/".into());
    let ctx = Ctx::from_request(&req);
    let mut body = Body::new(req, started);

    let reply = match dispatch(&mut body, &ctx, &method, &path) {
        Ok(reply) => reply,
        Err(e) => {
            if e.status() >= 500 {
                // The cause was logged where it happened, under the same id.
                eprintln!(
                    "router: request_id={} answered {} {}",
                    ctx.request_id,
                    e.status(),
                    e.code()
                );
            }
            Reply::error(&e, &ctx.request_id)
        }
    };
    // The one place every answer passes: whatever is left of the body is
    // drained first (nothing to do when a handler read it to its end).
    body.settle(&ctx);

    let line = AccessLog {
        method: &method,
        path: strip_query(&path),
        status: reply.status,
        duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        cache: reply.header(edge_core::internal::CACHE_HEADER),
        request_id: &ctx.request_id,
        trace_id: ctx
            .traceparent
            .as_deref()
            .and_then(edge_core::trace_context::trace_id),
    }
    .line();
    println!("{line}");
    edge_glue::into_response(reply)
}

fn dispatch(body: &mut Body, ctx: &Ctx, method: &str, path: &str) -> Result<Reply, AppError> {
    match routes::route(method, path)? {
        Route::Health => Ok(health::get(ctx)),
        Route::Process => process::one(body, ctx),
        Route::ProcessBatch => process::batch(body, ctx),
        Route::Data { key } => data::get(key, ctx),
        Route::CacheStats => admin::stats(ctx),
        Route::CachePurge => admin::purge(ctx),
    }
}
