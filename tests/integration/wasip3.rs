//! WASI 0.3 components (spin-sdk 7, `wasi:http@0.3.0`, and spin-sdk 6,
//! `wasi:http@0.3.0-rc-2026-03-15`) with Spin 4's instance reuse, through
//! the probe-p3 components (one source, built with each): every counted answer is
//! `served=<n> inflight=<k>`, the probe instance's own counters (statics),
//! so a test sees which instance served it and how busy it was.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::helpers::{Runner, Spawn, runner_bin, write_manifest};

const P3_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "p3-app"

[variables]
greeting = { default = "hello" }

[[trigger.http]]
route = "/p3/..."
component = "p3"

[[trigger.http]]
route = "/p2/..."
component = "p2"

[component.p3]
source = "{{probe_p3_sdk7.wasm}}"
allowed_outbound_hosts = ["http://p2.spin.internal"]
key_value_stores = ["default"]
[component.p3.variables]
greeting = "{{ greeting }}, from 0.3"

[component.p2]
source = "{{probe.wasm}}"
allowed_outbound_hosts = ["http://p3.spin.internal"]
"#;

fn p3(args: &[&str]) -> Runner {
    spawn_p3(args)
}

/// The p3 app with a long idle timeout, for tests counting requests in one
/// instance: on a loaded machine, two requests may be more than Spin's
/// default 1 s apart.
fn p3_kept(args: &[&str]) -> Runner {
    let mut args = args.to_vec();
    args.extend(["--idle-instance-timeout", "60"]);
    spawn_p3(&args)
}

fn spawn_p3(args: &[&str]) -> Runner {
    spawn_sdk(SDK_7, args)
}

/// The probe built with spin-sdk 7 (the final `wasi:http@0.3.0`) and with
/// spin-sdk 6 (the release candidate Spin 4.0.2 serves); tests of what both
/// must do run each.
const SDK_7: &str = "probe_p3_sdk7";
const SDK_6: &str = "probe_p3_sdk6";

fn spawn_sdk(sdk: &str, args: &[&str]) -> Runner {
    let manifest = P3_APP.replace(SDK_7, sdk);
    Runner::spawn(Spawn {
        manifest: Some(&manifest),
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Spawn::default()
    })
}

fn kept_sdk(sdk: &str, args: &[&str]) -> Runner {
    let mut args = args.to_vec();
    args.extend(["--idle-instance-timeout", "60"]);
    spawn_sdk(sdk, &args)
}

/// The instance id of a counted answer.
fn instance(body: &str) -> String {
    body.split_whitespace()
        .find_map(|f| f.strip_prefix("instance="))
        .unwrap_or_else(|| panic!("no instance in {body:?}"))
        .to_string()
}

/// `(served, inflight)` from a counted answer.
fn counters(body: &str) -> (u64, u64) {
    let field = |name: &str| {
        body.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {body:?}"))
    };
    (field("served="), field("inflight="))
}

fn served(r: &Runner, path: &str) -> u64 {
    let res = r.get(path);
    assert_eq!(res.status, 200, "{path}: {}", res.text());
    counters(&res.text()).0
}

fn assert_empty_500(res: &crate::helpers::Response, what: &str) {
    assert_eq!(res.status, 500, "{what}: {}", res.text());
    assert!(res.body.is_empty(), "{what}: body {:?}", res.text());
}

#[test]
fn a_wasi_0_3_instance_serves_one_request_after_another_as_spin_4_reuses_it() {
    for sdk in [SDK_7, SDK_6] {
        let r = kept_sdk(sdk, &[]);
        let counts: Vec<u64> = (0..5).map(|_| served(&r, "/p3/count")).collect();
        assert_eq!(counts, [1, 2, 3, 4, 5], "{sdk}");
    }
}

#[test]
fn a_wasi_0_2_instance_always_serves_one_request_whatever_the_reuse_flags() {
    let r = p3_kept(&["--max-instance-reuse-count", "10"]);
    for _ in 0..3 {
        assert_eq!(r.get("/p2/count").text(), "served=1");
    }
    // Chained from a fresh 0.2 instance each time, the 0.3 one counts on.
    for expected in 1..=3 {
        let res = r.get("/p2/fetch?url=http://p3.spin.internal/count");
        assert_eq!(res.status, 200, "{}", res.text());
        let body = res.text();
        let inner = body
            .strip_prefix("200 ")
            .unwrap_or_else(|| panic!("{body}"));
        assert_eq!(counters(inner).0, expected, "{body}");
    }
}

#[test]
fn an_instance_is_dropped_after_max_instance_reuse_count_requests() {
    for sdk in [SDK_7, SDK_6] {
        let r = kept_sdk(sdk, &["--max-instance-reuse-count", "3"]);
        let counts: Vec<u64> = (0..7).map(|_| served(&r, "/p3/count")).collect();
        assert_eq!(counts, [1, 2, 3, 1, 2, 3, 1], "{sdk}");
    }
}

#[test]
fn a_range_is_picked_per_instance_within_its_bounds() {
    // 2..4: each instance serves 2 or 3 requests, never 1, never 4. Counted
    // per instance (its id), since a request that arrives while the last
    // one's instance is still finishing may start another, as on Spin.
    let r = p3_kept(&["--max-instance-reuse-count", "2..4"]);
    let mut served: Vec<(String, u64)> = Vec::new();
    for _ in 0..30 {
        let res = r.get("/p3/count");
        assert_eq!(res.status, 200, "{}", res.text());
        let body = res.text();
        let (n, _) = counters(&body);
        let id = instance(&body);
        match served.iter_mut().find(|(i, _)| *i == id) {
            Some(entry) => entry.1 = entry.1.max(n),
            None => served.push((id, n)),
        }
    }
    assert!(served.len() >= 10, "{served:?}");
    assert!(served.iter().all(|&(_, n)| n <= 3), "{served:?}");
    // Every instance but the last ones (which may still take more) ended
    // after 2 or 3.
    let ended = &served[..served.len() - 2];
    assert!(ended.iter().all(|&(_, n)| n == 2 || n == 3), "{served:?}");
}

#[test]
fn no_instance_holds_more_requests_at_once_than_max_instance_concurrent_reuse_count() {
    let r = p3(&["--max-instance-concurrent-reuse-count", "2"]);
    let addr = r.addr;
    let answers: Vec<String> = (0..12)
        .map(|_| {
            thread::spawn(move || {
                crate::helpers::request(addr, "GET", "/p3/hold?ms=700", &[], b"").text()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let inflight: Vec<u64> = answers.iter().map(|a| counters(a).1).collect();
    assert!(inflight.iter().all(|&k| k <= 2), "{answers:?}");
}

#[test]
fn a_waiting_instance_takes_concurrent_requests_up_to_the_default_16() {
    let r = p3(&[]);
    let addr = r.addr;
    // A first request starts the instance and leaves it waiting; the next
    // ones arrive one by one while it waits, so it takes them all.
    let first = thread::spawn(move || {
        crate::helpers::request(addr, "GET", "/p3/hold?ms=1500", &[], b"").text()
    });
    thread::sleep(Duration::from_millis(300));
    let rest: Vec<_> = (0..3)
        .map(|_| {
            thread::sleep(Duration::from_millis(100));
            thread::spawn(move || {
                crate::helpers::request(addr, "GET", "/p3/hold?ms=800", &[], b"").text()
            })
        })
        .collect();
    let mut inflight: Vec<u64> = rest
        .into_iter()
        .map(|t| counters(&t.join().unwrap()).1)
        .collect();
    inflight.push(counters(&first.join().unwrap()).1);
    assert!(
        inflight.iter().any(|&k| k >= 2),
        "no concurrent reuse: {inflight:?}"
    );
}

#[test]
fn a_trap_ends_its_instance_and_the_requests_it_held_get_spins_empty_500() {
    for sdk in [SDK_7, SDK_6] {
        let r = kept_sdk(sdk, &[]);
        assert_eq!(served(&r, "/p3/count"), 1, "{sdk}");
        let addr = r.addr;
        // A request waits in the instance; the trap lands in the same one.
        let held = thread::spawn(move || {
            crate::helpers::request(addr, "GET", "/p3/hold?ms=2000", &[], b"")
        });
        thread::sleep(Duration::from_millis(300));
        assert_empty_500(&r.get("/p3/trap"), "the trap");
        assert_empty_500(&held.join().unwrap(), "the request it held");
        // The next request gets a fresh instance; the runner is up.
        assert_eq!(served(&r, "/p3/count"), 1, "{sdk}");
        crate::fixtures::wait_for_log(&r, &["the probe was asked to trap"]);
    }
}

#[test]
fn an_idle_instance_is_dropped_after_the_idle_instance_timeout() {
    let r = p3(&["--idle-instance-timeout", "1"]);
    assert_eq!(served(&r, "/p3/count"), 1);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(served(&r, "/p3/count"), 2, "kept while idle less than 1 s");
    thread::sleep(Duration::from_millis(2000));
    assert_eq!(served(&r, "/p3/count"), 1, "dropped after 1 s idle");
}

#[test]
fn a_request_past_the_request_timeout_gets_spins_empty_500_and_its_instance_ends() {
    let r = p3_kept(&["--request-timeout", "1"]);
    assert_eq!(served(&r, "/p3/count"), 1);
    let started = Instant::now();
    assert_empty_500(&r.get("/p3/hold?ms=5000"), "past the timeout");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // That instance takes no more requests: the next one is fresh.
    assert_eq!(served(&r, "/p3/count"), 1);
}

#[test]
fn a_guest_that_never_yields_is_ended_by_twice_the_request_timeout() {
    let r = p3(&["--request-timeout", "1"]);
    let started = Instant::now();
    assert_empty_500(&r.get("/p3/loop"), "a busy loop");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(served(&r, "/p3/count"), 1);
}

#[test]
fn a_wasi_0_3_component_calls_a_wasi_0_2_one_by_service_chaining_and_back() {
    for sdk in [SDK_7, SDK_6] {
        let r = spawn_sdk(sdk, &[]);
        let res = r.get("/p3/fetch?url=http://p2.spin.internal/hello");
        assert_eq!(res.text(), "200 hello", "{sdk}");
        let res = r.get("/p2/fetch?url=http://p3.spin.internal/count");
        assert_eq!(res.status, 200, "{sdk}: {}", res.text());
        assert!(
            res.text().starts_with("200 served="),
            "{sdk}: {}",
            res.text()
        );
        // The 0.3 component is held to its allow-list like a 0.2 one.
        let res = r.get("/p3/fetch?url=http://elsewhere.invalid/");
        assert_eq!(res.status, 502, "{sdk}: {}", res.text());
        assert!(
            res.text().contains("HttpRequestDenied"),
            "{sdk}: {}",
            res.text()
        );
    }
}

#[test]
fn a_wasi_0_3_component_gets_spins_3_0_0_key_value_and_variables() {
    for sdk in [SDK_7, SDK_6] {
        key_value_and_variables(&spawn_sdk(sdk, &[]));
    }
}

fn key_value_and_variables(r: &Runner) {
    assert_eq!(r.get("/p3/var?name=greeting").text(), "hello, from 0.3");
    let undefined = r.get("/p3/var?name=nope");
    assert_eq!(undefined.status, 500);
    assert!(
        undefined.text().contains("Undefined"),
        "{}",
        undefined.text()
    );
    assert_eq!(
        r.get("/p3/kv?store=default&op=set&key=k&value=v").text(),
        "ok"
    );
    assert_eq!(r.get("/p3/kv?store=default&op=get&key=k").text(), "v");
    assert_eq!(r.get("/p3/kv?store=default&op=exists&key=k").text(), "true");
    assert_eq!(
        r.get("/p3/kv?store=default&op=set&key=j&value=w").text(),
        "ok"
    );
    assert_eq!(r.get("/p3/kv?store=default&op=keys").text(), "j,k");
    assert_eq!(r.get("/p3/kv?store=default&op=delete&key=k").text(), "ok");
    assert_eq!(r.get("/p3/kv?store=default&op=get&key=k").text(), "<none>");
    let denied = r.get("/p3/kv?store=other&op=get&key=k");
    assert_eq!(denied.status, 500);
    assert!(denied.text().contains("AccessDenied"), "{}", denied.text());
}

/// `up` with `args` on the p3 app: its exit status and stderr (it must not start).
fn refused(manifest: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_manifest(dir.path(), manifest);
    let out = Command::new(runner_bin())
        .arg("up")
        .arg("-f")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(crate::helpers::cache_dir())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run edge-runner");
    assert!(!out.status.success(), "it started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_reuse_flags_are_parsed_as_spin_4_0_2_parses_them() {
    // Whole seconds only: Spin strips `s` before `ms`, so `500ms` fails.
    let err = refused(P3_APP, &["--idle-instance-timeout", "500ms"]);
    assert!(
        err.contains(
            "invalid value '500ms' for '--idle-instance-timeout <IDLE_INSTANCE_TIMEOUT>': \
             expected integer or range; got \"500ms\"; expected integer suffixed by `s`, `ms`, \
             `us`, `μs`, or `ns`; got \"500ms\"; invalid digit found in string"
        ),
        "{err}"
    );
    let err = refused(P3_APP, &["--max-instance-reuse-count", "many"]);
    assert!(
        err.contains("expected integer or range; got \"many\""),
        "{err}"
    );
    // Values and ranges in the forms Spin accepts start up.
    let r = p3(&[
        "--max-instance-reuse-count",
        "1..8",
        "--max-instance-concurrent-reuse-count",
        "4",
        "--request-timeout",
        "5s",
        "--idle-instance-timeout",
        "1..3s",
    ]);
    assert_eq!(r.get("/p3/count").status, 200);
}
