//! Spin's spans, one constructor each, with the names, kinds and attributes
//! of Spin v4.0.2's instrumentation, as its bridge (tracing-opentelemetry
//! 0.29) exports them: `otel.name` is the span name, `otel.kind` the kind,
//! the other fields attributes. That bridge records an unsigned integer as
//! a string (it has no `record_u64`): so do these, for status codes and
//! ports; a signed one (the literal `500` of a failed request) is an int.
//! Not reproduced: the bridge's own `code.*`, `busy_ns` and `idle_ns`
//! attributes, which describe Spin's source and scheduler, not the request.

use std::borrow::Cow;
use std::net::SocketAddr;

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;

use super::Trace;

/// The server span of a public request (`crates/trigger-http/src/
/// instrument.rs` `http_span!`), a child of `root` (the caller's trace or
/// a new one). Named by the method until [`finish_server`] knows the route.
pub fn server<B>(root: &Trace, request: &http::Request<B>, client: SocketAddr) -> Trace {
    root.child(
        || Cow::Owned(request.method().to_string()),
        SpanKind::Server,
        || {
            let uri = request.uri();
            let mut attributes = vec![
                KeyValue::new("http.request.method", request.method().to_string()),
                KeyValue::new("network.peer.address", client.ip().to_string()),
                KeyValue::new("network.peer.port", client.port().to_string()),
                KeyValue::new("network.protocol.name", "http"),
                KeyValue::new("url.path", uri.path().to_string()),
                KeyValue::new("url.query", uri.query().unwrap_or("").to_string()),
                KeyValue::new("url.scheme", uri.scheme_str().unwrap_or("").to_string()),
            ];
            if let Some(forwarded) = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
            {
                attributes.push(KeyValue::new("client.address", forwarded.to_string()));
            }
            attributes
        },
    )
}

/// Spin's `finalize_http_span`: with a matched route (a component's route
/// as written in spin.toml, or a well-known path), the name becomes
/// `<method> <route>` and `http.route` is set; the status code always
/// (a string), with Spin's closing event.
pub fn finish_server(span: &Trace, method: &http::Method, route: Option<&str>, status: u16) {
    if let Some(route) = route {
        span.rename(|| Cow::Owned(format!("{method} {route}")));
        span.set(|| vec![KeyValue::new("http.route", route.to_string())]);
    }
    span.event(|| {
        let status = http::StatusCode::from_u16(status)
            .map(|s| s.to_string())
            .unwrap_or_else(|_| status.to_string());
        Cow::Owned(format!(
            "Request finished, sending response with status code {status}"
        ))
    });
    span.set(|| {
        vec![KeyValue::new(
            "http.response.status_code",
            status.to_string(),
        )]
    });
}

/// Spin's first event on the server span.
pub fn server_started(span: &Trace, path: &str) {
    span.event(|| Cow::Owned(format!("Processing request on path '{path}'")));
}

/// A request Spin fails without a response (`finalize_http_span`'s error
/// path): status Error, `error.type`, and the status code as the int 500.
pub fn server_failed(span: &Trace, method: &http::Method, why: &str) {
    server_error(span, why);
    span.rename(|| Cow::Owned(method.to_string()));
    span.set(|| vec![KeyValue::new("http.response.status_code", 500_i64)]);
}

/// A component failed the request (Spin's `instrument_error` on the server
/// span: status Error, `error.type` the error's debug text).
pub fn server_error(span: &Trace, why: &str) {
    span.fail(|| why.to_string());
    span.set(|| vec![KeyValue::new("error.type", why.to_string())]);
}

/// The instance failed (Spin's `err(level = INFO)` on the execute span,
/// [`call_failed`]; `target` is the executor's module,
/// `spin_trigger_http::wasi` or `spin_trigger_http::wasip3`).
pub fn component_failed(span: &Trace, target: &'static str, why: &str) {
    call_failed(span, target, why);
}

/// One component instance running a request (`crates/trigger-http/src/
/// wasi.rs`, span `spin_trigger_http.execute_wasm` named
/// `execute_wasm_component <id>`).
pub fn component(parent: &Trace, id: &str) -> Trace {
    parent.child(
        || Cow::Owned(format!("execute_wasm_component {id}")),
        SpanKind::Internal,
        Vec::new,
    )
}

/// An outgoing HTTP request (`crates/factor-outbound-http/src/wasi.rs`
/// `spin_outbound_http.send_request`): named by the method, with
/// `http.request.method` and `url.full`.
pub fn outbound(parent: &Trace, request: &http::Request<impl Sized>) -> Trace {
    parent.child(
        || Cow::Owned(request.method().to_string()),
        SpanKind::Client,
        || {
            vec![
                KeyValue::new("http.request.method", request.method().to_string()),
                KeyValue::new("url.full", request.uri().to_string()),
            ]
        },
    )
}

/// The request goes to the network (Spin records these only past its
/// chaining interceptor, so a chained call has none): `server.address`,
/// `server.port` when the URL names one, `http.request.header.content-length`.
pub fn outbound_to_network(span: &Trace, request: &http::Request<impl Sized>) {
    span.set(|| {
        let mut attributes = Vec::new();
        if let Some(authority) = request.uri().authority() {
            attributes.push(KeyValue::new(
                "server.address",
                authority.host().to_string(),
            ));
            if let Some(port) = authority.port_u16() {
                attributes.push(KeyValue::new("server.port", port.to_string()));
            }
        }
        if let Some(length) = content_length(request.headers()) {
            attributes.push(KeyValue::new("http.request.header.content-length", length));
        }
        attributes
    });
}

/// The answer to an outgoing request that went to the network (a chained
/// one records no status on Spin: its interceptor answers before).
pub fn outbound_answered(span: &Trace, response: &http::Response<impl Sized>) {
    span.set(|| {
        let mut attributes = vec![KeyValue::new(
            "http.response.status_code",
            response.status().as_u16().to_string(),
        )];
        if let Some(length) = content_length(response.headers()) {
            attributes.push(KeyValue::new("http.response.header.content-length", length));
        }
        attributes
    });
}

fn content_length(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A key-value call (`crates/factor-key-value/src/host.rs`):
/// `spin_key_value.<op>`, kind client. `open` has the label (`name`) and
/// the backend's summary (`kv.backend`); the others no attribute.
pub fn key_value(parent: &Trace, op: &'static str, open: Option<(&str, &str)>) -> Trace {
    parent.child(
        || Cow::Owned(format!("spin_key_value.{op}")),
        SpanKind::Client,
        || match open {
            Some((name, backend)) => vec![
                KeyValue::new("name", name.to_string()),
                KeyValue::new("kv.backend", backend.to_string()),
            ],
            None => Vec::new(),
        },
    )
}

/// Spin's `mark_as_error` on a failed key-value call: status Error with the
/// message, and who is to blame (`guest` for access-denied / no-such-store,
/// `host` otherwise).
pub fn key_value_failed(span: &Trace, message: &str, guest_fault: bool) {
    span.fail(|| message.to_string());
    span.set(|| {
        vec![KeyValue::new(
            "error.blame",
            if guest_fault { "guest" } else { "host" },
        )]
    });
}

/// A variable read (`crates/factor-variables/src/host.rs`
/// `spin_variables.get`, kind client, the variable's name as `key`).
pub fn variable(parent: &Trace, key: &str) -> Trace {
    parent.child(
        || Cow::Borrowed("spin_variables.get"),
        SpanKind::Client,
        || vec![KeyValue::new("key", key.to_string())],
    )
}

/// A failed read, as Spin's `expressions_to_variables_err` marks it.
pub fn variable_failed(span: &Trace, message: &str, guest_fault: bool) {
    key_value_failed(span, message, guest_fault);
}

/// Spin's `err(level = Level::INFO)` on a host call's `#[instrument]`, as its
/// bridge exports the error event: status Error with the error's Display
/// text, and an `exception` event (`exception.message`, its `level` and
/// the `target`, the instrumented function's module). Not reproduced: the
/// event's `code.*` attributes. No `error.blame`: Spin marks no blame on
/// these (it has no `mark_as_error` in `trigger-http`, `factor-sqlite`,
/// `factor-outbound-redis` or `factor-outbound-mqtt`).
pub fn call_failed(span: &Trace, target: &'static str, message: &str) {
    span.fail(|| message.to_string());
    span.event_with(
        || Cow::Borrowed("exception"),
        || {
            vec![
                KeyValue::new("level", "INFO"),
                KeyValue::new("target", target),
                KeyValue::new("exception.message", message.to_string()),
            ]
        },
    );
}

/// `result`, with `span` failed as [`call_failed`] when it is an error
/// (its Display text, as Spin's `err` records `%e`; nothing is formatted
/// when tracing is off).
pub fn traced<T, E: std::fmt::Display>(
    span: &Trace,
    target: &'static str,
    result: Result<T, E>,
) -> Result<T, E> {
    if let Err(error) = &result
        && span.is_on()
    {
        call_failed(span, target, &error.to_string());
    }
    result
}

/// `spin_sqlite.open` (`crates/factor-sqlite/src/host.rs`, the v2
/// `HostConnection`): kind client, the label as `database`, `db.system`;
/// `sqlite.backend` once the connection exists ([`sqlite_backend`]).
pub fn sqlite_open(parent: &Trace, database: &str) -> Trace {
    parent.child(
        || Cow::Borrowed("spin_sqlite.open"),
        SpanKind::Client,
        || {
            vec![
                KeyValue::new("database", database.to_string()),
                KeyValue::new("db.system", "sqlite"),
            ]
        },
    )
}

/// `spin_sqlite.execute`: named by the statement (`otel.name = query`),
/// which is also its `query` attribute; the parameters are not recorded;
/// `sqlite.backend` once the connection is found.
pub fn sqlite_execute(parent: &Trace, query: &str) -> Trace {
    parent.child(
        || Cow::Owned(query.to_string()),
        SpanKind::Client,
        || {
            vec![
                KeyValue::new("query", query.to_string()),
                KeyValue::new("db.system", "sqlite"),
            ]
        },
    )
}

/// The connection's summary as Spin records it on the SQLite spans
/// (`sqlite.backend`, e.g. `"/srv/.spin/sqlite_db.db"` with the quotes).
pub fn sqlite_backend(span: &Trace, summary: impl FnOnce() -> String) {
    span.set(|| vec![KeyValue::new("sqlite.backend", summary())]);
}

/// An outbound Redis call (`crates/factor-outbound-redis/src/host.rs`, the
/// v2 `HostConnection`): kind client, `db.system = "redis"`. `open` is
/// `spin_outbound_redis.open_connection` with nothing more (the address is
/// skipped; the `db.address`, `server.port` and `db.namespace` Spin
/// declares are never recorded); a command is named as Spin's `otel.name`
/// (`GET <key>`, `INCRBY <key> 1`...) with the arguments Spin does not skip
/// (`name()` and `attributes()` build them, only when traced).
pub fn redis(
    parent: &Trace,
    name: impl FnOnce() -> Cow<'static, str>,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Trace {
    parent.child(name, SpanKind::Client, || {
        let mut all = attributes();
        all.push(KeyValue::new("db.system", "redis"));
        all
    })
}

/// `spin_outbound_mqtt.open_connection` (`crates/factor-outbound-mqtt/src/
/// host.rs`, the v2 `HostConnection`): kind client, the arguments Spin does
/// not skip: `address`, `username` and `keep_alive_interval` (a `u64`, so a
/// string); never the password.
pub fn mqtt_open(parent: &Trace, address: &str, username: &str, keep_alive: u64) -> Trace {
    parent.child(
        || Cow::Borrowed("spin_outbound_mqtt.open_connection"),
        SpanKind::Client,
        || {
            vec![
                KeyValue::new("address", address.to_string()),
                KeyValue::new("username", username.to_string()),
                KeyValue::new("keep_alive_interval", keep_alive.to_string()),
            ]
        },
    )
}

/// `spin_outbound_mqtt.publish`: kind producer, named `<topic> publish`,
/// with `topic`, `qos` (its Debug text, `Qos::AtLeastOnce`),
/// `messaging.operation = "publish"` and `messaging.system = "mqtt"`; the
/// payload is not recorded.
pub fn mqtt_publish(parent: &Trace, topic: &str, qos: &impl std::fmt::Debug) -> Trace {
    parent.child(
        || Cow::Owned(format!("{topic} publish")),
        SpanKind::Producer,
        || {
            vec![
                KeyValue::new("topic", topic.to_string()),
                KeyValue::new("qos", format!("{qos:?}")),
                KeyValue::new("messaging.operation", "publish"),
                KeyValue::new("messaging.system", "mqtt"),
            ]
        },
    )
}
