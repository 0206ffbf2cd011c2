//! What the router takes from the host besides edge-glue: the request's
//! headers, its bounded body, and its configuration.

use edge_core::body::{
    BODY_TIMEOUT_MS, BoundedBody, Drain, check_declared_length, drains_declared,
};
use edge_core::internal::REQUEST_ID_HEADER;
use edge_core::{AppError, RouterConfig, content_type, request_id};
use spin_sdk::http::{Fields, IncomingRequest};
use spin_sdk::wit::wasi::http0_2_0::types::IncomingBody;
use wasi::clocks::monotonic_clock;
use wasi::io::poll::{self, Pollable};
use wasi::io::streams::{InputStream, StreamError};

/// Read size per chunk of the request body.
const READ_CHUNK: usize = 16 * 1024;

/// The request's headers the handlers need, read once.
pub struct Ctx {
    pub request_id: String,
    pub content_type: Option<String>,
    pub content_length: Option<String>,
    pub authorization: Option<String>,
    pub expect: Option<String>,
}

impl Ctx {
    pub fn from_request(req: &IncomingRequest) -> Ctx {
        // `headers` is a child resource of the request: read, then drop it.
        let headers = req.headers();
        let ctx = Ctx {
            request_id: request_id::resolve(
                header(&headers, REQUEST_ID_HEADER).as_deref(),
                edge_glue::entropy,
            ),
            content_type: header(&headers, "content-type"),
            content_length: header(&headers, "content-length"),
            authorization: header(&headers, "authorization"),
            expect: header(&headers, "expect"),
        };
        drop(headers);
        ctx
    }
}

/// The first value of a header, if it is UTF-8.
fn header(headers: &Fields, name: &str) -> Option<String> {
    headers
        .get(name)
        .into_iter()
        .next()
        .and_then(|v| String::from_utf8(v).ok())
}

/// The router's configuration; an invalid variable is logged (naming it)
/// and is a 500 for the caller.
pub fn config(request_id: &str) -> Result<RouterConfig, AppError> {
    RouterConfig::from_vars(|name| edge_glue::var("router", name)).map_err(|e| {
        eprintln!("router: request_id={request_id} configuration error: {e}");
        AppError::Internal
    })
}

/// The body of a JSON request: 415 unless `application/json`, 413 as soon
/// as it is known to exceed `max` bytes (from `content-length`, or while
/// reading: at most `max + 1` bytes are ever buffered), 408 unless all of it
/// arrives within [`BODY_TIMEOUT_MS`].
///
/// Before a 413 the rest of the body is read and dropped (see
/// [`edge_core::body::DRAIN_MAX_BYTES`]), so that a client still writing it
/// reads the answer instead of a reset; a body under the limit never
/// reaches that code.
pub fn json_body(req: IncomingRequest, ctx: &Ctx, max: usize) -> Result<Vec<u8>, AppError> {
    if !content_type::is_json(ctx.content_type.as_deref()) {
        return Err(AppError::UnsupportedMediaType);
    }
    let length = ctx.content_length.as_deref();
    let refused = match check_declared_length(length, max) {
        Err(e) if !drains_declared(length, ctx.expect.as_deref()) => return Err(e),
        declared => declared.err(),
    };
    let body = req.consume().map_err(|()| unreadable())?;
    let result = {
        let stream = body.stream().map_err(|()| unreadable())?;
        // Spin has no limit of its own on a stalled body: wait for data or
        // the deadline, whichever comes first (wasi:io `poll` over the
        // stream's pollable and a monotonic-clock timer), never in a
        // blocking read. Both pollables are children of their resources,
        // dropped before them at the end of this block.
        let ready = stream.subscribe();
        let deadline = monotonic_clock::subscribe_duration(BODY_TIMEOUT_MS * 1_000_000);
        let result = match refused {
            None => read(&stream, &ready, &deadline, ctx, max),
            Some(e) => Err((e, 0)),
        };
        result.map_err(|(e, read)| {
            if matches!(e, AppError::PayloadTooLarge { .. }) {
                drain(&stream, &ready, &deadline, Drain::after(read));
            }
            e
        })
    };
    drop(IncomingBody::finish(body));
    result
}

/// Reads the whole body, at most `max` bytes; an error comes with the
/// number of bytes read so far.
fn read(
    stream: &InputStream,
    ready: &Pollable,
    deadline: &Pollable,
    ctx: &Ctx,
    max: usize,
) -> Result<Vec<u8>, (AppError, u64)> {
    let mut collected = BoundedBody::new(max);
    let mut read: u64 = 0;
    loop {
        let want = collected.remaining().saturating_add(1).min(READ_CHUNK) as u64;
        match stream.read(want) {
            Ok(chunk) if chunk.is_empty() => {
                // A caller's fault, like a 413: in the access log only.
                if poll::poll(&[ready, deadline]).contains(&1) {
                    let timeout = AppError::RequestTimeout {
                        timeout_ms: BODY_TIMEOUT_MS,
                    };
                    return Err((timeout, read));
                }
            }
            Ok(chunk) => {
                read = read.saturating_add(chunk.len() as u64);
                collected.push(&chunk).map_err(|e| (e, read))?;
            }
            Err(StreamError::Closed) => return Ok(collected.into_bytes()),
            Err(StreamError::LastOperationFailed(e)) => {
                eprintln!(
                    "router: request_id={} reading the body failed: {}",
                    ctx.request_id,
                    e.to_debug_string()
                );
                return Err((unreadable(), read));
            }
        }
    }
}

fn unreadable() -> AppError {
    AppError::MalformedJson {
        detail: "the request body could not be read".into(),
    }
}

/// Skips the rest of a refused body (the host drops the bytes; none are
/// copied in here) until it ends, passes the drain bound, fails, or the
/// body's deadline passes; whichever comes first, the 413 is answered.
fn drain(stream: &InputStream, ready: &Pollable, deadline: &Pollable, mut left: Drain) {
    loop {
        match stream.skip(left.want()) {
            Ok(0) => {
                if poll::poll(&[ready, deadline]).contains(&1) {
                    return;
                }
            }
            Ok(n) => {
                if !left.skipped(n) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}
