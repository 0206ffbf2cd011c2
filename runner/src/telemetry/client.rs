//! The exporters' HTTP client: one POST at a time on hyper (already in the
//! runner through wasmtime-wasi-http), run on the runner's own tokio
//! runtime, whoever polls it (the SDK's batch processors poll exports on
//! their own threads). The SDK leaves the request deadline to the client:
//! an export that takes longer than the OTLP timeout fails, so a collector
//! that hangs costs a thread's wait, never a request's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// Largest collector answer read back (the SDK's own clients' bound).
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// Sends OTLP exports; says once on stderr when the collector cannot be
/// reached (and once more when it can again), not once per batch.
#[derive(Debug, Clone)]
pub struct ExportClient {
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    failing: Arc<AtomicBool>,
}

impl ExportClient {
    /// A client on `runtime` whose exports give up after `timeout`.
    pub fn new(runtime: tokio::runtime::Handle, timeout: Duration) -> Self {
        Self {
            runtime,
            timeout,
            failing: Arc::new(AtomicBool::new(false)),
        }
    }

    fn report(&self, endpoint: &str, outcome: &Result<Response<Bytes>, HttpError>) {
        let failed = match outcome {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("answered {}", response.status())),
            Err(e) => Some(e.to_string()),
        };
        match failed {
            Some(why) if !self.failing.swap(true, Ordering::Relaxed) => eprintln!(
                "warning: telemetry: the OTLP collector at {endpoint} {why}; telemetry is dropped until it answers (requests are not affected)"
            ),
            None if self.failing.swap(false, Ordering::Relaxed) => {
                eprintln!("telemetry: the OTLP collector at {endpoint} answers again")
            }
            _ => {}
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let endpoint = request.uri().to_string();
        let timeout = self.timeout;
        let exchange = self
            .runtime
            .spawn(async move { tokio::time::timeout(timeout, post(request)).await });
        let outcome = match exchange.await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(format!("did not answer within {timeout:?}").into()),
            Err(e) => Err(format!("export task failed: {e}").into()),
        };
        self.report(&endpoint, &outcome);
        outcome
    }
}

/// One request on a fresh connection (an export every few seconds does not
/// need a pool); `http` endpoints only.
async fn post(request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
    let uri = request.uri().clone();
    if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
        return Err(format!("{uri}: only http:// OTLP endpoints are supported").into());
    }
    let host = uri.host().ok_or("the OTLP endpoint has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot be reached ({e})"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("cannot be reached ({e})"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(http::header::HOST) {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        if let Ok(value) = http::HeaderValue::from_str(authority) {
            parts.headers.insert(http::header::HOST, value);
        }
    }
    // An origin-form target, as HTTP/1.1 servers expect.
    parts.uri = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()?;
    let response = sender
        .send_request(http::Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|e| format!("failed the export ({e})"))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| format!("failed the export's answer ({e})"))?
        .to_bytes();
    Ok(Response::from_parts(parts, body))
}
