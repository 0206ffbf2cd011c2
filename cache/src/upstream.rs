//! The one outbound call: `GET {upstream_origin}{upstream_path}/{key}`,
//! bounded by `upstream_timeout_ms` from start to last body byte.
//!
//! spin-sdk's `http::send` passes no request options, so this uses the
//! wasi:http bindings spin-sdk ships (`spin_sdk::wit`) directly:
//! - the connect, first-byte and between-bytes timeouts of
//!   `wasi:http/types.request-options` are set to the timeout, so a host that
//!   honours them (Spin does) aborts a slow upstream itself;
//! - independently, the guest waits with `wasi:io/poll` on the response (or
//!   the body stream) *and* a monotonic-clock deadline, so the total time is
//!   bounded even on a host that ignores the options.
//!
//! Resources are dropped child-first (pollable, stream, body, response,
//! future), as wasi:http requires.

use edge_core::upstream::{Fetch, MAX_UPSTREAM_BODY_BYTES, Upstream, classify};
use spin_sdk::http::{ErrorCode, Fields, IncomingResponse, Method, OutgoingRequest, Scheme};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{IncomingBody, RequestOptions};
use wasi::clocks::monotonic_clock;
use wasi::io::poll::{Pollable, poll};
use wasi::io::streams::StreamError;

const READ_CHUNK: u64 = 64 * 1024;

/// Fetches one key; every failure is logged with the request id.
pub fn fetch(upstream: &Upstream, key: &str, timeout_ms: u64, request_id: &str) -> Fetch {
    let outcome = fetch_inner(upstream, key, timeout_ms, request_id);
    match &outcome {
        Fetch::Failed(reason) => {
            eprintln!("cache: request_id={request_id} upstream {key} failed: {reason}")
        }
        Fetch::TimedOut => {
            eprintln!(
                "cache: request_id={request_id} upstream {key} timed out after {timeout_ms} ms"
            )
        }
        Fetch::Body(_) | Fetch::NotFound => {}
    }
    outcome
}

fn fetch_inner(upstream: &Upstream, key: &str, timeout_ms: u64, request_id: &str) -> Fetch {
    let timeout_ns = timeout_ms.saturating_mul(1_000_000);
    let deadline =
        monotonic_clock::subscribe_instant(monotonic_clock::now().saturating_add(timeout_ns));

    let request = match build_request(upstream, key, request_id) {
        Ok(request) => request,
        Err(reason) => return Fetch::Failed(reason),
    };
    let options = RequestOptions::new();
    // Err means the host does not support that option; the deadline below
    // still applies.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));

    let future = match outgoing_handler::handle(request, Some(options)) {
        Ok(future) => future,
        Err(code) => return from_error_code(&code),
    };
    let ready = {
        let pollable = future.subscribe();
        wait(&pollable, &deadline)
    };
    if !ready {
        return Fetch::TimedOut;
    }
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return from_error_code(&code),
        Some(Err(())) | None => return Fetch::Failed("response unavailable".into()),
    };
    let status = response.status();
    match read_body(&response, &deadline) {
        Ok(body) => classify(status, body),
        Err(fetch) => fetch,
    }
}

fn build_request(
    upstream: &Upstream,
    key: &str,
    request_id: &str,
) -> Result<OutgoingRequest, String> {
    let headers = Fields::from_list(&[
        ("accept".to_owned(), b"application/json".to_vec()),
        ("x-request-id".to_owned(), request_id.as_bytes().to_vec()),
    ])
    .map_err(|e| format!("invalid request headers: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let scheme = if upstream.is_https() {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_method(&Method::Get)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(upstream.authority())))
        .and_then(|()| request.set_path_with_query(Some(&upstream.path_for(key))))
        .map_err(|()| format!("invalid upstream request for {}", upstream.url_for(key)))?;
    Ok(request)
}

/// Waits until `pollable` is ready (true) or the deadline passes (false).
fn wait(pollable: &Pollable, deadline: &Pollable) -> bool {
    loop {
        let ready = poll(&[pollable, deadline]);
        if ready.contains(&0) {
            return true;
        }
        if ready.contains(&1) {
            return false;
        }
    }
}

/// Reads the whole body, up to `MAX_UPSTREAM_BODY_BYTES`, before the deadline.
fn read_body(response: &IncomingResponse, deadline: &Pollable) -> Result<Vec<u8>, Fetch> {
    let body = response
        .consume()
        .map_err(|()| Fetch::Failed("response body unavailable".into()))?;
    let result = {
        let stream = body
            .stream()
            .map_err(|()| Fetch::Failed("response body stream unavailable".into()))?;
        let mut bytes = Vec::new();
        loop {
            match stream.read(READ_CHUNK) {
                Ok(chunk) if chunk.is_empty() => {
                    let pollable = stream.subscribe();
                    if !wait(&pollable, deadline) {
                        break Err(Fetch::TimedOut);
                    }
                }
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_UPSTREAM_BODY_BYTES {
                        break Err(Fetch::Failed(format!(
                            "upstream body larger than {MAX_UPSTREAM_BODY_BYTES} bytes"
                        )));
                    }
                }
                Err(StreamError::Closed) => break Ok(bytes),
                Err(StreamError::LastOperationFailed(e)) => {
                    break Err(Fetch::Failed(format!(
                        "reading the upstream body failed: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
    };
    drop(IncomingBody::finish(body));
    result
}

fn from_error_code(code: &ErrorCode) -> Fetch {
    match code {
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout => Fetch::TimedOut,
        ErrorCode::HttpRequestDenied => Fetch::Failed(
            "request denied by the host: is `upstream_origin` in allowed_outbound_hosts?".into(),
        ),
        other => Fetch::Failed(format!("{other:?}")),
    }
}
