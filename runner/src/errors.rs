//! Answers the runner gives itself, as Spin 4 gives them (its
//! `crates/trigger-http/src/server.rs`, `not_found` and `internal_error`):
//! a status and an empty body, with no `content-type` and no other header.
//! A path no route matches is a 404, a component that traps, fails to
//! instantiate or sends no response is a 500. The application's own router
//! answers every path of this app with its JSON error shape; these are only
//! seen when a request never reaches a component or its component fails.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::WasiBody;

/// A response with `status` and an empty body, as Spin's own answers are.
pub fn empty_response(status: http::StatusCode) -> http::Response<WasiBody> {
    let mut response = http::Response::new(full_body(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// A body holding `bytes`.
pub fn full_body(bytes: impl Into<Bytes>) -> WasiBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_runners_own_answers_have_a_status_and_nothing_else() {
        let r = empty_response(http::StatusCode::NOT_FOUND);
        assert_eq!(r.status(), 404);
        assert!(r.headers().is_empty(), "{:?}", r.headers());
        let body = crate::app::collect_body(r.into_body()).await.unwrap();
        assert!(body.is_empty());
    }
}
