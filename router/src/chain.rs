//! The router's chained calls to the processor and the cache
//! (`edge_glue::chain`, logged as the router's), and how it passes a cache
//! answer through.

use edge_core::{AppError, Reply};
use spin_sdk::http::Method;

pub use edge_glue::chain::{Answer, Call};

/// Calls `http://{host}{path}`; `None` (logged) when the call itself fails.
pub fn call(
    method: Method,
    host: &str,
    path: &str,
    body: Option<&[u8]>,
    request_id: &str,
) -> Option<Answer> {
    let request = Call {
        method,
        host,
        path,
        header: None,
        body,
    };
    edge_glue::chain::call("router", request, request_id)
}

/// Passes a cache answer through as the public reply (status, JSON body,
/// `x-cache`); a missing or non-JSON answer is a 500.
pub fn passthrough(answer: Option<Answer>, request_id: &str) -> Result<Reply, AppError> {
    let outcome = answer.as_ref().and_then(|a| a.cache);
    let (status, body) = edge_core::chain::passthrough(answer.map(Answer::status_and_body))
        .inspect_err(|_| {
            eprintln!("router: request_id={request_id} no usable answer from the cache")
        })?;
    let reply = Reply::json(status, body, request_id);
    Ok(match outcome {
        Some(outcome) => reply.with_cache(outcome),
        None => reply,
    })
}
