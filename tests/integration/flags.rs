//! Spin 4.0.2's `spin up` flags on the runner, over real sockets with the
//! probe app: `--listen` names and SPIN_HTTP_LISTEN_ADDR, `--find-free-port`,
//! `--format json`, `-q/--quiet` and `--follow`, `-c/--component-id`,
//! `--from-file`, SPIN_ALWAYS_BUILD, `--disable-pooling`, `--disable-cache`,
//! the no-ops, and the flags refused by name.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::{Runner, cache_dir, run_exact, write_manifest};
use crate::runner::PROBE_APP;

const WAIT: Duration = Duration::from_secs(30);

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A temp dir holding the probe app's spin.toml (with `extra` appended).
fn probe_dir(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = write_manifest(dir.path(), &format!("{PROBE_APP}{extra}"));
    (dir, manifest)
}

/// `up` with the state dir and shared cache; the caller adds the source
/// and the listen address.
fn up_args(dir: &Path, rest: &[&str]) -> Vec<String> {
    let mut args = strings(&["up", "--state-dir"]);
    args.push(dir.join(".spin").display().to_string());
    args.push("--cache-dir".into());
    args.push(cache_dir().display().to_string());
    args.extend(strings(rest));
    args
}

/// The probe app, `-f <manifest> --listen 127.0.0.1:0` plus `rest`.
fn start(rest: &[&str], vars: &[(&str, &str)]) -> Runner {
    let (dir, manifest) = probe_dir("");
    let mut args = up_args(dir.path(), &["--listen", "127.0.0.1:0", "-f"]);
    args.push(manifest.display().to_string());
    args.extend(strings(rest));
    Runner::spawn_exact(dir, &args, &env(vars))
}

/// The probe app run to its exit with `rest`: it must fail; returns what it
/// printed.
fn refused(rest: &[&str], vars: &[(&str, &str)]) -> String {
    let (dir, manifest) = probe_dir("");
    let mut args = up_args(dir.path(), &["--listen", "127.0.0.1:0", "-f"]);
    args.push(manifest.display().to_string());
    args.extend(strings(rest));
    let (status, out) = run_exact(dir.path(), &args, &env(vars));
    assert!(!status.success(), "{rest:?} {vars:?} should fail:\n{out}");
    assert!(!out.contains("Serving http://"), "{out}");
    out
}

/// Polls a log file until it contains `needle` (the runner flushes its
/// files every few milliseconds).
fn wait_for_file(path: &Path, needle: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never got {needle:?}: {text:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    edge_testkit::free_port()
}

// ---- --listen, SPIN_HTTP_LISTEN_ADDR, --find-free-port --------------------

#[test]
fn listen_takes_a_host_name_resolved_to_ipv4_loopback_as_spin() {
    let port = free_port();
    let (dir, manifest) = probe_dir("");
    let mut args = up_args(dir.path(), &["-f"]);
    args.push(manifest.display().to_string());
    args.push("--listen".into());
    args.push(format!("localhost:{port}"));
    let r = Runner::spawn_exact(dir, &args, &[]);
    assert_eq!(r.addr, format!("127.0.0.1:{port}").parse().unwrap());
    assert_eq!(r.get("/probe/hello").text(), "hello");
}

#[test]
fn spin_http_listen_addr_sets_the_address_and_listen_overrides_it() {
    let port = free_port();
    let (dir, manifest) = probe_dir("");
    let mut args = up_args(dir.path(), &["-f"]);
    args.push(manifest.display().to_string());
    let addr = format!("localhost:{port}");
    let r = Runner::spawn_exact(dir, &args, &env(&[("SPIN_HTTP_LISTEN_ADDR", &addr)]));
    assert_eq!(r.addr, format!("127.0.0.1:{port}").parse().unwrap());
    assert_eq!(r.get("/probe/hello").text(), "hello");

    // The variable names a port that is taken: --listen wins, so it serves.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let r = start(&[], &[("SPIN_HTTP_LISTEN_ADDR", &busy)]);
    assert_ne!(r.addr.to_string(), busy);
    assert_eq!(r.get("/probe/hello").text(), "hello");
}

#[test]
fn an_unresolvable_listen_address_is_refused_by_clap_as_on_spin() {
    let (dir, manifest) = probe_dir("");
    let mut args = up_args(dir.path(), &["-f"]);
    args.push(manifest.display().to_string());
    args.extend(strings(&["--listen", "localhost"]));
    let (status, out) = run_exact(dir.path(), &args, &[]);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        out.contains("invalid value 'localhost' for '--listen <ADDRESS>'"),
        "{out}"
    );
}

#[test]
fn a_taken_port_is_refused_in_spins_words_unless_find_free_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let (dir, manifest) = probe_dir("");
    let mut args = up_args(dir.path(), &["-f"]);
    args.push(manifest.display().to_string());
    args.extend(["--listen".to_string(), busy.to_string()]);
    let (status, out) = run_exact(dir.path(), &args, &[]);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "{busy} is already in use. To have Spin search for a free port, use the --find-free-port option."
        )),
        "{out}"
    );

    args.push("--find-free-port".into());
    let r = Runner::spawn_exact(dir, &args, &[]);
    assert_eq!(r.addr.ip(), busy.ip());
    assert!(
        r.addr.port() > busy.port() && r.addr.port() <= busy.port() + 10,
        "{} from {busy}",
        r.addr
    );
    assert_eq!(r.get("/probe/hello").text(), "hello");
}

// ---- --format ------------------------------------------------------------

#[test]
fn format_json_prints_spins_route_listing_and_no_plain_text() {
    let r = start(&["--format", "json"], &[]);
    let deadline = std::time::Instant::now() + WAIT;
    let stdout = loop {
        let out = r.stdout();
        if out.lines().any(|l| l == "}") {
            break out;
        }
        assert!(std::time::Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let json_text: String = stdout
        .lines()
        .skip_while(|l| *l != "{")
        .take_while(|l| *l != "}")
        .chain(["}"])
        .collect::<Vec<_>>()
        .join("\n");
    let json: serde_json::Value = serde_json::from_str(&json_text).expect(&json_text);
    assert_eq!(json["base_url"], format!("http://{}", r.addr));
    let mut routes: Vec<(String, String, bool)> = json["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["route"].as_str().unwrap().to_string(),
                e["wildcard"].as_bool().unwrap(),
            )
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("locked".to_string(), "/exact".to_string(), false),
            ("locked".to_string(), "/locked".to_string(), true),
            ("probe".to_string(), "/probe".to_string(), true),
        ]
    );
    assert!(!stdout.contains("Available Routes:"), "{stdout}");
    assert!(!stdout.contains("Serving"), "{stdout}");
    assert_eq!(r.get("/probe/hello").text(), "hello");
}

// ---- -q/--quiet, --follow --------------------------------------------------

#[test]
fn quiet_keeps_component_output_off_the_console_but_in_the_log_files() {
    let r = start(&["--quiet"], &[]);
    assert_eq!(r.get("/probe/print").status, 200);
    let logs = r.dir.path().join(".spin/logs");
    wait_for_file(&logs.join("probe_stdout.txt"), "probe says hello on stdout");
    wait_for_file(&logs.join("probe_stderr.txt"), "probe says hello on stderr");
    // The request's own line follows the component's on the same stream.
    let out = r.wait_for_output(WAIT, |o| o.contains("GET /probe/print -> 200"));
    assert!(!out.contains("probe says hello"), "{out}");
}

#[test]
fn without_quiet_the_same_output_reaches_the_console() {
    let r = start(&[], &[]);
    assert_eq!(r.get("/probe/print").status, 200);
    r.wait_for_output(WAIT, |o| {
        o.contains("[probe] probe says hello on stdout")
            && o.contains("[probe] probe says hello on stderr")
    });
}

#[test]
fn follow_shows_only_the_named_components_output() {
    let r = start(&["--follow", "probe"], &[]);
    assert_eq!(r.get("/locked/print").status, 200);
    let logs = r.dir.path().join(".spin/logs");
    wait_for_file(
        &logs.join("locked_stdout.txt"),
        "probe says hello on stdout",
    );
    assert_eq!(r.get("/probe/print").status, 200);
    let out = r.wait_for_output(WAIT, |o| {
        o.contains("[probe] probe says hello on stdout")
            && o.contains("[probe] probe says hello on stderr")
            && o.contains("GET /locked/print -> 200")
    });
    assert!(!out.contains("[locked]"), "{out}");
}

#[test]
fn follow_of_an_unknown_component_is_refused_in_spins_words() {
    let out = refused(&["--follow", "probe", "--follow", "nope"], &[]);
    assert!(
        out.contains(
            "The following component(s) specified in --follow do not exist in the application:\n  - nope\nThe following components exist:\n  - inner\n  - locked\n  - probe"
        ),
        "{out}"
    );
}

#[test]
fn quiet_and_follow_conflict_as_on_spin() {
    let out = refused(&["-q", "--follow", "probe"], &[]);
    assert!(out.contains("cannot be used with"), "{out}");
}

// ---- -c/--component-id -----------------------------------------------------

#[test]
fn component_id_serves_only_the_selected_components() {
    let r = start(&["-c", "probe", "-c", "inner"], &[]);
    assert_eq!(r.get("/probe/hello").text(), "hello");
    // Chaining to a selected component works.
    assert_eq!(
        r.get("/probe/fetch?url=http://inner.spin.internal/hello")
            .text(),
        "200 hello"
    );
    // `locked` and its triggers are gone.
    assert_eq!(r.get("/locked/hello").status, 404);
    assert_eq!(r.get("/exact").status, 404);
    let out = r.output();
    assert!(
        out.contains(&format!("probe: http://{}/probe (wildcard)", r.addr)),
        "{out}"
    );
    assert!(!out.contains("locked:"), "{out}");
}

#[test]
fn component_id_refuses_what_spin_refuses_in_spins_words() {
    let context = "failed to resolve application with only components selected with --component: ";
    let out = refused(&["-c", "probe", "-c", "nope"], &[]);
    assert!(
        out.contains(&format!(
            "{context}Specified component \"nope\" not found in application"
        )),
        "{out}"
    );
    // probe chains to inner, which is not selected.
    let out = refused(&["--component-id", "probe"], &[]);
    assert!(
        out.contains(&format!(
            "{context}Selected component 'probe' cannot use service chaining to unselected component: allowed_outbound_hosts = [\"http://inner.spin.internal\"]"
        )),
        "{out}"
    );
    // --follow is checked against what is selected.
    let out = refused(&["-c", "locked", "--follow", "probe"], &[]);
    assert!(
        out.contains("do not exist in the application:\n  - probe\nThe following components exist:\n  - locked"),
        "{out}"
    );
}

// ---- --from-file, SPIN_ALWAYS_BUILD ----------------------------------------

#[test]
fn from_file_and_its_file_alias_load_a_manifest_or_its_directory() {
    for (flag, use_dir) in [("--from-file", false), ("--file", true)] {
        let (dir, manifest) = probe_dir("");
        let mut args = up_args(dir.path(), &["--listen", "127.0.0.1:0", flag]);
        let source = if use_dir {
            dir.path().to_path_buf()
        } else {
            manifest.clone()
        };
        args.push(source.display().to_string());
        let r = Runner::spawn_exact(dir, &args, &[]);
        assert_eq!(r.get("/probe/hello").text(), "hello", "{flag}");
    }
    let (dir, manifest) = probe_dir("");
    let m = manifest.display().to_string();
    let args = up_args(dir.path(), &["-f", &m, "--from-file", &m]);
    let (status, out) = run_exact(dir.path(), &args, &[]);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("cannot be used with"), "{out}");
}

#[test]
fn spin_always_build_runs_the_build_commands_first() {
    let build = "\n[component.locked.build]\ncommand = \"echo built >> built.txt\"\n";
    for (value, builds) in [("true", true), ("false", false)] {
        let (dir, manifest) = probe_dir(build);
        let marker = dir.path().join("built.txt");
        let mut args = up_args(dir.path(), &["--listen", "127.0.0.1:0", "-f"]);
        args.push(manifest.display().to_string());
        let r = Runner::spawn_exact(dir, &args, &env(&[("SPIN_ALWAYS_BUILD", value)]));
        assert_eq!(r.get("/probe/hello").text(), "hello");
        assert_eq!(marker.exists(), builds, "SPIN_ALWAYS_BUILD={value}");
    }
    // clap reads a flag's variable as `true` or `false` only, on Spin too.
    let (dir, manifest) = probe_dir(build);
    let args = up_args(dir.path(), &["-f", &manifest.display().to_string()]);
    let (status, out) = run_exact(dir.path(), &args, &env(&[("SPIN_ALWAYS_BUILD", "1")]));
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("invalid value '1' for '--build'"), "{out}");
}

// ---- --disable-pooling, --disable-cache ------------------------------------

fn vm_size_kib(r: &Runner) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", r.pid())).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize")
}

#[test]
fn disable_pooling_reserves_no_instance_pool() {
    const TIB_IN_KIB: u64 = 1 << 30;
    let pooled = start(&[], &[]);
    if pooled
        .output()
        .contains("the pooling allocator is unavailable")
    {
        eprintln!("skipped: this host cannot reserve the pool at all");
        return;
    }
    // Spin's pool: 1,000 memories of up to 4 GiB, reserved up front.
    assert!(
        vm_size_kib(&pooled) > TIB_IN_KIB,
        "{}",
        vm_size_kib(&pooled)
    );
    let on_demand = start(&["--disable-pooling"], &[]);
    assert!(
        vm_size_kib(&on_demand) < TIB_IN_KIB,
        "{}",
        vm_size_kib(&on_demand)
    );
    assert_eq!(on_demand.get("/probe/hello").text(), "hello");
    assert_eq!(
        on_demand
            .get("/probe/fetch?url=http://inner.spin.internal/hello")
            .text(),
        "200 hello"
    );
}

fn cached_artifacts(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn disable_cache_and_disable_wasmtime_cache_leave_the_cache_alone() {
    let fresh = tempfile::tempdir().unwrap();
    for (i, (flags, vars, writes)) in [
        (&["--disable-cache"][..], &[][..], false),
        (&[][..], &[("DISABLE_WASMTIME_CACHE", "true")][..], false),
        (&[][..], &[][..], true),
    ]
    .into_iter()
    .enumerate()
    {
        let cache = fresh.path().join(format!("cache-{i}"));
        let (dir, manifest) = probe_dir("");
        let mut args = strings(&["up", "--listen", "127.0.0.1:0", "--state-dir"]);
        args.push(dir.path().join(".spin").display().to_string());
        args.push("--cache-dir".into());
        args.push(cache.display().to_string());
        args.push("-f".into());
        args.push(manifest.display().to_string());
        args.extend(strings(flags));
        let r = Runner::spawn_exact(dir, &args, &env(vars));
        assert_eq!(r.get("/probe/hello").text(), "hello");
        assert_eq!(
            cached_artifacts(&cache) > 0,
            writes,
            "{flags:?} {vars:?}: {}",
            cache.display()
        );
    }
}

// ---- accepted no-ops, refusals ---------------------------------------------

#[test]
fn spins_no_op_flags_for_local_apps_are_accepted() {
    let r = start(&["-k", "--direct-mounts", "--allow-transient-write"], &[]);
    assert_eq!(r.get("/probe/hello").text(), "hello");
    let r = start(&["--insecure"], &[]);
    assert_eq!(r.get("/probe/hello").text(), "hello");
}

/// Arguments, environment, and the flag the refusal names.
type Refusal<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn spin_flags_edge_runner_cannot_honour_are_refused_by_name() {
    let cases: &[Refusal] = &[
        (
            &["--from-registry", "ghcr.io/example/app:v1"],
            &[],
            "--from-registry",
        ),
        (&["--profile", "debug"], &[], "--profile"),
        (&["--temp", "/tmp/edge-runner-temp"], &[], "--temp"),
        (&["--cache", "cache.toml"], &[], "--cache"),
        (&[], &[("WASMTIME_CACHE_FILE", "cache.toml")], "--cache"),
        (&["--debug-info"], &[], "--debug-info"),
        (
            &["--experimental-wasi-otel"],
            &[],
            "--experimental-wasi-otel",
        ),
        (
            &["--experimental-wasm-feature", "gc"],
            &[],
            "--experimental-wasm-feature",
        ),
    ];
    for (args, vars, flag) in cases {
        // `-f` is given, so --from-registry is refused by clap as a second
        // source; on its own it reaches the runner's refusal.
        let out = if *flag == "--from-registry" {
            let dir = tempfile::tempdir().unwrap();
            let mut all = up_args(dir.path(), &["--listen", "127.0.0.1:0"]);
            all.extend(strings(args));
            let (status, out) = run_exact(dir.path(), &all, &env(vars));
            assert!(!status.success(), "{out}");
            out
        } else {
            refused(args, vars)
        };
        assert!(
            out.contains(&format!(
                "Error: {flag}: edge-runner does not implement this `spin up` option: "
            )),
            "{args:?} {vars:?}: {out}"
        );
    }
}
