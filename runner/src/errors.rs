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

/// Why a request did not get the guest's own response.
#[derive(Debug)]
pub enum GuestFailure {
    /// The guest trapped (panic, unreachable, out of memory...).
    Trap(String),
    /// The guest ran past the request deadline.
    Timeout,
    /// The guest reported an error instead of a response, or none at all.
    Guest(String),
    /// The host failed.
    Host(String),
}

impl std::fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestFailure::Timeout => f.write_str("a component ran past the request deadline"),
            GuestFailure::Trap(why) | GuestFailure::Guest(why) | GuestFailure::Host(why) => {
                f.write_str(why)
            }
        }
    }
}

impl GuestFailure {
    /// The response for the caller, as Spin answers a component that fails:
    /// the status and an empty body; the details go to the log. (Spin has
    /// no request deadline; the runner's backstop answers an empty 504.)
    pub fn into_response(self) -> http::Response<WasiBody> {
        match self {
            GuestFailure::Timeout => {
                eprintln!("error: a component ran past the request deadline");
                empty_response(http::StatusCode::GATEWAY_TIMEOUT)
            }
            GuestFailure::Trap(why) | GuestFailure::Guest(why) | GuestFailure::Host(why) => {
                eprintln!("error: {why}");
                empty_response(http::StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}
