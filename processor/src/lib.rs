//! The processor component: applies the rule to one item or a batch.
//!
//! Private (`route = { private = true }`) and capability-free: no key-value
//! store, no outbound hosts. Only the router calls it, through Spin's local
//! service chaining at `http://processor.spin.internal`:
//!
//! - `POST /process`, body `{"id","value","timestamp"}` → 200 the answer
//!   `{"id","status","result","source","processed_at"}`, or the error JSON
//!   (400/422, e.g. 422 `result_overflow`);
//! - `POST /process/batch`, body a JSON array of items → 200 an array of
//!   the same length, each element an answer or `{"error":{…}}`.
//!
//! The `x-request-id` of the request is echoed and used in error bodies.
//! Variables: `threshold`, `multiplier`.

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
    let config =
        ProcessorConfig::from_vars(|name| edge_glue::var("processor", name)).map_err(|e| {
            eprintln!("processor: request_id={request_id} configuration error: {e}");
            AppError::Internal
        })?;
    let now = edge_glue::now();
    match route {
        ProcessorRoute::One => process::one(req.body(), &config.rule, now, request_id),
        ProcessorRoute::Batch => process::batch(req.body(), &config.rule, now, request_id),
    }
}
