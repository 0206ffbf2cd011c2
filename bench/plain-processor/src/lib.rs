//! The processor component as `wasmtime serve` can run it: the same
//! handlers (processor/src/process.rs, compiled in verbatim), the same
//! entry (edge-glue) and dispatch as processor/src/lib.rs, but the rule is fixed at its defaults
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

#[http_component]
fn handle(req: Request) -> Response {
    let header = req.header(REQUEST_ID_HEADER).and_then(|v| v.as_str());
    edge_glue::respond(header, |request_id| dispatch(&req, request_id))
}

fn dispatch(req: &Request, request_id: &str) -> Result<Reply, AppError> {
    let method = req.method().to_string();
    let route = processor_route(&method, req.path_and_query().unwrap_or("/"))?;
    // Every variable unset: the defaults, as the processor reads them.
    let config = ProcessorConfig::from_vars(|_| None).map_err(|_| AppError::Internal)?;
    let now = edge_glue::now();
    match route {
        ProcessorRoute::One => process::one(req.body(), &config.rule, now, request_id),
        ProcessorRoute::Batch => process::batch(req.body(), &config.rule, now, request_id),
    }
}
