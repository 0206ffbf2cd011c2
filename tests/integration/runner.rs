//! The runner's own behaviours, through the probe component over real
//! sockets: routing and Spin's headers, service chaining, the outbound
//! allow-list, variables, environment, traps, deadlines, logs, shutdown.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::helpers::{Runner, Spawn, request};

/// A probe app: `probe` public under /probe/..., `inner` private (chaining
/// target), `locked` public with no capabilities at all.
pub const PROBE_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "probe-app"

[variables]
greeting = { default = "hello" }
origin = { default = "http://origin.invalid" }
secret_token = { default = "s3cret", secret = true }

[[trigger.http]]
route = "/probe/..."
component = "probe"

[[trigger.http]]
route = "/exact"
component = "locked"

[[trigger.http]]
route = "/locked/..."
component = "locked"

[[trigger.http]]
route = { private = true }
component = "inner"

[component.probe]
source = "{{probe.wasm}}"
allowed_outbound_hosts = ["http://inner.spin.internal", "{{ origin }}"]
key_value_stores = ["default"]
environment = { PROBE_ENV = "from-manifest" }
[component.probe.variables]
greeting = "{{ greeting }}, world"
token = "{{ secret_token }}"

[component.inner]
source = "{{probe.wasm}}"

[component.locked]
source = "{{probe.wasm}}"
"#;

fn probe() -> Runner {
    Runner::spawn(Spawn {
        manifest: Some(PROBE_APP),
        ..Spawn::default()
    })
}

fn probe_with(args: &[&str], env: &[(&str, &str)]) -> Runner {
    Runner::spawn(Spawn {
        manifest: Some(PROBE_APP),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

#[test]
fn serves_a_wildcard_route_and_prints_the_route_table() {
    let r = probe();
    let res = r.get("/probe/hello");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), "hello");
    let out = r.output();
    assert!(out.contains("Available Routes:"), "{out}");
    assert!(
        out.contains(&format!("probe: http://{}/probe (wildcard)", r.addr)),
        "{out}"
    );
    assert!(
        !out.contains("inner:"),
        "private components are not listed: {out}"
    );
}

#[test]
fn adds_spin_headers_to_routed_requests() {
    let r = probe();
    let res = r.get("/probe/headers?x=1");
    let text = res.text();
    assert!(text.contains("spin-path-info: /headers"), "{text}");
    assert!(text.contains("spin-matched-route: /probe/..."), "{text}");
    assert!(text.contains("spin-component-route: /probe"), "{text}");
    assert!(
        text.contains("spin-raw-component-route: /probe/..."),
        "{text}"
    );
    assert!(text.contains("spin-base-path: /"), "{text}");
    assert!(
        text.contains(&format!(
            "spin-full-url: http://{}/probe/headers?x=1",
            r.addr
        )),
        "{text}"
    );
    assert!(text.contains("spin-client-addr: 127.0.0.1:"), "{text}");
}

/// Spin's own answers (trigger-http server.rs `not_found`,
/// `internal_error`): the status, an empty body, no content-type, none of
/// the application's headers.
fn assert_spins_empty_answer(res: &crate::helpers::Response, status: u16, what: &str) {
    assert_eq!(res.status, status, "{what}: {}", res.text());
    assert!(res.body.is_empty(), "{what}: body {:?}", res.text());
    assert_eq!(res.header("content-type"), None, "{what}");
    assert_eq!(res.header("x-request-id"), None, "{what}");
    assert_eq!(res.header("content-length"), Some("0"), "{what}");
}

#[test]
fn unmatched_paths_get_spins_empty_404_with_no_content_type() {
    let r = probe();
    for path in [
        "/",
        "/nothing",
        "/exact/more",
        "/probe-not",
        "/.well-known/spin/nothing",
    ] {
        assert_spins_empty_answer(&r.get(path), 404, path);
    }
}

#[test]
fn a_private_components_path_gets_the_same_empty_404() {
    let r = probe();
    for path in ["/inner", "/inner/hello", "/inner/headers"] {
        assert_spins_empty_answer(&r.get(path), 404, path);
    }
    // It is reachable by chaining only.
    assert_eq!(
        r.get("/probe/fetch?url=http://inner.spin.internal/hello")
            .text(),
        "200 hello"
    );
}

#[test]
fn a_chained_request_gets_spins_headers_with_localhost_in_its_full_url() {
    let r = probe();
    let res = r.get("/probe/fetch?url=http://inner.spin.internal/headers%3Fa%3Db");
    assert_eq!(res.status, 200, "{}", res.text());
    let expected = [
        "200 spin-base-path: /",
        "spin-client-addr: 0.0.0.0:0",
        "spin-component-route: ",
        "spin-full-url: http://localhost/headers?a=b",
        "spin-matched-route: /...",
        "spin-path-info: /headers",
        "spin-raw-component-route: /...",
    ]
    .join("\n");
    assert_eq!(res.text(), expected);
}

#[test]
fn a_clients_own_spin_full_url_does_not_hide_spins() {
    // Spin appends its spin-* headers after the client's (the routing unit
    // tests show both values); the SDK keeps the last, Spin's.
    let r = probe();
    let res = r.request(
        "GET",
        "/probe/headers",
        &[("spin-full-url", "http://forged.example/")],
        b"",
    );
    let text = res.text();
    assert!(!text.contains("forged"), "{text}");
    assert!(
        text.contains(&format!("spin-full-url: http://{}/probe/headers\n", r.addr)),
        "{text}"
    );
}

#[test]
fn a_routed_request_without_a_host_header_is_closed_unanswered_as_on_spin() {
    let r = probe();
    let raw = b"GET /probe/hello HTTP/1.1\r\nconnection: close\r\n\r\n";
    let bytes = crate::helpers::raw_exchange(r.addr, raw, Duration::from_secs(30));
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    // A client's Host naming a chaining host is dropped, so the same.
    let raw =
        b"GET /probe/hello HTTP/1.1\r\nhost: inner.spin.internal\r\nconnection: close\r\n\r\n";
    let bytes = crate::helpers::raw_exchange(r.addr, raw, Duration::from_secs(30));
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    // An unmatched path is answered before the Host matters.
    let raw = b"GET /nothing HTTP/1.1\r\nconnection: close\r\n\r\n";
    let bytes = crate::helpers::raw_exchange(r.addr, raw, Duration::from_secs(30));
    let res = crate::helpers::parse_response(&bytes).expect("a response");
    assert_spins_empty_answer(&res, 404, "/nothing without a Host");
    assert_eq!(r.get("/probe/hello").status, 200);
}

#[test]
fn a_header_value_that_is_not_utf8_gets_spins_empty_500() {
    let r = probe();
    let mut raw = format!(
        "GET /probe/hello HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
        r.addr
    )
    .into_bytes();
    raw.extend_from_slice(b"x-binary: caf\xe9\r\n\r\n");
    let bytes = crate::helpers::raw_exchange(r.addr, &raw, Duration::from_secs(30));
    let res = crate::helpers::parse_response(&bytes).expect("a response");
    assert_spins_empty_answer(&res, 500, "a Latin-1 header value");
}

#[test]
fn exact_routes_match_exactly() {
    let r = probe();
    let res = r.get("/exact");
    assert_eq!(
        res.status, 404,
        "the locked probe has no route for empty path info"
    );
    assert_eq!(res.text(), "no such probe route");
}

#[test]
fn chains_to_a_private_component_in_process() {
    let r = probe();
    let res = r.get("/probe/fetch?url=http://inner.spin.internal/hello");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), "200 hello");
    let res = r.get("/probe/fetch?url=http://inner.spin.internal/headers");
    assert!(
        res.text().contains("spin-path-info: /headers"),
        "{}",
        res.text()
    );
}

#[test]
fn a_chained_call_not_in_the_allow_list_is_denied() {
    let r = probe();
    let res = r.get("/locked/fetch?url=http://inner.spin.internal/hello");
    assert_eq!(res.status, 502);
    assert!(res.text().contains("HttpRequestDenied"), "{}", res.text());
}

#[test]
fn a_denied_host_is_never_contacted() {
    // A real listener the probe is NOT allowed to reach: the runner must
    // refuse in the hook, so no connection ever arrives.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/secret", listener.local_addr().unwrap());
    let r = probe();
    let res = r.get(&format!("/probe/fetch?url={url}"));
    assert_eq!(res.status, 502);
    assert!(res.text().contains("HttpRequestDenied"), "{}", res.text());
    assert!(listener.accept().is_err(), "the denied host was contacted");
    // The denial is logged with the fix (output is read on other threads).
    crate::fixtures::wait_for_log(&r, &["allowed_outbound_hosts"]);
}

#[test]
fn a_host_allowed_by_a_variable_template_is_reached() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = upstream.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nupstream",
            );
        }
    });
    let origin = format!("http://{addr}");
    let r = probe_with(&[], &[("SPIN_VARIABLE_ORIGIN", &origin)]);
    let res = r.get(&format!("/probe/fetch?url={origin}/x"));
    assert_eq!(res.text(), "200 upstream");
}

#[test]
fn variables_come_from_defaults_then_env_then_flags() {
    let r = probe();
    assert_eq!(r.get("/probe/var?name=greeting").text(), "hello, world");
    assert_eq!(r.get("/probe/var?name=token").text(), "s3cret");
    drop(r);
    let r = probe_with(&[], &[("SPIN_VARIABLE_GREETING", "hi")]);
    assert_eq!(r.get("/probe/var?name=greeting").text(), "hi, world");
    drop(r);
    let r = probe_with(&["--variable", "greeting=hey"], &[]);
    assert_eq!(r.get("/probe/var?name=greeting").text(), "hey, world");
}

#[test]
fn variable_errors_reach_the_guest_as_spin_reports_them() {
    let r = probe();
    let res = r.get("/probe/var?name=nope");
    assert_eq!(res.status, 500);
    assert!(res.text().contains("Undefined"), "{}", res.text());
    let res = r.get("/probe/var?name=Bad-Name");
    assert!(res.text().contains("InvalidName"), "{}", res.text());
}

#[test]
fn wasi_environment_comes_from_the_manifest_and_env_flags() {
    let r = probe_with(&["-e", "EXTRA=flag"], &[]);
    assert_eq!(r.get("/probe/env?name=PROBE_ENV").text(), "from-manifest");
    assert_eq!(r.get("/probe/env?name=EXTRA").text(), "flag");
    assert_eq!(
        r.get("/probe/env?name=HOME").status,
        404,
        "the host environment does not leak"
    );
}

#[test]
fn key_value_access_follows_key_value_stores() {
    let r = probe();
    assert_eq!(
        r.get("/probe/kv?store=default&op=set&key=k&value=v").text(),
        "ok"
    );
    assert_eq!(r.get("/probe/kv?store=default&op=get&key=k").text(), "v");
    let denied = r.get("/locked/kv?store=default&op=get&key=k");
    assert_eq!(denied.status, 500);
    assert!(denied.text().contains("AccessDenied"), "{}", denied.text());
}

#[test]
fn key_value_flags_set_the_default_store_before_serving_as_spins_do() {
    // Spin's `--key-value`: split at the first `=`, the last one wins.
    let r = probe_with(
        &[
            "--key-value",
            "k=a=b",
            "--key-value",
            "j=1",
            "--key-value",
            "j=2",
        ],
        &[],
    );
    assert_eq!(r.get("/probe/kv?store=default&op=get&key=k").text(), "a=b");
    assert_eq!(r.get("/probe/kv?store=default&op=get&key=j").text(), "2");
    let (_, stderr) = start_up_refused_with(PROBE_APP, &["--key-value", "novalue"]);
    assert!(
        stderr.contains("Key/Values must be of the form `key=value`"),
        "{stderr}"
    );
}

#[test]
fn an_instance_may_grow_past_128_mib_as_on_spin_which_sets_no_memory_limit() {
    let r = probe();
    let res = r.get("/probe/alloc?mb=200");
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(
        res.text().starts_with("allocated 200 MiB"),
        "{}",
        res.text()
    );
}

#[test]
fn max_instance_memory_from_the_flag_the_environment_or_the_runtime_config_caps_an_instance() {
    let dir = tempfile::tempdir().unwrap();
    let runtime_config = dir.path().join("runtime-config.toml");
    std::fs::write(&runtime_config, "max_instance_memory = 33554432\n").unwrap();
    let runtime_config = runtime_config.display().to_string();
    for (args, env) in [
        (vec!["--max-instance-memory", "33554432"], vec![]),
        (vec![], vec![("SPIN_MAX_INSTANCE_MEMORY", "33554432")]),
        (
            vec!["--runtime-config-file", runtime_config.as_str()],
            vec![],
        ),
    ] {
        let r = probe_with(&args, &env);
        let small = r.get("/probe/alloc?mb=8");
        assert_eq!(small.status, 200, "{args:?} {env:?}: {}", small.text());
        // Past 32 MiB the growth is refused: the allocation fails and the
        // guest aborts, Spin's empty 500; the runner stays up.
        assert_spins_empty_answer(&r.get("/probe/alloc?mb=64"), 500, "past the cap");
        assert_eq!(r.get("/probe/hello").text(), "hello");
    }
}

#[test]
fn a_trapping_component_gets_spins_empty_500_and_the_runner_stays_up() {
    let mut r = probe();
    assert_spins_empty_answer(&r.get("/probe/trap"), 500, "a trap");
    assert!(r.is_running());
    assert_eq!(r.get("/probe/hello").status, 200);
    // Chained, the caller sees the same empty 500 as an answer.
    let res = r.get("/probe/fetch?url=http://inner.spin.internal/trap");
    assert_eq!(res.text(), "500 ", "the inner status, an empty body");
    crate::fixtures::wait_for_log(&r, &["trapped"]);
}

#[test]
fn a_looping_component_gets_a_504_at_its_deadline() {
    let r = probe_with(&["--request-timeout", "1"], &[]);
    let started = Instant::now();
    let res = r.get("/probe/loop");
    assert_eq!(res.status, 504, "{}", res.text());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.get("/probe/hello").status, 200);
}

#[test]
fn without_a_request_timeout_a_looping_component_keeps_its_request_as_on_spin() {
    // Spin 4 sets no deadline on WASI 0.2 components: the loop holds its
    // request, yields the CPU, and every other request is still served.
    let r = probe();
    let raw = format!("GET /probe/loop HTTP/1.1\r\nhost: {}\r\n\r\n", r.addr);
    let started = Instant::now();
    let answer = crate::helpers::raw_exchange(r.addr, raw.as_bytes(), Duration::from_secs(3));
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(r.get("/probe/hello").status, 200);
}

#[test]
fn component_output_is_prefixed_and_logged_under_the_state_dir() {
    let r = probe();
    assert_eq!(r.get("/probe/print").status, 200);
    crate::fixtures::wait_for_log(&r, &["[probe] probe says hello on stderr"]);
    crate::fixtures::wait_for_log(&r, &["[probe] probe says hello on stdout"]);
    let out = r.output();
    assert!(out.contains("[probe] probe says hello on stdout"), "{out}");
    assert!(out.contains("[probe] probe says hello on stderr"), "{out}");
    let path = r.dir.path().join(".spin/logs/probe_stdout.txt");
    // Log files are flushed with the console, a few milliseconds later.
    crate::fixtures::eventually("the line in the log file", Duration::from_secs(10), || {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|log| log.contains("probe says hello on stdout"))
    });
}

#[test]
fn log_dir_flags_and_the_runtime_config_choose_where_component_output_goes_as_on_spin() {
    let logs = tempfile::tempdir().unwrap();
    let stale = logs.path().join("probe_stdout.txt");
    std::fs::write(&stale, "a line from an earlier run\n").unwrap();
    let dir = logs.path().display().to_string();
    // `-L DIR --truncate-logs`: there, emptied first.
    let r = probe_with(&["-L", dir.as_str(), "--truncate-logs"], &[]);
    crate::fixtures::wait_for_log(&r, &[&format!("Logging component stdio to \"{dir}/\"")]);
    assert_eq!(r.get("/probe/print").status, 200);
    let log = crate::fixtures::eventually("the line in -L's file", Duration::from_secs(10), || {
        std::fs::read_to_string(&stale)
            .ok()
            .filter(|log| log.contains("probe says hello on stdout"))
    });
    assert!(!log.contains("earlier run"), "not truncated: {log}");
    assert!(!r.dir.path().join(".spin/logs").exists());
    drop(r);
    // The runtime config's `log_dir = ""`: no files at all, console only.
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("runtime-config.toml");
    std::fs::write(&file, "log_dir = \"\"\n").unwrap();
    let file = file.display().to_string();
    let r = probe_with(&["--runtime-config-file", file.as_str()], &[]);
    assert_eq!(r.get("/probe/print").status, 200);
    crate::fixtures::wait_for_log(&r, &["[probe] probe says hello on stdout"]);
    assert!(
        !r.output().contains("Logging component stdio"),
        "{}",
        r.output()
    );
    assert!(!r.dir.path().join(".spin/logs").exists());
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let mut r = probe();
    let addr = r.addr;
    let slow = std::thread::spawn(move || {
        // A request that is in flight when SIGTERM arrives.
        request(
            addr,
            "POST",
            "/probe/echo",
            &[("content-type", "text/plain")],
            b"still here",
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    let status = r.terminate();
    assert!(status.success(), "exit status {status:?}");
    let res = slow.join().unwrap();
    assert_eq!(res.text(), "still here");
}

#[test]
fn spin_well_known_health_is_answered_by_the_runner() {
    let r = probe();
    let res = r.get("/.well-known/spin/health");
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "OK");
    assert_eq!(res.header("content-type"), None, "Spin sets none");
    let res = r.get("/.well-known/spin/info");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert!(res.json().is_object(), "{}", res.text());
    assert_spins_empty_answer(&r.get("/.well-known/spin/health/"), 404, "health/");
}

#[test]
fn a_guest_body_of_unknown_length_goes_out_chunked_as_on_spin() {
    // The guest sets no content-length: Spin hands its streamed body to
    // hyper, which frames it chunked (conformance test
    // outbound-wasi-http-v0.2.0-no-perms). The runner gathers a body that
    // is already whole into one write, and keeps that framing.
    let r = probe();
    let raw = crate::helpers::raw_exchange(
        r.addr,
        format!(
            "GET /probe/hello HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            r.addr
        )
        .as_bytes(),
        Duration::from_secs(30),
    );
    let res = crate::helpers::parse_response(&raw).expect("an HTTP response");
    assert_eq!((res.status, res.text().as_str()), (200, "hello"));
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert_eq!(res.header("content-length"), None);
    assert!(
        raw.ends_with(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
}

/// Runs `up` on `manifest` with `env` set (`None`: removed) and returns
/// what it printed (stdout, stderr), asserting that it exited with an error.
fn start_up_refused(manifest: &str, env: &[(&str, Option<&str>)]) -> (String, String) {
    refused_run(manifest, &[], env)
}

fn start_up_refused_with(manifest: &str, args: &[&str]) -> (String, String) {
    refused_run(manifest, args, &[])
}

fn refused_run(manifest: &str, args: &[&str], env: &[(&str, Option<&str>)]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::helpers::write_manifest(dir.path(), manifest);
    let mut cmd = std::process::Command::new(crate::helpers::runner_bin());
    cmd.args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(&manifest)
        .args(args)
        .arg("--cache-dir")
        .arg(crate::helpers::cache_dir());
    for (name, value) in env {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_manifest_error_names_the_field_and_exits_before_listening() {
    let (stdout, stderr) = start_up_refused(
        &PROBE_APP.replace("key_value_stores", "key_value_storez"),
        &[],
    );
    assert!(stderr.contains("key_value_storez"), "{stderr}");
    assert!(!stdout.contains("Serving"));
}

#[test]
fn a_component_importing_a_spin_interface_the_runner_lacks_is_refused_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("db.wasm");
    std::fs::write(
        &wasm,
        edge_testkit::component_importing("fermyon:spin/postgres@2.0.0"),
    )
    .unwrap();
    let manifest = format!(
        "{PROBE_APP}[[trigger.http]]\nroute = \"/db\"\ncomponent = \"db\"\n[component.db]\nsource = {:?}\n",
        wasm.display().to_string()
    );
    let (stdout, stderr) = start_up_refused(&manifest, &[]);
    assert!(stderr.contains("component `db` ("), "{stderr}");
    assert!(
        stderr.contains(
            "imports `fermyon:spin/postgres@2.0.0`, which edge-runner does not support: it is a Spin interface edge-runner does not implement"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("matching implementation"), "{stderr}");
    assert!(!stdout.contains("Serving"), "{stdout}");
}

#[test]
fn a_templated_allowed_host_whose_default_is_invalid_stops_start_up_even_when_a_value_is_set() {
    // Spin checks `allowed_outbound_hosts` templates with the variables'
    // defaults at load; a provider's value does not rescue a bad default.
    let (_, stderr) = start_up_refused(
        &PROBE_APP.replace(
            "origin = { default = \"http://origin.invalid\" }",
            "origin = { default = \"\" }",
        ),
        &[("SPIN_VARIABLE_ORIGIN", Some("http://127.0.0.1:9"))],
    );
    assert!(
        stderr.contains("Failed to load component `probe`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`allowed_outbound_hosts` is malformed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("using default variable value(s) with template \"{{ origin }}\""),
        "{stderr}"
    );
    assert!(!stderr.contains("Serving http://"), "{stderr}");
}

#[test]
fn a_required_variable_without_a_value_stops_start_up() {
    let (_, stderr) = start_up_refused(
        &PROBE_APP.replace(
            "greeting = { default = \"hello\" }",
            "greeting = { required = true }",
        ),
        &[("SPIN_VARIABLE_GREETING", None)],
    );
    assert!(stderr.contains("greeting"), "{stderr}");
}

/// The probe app with chaining edge cases: `probe` may reach any component
/// by the wildcard, `nope` (no such component) by name, and `{{ origin }}`;
/// `lonely` is a component no trigger runs.
fn chaining_edges(origin: &str) -> Runner {
    let manifest = PROBE_APP.replace(
        r#"allowed_outbound_hosts = ["http://inner.spin.internal", "{{ origin }}"]"#,
        r#"allowed_outbound_hosts = ["http://*.spin.internal", "http://nope.spin.internal", "{{ origin }}"]"#,
    ) + "\n[component.lonely]\nsource = \"{{probe.wasm}}\"\n";
    assert!(manifest.contains("http://*.spin.internal"));
    Runner::spawn(Spawn {
        manifest: Some(&manifest),
        env: vec![("SPIN_VARIABLE_ORIGIN".into(), origin.into())],
        ..Spawn::default()
    })
}

#[test]
fn an_allowed_chaining_host_naming_no_component_traps_the_caller_as_on_spin() {
    // Spin's interceptor fails with "unknown routing destination" as a
    // host error: the calling guest traps, and its client gets the empty
    // 500 of a trapped component (not an error code the guest could see).
    let mut r = chaining_edges("http://origin.invalid");
    assert_spins_empty_answer(
        &r.get("/probe/fetch?url=http://nope.spin.internal/hello"),
        500,
        "chaining to no component",
    );
    crate::fixtures::wait_for_log(&r, &["unknown routing destination 'nope'"]);
    // A component no HTTP trigger runs is no chaining target either.
    assert_spins_empty_answer(
        &r.get("/probe/fetch?url=http://lonely.spin.internal/hello"),
        500,
        "chaining to a component without a trigger",
    );
    assert!(r.is_running());
    // The wildcard still chains to a real target.
    assert_eq!(
        r.get("/probe/fetch?url=http://inner.spin.internal/hello")
            .text(),
        "200 hello"
    );
}

#[test]
fn the_chaining_wildcard_allows_only_the_apps_components_as_on_spin() {
    // Spin expands `*.spin.internal` to one entry per component: any other
    // id is denied before chaining is considered.
    let r = chaining_edges("http://origin.invalid");
    let res = r.get("/probe/fetch?url=http://other.spin.internal/hello");
    assert_eq!(res.status, 502, "{}", res.text());
    assert!(res.text().contains("HttpRequestDenied"), "{}", res.text());
    let res = r.get("/probe/fetch?url=http://a.inner.spin.internal/hello");
    assert!(res.text().contains("HttpRequestDenied"), "{}", res.text());
}

#[test]
fn a_host_with_two_labels_before_spin_internal_is_a_network_request_that_fails_dns_as_on_spin() {
    // `a.b.spin.internal` is no chaining host for Spin: allowed, it goes to
    // the network, and the name does not resolve.
    let r = chaining_edges("http://a.b.spin.internal");
    let res = r.get("/probe/fetch?url=http://a.b.spin.internal/hello");
    assert_eq!(res.status, 502, "{}", res.text());
    let text = res.text();
    assert!(text.contains("DnsError"), "{text}");
    assert!(text.contains("address not available"), "{text}");
    assert!(text.contains("Some(0)"), "Spin's info code 0: {text}");
}

#[test]
fn a_wasm_module_source_is_turned_into_a_component_at_load_as_on_spin() {
    // The probe built for wasm32-wasip1: a core module importing
    // wasi_snapshot_preview1, with wit-bindgen's component metadata.
    let module = crate::helpers::target_dir().join("wasm32-wasip1/wasm/probe.wasm");
    assert!(
        module.exists(),
        "{} is missing: scripts/test builds it (cargo build --target wasm32-wasip1 --profile wasm -p probe)",
        module.display()
    );
    let bytes = std::fs::read(&module).unwrap();
    assert_eq!(
        &bytes[4..8],
        &[1, 0, 0, 0],
        "a core module, not a component"
    );
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"module\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"probe\"\n[component.probe]\nsource = {:?}\nkey_value_stores = [\"default\"]\n",
        module.display().to_string()
    );
    let r = Runner::spawn(Spawn {
        manifest: Some(&manifest),
        ..Spawn::default()
    });
    let res = r.get("/hello");
    assert_eq!((res.status, res.text().as_str()), (200, "hello"));
    // Its Spin imports (key-value) and WASI (the environment, via the
    // preview 1 adapter) work as the component's do.
    let res = r.get("/kv?store=default&op=set&key=k&value=v");
    assert_eq!(res.status, 200, "{}", res.text());
    let res = r.get("/kv?store=default&op=get&key=k");
    assert!(res.text().contains('v'), "{}", res.text());
    assert_eq!(r.get("/print").status, 200);
}
