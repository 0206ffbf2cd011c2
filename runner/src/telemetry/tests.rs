use super::*;

fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
    Settings::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

#[test]
fn nothing_is_exported_without_an_endpoint() {
    assert_eq!(settings(&[]).unwrap(), Settings::default());
    assert!(!settings(&[]).unwrap().any());
    // Set but empty counts as unset, as on Spin.
    assert!(
        !settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")])
            .unwrap()
            .any()
    );
    // Other OTEL variables alone turn nothing on.
    assert!(
        !settings(&[
            ("OTEL_SERVICE_NAME", "x"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        ])
        .unwrap()
        .any()
    );
}

#[test]
fn the_general_endpoint_turns_on_every_signal_and_a_signal_endpoint_only_its_own() {
    let all = |traces, metrics, logs| Settings {
        traces,
        metrics,
        logs,
    };
    let general = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]);
    assert_eq!(general.unwrap(), all(true, true, true));
    for (var, want) in [
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            all(true, false, false),
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            all(false, true, false),
        ),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", all(false, false, true)),
    ] {
        assert_eq!(
            settings(&[(var, "http://c:4318/v1/x")]).unwrap(),
            want,
            "{var}"
        );
    }
}

#[test]
fn otel_sdk_disabled_turns_everything_off() {
    let off = settings(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ("OTEL_SDK_DISABLED", "true"),
    ])
    .unwrap();
    assert!(!off.any());
}

#[test]
fn grpc_and_http_json_are_refused_with_the_fix_and_an_unknown_protocol_falls_back() {
    let grpc = settings(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ])
    .unwrap_err()
    .to_string();
    assert!(grpc.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"), "{grpc}");
    assert!(grpc.contains("http/protobuf"), "{grpc}");
    // The per-signal variable wins over the general one.
    let json = settings(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        json.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json"),
        "{json}"
    );
    assert!(
        settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
        ])
        .unwrap()
        .any()
    );
}

#[test]
fn an_off_trace_records_nothing_and_injects_nothing() {
    let trace = Trace::incoming(None, &http::HeaderMap::new());
    assert!(!trace.is_on());
    let child = trace.child(
        || unreachable!("no name is built when off"),
        SpanKind::Client,
        || unreachable!("no attribute is built when off"),
    );
    let mut headers = http::HeaderMap::new();
    child.inject(&mut headers);
    assert!(headers.is_empty());
    assert_eq!(child.trace_id(), None);
}
