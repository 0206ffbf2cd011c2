//! What the application's tests share on top of `helpers`: starting the app
//! with variables, environment and a runtime config, request bodies, the
//! assertions every answer must pass, and polling (the sandbox clock may
//! jump, so tests wait for a condition rather than for a duration).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{Response, Runner, Spawn, app_manifest};

/// The admin token the admin tests configure.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// How to start the application (its own spin.toml).
#[derive(Default)]
pub struct App {
    args: Vec<String>,
    env: Vec<(String, String)>,
    runtime_config: Option<String>,
}

impl App {
    pub fn new() -> Self {
        Self::default()
    }

    /// `--variable name=value`.
    pub fn var(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.args.push("--variable".into());
        self.args.push(format!("{name}={value}"));
        self
    }

    /// An environment variable of the runner process (e.g. SPIN_VARIABLE_*).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// `admin_token` set to [`ADMIN_TOKEN`].
    pub fn admin(self) -> Self {
        self.var("admin_token", ADMIN_TOKEN)
    }

    /// A runtime config file (TOML text) written next to the manifest and
    /// passed with `--runtime-config-file`.
    pub fn runtime_config(mut self, toml: impl Into<String>) -> Self {
        self.runtime_config = Some(toml.into());
        self
    }

    /// Starts it in a fresh temporary directory.
    pub fn start(self) -> Runner {
        let dir = tempfile::tempdir().expect("tempdir");
        self.start_in(dir)
    }

    /// Starts it in `dir` (its manifest, state dir and runtime config live
    /// there): a second start in the same directory sees the same state.
    pub fn start_in(self, dir: tempfile::TempDir) -> Runner {
        let manifest = app_manifest(dir.path());
        let mut args = Vec::new();
        if let Some(toml) = &self.runtime_config {
            let path = dir.path().join("runtime-config.toml");
            std::fs::write(&path, toml).expect("write runtime config");
            args.push("--runtime-config-file".to_string());
            args.push(path.display().to_string());
        }
        args.extend(self.args);
        Runner::spawn_in(
            dir,
            &manifest,
            &Spawn {
                args,
                env: self.env,
                manifest: None,
            },
        )
    }
}

/// Stops a runner gracefully and hands back its directory (manifest, state
/// dir), so that the app can be started again on the same state.
pub fn stop_keeping_dir(mut runner: Runner) -> tempfile::TempDir {
    let status = runner.terminate();
    assert!(status.success(), "the runner exits cleanly: {status:?}");
    let placeholder = tempfile::tempdir().expect("tempdir");
    std::mem::replace(&mut runner.dir, placeholder)
}

/// A runtime config whose default store is Redis at `port` on loopback.
pub fn redis_runtime_config(port: u16) -> String {
    format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n")
}

/// A loopback port nothing listens on (bound, then released).
pub use edge_testkit::free_port;

/// A `/api/process` body.
pub fn item(id: &str, value: u64, timestamp: u64) -> String {
    serde_json::json!({ "id": id, "value": value, "timestamp": timestamp }).to_string()
}

/// `POST /api/process` with a JSON body.
pub fn process(r: &Runner, body: &str) -> Response {
    r.post_json("/api/process", body)
}

/// `POST /api/process/batch` with a JSON body.
pub fn batch(r: &Runner, body: &str) -> Response {
    r.post_json("/api/process/batch", body)
}

/// A request with `Authorization: Bearer <token>`.
pub fn admin_request(r: &Runner, method: &str, path: &str, token: &str) -> Response {
    let auth = format!("Bearer {token}");
    r.request(method, path, &[("authorization", auth.as_str())], b"")
}

/// The `x-cache` header ("" when absent).
pub fn x_cache(res: &Response) -> &str {
    res.header("x-cache").unwrap_or("")
}

/// What every answer of the API carries: JSON content type and a sane
/// `x-request-id`; for an error, the one error shape with that same id.
pub fn assert_api_response(res: &Response) -> Value {
    let rid = res
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id on {} {}", res.status, res.text()));
    assert!(is_sane_request_id(rid), "x-request-id {rid:?}");
    let content_type = res.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type:?} on {} {}",
        res.status,
        res.text()
    );
    let body = res.json();
    if res.status >= 400 {
        let error = body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("a {} without the error shape: {}", res.status, res.text()));
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{}", res.text());
        assert_eq!(error.len(), 3, "code, message, request_id: {}", res.text());
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(error["request_id"], rid, "the body's id is the header's");
    }
    body
}

/// Asserts an error answer's status and code; returns its message.
#[track_caller]
pub fn assert_error(res: &Response, status: u16, code: &str) -> String {
    assert_eq!(res.status, status, "{}", res.text());
    assert_api_response(res);
    assert_eq!(res.error_code(), code, "{}", res.text());
    res.json()["error"]["message"]
        .as_str()
        .expect("message")
        .to_string()
}

/// At most 128 characters of `[A-Za-z0-9._-]`.
pub fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Calls `probe` every 100 ms until it returns `Some`, for at most
/// `timeout`; panics with `what` otherwise.
pub fn eventually<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Posts `body` to `reader` until its cached answer `stored` has expired,
/// for at most `timeout`, and returns the first miss. Until then every
/// answer must be a hit with `stored`'s bytes. Polling, not a fixed sleep:
/// the clock may be warped or the machine slow.
pub fn first_miss_after_expiry(
    reader: &Runner,
    body: &str,
    stored: &Response,
    what: &str,
    timeout: Duration,
) -> Response {
    eventually(what, timeout, || {
        let res = process(reader, body);
        assert_eq!(res.status, 200, "{}", res.text());
        match x_cache(&res) {
            "hit" => {
                assert_eq!(
                    res.body, stored.body,
                    "before expiry, a hit is the stored answer"
                );
                None
            }
            "miss" => Some(res),
            other => panic!("unexpected x-cache {other:?}: {}", res.text()),
        }
    })
}

/// Waits until the runner's output (guest logs included) contains every one
/// of `needles` on a single line; returns that line.
pub fn wait_for_log(r: &Runner, needles: &[&str]) -> String {
    eventually(
        &format!("a log line with {needles:?}"),
        Duration::from_secs(10),
        || {
            r.output()
                .lines()
                .find(|line| needles.iter().all(|n| line.contains(n)))
                .map(str::to_string)
        },
    )
}
