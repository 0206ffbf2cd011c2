//! What the router takes from the host besides edge-glue: the request's
//! headers, its bounded body, and its configuration.

use edge_core::body::{BODY_TIMEOUT_MS, BoundedBody, check_declared_length};
use edge_core::internal::REQUEST_ID_HEADER;
use edge_core::{AppError, RouterConfig, content_type, request_id};
use spin_sdk::http::{Fields, IncomingRequest};
use spin_sdk::wit::wasi::http0_2_0::types::IncomingBody;
use wasi::clocks::monotonic_clock;
use wasi::io::poll;
use wasi::io::streams::StreamError;

/// Read size per chunk of the request body.
const READ_CHUNK: usize = 16 * 1024;

/// The request's headers the handlers need, read once.
pub struct Ctx {
    pub request_id: String,
    pub content_type: Option<String>,
    pub content_length: Option<String>,
    pub authorization: Option<String>,
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
pub fn json_body(req: IncomingRequest, ctx: &Ctx, max: usize) -> Result<Vec<u8>, AppError> {
    if !content_type::is_json(ctx.content_type.as_deref()) {
        return Err(AppError::UnsupportedMediaType);
    }
    check_declared_length(ctx.content_length.as_deref(), max)?;
    let unreadable = || AppError::MalformedJson {
        detail: "the request body could not be read".into(),
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
        let mut collected = BoundedBody::new(max);
        loop {
            let want = collected.remaining().saturating_add(1).min(READ_CHUNK) as u64;
            match stream.read(want) {
                Ok(chunk) if chunk.is_empty() => {
                    // A caller's fault, like a 413: in the access log only.
                    if poll::poll(&[&ready, &deadline]).contains(&1) {
                        break Err(AppError::RequestTimeout {
                            timeout_ms: BODY_TIMEOUT_MS,
                        });
                    }
                }
                Ok(chunk) => {
                    if let Err(e) = collected.push(&chunk) {
                        break Err(e);
                    }
                }
                Err(StreamError::Closed) => break Ok(collected.into_bytes()),
                Err(StreamError::LastOperationFailed(e)) => {
                    eprintln!(
                        "router: request_id={} reading the body failed: {}",
                        ctx.request_id,
                        e.to_debug_string()
                    );
                    break Err(unreadable());
                }
            }
        }
    };
    drop(IncomingBody::finish(body));
    result
}
