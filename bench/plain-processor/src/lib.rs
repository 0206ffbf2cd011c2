//! The processor component as `wasmtime serve` can run it: the same
//! handlers (processor/src/process.rs, compiled in verbatim) and the same
//! dispatch as processor/src/lib.rs, but the rule is fixed at its defaults
//! instead of read through `fermyon:spin/variables`, an import that
//! wasmtime's plain wasi:http host does not provide.
//!
//! bench/run serves this component on both `wasmtime serve` and
//! edge-runner, so the two hosts run identical guest code.

#[path = "../../../processor/src/process.rs"]
mod process;

use edge_core::internal::{ProcessorRoute, REQUEST_ID_HEADER, processor_route};
use edge_core::{AppError, ProcessorConfig, Reply};
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::random0_2_0::random::get_random_u64;

#[http_component]
fn handle(req: Request) -> Response {
    let header = req.header(REQUEST_ID_HEADER).and_then(|v| v.as_str());
    let request_id = edge_core::request_id::resolve(header, entropy);
    let reply = dispatch(&req, &request_id).unwrap_or_else(|e| Reply::error(&e, &request_id));
    into_response(reply)
}

fn dispatch(req: &Request, request_id: &str) -> Result<Reply, AppError> {
    let method = req.method().to_string();
    let route = processor_route(&method, req.path_and_query().unwrap_or("/"))?;
    // Every variable unset: the defaults, as the processor reads them.
    let config = ProcessorConfig::from_vars(|_| None).map_err(|_| AppError::Internal)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match route {
        ProcessorRoute::One => process::one(req.body(), &config.rule, now, request_id),
        ProcessorRoute::Batch => process::batch(req.body(), &config.rule, now, request_id),
    }
}

fn entropy() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&get_random_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&get_random_u64().to_le_bytes());
    bytes
}

fn into_response(reply: Reply) -> Response {
    let mut builder = Response::builder();
    builder.status(reply.status);
    for (name, value) in reply.headers {
        builder.header(name, value);
    }
    builder.body(reply.body);
    builder.build()
}
