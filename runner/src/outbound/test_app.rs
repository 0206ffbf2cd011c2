//! One stand-in for the app in the outbound policy's unit tests (the hook,
//! sockets, Redis/MQTT permits): they need its components, its variables
//! and an upstream, not the real [`App`](crate::app::App).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use super::{ChainFuture, OutboundApp, SendFuture, Upstream};
use crate::telemetry::Trace;

/// An app whose components (each a chain target) and variables are given;
/// a chained request answers an empty 418, and its upstream counts what
/// reaches it and refuses the connection.
pub(crate) struct TestApp {
    components: Vec<String>,
    variables: Vec<(String, String)>,
    sent: AtomicUsize,
}

impl TestApp {
    /// An app of `components`, without variables.
    pub(crate) fn new(components: &[&str]) -> Self {
        Self {
            components: components.iter().map(|c| c.to_string()).collect(),
            variables: Vec::new(),
            sent: AtomicUsize::new(0),
        }
    }

    /// The same app with `variables` (`{{ name }}` templates resolve from them).
    pub(crate) fn with_variables(mut self, variables: &[(&str, &str)]) -> Self {
        self.variables = variables
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        self
    }

    /// Requests that reached the upstream.
    pub(crate) fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Upstream for TestApp {
    fn send(&self, _: http::Request<WasiBody>, _: Option<RequestOptions>) -> SendFuture {
        self.sent.fetch_add(1, Ordering::SeqCst);
        Box::new(async { Err(HttpError::ConnectionRefused) })
    }
}

impl OutboundApp for TestApp {
    fn resolve_template(&self, entry: &str) -> Result<String, String> {
        let mut out = entry.to_string();
        while let Some(start) = out.find("{{") {
            let end = out[start..].find("}}").ok_or("unclosed template")? + start;
            let name = out[start + 2..end].trim().to_string();
            let value = self
                .variables
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("no variable named {name:?}"))?;
            out.replace_range(start..end + 2, &value);
        }
        Ok(out)
    }

    fn component_ids(&self) -> Vec<&str> {
        self.components.iter().map(String::as_str).collect()
    }

    fn is_chain_target(&self, id: &str) -> bool {
        self.components.iter().any(|c| c == id)
    }

    fn chain(
        self: Arc<Self>,
        _: String,
        _: http::Request<WasiBody>,
        _: u32,
        _: Trace,
    ) -> ChainFuture {
        Box::pin(async { crate::errors::empty_response(http::StatusCode::IM_A_TEAPOT) })
    }

    fn upstream(&self) -> &dyn Upstream {
        self
    }
}
