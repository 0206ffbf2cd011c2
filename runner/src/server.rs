//! The HTTP listener: accept loop, routing to components, the per-request
//! log line, and graceful shutdown.
//!
//! The connection limits are Spin 4.0.2's (`crates/trigger-http/src/server.rs`
//! `serve_connection`): hyper's defaults (at most 100 request headers, a
//! read buffer of about 408 KiB that bounds the request head), with only the
//! buffer size changed by `--http1-max-buf-size` / `SPIN_HTTP1_MAX_BUF_SIZE`.
//! Spin sets no timer, so hyper's header read timeout is off, and it limits
//! neither a request body's size nor its pace: neither does the runner. The
//! application's own limits (its 413, its 408) are what clients see. A body
//! is streamed to the guest as it reads it (wasi:http pulls one frame at a
//! time, and TCP holds back the rest), so an unlimited body never fills
//! memory; a client that stalls its headers or body holds its connection
//! (and, for a body, the instance reading it) as long as it likes, on Spin
//! as here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body::{Body, Frame};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime_wasi_http::WasiBody;

use crate::app::App;
use crate::errors::empty_response;
use crate::routing::{RequestError, Router};
use crate::telemetry::{Trace, spans};

/// Listener settings: the worker threads, the one connection setting Spin
/// lets a user change, and the shutdown grace.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Threads serving connections, each with its own single-threaded
    /// runtime (see [`crate::workers`]).
    pub workers: usize,
    /// Spin's `--http1-max-buf-size`: hyper's HTTP/1 read buffer (which
    /// bounds a request head); `None` is hyper's default, as on Spin.
    pub http1_max_buf_size: Option<usize>,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            workers: crate::workers::default_count(),
            http1_max_buf_size: None,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What `/.well-known/spin/info` answers: Spin's `AppInfo` (the
/// application's name, and its version when it has one).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AppInfo {
    /// `[application] name`.
    pub name: String,
    /// `[application] version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The app plus what the listener needs to route.
pub struct Server {
    pub(crate) app: Arc<App>,
    pub(crate) router: Router,
    pub(crate) limits: ServerLimits,
    pub(crate) info: AppInfo,
}

impl Server {
    /// A server for `app` routed by `router`, whose
    /// `/.well-known/spin/info` answers `info`. (No trigger base: Spin 2+
    /// serves every app from `/`, and the loader refuses any other base.)
    pub fn new(app: Arc<App>, router: Router, limits: ServerLimits, info: AppInfo) -> Arc<Self> {
        Arc::new(Self {
            app,
            router,
            limits,
            info,
        })
    }

    /// Serves `listener` until `shutdown` resolves, then lets in-flight
    /// requests finish (up to the grace period). Connections are accepted
    /// here and served on [`ServerLimits::workers`] threads; with `tls`
    /// (Spin's `--tls-cert`/`--tls-key`), each is HTTPS: its handshake
    /// runs on its worker, and one that fails is logged and dropped.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let server = self.clone();
        let workers = match tls {
            None => crate::workers::Workers::start(
                self.limits.workers,
                self.limits.shutdown_grace,
                move |stream, client| server.connection(stream, client, false),
            )?,
            Some(acceptor) => crate::workers::Workers::start_handshaking(
                self.limits.workers,
                self.limits.shutdown_grace,
                move |stream, client| {
                    let server = server.clone();
                    let handshake = acceptor.accept(stream);
                    async move {
                        match handshake.await {
                            Ok(stream) => Some(server.connection(stream, client, true)),
                            Err(e) => {
                                // Spin's `serve_https` logs this (at error
                                // level) and goes on serving.
                                eprintln!("error: Failed to start TLS session: {e}");
                                None
                            }
                        }
                    }
                },
            )?,
        };
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

    /// The HTTP/1 connection for an accepted stream: the TCP stream itself,
    /// or the TLS stream over it when `https` (then the requests' URIs get
    /// the `https` scheme, as Spin's `Scheme::HTTPS` connections).
    pub(crate) fn connection<I>(
        self: &Arc<Self>,
        stream: I,
        client: SocketAddr,
        https: bool,
    ) -> impl hyper_util::server::graceful::GracefulConnection<Error = hyper::Error> + Send + use<I>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let server = self.clone();
        let service = service_fn(move |req| {
            let server = server.clone();
            async move { server.handle(req, client, https).await }
        });
        // Spin's settings: hyper's defaults, no timer (so no header read
        // timeout), the buffer size only if given.
        let mut builder = hyper::server::conn::http1::Builder::new();
        if let Some(size) = self.limits.http1_max_buf_size {
            builder.max_buf_size(size);
        }
        builder.serve_connection(TokioIo::new(stream), service)
    }

    async fn handle(
        self: Arc<Self>,
        req: http::Request<Incoming>,
        client: SocketAddr,
        https: bool,
    ) -> Result<http::Response<WasiBody>, RequestError> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        // Spin's server span, under the caller's trace when its
        // `traceparent` is valid; it ends when the response head is out.
        let span = if self.app.telemetry.is_some() {
            let root = Trace::incoming(self.app.telemetry.as_ref(), req.headers());
            let span = spans::server(&root, &req, client);
            spans::server_started(&span, req.uri().path());
            span
        } else {
            Trace::off()
        };
        let (outcome, component, route) = self.dispatch(req, client, https, &span).await;
        let answer = match &outcome {
            Ok(response) => response.status().as_u16().to_string(),
            Err(e) => format!("closed unanswered ({e})"),
        };
        let mut line = format!(
            "{method} {path} -> {answer} ({:.1} ms) {}",
            started.elapsed().as_secs_f64() * 1000.0,
            component.unwrap_or("-"),
        );
        if let Some(trace_id) = span.trace_id() {
            line.push_str(" trace_id=");
            line.push_str(&trace_id);
        }
        match &outcome {
            Ok(response) => {
                spans::finish_server(&span, &method, route.as_deref(), response.status().as_u16())
            }
            // Spin's `finalize_http_span` for a request it fails: 500, no
            // route.
            Err(e) => spans::server_failed(&span, &method, &e.to_string()),
        }
        span.end();
        crate::console::line(crate::console::Stream::Stdout, &[line.as_bytes()]);
        outcome
    }

    /// Spin's `HttpServer::handle`: the well-known routes, then the router
    /// (an empty 404 when nothing matches), then the component. An `Err`
    /// is a request Spin fails without an answer (hyper closes the
    /// connection): a routed request with no usable `Host`.
    ///
    /// The third item is the route Spin names the server span after: the
    /// matched route as written in spin.toml, or the well-known path Spin
    /// answered; none for a 404.
    async fn dispatch(
        &self,
        mut req: http::Request<Incoming>,
        client: SocketAddr,
        https: bool,
        span: &Trace,
    ) -> (
        Result<http::Response<WasiBody>, RequestError>,
        Option<&str>,
        Option<String>,
    ) {
        crate::routing::strip_forbidden_headers(req.headers_mut());
        if let Some(rest) = req
            .uri()
            .path()
            .strip_prefix(crate::routing::WELL_KNOWN_PREFIX)
        {
            let response = self.well_known(rest);
            let route =
                (response.status() == http::StatusCode::OK).then(|| req.uri().path().to_string());
            return (Ok(response), None, route);
        }
        let Some(matched) = self.router.route(req.uri().path()) else {
            return (Ok(empty_response(http::StatusCode::NOT_FOUND)), None, None);
        };
        let route = Some(matched.raw_route.to_string());
        let Some((id, component)) = self.app.components.get_key_value(matched.component_id) else {
            return (
                Ok(empty_response(http::StatusCode::INTERNAL_SERVER_ERROR)),
                None,
                route,
            );
        };
        // Spin's `set_req_uri`: the URI gets the listener's scheme (what
        // `spin-full-url` and a WASI 0.3 guest's request show).
        let scheme = if https {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        let request = match crate::routing::routed_request(req, &matched, scheme, client) {
            Ok(request) => request,
            Err(e) if e.is_internal_error() => {
                eprintln!("error: [{id}] {e}");
                spans::server_error(span, &e.to_string());
                let response = empty_response(http::StatusCode::INTERNAL_SERVER_ERROR);
                return (Ok(response), Some(id.as_str()), route);
            }
            Err(e) => return (Err(e), Some(id.as_str()), route),
        };
        let response = match self.app.handle(component, request, 0, span).await {
            Ok(response) => coalesce_small_body(response).await,
            Err(failure) => {
                spans::server_error(span, &format!("{failure:?}"));
                failure.into_response()
            }
        };
        (Ok(response), Some(id.as_str()), route)
    }

    /// Spin answers `/.well-known/spin/health` (200 `OK`, no content-type)
    /// and `/.well-known/spin/info` (its `AppInfo` as pretty JSON) itself,
    /// never routing them to a component; any other name there is an
    /// empty 404.
    fn well_known(&self, rest: &str) -> http::Response<WasiBody> {
        match rest {
            "health" => http::Response::new(crate::errors::full_body("OK")),
            "info" => {
                let Ok(body) = serde_json::to_vec_pretty(&self.info) else {
                    return empty_response(http::StatusCode::INTERNAL_SERVER_ERROR);
                };
                let mut response = http::Response::new(crate::errors::full_body(body));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                response
            }
            _ => empty_response(http::StatusCode::NOT_FOUND),
        }
    }
}

/// Largest body [`coalesce_small_body`] gathers before it streams instead.
const COALESCE_LIMIT: usize = 64 * 1024;

/// Sends a small, already-written response body in one write, framed as
/// Spin frames it.
///
/// A guest writes its body through a stream of unknown length, so hyper
/// (on Spin as here) answers with chunked encoding unless the guest set a
/// `content-length` itself; streamed as it comes, the head and data go out
/// in one write and the closing chunk in another, as the body's end is not
/// ready yet. When the body's frames are already all there (the usual case
/// for a JSON answer), gathering them lets hyper write head, data and
/// closing chunk at once; the framing and headers stay the guest's (no
/// `content-length` is added: Spin adds none). Anything not ready at once
/// is streamed as before, after what was gathered: nothing waits.
async fn coalesce_small_body(response: http::Response<WasiBody>) -> http::Response<WasiBody> {
    use futures::FutureExt;
    use http_body_util::BodyExt;

    if response.body().size_hint().exact().is_some() {
        return response;
    }
    let (parts, mut body) = response.into_parts();
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
                // A body of unknown length, as the guest's was: whole, but
                // framed as hyper frames the guest's body.
                let frames = (!gathered.is_empty()).then(|| Ok(Frame::data(gathered.freeze())));
                let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
                return http::Response::from_parts(parts, body.boxed_unsync());
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
