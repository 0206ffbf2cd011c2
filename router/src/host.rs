//! What the router takes from the host besides edge-glue: the request's
//! headers, its bounded body, and its configuration, read per route: only
//! the variables a route needs (each `variables::get` is a host call, which
//! on Spin consults its providers, the process environment first).

use std::time::Instant;

use edge_core::body::{
    BODY_TIMEOUT_MS, BoundedBody, Drain, check_declared_length, drains_declared,
};
use edge_core::config::{self, ConfigError};
use edge_core::internal::REQUEST_ID_HEADER;
use edge_core::{AppError, RouterConfig, Rule, content_type, request_id};
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
    /// The `traceparent` header, if any (its trace id goes in the access log).
    pub traceparent: Option<String>,
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
            traceparent: header(&headers, "traceparent"),
        };
        drop(headers);
        ctx
    }

    /// Whether the request may have a body: not with `content-length: 0`.
    /// Without a length it may be chunked (the host hides
    /// `transfer-encoding`, a forbidden header in wasi:http), so it is
    /// looked for.
    pub fn may_have_body(&self) -> bool {
        self.content_length
            .as_deref()
            .is_none_or(|v| v.trim() != "0")
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

/// A variable of the router, through `read` (e.g. [`config::rule_from`]); an
/// invalid value is logged (naming it) and is a 500 for the caller.
fn setting<T>(
    request_id: &str,
    read: impl FnOnce(&mut dyn FnMut(&'static str) -> Option<String>) -> Result<T, ConfigError>,
) -> Result<T, AppError> {
    read(&mut |name| edge_glue::var("router", name)).map_err(|e| {
        eprintln!("router: request_id={request_id} configuration error: {e}");
        AppError::Internal
    })
}

/// The rule (`threshold`, `multiplier`): part of every cache key.
pub fn rule(request_id: &str) -> Result<Rule, AppError> {
    setting(request_id, |get| config::rule_from(get))
}

/// `max_body_bytes`.
pub fn max_body_bytes(request_id: &str) -> Result<usize, AppError> {
    setting(request_id, |get| config::max_body_bytes_from(get))
}

/// `max_batch_items`.
pub fn max_batch_items(request_id: &str) -> Result<usize, AppError> {
    setting(request_id, |get| config::max_batch_items_from(get))
}

/// The whole configuration, for the admin routes: they use only
/// `admin_token`, but they are the operator's, so an invalid variable shows
/// there (a 500) even when no public route has used it yet; they are rare,
/// so the reads cost nothing that matters.
pub fn config(request_id: &str) -> Result<RouterConfig, AppError> {
    setting(request_id, |get| RouterConfig::from_vars(get))
}

/// The request's body, opened at most once: by [`json_body`] for the
/// handlers that read it, or by [`Body::settle`], which every answer goes
/// through, to drain what is left of it.
pub struct Body {
    // Field order is drop order: the body is a child of the request.
    open: Option<Open>,
    request: IncomingRequest,
    started: Instant,
}

/// A body being read.
struct Open {
    // Field order is drop order: the pollables (made only once there is
    // something to wait for) are children of the stream, the stream of the
    // body.
    waits: Option<[Pollable; 2]>,
    stream: InputStream,
    _body: IncomingBody,
    started: Instant,
    /// Bytes taken from the stream so far.
    read: u64,
    /// Whether the stream reached its end.
    ended: bool,
}

impl Open {
    /// Waits for more of the body; `false` once its deadline has passed.
    ///
    /// Spin has no limit of its own on a stalled body: this waits for data
    /// or the deadline, whichever comes first (wasi:io `poll` over the
    /// stream's pollable and a monotonic-clock timer), never in a blocking
    /// read.
    fn wait(&mut self) -> bool {
        let [ready, deadline] = self.waits.get_or_insert_with(|| {
            let spent = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let left = (BODY_TIMEOUT_MS * 1_000_000).saturating_sub(spent);
            [
                self.stream.subscribe(),
                monotonic_clock::subscribe_duration(left),
            ]
        });
        !poll::poll(&[&*ready, &*deadline]).contains(&1)
    }
}

impl Body {
    /// `started`: when the handler began, just after the headers; the
    /// body's deadline ([`BODY_TIMEOUT_MS`]) counts from there.
    pub fn new(request: IncomingRequest, started: Instant) -> Body {
        Body {
            open: None,
            request,
            started,
        }
    }

    fn open(&mut self) -> Result<&mut Open, AppError> {
        if self.open.is_none() {
            let body = self.request.consume().map_err(|()| unreadable())?;
            let stream = body.stream().map_err(|()| unreadable())?;
            self.open = Some(Open {
                waits: None,
                stream,
                _body: body,
                started: self.started,
                read: 0,
                ended: false,
            });
        }
        self.open.as_mut().ok_or_else(unreadable)
    }

    /// Before any answer: a body the handler did not read to its end is
    /// skipped to its end (the host drops the bytes; none are copied in
    /// here), so that a client that writes its whole body before reading
    /// gets the answer instead of a reset. At most
    /// [`edge_core::body::DRAIN_MAX_BYTES`] in all and within the body's
    /// deadline; a body never opened is left alone when there is none, when
    /// its declared length is past that bound, or when the client awaits
    /// `100 Continue` ([`drains_declared`]). A body read to its end costs
    /// nothing here.
    pub fn settle(mut self, ctx: &Ctx) {
        if self.open.is_none()
            && ctx.may_have_body()
            && drains_declared(ctx.content_length.as_deref(), ctx.expect.as_deref())
        {
            // A body that cannot be opened is left to the host.
            let _ = self.open();
        }
        if let Some(open) = &mut self.open
            && !open.ended
        {
            let left = Drain::after(open.read);
            drain(open, left);
        }
    }
}

/// The body of a JSON request: 415 unless `application/json`, 413 as soon
/// as it is known to exceed `max` bytes (from `content-length`, or while
/// reading: at most `max + 1` bytes are ever buffered), 408 unless all of it
/// arrives within [`BODY_TIMEOUT_MS`]. On an error the rest of the body is
/// drained by [`Body::settle`].
pub fn json_body(body: &mut Body, ctx: &Ctx, max: usize) -> Result<Vec<u8>, AppError> {
    if !content_type::is_json(ctx.content_type.as_deref()) {
        return Err(AppError::UnsupportedMediaType);
    }
    check_declared_length(ctx.content_length.as_deref(), max)?;
    read(body.open()?, ctx, max)
}

/// Reads the whole body, at most `max` bytes, counting what it takes.
fn read(open: &mut Open, ctx: &Ctx, max: usize) -> Result<Vec<u8>, AppError> {
    let mut collected = BoundedBody::new(max);
    loop {
        let want = collected.remaining().saturating_add(1).min(READ_CHUNK) as u64;
        match open.stream.read(want) {
            Ok(chunk) if chunk.is_empty() => {
                // A caller's fault, like a 413: in the access log only.
                if !open.wait() {
                    return Err(AppError::RequestTimeout {
                        timeout_ms: BODY_TIMEOUT_MS,
                    });
                }
            }
            Ok(chunk) => {
                open.read = open.read.saturating_add(chunk.len() as u64);
                collected.push(&chunk)?;
            }
            Err(StreamError::Closed) => {
                open.ended = true;
                return Ok(collected.into_bytes());
            }
            Err(StreamError::LastOperationFailed(e)) => {
                eprintln!(
                    "router: request_id={} reading the body failed: {}",
                    ctx.request_id,
                    e.to_debug_string()
                );
                return Err(unreadable());
            }
        }
    }
}

fn unreadable() -> AppError {
    AppError::MalformedJson {
        detail: "the request body could not be read".into(),
    }
}

/// Skips the rest of a body until it ends, passes the drain bound, fails,
/// or the body's deadline passes; whichever comes first, the answer goes.
fn drain(open: &mut Open, mut left: Drain) {
    loop {
        match open.stream.skip(left.want()) {
            Ok(0) => {
                if !open.wait() {
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
