//! A real OTLP/HTTP receiver on loopback for the telemetry tests: it
//! accepts `POST /v1/traces`, `/v1/metrics` and `/v1/logs` (http/protobuf), decodes
//! each export with the protocol's own types (opentelemetry-proto), and
//! keeps what it got. Or, as told, it accepts connections and never
//! answers (a collector that hangs).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::fixtures::eventually;

/// What the receiver does with requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decodes and answers 200.
    Answer,
    /// Reads the request and never answers.
    Hang,
}

#[derive(Default)]
struct Received {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
    /// Requests that were not an OTLP export (path, content-type).
    other: Vec<String>,
    /// Connections accepted.
    connections: usize,
}

/// The receiver; stops accepting when dropped.
pub struct Collector {
    port: u16,
    received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
}

/// One span, flattened for assertions: its resource's service.name and its
/// scope name come along.
#[derive(Debug, Clone)]
pub struct FoundSpan {
    pub span: Span,
    pub service_name: Option<String>,
    pub scope: String,
}

impl FoundSpan {
    pub fn name(&self) -> &str {
        &self.span.name
    }

    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    pub fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// The span kind's protocol name (`SPAN_KIND_SERVER`...).
    pub fn kind(&self) -> &'static str {
        self.span.kind().as_str_name()
    }

    /// An attribute, as a string whatever its type (ints in decimal).
    pub fn attr(&self, key: &str) -> Option<String> {
        attr(&self.span.attributes, key)
    }

    /// An attribute that must be an integer.
    pub fn int_attr(&self, key: &str) -> Option<i64> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::IntValue(i) => Some(*i),
                _ => None,
            })
    }
}

pub fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(value_text)
}

fn value_text(v: &AnyValue) -> Option<String> {
    Some(match v.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Collector {
    /// A receiver that decodes and answers.
    pub fn start() -> Self {
        Self::start_with(Mode::Answer)
    }

    pub fn start_with(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the collector");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        r.lock().unwrap().connections += 1;
                        let (r, s) = (r.clone(), s.clone());
                        std::thread::spawn(move || serve(stream, mode, &r, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            received,
            stop,
        }
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for this receiver.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<FoundSpan> {
        let received = self.received.lock().unwrap();
        let mut out = Vec::new();
        for export in &received.traces {
            for rs in &export.resource_spans {
                let service_name = rs
                    .resource
                    .as_ref()
                    .and_then(|r| attr(&r.attributes, "service.name"));
                for ss in &rs.scope_spans {
                    let scope = ss
                        .scope
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    for span in &ss.spans {
                        out.push(FoundSpan {
                            span: span.clone(),
                            service_name: service_name.clone(),
                            scope: scope.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// The spans of the trace whose server span has `url.path` = `path`,
    /// once that server span has arrived (spans are exported in batches:
    /// the server span ends last).
    pub fn trace_of(&self, path: &str) -> Trace {
        let server = eventually(
            &format!("the server span of {path}"),
            Duration::from_secs(20),
            || {
                self.spans().into_iter().find(|s| {
                    s.kind() == "SPAN_KIND_SERVER" && s.attr("url.path").as_deref() == Some(path)
                })
            },
        );
        let trace_id = server.trace_id();
        Trace {
            spans: self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id() == trace_id)
                .collect(),
        }
    }

    /// Every metric data point set received so far, by metric name (the
    /// last export's, as the SDK exports cumulative values).
    pub fn metrics(&self) -> HashMap<String, (String, Metric)> {
        let received = self.received.lock().unwrap();
        let mut out = HashMap::new();
        for export in &received.metrics {
            for rm in &export.resource_metrics {
                for sm in &rm.scope_metrics {
                    let scope = sm
                        .scope
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    for m in &sm.metrics {
                        out.insert(m.name.clone(), (scope.clone(), m.clone()));
                    }
                }
            }
        }
        out
    }

    /// Every log record received so far, with its scope name.
    pub fn logs(&self) -> Vec<(String, LogRecord)> {
        let received = self.received.lock().unwrap();
        let mut out = Vec::new();
        for export in &received.logs {
            for rl in &export.resource_logs {
                for sl in &rl.scope_logs {
                    let scope = sl
                        .scope
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    for record in &sl.log_records {
                        out.push((scope.clone(), record.clone()));
                    }
                }
            }
        }
        out
    }

    /// Requests that were not OTLP exports.
    pub fn other_requests(&self) -> Vec<String> {
        self.received.lock().unwrap().other.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.received.lock().unwrap().connections
    }

    /// Exports received so far (traces and metrics).
    pub fn exports(&self) -> usize {
        let r = self.received.lock().unwrap();
        r.traces.len() + r.metrics.len() + r.logs.len()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One trace's spans.
#[derive(Debug)]
pub struct Trace {
    pub spans: Vec<FoundSpan>,
}

impl Trace {
    /// The spans whose parent is `parent`, in start order.
    pub fn children(&self, parent: &FoundSpan) -> Vec<&FoundSpan> {
        let mut children: Vec<_> = self
            .spans
            .iter()
            .filter(|s| s.parent_id() == parent.span_id())
            .collect();
        children.sort_by_key(|s| s.span.start_time_unix_nano);
        children
    }

    /// The root (the span whose parent is not in this trace).
    pub fn root(&self) -> &FoundSpan {
        let ids: Vec<String> = self.spans.iter().map(FoundSpan::span_id).collect();
        let roots: Vec<_> = self
            .spans
            .iter()
            .filter(|s| !ids.contains(&s.parent_id()))
            .collect();
        assert_eq!(roots.len(), 1, "roots in\n{}", self.render());
        roots[0]
    }

    /// The tree as indented text: `name (KIND)` per line, children in start
    /// order.
    pub fn render(&self) -> String {
        let ids: Vec<String> = self.spans.iter().map(FoundSpan::span_id).collect();
        let mut roots: Vec<_> = self
            .spans
            .iter()
            .filter(|s| !ids.contains(&s.parent_id()))
            .collect();
        roots.sort_by_key(|s| s.span.start_time_unix_nano);
        let mut out = String::new();
        for root in roots {
            self.render_into(root, 0, &mut out, false);
        }
        out
    }

    fn render_into(&self, span: &FoundSpan, depth: usize, out: &mut String, timed: bool) {
        let kind = span.kind().trim_start_matches("SPAN_KIND_");
        out.push_str(&format!("{}{} ({kind})", "  ".repeat(depth), span.name()));
        if timed {
            let micros = span
                .span
                .end_time_unix_nano
                .saturating_sub(span.span.start_time_unix_nano)
                / 1000;
            out.push_str(&format!("  {:.2} ms", micros as f64 / 1000.0));
        }
        out.push('\n');
        for child in self.children(span) {
            self.render_into(child, depth + 1, out, timed);
        }
    }

    /// [`Trace::render`] with each span's duration, for a human.
    pub fn render_timed(&self) -> String {
        let ids: Vec<String> = self.spans.iter().map(FoundSpan::span_id).collect();
        let mut out = String::new();
        for root in self.spans.iter().filter(|s| !ids.contains(&s.parent_id())) {
            self.render_into(root, 0, &mut out, true);
        }
        out
    }
}

fn serve(stream: TcpStream, mode: Mode, received: &Mutex<Received>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().expect("clone the stream");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if mode == Mode::Hang {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let content_type = headers.get("content-type").cloned().unwrap_or_default();
        {
            let mut r = received.lock().unwrap();
            match (path.as_str(), content_type.as_str()) {
                ("/v1/traces", "application/x-protobuf") => r.traces.push(
                    ExportTraceServiceRequest::decode(body.as_slice())
                        .expect("a valid OTLP trace export"),
                ),
                ("/v1/metrics", "application/x-protobuf") => r.metrics.push(
                    ExportMetricsServiceRequest::decode(body.as_slice())
                        .expect("a valid OTLP metrics export"),
                ),
                ("/v1/logs", "application/x-protobuf") => r.logs.push(
                    ExportLogsServiceRequest::decode(body.as_slice())
                        .expect("a valid OTLP logs export"),
                ),
                _ => r.other.push(format!("{path} {content_type}")),
            }
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}
