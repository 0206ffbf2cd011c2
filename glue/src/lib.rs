//! The glue every component shares between spin-sdk and edge-core: reading
//! a variable, the wall clock, entropy, the request id, turning a [`Reply`]
//! into a Spin response, and the chained calls between components
//! ([`chain`]).
//!
//! edge-core stays free of spin-sdk (it is tested natively and fuzzed); the
//! components stay thin: their `host.rs` keeps only what is theirs.

pub mod chain;

use edge_core::{AppError, Reply, request_id};
use spin_sdk::http::Response;
use spin_sdk::variables;
use spin_sdk::wit::wasi::random0_2_0::random::get_random_u64;

/// The variable `name` of the running component; `None` (the default
/// applies) when it is not declared. A provider failure is logged, naming
/// `component`, and also falls back to the default.
pub fn var(component: &str, name: &str) -> Option<String> {
    match variables::get(name) {
        Ok(value) => Some(value),
        Err(variables::Error::Undefined(_)) => None,
        Err(e) => {
            eprintln!("{component}: variable `{name}` unreadable ({e}); using its default");
            None
        }
    }
}

/// Unix seconds (the wall clock: TTLs and `processed_at` must survive
/// restarts of the host).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A uniformly random number from the host (wasi:random).
pub fn random() -> u64 {
    get_random_u64()
}

/// 16 random bytes from the host, for a fresh request id.
pub fn entropy() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&get_random_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&get_random_u64().to_le_bytes());
    bytes
}

/// The request's `x-request-id` if sane, else a fresh one.
pub fn request_id(header: Option<&str>) -> String {
    request_id::resolve(header, entropy)
}

/// The Spin response for a [`Reply`].
pub fn into_response(reply: Reply) -> Response {
    let mut builder = Response::builder();
    builder.status(reply.status);
    for (name, value) in reply.headers {
        builder.header(name, value);
    }
    builder.body(reply.body);
    builder.build()
}

/// A component's entry: resolves the request id from `x-request-id`, runs
/// `handler` with it, and answers its reply, or its error as the documented
/// error JSON under the same id.
pub fn respond(
    request_id_header: Option<&str>,
    handler: impl FnOnce(&str) -> Result<Reply, AppError>,
) -> Response {
    let request_id = request_id(request_id_header);
    let reply = handler(&request_id).unwrap_or_else(|e| Reply::error(&e, &request_id));
    into_response(reply)
}
