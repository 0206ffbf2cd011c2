//! edge-glue's part the processor uses, over spin-sdk 7 and WASI 0.3:
//! its variables, the wall clock, the request id and the response.

use edge_core::{ConfigError, ProcessorConfig, Reply, request_id};
use spin_sdk::http::{FullBody, HeaderMap, HeaderName, HeaderValue, StatusCode};
use spin_sdk::wasip3::clocks::system_clock;
use spin_sdk::wasip3::random::random::get_random_u64;

/// The rule's variables, read as edge-glue's `var` reads them: an
/// undeclared variable, or a provider failure (logged), is `None` and its
/// default applies.
#[cfg(feature = "variables")]
pub async fn processor_config() -> Result<ProcessorConfig, ConfigError> {
    use edge_core::config::names::{MULTIPLIER, THRESHOLD};
    let threshold = var(THRESHOLD).await;
    let multiplier = var(MULTIPLIER).await;
    ProcessorConfig::from_vars(|name| match name {
        THRESHOLD => threshold.clone(),
        MULTIPLIER => multiplier.clone(),
        _ => None,
    })
}

/// Without the `variables` feature: every variable unset, the defaults.
#[cfg(not(feature = "variables"))]
pub async fn processor_config() -> Result<ProcessorConfig, ConfigError> {
    ProcessorConfig::from_vars(|_| None)
}

#[cfg(feature = "variables")]
async fn var(name: &str) -> Option<String> {
    use spin_sdk::variables::{self, Error};
    match variables::get(name).await {
        Ok(value) => Some(value),
        Err(Error::Undefined(_)) => None,
        Err(e) => {
            eprintln!("processor: variable `{name}` unreadable ({e}); using its default");
            None
        }
    }
}

/// Unix seconds from `wasi:clocks/system-clock@0.3.0`.
pub fn now() -> u64 {
    u64::try_from(system_clock::now().seconds).unwrap_or(0)
}

/// The request's `x-request-id` if sane, else a fresh one from
/// `wasi:random@0.3.0`.
pub fn request_id(header: Option<&str>) -> String {
    request_id::resolve(header, || {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&get_random_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&get_random_u64().to_le_bytes());
        bytes
    })
}

/// The response for a [`Reply`]: its status, headers and body, whole.
pub fn into_response(reply: Reply) -> (StatusCode, HeaderMap, FullBody<bytes::Bytes>) {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    (
        status,
        headers,
        FullBody::new(bytes::Bytes::from(reply.body)),
    )
}
