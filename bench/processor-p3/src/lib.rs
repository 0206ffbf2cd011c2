//! The processor component built for WASI 0.3 (spin-sdk 7, an async
//! `wasi:http@0.3.0` handler), for bench/p3-processor: the same handlers
//! (processor/src/process.rs, compiled in verbatim) and the same dispatch
//! as processor/src/lib.rs; [`glue`] stands in for edge-glue, which is
//! spin-sdk 5.2 (WASI 0.2).
//!
//! - `POST /process`, `POST /process/batch`: as the processor answers them
//!   (bodies identical but for `processed_at`);
//! - with the default feature `variables`, `threshold` and `multiplier` are
//!   read through Spin's variables interface on every request, as the
//!   processor does; without it (`--no-default-features`) they are fixed at
//!   their defaults, and the component needs nothing but WASI, so `wasmtime
//!   serve` can run it.

#[path = "../../../processor/src/process.rs"]
mod process;

mod glue;

use edge_core::internal::{ProcessorRoute, REQUEST_ID_HEADER, processor_route};
use edge_core::{AppError, Reply};
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let header = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok());
    let request_id = glue::request_id(header);
    let reply = dispatch(req, &request_id)
        .await
        .unwrap_or_else(|e| Reply::error(&e, &request_id));
    glue::into_response(reply)
}

async fn dispatch(req: Request, request_id: &str) -> Result<Reply, AppError> {
    let method = req.method().to_string();
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let route = processor_route(&method, path)?;
    let config = glue::processor_config().await.map_err(|e| {
        eprintln!("processor: request_id={request_id} configuration error: {e}");
        AppError::Internal
    })?;
    let body = req.into_body().bytes().await.map_err(|e| {
        eprintln!("processor: request_id={request_id} request body unreadable: {e:?}");
        AppError::Internal
    })?;
    let now = glue::now();
    match route {
        ProcessorRoute::One => process::one(&body, &config.rule, now, request_id),
        ProcessorRoute::Batch => process::batch(&body, &config.rule, now, request_id),
    }
}
