//! Spin's spans for the SQLite, outbound Redis and outbound MQTT calls
//! (`fermyon:spin/sqlite@2.0.0`, `redis@2.0.0`, `mqtt@2.0.0`): the probe's
//! `/sqlite`, `/redis` and `/mqtt` routes traced to a real OTLP receiver,
//! each span compared with Spin 4.0.2's `#[instrument]` on the v2
//! `HostConnection` (`crates/factor-sqlite/src/host.rs`,
//! `crates/factor-outbound-redis/src/host.rs`,
//! `crates/factor-outbound-mqtt/src/host.rs`): name, kind, parent, every
//! attribute, and the status and `exception` event of `err(level = INFO)`
//! (which Spin's instance span has too: `crates/trigger-http/src/wasi.rs`).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use super::{child, complete, otel_env, trace_id, traceparent};
use crate::helpers::{Response, Runner, Spawn};
use crate::interfaces::{enc, probe_app};
use crate::otlp::{Collector, FoundSpan, Trace};
use edge_testkit::{MosquittoServer, RedisServer};

/// The probe at `/...` with `extra` in its component table, exporting to
/// `collector`.
fn traced_probe(collector: &Collector, extra: &str) -> Runner {
    let manifest = probe_app(extra, "");
    Runner::spawn(Spawn {
        manifest: Some(&manifest),
        env: otel_env(collector),
        ..Spawn::default()
    })
}

/// `GET path` under trace number `n`: the answer, and the trace once the
/// probe's instance span (which ends after its calls' spans) has arrived.
fn traced_get(r: &Runner, collector: &Collector, path: &str, n: u8) -> (Response, Trace) {
    let id = trace_id(n);
    let parent = traceparent(&id);
    let res = r.request("GET", path, &[("traceparent", parent.as_str())], b"");
    (res, complete(collector, &id, 1))
}

/// The host calls of the request: the children of the probe's instance
/// span, itself the one child of the server span.
fn calls_of(trace: &Trace) -> Vec<&FoundSpan> {
    let server = trace.root();
    assert_eq!(server.name(), "GET /...", "{}", trace.render());
    let instance = child(trace, server, "execute_wasm_component probe");
    let calls = trace.children(instance);
    for call in &calls {
        assert_eq!(call.parent_id(), instance.span_id());
        assert_eq!(call.trace_id(), instance.trace_id());
    }
    calls
}

fn names(spans: &[&FoundSpan]) -> Vec<String> {
    spans.iter().map(|s| s.name().to_string()).collect()
}

/// Every attribute of `span`, as text.
fn attributes(span: &FoundSpan) -> BTreeMap<String, String> {
    span.span
        .attributes
        .iter()
        .map(|kv| (kv.key.clone(), span.attr(&kv.key).unwrap_or_default()))
        .collect()
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The span succeeded: status unset, no exception event.
fn assert_ok(span: &FoundSpan) {
    let code = span.span.status.as_ref().map_or(0, |s| s.code);
    assert_eq!(
        code,
        StatusCode::Unset as i32,
        "{}: {:?}",
        span.name(),
        span.span.status
    );
    assert!(
        span.span.events.is_empty(),
        "{}: {:?}",
        span.name(),
        span.span.events
    );
}

/// The span failed as Spin's `err(level = INFO)` fails it: status Error
/// with the error's Display text (the guest's Debug text, `Error::...`),
/// and one `exception` event with that message, level INFO and the
/// instrumented module as target; no `error.blame` (Spin marks none here).
fn assert_failed(span: &FoundSpan, target: &str, message: &str) {
    let status = span.span.status.as_ref().expect("a status");
    assert_eq!(status.code, StatusCode::Error as i32, "{}", span.name());
    assert_eq!(status.message, message, "{}", span.name());
    assert_eq!(span.attr("error.blame"), None, "{}", span.name());
    let exceptions: Vec<_> = span
        .span
        .events
        .iter()
        .filter(|e| e.name == "exception")
        .collect();
    assert_eq!(exceptions.len(), 1, "{:?}", span.span.events);
    let event = exceptions[0];
    let attr = |key| crate::otlp::attr(&event.attributes, key);
    assert_eq!(attr("exception.message").as_deref(), Some(message));
    assert_eq!(attr("level").as_deref(), Some("INFO"));
    assert_eq!(attr("target").as_deref(), Some(target));
}

const SQLITE: &str = "spin_factor_sqlite::host";
const REDIS: &str = "spin_factor_outbound_redis::host";
const MQTT: &str = "spin_factor_outbound_mqtt::host";

fn sqlite_path(db: &str, statement: &str, args: &[&str]) -> String {
    let mut path = format!("/sqlite?db={}&sql={}", enc(db), enc(statement));
    for arg in args {
        path.push_str(&format!("&arg={}", enc(arg)));
    }
    path
}

// ---- SQLite ----

#[test]
fn sqlite_calls_are_spins_open_and_execute_spans_named_by_the_statement() {
    let collector = Collector::start();
    let r = traced_probe(&collector, "sqlite_databases = [\"default\"]");
    let statement = "SELECT ? AS greeting";
    let (res, trace) = traced_get(
        &r,
        &collector,
        &sqlite_path("default", statement, &["hi"]),
        1,
    );
    assert_eq!(res.status, 200, "{}", res.text());

    let calls = calls_of(&trace);
    assert_eq!(names(&calls), ["spin_sqlite.open", statement]);
    // Spin's summary of the default database: its path, in quotes.
    let backend = format!("\"{}\"", r.dir.path().join(".spin/sqlite_db.db").display());
    let (open, execute) = (calls[0], calls[1]);
    assert_eq!(
        attributes(open),
        expected(&[
            ("database", "default"),
            ("db.system", "sqlite"),
            ("sqlite.backend", &backend),
        ])
    );
    // The statement is the name and the `query`; the parameters are not
    // recorded.
    assert_eq!(
        attributes(execute),
        expected(&[
            ("query", statement),
            ("db.system", "sqlite"),
            ("sqlite.backend", &backend),
        ])
    );
    for call in calls {
        assert_eq!(call.kind(), "SPAN_KIND_CLIENT", "{}", call.name());
        assert_ok(call);
    }
}

#[test]
fn a_denied_database_and_a_failing_statement_fail_their_sqlite_spans_as_spin_does() {
    let collector = Collector::start();
    let r = traced_probe(&collector, "sqlite_databases = [\"default\"]");

    let (res, trace) = traced_get(
        &r,
        &collector,
        &sqlite_path("forbidden", "SELECT 1", &[]),
        1,
    );
    assert_eq!(
        (res.status, res.text().as_str()),
        (500, "Error::AccessDenied")
    );
    let calls = calls_of(&trace);
    assert_eq!(names(&calls), ["spin_sqlite.open"]);
    assert_failed(calls[0], SQLITE, "Error::AccessDenied");
    // No connection, so no backend.
    assert_eq!(
        attributes(calls[0]),
        expected(&[("database", "forbidden"), ("db.system", "sqlite")])
    );

    let statement = "SELECT * FROM nowhere";
    let (res, trace) = traced_get(&r, &collector, &sqlite_path("default", statement, &[]), 2);
    assert_eq!(res.status, 500);
    assert_eq!(res.text(), "Error::Io(\"no such table: nowhere\")");
    let calls = calls_of(&trace);
    assert_eq!(names(&calls), ["spin_sqlite.open", statement]);
    assert_ok(calls[0]);
    assert_failed(calls[1], SQLITE, &res.text());
    assert!(calls[1].attr("sqlite.backend").is_some());
}

// ---- outbound Redis ----

fn redis_path(addr: &str, op: &str, key: &str, values: &[&str]) -> String {
    let mut path = format!("/redis?addr={}&op={op}&key={}", enc(addr), enc(key));
    for v in values {
        path.push_str(&format!("&value={}", enc(v)));
    }
    path
}

/// A Redis request of the probe and Spin's span for its command: `(op,
/// key, values, span name, the attributes besides db.system)`.
type RedisCase<'a> = (
    &'a str,
    &'a str,
    &'a [&'a str],
    &'a str,
    &'a [(&'a str, &'a str)],
);

#[test]
fn redis_commands_are_spins_spans_named_by_the_command_with_its_recorded_arguments() {
    let server = RedisServer::start();
    let addr = format!("redis://127.0.0.1:{}", server.port);
    let collector = Collector::start();
    let r = traced_probe(
        &collector,
        &format!("allowed_outbound_hosts = [\"{addr}\"]"),
    );
    // Spin skips the payload, the value and sadd's and srem's values;
    // `keys` and `arguments` are not strings, so their Debug text.
    let cases: &[RedisCase] = &[
        (
            "set",
            "greeting",
            &["hi"],
            "SET greeting",
            &[("key", "greeting")],
        ),
        (
            "get",
            "greeting",
            &[],
            "GET greeting",
            &[("key", "greeting")],
        ),
        (
            "incr",
            "counter",
            &[],
            "INCRBY counter 1",
            &[("key", "counter")],
        ),
        (
            "del",
            "counter",
            &[],
            "DEL counter",
            &[("keys", "[\"counter\"]")],
        ),
        (
            "sadd",
            "letters",
            &["a", "b"],
            "SADD letters a b",
            &[("key", "letters")],
        ),
        (
            "srem",
            "letters",
            &["a"],
            "SREM letters a",
            &[("key", "letters")],
        ),
        (
            "smembers",
            "letters",
            &[],
            "SMEMBERS letters",
            &[("key", "letters")],
        ),
        (
            "publish",
            "news",
            &["hello"],
            "PUBLISH news",
            &[("channel", "news")],
        ),
        (
            "execute",
            "set",
            &["k", "v"],
            "set",
            &[
                ("command", "set"),
                (
                    "arguments",
                    "[RedisParameter::Binary([107]), RedisParameter::Binary([118])]",
                ),
            ],
        ),
    ];
    for (n, (op, key, values, name, recorded)) in cases.iter().enumerate() {
        let path = redis_path(&addr, op, key, values);
        let (res, trace) = traced_get(&r, &collector, &path, n as u8);
        assert_eq!(res.status, 200, "{op}: {}", res.text());
        let calls = calls_of(&trace);
        assert_eq!(names(&calls), ["spin_outbound_redis.open_connection", name]);
        // The address is skipped, and the db.address, server.port and
        // db.namespace Spin declares are never recorded.
        assert_eq!(attributes(calls[0]), expected(&[("db.system", "redis")]));
        let mut want = expected(recorded);
        want.insert("db.system".into(), "redis".into());
        assert_eq!(attributes(calls[1]), want, "{op}");
        for call in calls {
            assert_eq!(call.kind(), "SPAN_KIND_CLIENT", "{}", call.name());
            assert_ok(call);
        }
    }
}

#[test]
fn a_denied_address_and_a_failed_command_fail_their_redis_spans_as_spin_does() {
    let server = RedisServer::start();
    let addr = format!("redis://127.0.0.1:{}", server.port);
    let collector = Collector::start();
    let r = traced_probe(
        &collector,
        &format!("allowed_outbound_hosts = [\"{addr}\"]"),
    );
    let (res, _) = traced_get(&r, &collector, &redis_path(&addr, "set", "n", &["x"]), 1);
    assert_eq!(res.status, 200, "{}", res.text());
    let (res, trace) = traced_get(&r, &collector, &redis_path(&addr, "incr", "n", &[]), 2);
    assert_eq!(res.status, 500);
    assert!(res.text().contains("not an integer"), "{}", res.text());
    let calls = calls_of(&trace);
    assert_eq!(
        names(&calls),
        ["spin_outbound_redis.open_connection", "INCRBY n 1"]
    );
    assert_ok(calls[0]);
    assert_failed(calls[1], REDIS, &res.text());
    drop(r);

    // Not in allowed_outbound_hosts: the open fails, nothing more runs.
    let r = traced_probe(&collector, "");
    let (res, trace) = traced_get(&r, &collector, &redis_path(&addr, "get", "n", &[]), 3);
    assert_eq!(
        (res.status, res.text().as_str()),
        (500, "Error::InvalidAddress")
    );
    let calls = calls_of(&trace);
    assert_eq!(names(&calls), ["spin_outbound_redis.open_connection"]);
    assert_failed(calls[0], REDIS, "Error::InvalidAddress");
}

// ---- outbound MQTT ----

fn mqtt_path(addr: &str, topic: &str, qos: u8) -> String {
    format!(
        "/mqtt?addr={}&user=user&password=secret-password&payload=Eureka%21&qos={qos}&topic={}",
        enc(addr),
        enc(topic)
    )
}

/// Spin's `open_connection` attributes: the arguments it does not skip
/// (the password is), the keep-alive a `u64` and so a string.
fn assert_open_attributes(open: &FoundSpan, addr: &str) {
    assert_eq!(open.kind(), "SPAN_KIND_CLIENT");
    assert_eq!(
        attributes(open),
        expected(&[
            ("address", addr),
            ("username", "user"),
            ("keep_alive_interval", "30"),
        ])
    );
    assert_eq!(open.int_attr("keep_alive_interval"), None);
}

#[test]
fn an_mqtt_open_not_permitted_fails_spins_open_connection_span() {
    let collector = Collector::start();
    let r = traced_probe(&collector, "");
    let addr = "mqtt://localhost:1883?client_id=spintest";
    let (res, trace) = traced_get(&r, &collector, &mqtt_path(addr, "telemetry-topic", 1), 1);
    assert_eq!(
        (res.status, res.text()),
        (
            500,
            format!("Error::ConnectionFailed(\"address {addr} is not permitted\")")
        )
    );
    let calls = calls_of(&trace);
    assert_eq!(names(&calls), ["spin_outbound_mqtt.open_connection"]);
    assert_open_attributes(calls[0], addr);
    assert_failed(calls[0], MQTT, &res.text());
}

#[test]
fn an_mqtt_publish_to_a_broker_that_is_down_fails_spins_producer_span() {
    let port = edge_testkit::free_port();
    let addr = format!("mqtt://127.0.0.1:{port}?client_id=spintest");
    let collector = Collector::start();
    let r = traced_probe(
        &collector,
        &format!("allowed_outbound_hosts = [\"mqtt://127.0.0.1:{port}\"]"),
    );
    let (res, trace) = traced_get(&r, &collector, &mqtt_path(&addr, "telemetry-topic", 0), 1);
    assert_eq!(res.status, 500);
    assert!(
        res.text().starts_with("Error::ConnectionFailed("),
        "{}",
        res.text()
    );
    let calls = calls_of(&trace);
    assert_eq!(
        names(&calls),
        [
            "spin_outbound_mqtt.open_connection",
            "telemetry-topic publish"
        ]
    );
    assert_open_attributes(calls[0], &addr);
    assert_ok(calls[0]);
    assert_eq!(calls[1].kind(), "SPAN_KIND_PRODUCER");
    assert_failed(calls[1], MQTT, &res.text());
}

#[test]
fn an_mqtt_publish_is_spins_producer_span_named_by_the_topic() {
    let Some(broker) = MosquittoServer::start() else {
        return;
    };
    let collector = Collector::start();
    let r = traced_probe(
        &collector,
        &format!(
            "allowed_outbound_hosts = [\"mqtt://127.0.0.1:{}\"]",
            broker.port
        ),
    );
    let addr = broker.url("spintest");
    for (n, (qos, debug)) in [
        (0, "Qos::AtMostOnce"),
        (1, "Qos::AtLeastOnce"),
        (2, "Qos::ExactlyOnce"),
    ]
    .into_iter()
    .enumerate()
    {
        let (res, trace) = traced_get(
            &r,
            &collector,
            &mqtt_path(&addr, "telemetry-topic", qos),
            n as u8,
        );
        assert_eq!((res.status, res.text().as_str()), (200, "published"));
        let calls = calls_of(&trace);
        assert_eq!(
            names(&calls),
            [
                "spin_outbound_mqtt.open_connection",
                "telemetry-topic publish"
            ]
        );
        assert_open_attributes(calls[0], &addr);
        let publish = calls[1];
        assert_eq!(publish.kind(), "SPAN_KIND_PRODUCER");
        // The payload is skipped; the qos is its Debug text.
        assert_eq!(
            attributes(publish),
            expected(&[
                ("topic", "telemetry-topic"),
                ("qos", debug),
                ("messaging.operation", "publish"),
                ("messaging.system", "mqtt"),
            ])
        );
        for call in calls {
            assert_ok(call);
        }
    }
}

// ---- the instance ----

#[test]
fn a_trapping_instance_fails_its_span_as_spins_execute_wasm_does() {
    let collector = Collector::start();
    let r = traced_probe(&collector, "");
    let (res, trace) = traced_get(&r, &collector, "/trap", 1);
    assert_eq!(res.status, 500);
    let instance = child(&trace, trace.root(), "execute_wasm_component probe");
    let message = instance
        .span
        .status
        .as_ref()
        .map(|s| s.message.clone())
        .unwrap_or_default();
    assert!(!message.is_empty(), "{:?}", instance.span.status);
    assert_failed(instance, "spin_trigger_http::wasi", &message);
}
