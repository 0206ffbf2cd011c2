//! Answers the runner gives itself (no route, trap, deadline), in the
//! application's JSON error shape, so a client sees one shape everywhere:
//! `{"error":{"code":"...","message":"...","request_id":"..."}}`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::WasiBody;

/// A JSON error response with an `x-request-id` (the caller's, or a new one).
pub fn error_response(
    status: http::StatusCode,
    code: &str,
    message: &str,
    request_id: Option<&str>,
) -> http::Response<WasiBody> {
    let request_id = request_id
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    let body = serde_json::json!({
        "error": { "code": code, "message": message, "request_id": request_id }
    });
    let mut response = http::Response::new(full_body(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    response
}

/// A body holding `bytes`.
pub fn full_body(bytes: impl Into<Bytes>) -> WasiBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A fresh request id for answers the runner makes itself.
pub fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("runner-{:x}-{n:x}", t ^ u128::from(std::process::id()))
}

/// Whether a client's `x-request-id` may be echoed: at most 128 characters
/// of `[A-Za-z0-9._-]`, as the application checks it.
pub fn sane_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runner_errors_use_the_application_shape() {
        let r = error_response(
            http::StatusCode::NOT_FOUND,
            "not_found",
            "no route",
            Some("abc"),
        );
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-request-id"], "abc");
        let body = crate::app::collect_body(r.into_body()).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["request_id"], "abc");
    }

    #[test]
    fn request_ids_are_sanitised() {
        assert!(sane_request_id("abc-123_x.y"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id(&"a".repeat(129)));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id("a\nb"));
    }
}
