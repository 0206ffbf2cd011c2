//! The exporters' HTTP client: one POST at a time through wasmtime-wasi-http's
//! client (hyper, rustls; already in the runner), run on the runner's own tokio
//! runtime, whoever polls it (the SDK's batch processors poll exports on
//! their own threads). The SDK leaves the request deadline to the client:
//! an export that takes longer than the OTLP timeout fails, so a collector
//! that hangs costs a thread's wait, never a request's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
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

    /// The same client (one warning for all signals) with another timeout.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            timeout,
            ..self.clone()
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
/// need a pool), through wasmtime-wasi-http's client, as the guests'
/// requests go: `http` and `https` endpoints (webpki roots).
async fn post(request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(value) = http::HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(http::header::HOST, value);
    }
    let body = Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    let (response, io) =
        wasmtime_wasi_http::default_send_request(http::Request::from_parts(parts, body), None)
            .await
            .map_err(|e| format!("cannot be reached ({e})"))?;
    let (parts, body) = response.into_parts();
    let (body, _) = tokio::join!(
        Limited::new(body, MAX_RESPONSE_BYTES).collect(),
        Box::pin(io)
    );
    let body = body
        .map_err(|e| format!("failed the export's answer ({e})"))?
        .to_bytes();
    Ok(Response::from_parts(parts, body))
}
