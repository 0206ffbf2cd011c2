//! The few things the cache takes from the host besides the store and the
//! network: variables, clocks, randomness, and turning a `Reply` into a Spin
//! response.

use edge_core::{Reply, request_id};
use spin_sdk::http::Response;
use spin_sdk::variables;
use spin_sdk::wit::wasi::random0_2_0::random::get_random_u64;

/// A component variable; `None` (the default applies) when it is not
/// declared. A provider failure is logged and also falls back to the default.
pub fn var(name: &'static str) -> Option<String> {
    match variables::get(name) {
        Ok(value) => Some(value),
        Err(variables::Error::Undefined(_)) => None,
        Err(e) => {
            eprintln!("cache: variable `{name}` unreadable ({e}); using its default");
            None
        }
    }
}

/// Unix seconds (wall clock: TTLs must survive restarts of the host).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A uniformly random number (for counter sampling).
pub fn random() -> u64 {
    get_random_u64()
}

/// The request's id if sane, else a fresh one.
pub fn request_id(header: Option<&str>) -> String {
    request_id::resolve(header, || {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&get_random_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&get_random_u64().to_le_bytes());
        bytes
    })
}

pub fn into_response(reply: Reply) -> Response {
    let mut builder = Response::builder();
    builder.status(reply.status);
    for (name, value) in reply.headers {
        builder.header(name, value);
    }
    builder.body(reply.body);
    builder.build()
}
