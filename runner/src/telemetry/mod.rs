//! OpenTelemetry as Spin exports it (spinframework/spin v4.0.2,
//! `crates/telemetry`): with `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
//! per-signal `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT` /
//! `..._LOGS_ENDPOINT`) set and `OTEL_SDK_DISABLED` unset, traces, metrics
//! and the components' output as logs go over OTLP
//! (http/protobuf, Spin's default), batched off the request path. With
//! none set, nothing is built: every [`Trace`] is off, a branch on `None`.
//!
//! The span tree is Spin's: a server span per public request, an
//! `execute_wasm_component <id>` span per component instance, a client span
//! per outbound request (a chained one holds the target's instance span),
//! and a span per key-value, variables, SQLite, Redis and MQTT call (Spin's
//! `spin_key_value.*`, `spin_variables.get`, `spin_sqlite.*`,
//! `spin_outbound_redis.*` and `spin_outbound_mqtt.*`). Names, kinds and
//! attributes are those of Spin's instrumentation (see [`spans`]).

mod client;
pub mod metrics;
pub mod spans;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::resource::{
    EnvResourceDetector, ResourceDetector, TelemetryResourceDetector,
};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub use client::ExportClient;

const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
const OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";

/// What the environment asks for, read once at start (Spin's
/// `crates/telemetry/src/env.rs`: a variable counts when set and not
/// empty; `OTEL_SDK_DISABLED` set and not empty turns everything off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Export traces.
    pub traces: bool,
    /// Export metrics.
    pub metrics: bool,
    /// Export the components' stdout and stderr as log records.
    pub logs: bool,
}

impl Settings {
    /// The settings `var` describes (`std::env::var` in the runner).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
        if set(OTEL_SDK_DISABLED) {
            return Ok(Self::default());
        }
        let settings = Self {
            traces: set(OTEL_EXPORTER_OTLP_ENDPOINT) || set(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
            metrics: set(OTEL_EXPORTER_OTLP_ENDPOINT) || set(OTEL_EXPORTER_OTLP_METRICS_ENDPOINT),
            logs: set(OTEL_EXPORTER_OTLP_ENDPOINT) || set(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT),
        };
        for (signal, on) in [
            ("TRACES", settings.traces),
            ("METRICS", settings.metrics),
            ("LOGS", settings.logs),
        ] {
            if on {
                check_protocol(&var, signal)?;
            }
        }
        Ok(settings)
    }

    /// Whether anything is exported.
    pub fn any(&self) -> bool {
        self.traces || self.metrics || self.logs
    }
}

/// Spin's protocol choice (per-signal variable, then the general one, then
/// `http/protobuf`; an unknown value means http/protobuf, with a warning).
/// Spin also speaks gRPC; the runner does not, and says so rather than
/// export nothing in silence.
fn check_protocol(var: &impl Fn(&str) -> Option<String>, signal: &str) -> anyhow::Result<()> {
    let specific = format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL");
    let (name, protocol) = match var(&specific) {
        Some(p) => (specific, p),
        None => match var("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(p) => ("OTEL_EXPORTER_OTLP_PROTOCOL".to_string(), p),
            None => return Ok(()),
        },
    };
    match protocol.as_str() {
        "http/protobuf" => Ok(()),
        "grpc" => anyhow::bail!(
            "{name}=grpc: edge-runner exports OTLP over http/protobuf only (Spin's default); unset {name} or set it to http/protobuf, and point the endpoint at the collector's OTLP/HTTP port (usually 4318)"
        ),
        "http/json" => anyhow::bail!(
            "{name}=http/json: the http/json OTLP protocol is not supported (Spin refuses it too); use http/protobuf"
        ),
        other => {
            eprintln!(
                "warning: '{other}' is not a valid OTLP protocol, defaulting to http/protobuf"
            );
            Ok(())
        }
    }
}

/// The exporters and the tracer, when telemetry is on.
pub struct Telemetry {
    tracer: Option<SdkTracer>,
    tracer_provider: Option<SdkTracerProvider>,
    metrics: Option<metrics::Metrics>,
    logs: Option<(SdkLoggerProvider, SdkLogger)>,
    /// Component output also becomes span events (unless
    /// `SPIN_DISABLE_LOG_TO_TRACING` is set, as on Spin).
    log_events: bool,
    propagator: TraceContextPropagator,
}

impl Telemetry {
    /// Telemetry as the environment asks (see [`Settings`]), or `None` when
    /// nothing is to be exported. Must run inside the runner's tokio
    /// runtime (the exporters' HTTP client runs there). `version` is the
    /// resource's `service.version`.
    pub fn from_env(version: &str) -> anyhow::Result<Option<Arc<Self>>> {
        let settings = Settings::from_vars(|name| std::env::var(name).ok())?;
        if !settings.any() {
            return Ok(None);
        }
        let client = ExportClient::new(tokio::runtime::Handle::current(), Duration::ZERO);
        let resource = resource(version);
        let (tracer, tracer_provider) = if settings.traces {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(client.with_timeout(export_timeout("TRACES")))
                .with_timeout(export_timeout("TRACES"))
                .build()?;
            let provider = SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_batch_exporter(exporter)
                .build();
            use opentelemetry::trace::TracerProvider as _;
            (Some(provider.tracer("spin")), Some(provider))
        } else {
            (None, None)
        };
        let metrics = if settings.metrics {
            Some(metrics::Metrics::new(
                resource.clone(),
                client.with_timeout(export_timeout("METRICS")),
                export_timeout("METRICS"),
            )?)
        } else {
            None
        };
        let logs = if settings.logs {
            let exporter = opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(client.with_timeout(export_timeout("LOGS")))
                .with_timeout(export_timeout("LOGS"))
                .build()?;
            let provider = SdkLoggerProvider::builder()
                .with_resource(resource)
                .with_batch_exporter(exporter)
                .build();
            use opentelemetry::logs::LoggerProvider as _;
            let logger = provider.logger("spin");
            Some((provider, logger))
        } else {
            None
        };
        let log_events =
            std::env::var_os("SPIN_DISABLE_LOG_TO_TRACING").is_none_or(|v| v.is_empty());
        Ok(Some(Arc::new(Self {
            tracer,
            tracer_provider,
            metrics,
            logs,
            log_events,
            propagator: TraceContextPropagator::new(),
        })))
    }

    /// What was turned on, in one line for the start banner.
    pub fn describe(&self) -> String {
        let mut on = Vec::new();
        if self.tracer.is_some() {
            on.push("traces");
        }
        if self.metrics.is_some() {
            on.push("metrics");
        }
        if self.logs.is_some() {
            on.push("logs");
        }
        format!("OpenTelemetry: exporting {} over OTLP/HTTP", on.join(", "))
    }

    /// The metrics, when exported.
    pub fn metrics(&self) -> Option<&metrics::Metrics> {
        self.metrics.as_ref()
    }

    /// One write of a component to its stdout or stderr, as Spin's
    /// `handle_app_log` (`crates/telemetry/src/logs.rs`): a log record with
    /// the text as its body and `component_id` (a non-UTF-8 write: its first
    /// 50 bytes escaped, and `app_log_non_utf8`), and an `app_log` event on
    /// the instance's span.
    pub fn app_log(&self, component_id: &str, buf: &[u8], span: &Trace) {
        let text = std::str::from_utf8(buf).ok();
        let escaped = || {
            buf.iter()
                .take(50)
                .map(|&b| std::ascii::escape_default(b).to_string())
                .collect::<String>()
        };
        if let Some((_, logger)) = &self.logs {
            use opentelemetry::logs::{LogRecord as _, Logger as _};
            let mut record = logger.create_log_record();
            match text {
                Some(text) => record.set_body(text.to_string().into()),
                None => {
                    record.set_body(escaped().into());
                    record.add_attribute("app_log_non_utf8", true);
                }
            }
            record.add_attribute("component_id", component_id.to_string());
            logger.emit(record);
        }
        if self.log_events && span.is_on() {
            let (key, value) = match text {
                Some(text) => ("app_log", text.to_string()),
                None => ("app_log_non_utf8", escaped()),
            };
            span.event_with(
                || Cow::Borrowed("event crates/telemetry/src/logs.rs:60"),
                || {
                    vec![
                        KeyValue::new("level", "INFO"),
                        KeyValue::new("target", "spin_telemetry::logs"),
                        KeyValue::new(key, value),
                    ]
                },
            );
        }
    }

    /// Whether [`Telemetry::app_log`] does anything for a component's output.
    pub fn wants_app_logs(&self) -> bool {
        self.logs.is_some() || (self.log_events && self.tracer.is_some())
    }

    /// Sends what is still batched (at shutdown), within `timeout`.
    pub fn shutdown(&self, timeout: Duration) {
        if let Some(provider) = &self.tracer_provider {
            let _ = provider.shutdown_with_timeout(timeout);
        }
        if let Some((provider, _)) = &self.logs {
            let _ = provider.shutdown_with_timeout(timeout);
        }
        if let Some(metrics) = &self.metrics {
            metrics.shutdown(timeout);
        }
    }

    /// The trace context a request's `traceparent` / `tracestate` carry (an
    /// empty context when absent or invalid), as Spin's W3C TraceContext
    /// propagator reads them.
    fn extract(&self, headers: &http::HeaderMap) -> Context {
        self.propagator
            .extract(&opentelemetry_http::HeaderExtractor(headers))
    }
}

/// The OTLP timeout of a signal, as the SDK reads it (milliseconds in the
/// per-signal variable, then the general one; 10 s by default).
fn export_timeout(signal: &str) -> Duration {
    [
        format!("OTEL_EXPORTER_OTLP_{signal}_TIMEOUT"),
        "OTEL_EXPORTER_OTLP_TIMEOUT".into(),
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok()?.parse().ok())
    .map(Duration::from_millis)
    .unwrap_or(Duration::from_secs(10))
}

/// Spin's resource: `service.name` from `OTEL_SERVICE_NAME`, else from
/// `OTEL_RESOURCE_ATTRIBUTES`, else `spin`; `service.version`; then the
/// attributes of `OTEL_RESOURCE_ATTRIBUTES` and the SDK's own
/// (`crates/telemetry/src/detector.rs`, `traces.rs`).
fn resource(version: &str) -> opentelemetry_sdk::Resource {
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .map(opentelemetry::Value::from)
        .or_else(|| {
            EnvResourceDetector::new()
                .detect()
                .get(&opentelemetry::Key::new("service.name"))
        })
        .unwrap_or_else(|| "spin".into());
    opentelemetry_sdk::Resource::builder()
        .with_attributes([
            KeyValue::new("service.name", service_name),
            KeyValue::new("service.version", version.to_string()),
        ])
        .with_detectors(&[
            Box::new(EnvResourceDetector::new()) as Box<dyn ResourceDetector>,
            Box::new(TelemetryResourceDetector),
        ])
        .build()
}

/// Where spans hang: one span's context, or nothing at all when traces are
/// off (then every method returns at once, and no attribute is built: the
/// callers pass closures).
#[derive(Clone, Default)]
pub struct Trace(Option<Arc<Active>>);

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Trace(off)"),
            Some(active) => {
                let span = active.cx.span();
                let context = span.span_context();
                write!(f, "Trace({}/{})", context.trace_id(), context.span_id())
            }
        }
    }
}

struct Active {
    telemetry: Arc<Telemetry>,
    tracer: SdkTracer,
    cx: Context,
}

impl Trace {
    /// No tracing.
    pub fn off() -> Self {
        Self(None)
    }

    /// A root for a public request: the caller's trace when `headers` carry
    /// a valid `traceparent`, a new trace otherwise. Off without telemetry
    /// or traces.
    pub fn incoming(telemetry: Option<&Arc<Telemetry>>, headers: &http::HeaderMap) -> Self {
        let Some(telemetry) = telemetry else {
            return Self::off();
        };
        let Some(tracer) = telemetry.tracer.clone() else {
            return Self::off();
        };
        let cx = telemetry.extract(headers);
        Self(Some(Arc::new(Active {
            telemetry: telemetry.clone(),
            tracer,
            cx,
        })))
    }

    /// Whether spans are recorded.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Starts a child span `name` of `kind` with `attributes()`, and the
    /// trace under it; ended when the last clone of the result is dropped,
    /// or by [`Trace::end`].
    pub fn child(
        &self,
        name: impl FnOnce() -> Cow<'static, str>,
        kind: SpanKind,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self {
        let Some(active) = &self.0 else {
            return Self::off();
        };
        let span = active
            .tracer
            .span_builder(name())
            .with_kind(kind)
            .with_attributes(attributes())
            .start_with_context(&active.tracer, &active.cx);
        Self(Some(Arc::new(Active {
            telemetry: active.telemetry.clone(),
            tracer: active.tracer.clone(),
            cx: active.cx.with_span(span),
        })))
    }

    /// Sets attributes on this span.
    pub fn set(&self, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if let Some(active) = &self.0 {
            active.cx.span().set_attributes(attributes());
        }
    }

    /// Adds an event named `name` to this span, now.
    pub fn event(&self, name: impl FnOnce() -> Cow<'static, str>) {
        self.event_with(name, Vec::new);
    }

    /// Adds an event named `name` with `attributes()` to this span, now.
    pub fn event_with(
        &self,
        name: impl FnOnce() -> Cow<'static, str>,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) {
        if let Some(active) = &self.0 {
            active.cx.span().add_event(name(), attributes());
        }
    }

    /// Renames this span.
    pub fn rename(&self, name: impl FnOnce() -> Cow<'static, str>) {
        if let Some(active) = &self.0 {
            active.cx.span().update_name(name());
        }
    }

    /// Marks this span as failed with `why` (OTel status Error).
    pub fn fail(&self, why: impl FnOnce() -> String) {
        if let Some(active) = &self.0 {
            active.cx.span().set_status(Status::error(why()));
        }
    }

    /// Ends this span now (its clones then record nothing more).
    pub fn end(&self) {
        if let Some(active) = &self.0 {
            active.cx.span().end();
        }
    }

    /// Writes this span's context into `headers` as `traceparent` (and
    /// `tracestate`), as Spin injects it into outgoing requests.
    pub fn inject(&self, headers: &mut http::HeaderMap) {
        if let Some(active) = &self.0 {
            active
                .telemetry
                .propagator
                .inject_context(&active.cx, &mut opentelemetry_http::HeaderInjector(headers));
        }
    }

    /// This span's trace id (32 hex digits), if it is recorded.
    pub fn trace_id(&self) -> Option<String> {
        let active = self.0.as_ref()?;
        let span = active.cx.span();
        let context = span.span_context();
        context.is_valid().then(|| context.trace_id().to_string())
    }
}

#[cfg(test)]
mod tests;
