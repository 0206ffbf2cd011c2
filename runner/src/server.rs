//! The HTTP listener: accept loop, connection limits, routing to components,
//! the per-request log line, and graceful shutdown.
//!
//! The runner's own limits sit above the application's, so the app's own
//! answers (its 413, its 408) are what clients see, as on Spin; these are
//! backstops against clients that would otherwise hold a connection forever.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use wasmtime_wasi_http::WasiBody;

use crate::app::App;
use crate::errors::{error_response, sane_request_id};
use crate::routing::Router;

/// Listener settings: the worker threads, and limits (backstops above the
/// application's own).
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Threads serving connections, each with its own single-threaded
    /// runtime (see [`crate::workers`]).
    pub workers: usize,
    /// Time allowed to receive a request's headers.
    pub header_timeout: Duration,
    /// Longest silence inside a request body before the body fails.
    pub body_idle_timeout: Duration,
    /// Largest request body the runner passes on.
    pub max_body_bytes: u64,
    /// Most headers in one request.
    pub max_headers: usize,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            workers: crate::workers::default_count(),
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(15),
            max_body_bytes: 16 << 20,
            max_headers: 128,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The app plus what the listener needs to route.
pub struct Server {
    pub(crate) app: Arc<App>,
    pub(crate) router: Router,
    pub(crate) limits: ServerLimits,
    pub(crate) base: String,
}

impl Server {
    /// A server for `app` routed by `router`.
    pub fn new(app: Arc<App>, router: Router, limits: ServerLimits, base: String) -> Arc<Self> {
        Arc::new(Self {
            app,
            router,
            limits,
            base,
        })
    }

    /// Serves `listener` until `shutdown` resolves, then lets in-flight
    /// requests finish (up to the grace period). Connections are accepted
    /// here and served on [`ServerLimits::workers`] threads.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let workers = crate::workers::Workers::start(&self)?;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, client) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: wait a
                            // little rather than spin, and keep serving.
                            eprintln!("warning: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    workers.hand_over(stream, client);
                }
                _ = &mut shutdown => break,
            }
        }
        drop(listener);
        eprintln!("Shutting down: waiting for in-flight requests...");
        if !workers.stop().await {
            eprintln!("warning: some requests were still running after the grace period");
        }
        Ok(())
    }

    /// The HTTP/1 connection for an accepted stream.
    pub(crate) fn connection(
        self: &Arc<Self>,
        stream: tokio::net::TcpStream,
        client: SocketAddr,
    ) -> impl hyper_util::server::graceful::GracefulConnection<Error = hyper::Error> + Send + 'static
    {
        let server = self.clone();
        let service = service_fn(move |req| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(req, client).await) }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_headers(self.limits.max_headers)
            .max_buf_size(64 * 1024);
        builder.serve_connection(TokioIo::new(stream), service)
    }

    async fn handle(
        self: Arc<Self>,
        req: http::Request<Incoming>,
        client: SocketAddr,
    ) -> http::Response<WasiBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| sane_request_id(v))
            .map(str::to_string);
        let (response, component) = self.dispatch(req, client, request_id.as_deref()).await;
        let line = format!(
            "{method} {path} -> {} ({:.1} ms) {}",
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0,
            component.unwrap_or("-"),
        );
        crate::console::line(crate::console::Stream::Stdout, &[line.as_bytes()]);
        response
    }

    async fn dispatch(
        &self,
        req: http::Request<Incoming>,
        client: SocketAddr,
        request_id: Option<&str>,
    ) -> (http::Response<WasiBody>, Option<&str>) {
        if let Some(rest) = req
            .uri()
            .path()
            .strip_prefix(crate::routing::WELL_KNOWN_PREFIX)
        {
            return (well_known(rest, request_id), None);
        }
        let Some(matched) = self.router.route(req.uri().path()) else {
            return (
                error_response(
                    http::StatusCode::NOT_FOUND,
                    "not_found",
                    "no route matches this path",
                    request_id,
                ),
                None,
            );
        };
        let Some(component) = self.app.components.get(matched.component_id).cloned() else {
            return (
                error_response(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error",
                    request_id,
                ),
                None,
            );
        };
        let (mut parts, body) = req.into_parts();
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_string();
        let full_url = crate::routing::full_url(
            "http",
            Some(&host),
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
        );
        insert_headers(
            &mut parts.headers,
            crate::routing::spin_headers(&matched, &full_url, &self.base, client),
        );
        // The guest sees an absolute URI, as on Spin.
        if parts.uri.authority().is_none()
            && let Ok(uri) = full_url.parse()
        {
            parts.uri = uri;
        }
        let body = GuardedBody::new(body, &self.limits);
        let request = http::Request::from_parts(parts, body);
        let response = match self.app.handle(&component, request, 0).await {
            Ok(response) => coalesce_small_body(response).await,
            Err(failure) => failure.into_response(request_id),
        };
        let id = self
            .app
            .components
            .get_key_value(&component.id)
            .map(|(k, _)| k.as_str());
        (response, id)
    }
}

/// Largest body [`coalesce_small_body`] gathers before it streams instead.
const COALESCE_LIMIT: usize = 64 * 1024;

/// Sends a small, already-written response body in one piece.
///
/// A guest writes its body through a stream, so hyper sees a body of
/// unknown length and answers with chunked encoding: the head and data in
/// one write, the closing chunk in another. When the body's frames are
/// already all there (the usual case for a JSON answer), gathering them
/// gives the response a `content-length` and one write. Anything not ready
/// at once is streamed as before, after what was gathered: nothing waits.
async fn coalesce_small_body(response: http::Response<WasiBody>) -> http::Response<WasiBody> {
    use futures::FutureExt;
    use http_body_util::BodyExt;

    if response.body().size_hint().exact().is_some() {
        return response;
    }
    let (mut parts, mut body) = response.into_parts();
    let mut gathered = bytes::BytesMut::new();
    let mut first = true;
    loop {
        // The first frame is awaited (hyper would wait for it too); later
        // ones are taken only if they are ready now.
        let next = if first {
            first = false;
            Some(body.frame().await)
        } else {
            body.frame().now_or_never()
        };
        match next {
            Some(None) => {
                parts.headers.insert(
                    http::header::CONTENT_LENGTH,
                    http::HeaderValue::from(gathered.len()),
                );
                parts.headers.remove(http::header::TRANSFER_ENCODING);
                let body = crate::errors::full_body(gathered.freeze());
                return http::Response::from_parts(parts, body);
            }
            Some(Some(Ok(frame))) if frame.is_data() && gathered.len() < COALESCE_LIMIT => {
                if let Ok(data) = frame.into_data() {
                    gathered.extend_from_slice(&data);
                }
            }
            // Not ready, too big, trailers or an error: stream the rest.
            other => {
                let head = (!gathered.is_empty()).then(|| Ok(Frame::data(gathered.freeze())));
                let pending = match other {
                    Some(Some(frame)) => Some(frame),
                    _ => None,
                };
                let prefix = futures::stream::iter(head.into_iter().chain(pending));
                let rest = http_body_util::BodyStream::new(body);
                let stream = futures::StreamExt::chain(prefix, rest);
                let body = http_body_util::StreamBody::new(stream).boxed_unsync();
                return http::Response::from_parts(parts, body);
            }
        }
    }
}

/// Spin answers `/.well-known/spin/health` and `/.well-known/spin/info`
/// itself, never routing them to a component.
fn well_known(rest: &str, request_id: Option<&str>) -> http::Response<WasiBody> {
    let (content_type, body) = match rest {
        "health" => ("text/plain", "OK".to_string()),
        "info" => (
            "application/json",
            serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "runtime": "edge-runner",
            })
            .to_string(),
        ),
        _ => {
            return error_response(
                http::StatusCode::NOT_FOUND,
                "not_found",
                "no such well-known endpoint",
                request_id,
            );
        }
    };
    let mut response = http::Response::new(crate::errors::full_body(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

/// Adds the headers a chained request carries into its target, as Spin
/// routes a chained request through the target's own route.
pub fn with_chaining_headers(
    mut request: http::Request<WasiBody>,
    target: &str,
) -> http::Request<WasiBody> {
    let full_url = request.uri().to_string();
    let path = request.uri().path().to_string();
    let matched = crate::routing::RouteMatch::chained(target, &path);
    let headers = crate::routing::spin_headers(
        &matched,
        &full_url,
        "/",
        crate::routing::CHAINED_CLIENT_ADDR,
    );
    insert_headers(request.headers_mut(), headers);
    request
}

/// Sets Spin's `spin-*` headers, replacing any the client sent with the same
/// name; a pair that is not a valid header (never the case for Spin's own
/// names, possible for a value built from a Host header) is left out.
fn insert_headers(map: &mut http::HeaderMap, headers: Vec<(String, String)>) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            map.insert(name, value);
        }
    }
}

pin_project_lite::pin_project! {
    /// A request body with the runner's backstops: a size cap and an idle
    /// timeout between frames (a body that stalls after its headers cannot
    /// hold an instance forever).
    pub struct GuardedBody {
        #[pin]
        inner: Incoming,
        #[pin]
        idle: tokio::time::Sleep,
        idle_timeout: Duration,
        remaining: u64,
    }
}

impl GuardedBody {
    fn new(inner: Incoming, limits: &ServerLimits) -> Self {
        Self {
            inner,
            idle: tokio::time::sleep(limits.body_idle_timeout),
            idle_timeout: limits.body_idle_timeout,
            remaining: limits.max_body_bytes,
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > *this.remaining {
                        return Poll::Ready(Some(Err(
                            wasmtime_wasi_http::Error::HttpRequestBodySize(None),
                        )));
                    }
                    *this.remaining -= len;
                }
                let next = tokio::time::Instant::now() + *this.idle_timeout;
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.idle.poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
