//! Test helpers: find the built components and the runner, spawn the runner
//! on 127.0.0.1:0, and talk HTTP/1.1 to it over real sockets.
//!
//! The components are built before the tests by `scripts/test` (a nested
//! cargo build from inside `cargo test` would block on cargo's lock), so
//! these helpers only check that the files are there and say how to make
//! them when they are not. Each spawned runner's output is captured and
//! printed when the test fails.

#![allow(dead_code)] // each test module uses its own subset of the helpers

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// A built component's Wasm file; panics with the fix when it is missing.
pub fn component(name: &str) -> PathBuf {
    let path = target_dir().join(format!("wasm32-wasip2/wasm/{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the components first with `scripts/test` (or `cargo build --target wasm32-wasip2 --profile wasm -p router -p processor -p cache -p probe`)",
        path.display()
    );
    path
}

/// The runner binary built alongside this test binary.
pub fn runner_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/integration-<hash> → target/<profile>/edge-runner
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("edge-runner");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `scripts/test` or `cargo test --workspace`, which build it",
        bin.display()
    );
    bin
}

/// The shared compile cache for every runner the tests start.
pub fn cache_dir() -> PathBuf {
    target_dir().join("test-component-cache")
}

/// Writes `manifest` (with `{{probe}}`, `{{router}}`, `{{processor}}`,
/// `{{cache}}` replaced by the built files' paths) into `dir/spin.toml`.
pub fn write_manifest(dir: &Path, manifest: &str) -> PathBuf {
    let mut text = manifest.to_string();
    for name in [
        "probe",
        "probe_p3_sdk6",
        "probe_p3_sdk7",
        "router",
        "processor",
        "cache",
    ] {
        let token = format!("{{{{{name}.wasm}}}}");
        if text.contains(&token) {
            text = text.replace(&token, &component(name).display().to_string());
        }
    }
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).expect("write manifest");
    path
}

/// The application's own spin.toml with sources pointing at the built files.
pub fn app_manifest(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("spin.toml")).expect("read spin.toml");
    let text = text.replace(
        "\"target/wasm32-wasip2/wasm/",
        &format!("\"{}/wasm32-wasip2/wasm/", target_dir().display()),
    );
    // The build sections name workdirs relative to the repository.
    let text = text.replace(
        "workdir = \"",
        &format!("workdir = \"{}/", root().display()),
    );
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).expect("write manifest");
    path
}

/// A running runner.
pub struct Runner {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Whether it serves HTTPS (it printed `Serving https://...`): the
    /// plain-HTTP helpers below do not speak TLS; see tls.rs.
    pub https: bool,
    output: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    /// Its state dir (and manifest dir); removed on drop.
    pub dir: tempfile::TempDir,
}

/// How to start a runner.
#[derive(Default)]
pub struct Spawn<'a> {
    /// `up` arguments beyond `-f`, `--listen`, `--state-dir`, `--cache-dir`.
    pub args: Vec<String>,
    /// Environment variables for the runner process.
    pub env: Vec<(String, String)>,
    /// The manifest text (see [`write_manifest`]); `None` = the app's spin.toml.
    pub manifest: Option<&'a str>,
}

impl Runner {
    /// Starts the application's own spin.toml.
    pub fn app() -> Self {
        Self::spawn(Spawn::default())
    }

    /// Starts the application with extra `up` arguments.
    pub fn app_with(args: &[&str]) -> Self {
        Self::spawn(Spawn {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Spawn::default()
        })
    }

    /// Starts a runner; panics with its output if it does not come up.
    pub fn spawn(spawn: Spawn<'_>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = match spawn.manifest {
            Some(text) => write_manifest(dir.path(), text),
            None => app_manifest(dir.path()),
        };
        Self::spawn_in(dir, &manifest, &spawn)
    }

    /// Starts a runner on an existing manifest and state dir.
    pub fn spawn_in(dir: tempfile::TempDir, manifest: &Path, spawn: &Spawn<'_>) -> Self {
        let mut cmd = Command::new(runner_bin());
        cmd.arg("up")
            .arg("-f")
            .arg(manifest)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--state-dir")
            .arg(dir.path().join(".spin"))
            .arg("--cache-dir")
            .arg(cache_dir())
            .args(&spawn.args)
            .envs(spawn.env.iter().map(|(k, v)| (k, v)));
        Self::start(dir, cmd)
    }

    /// Starts `edge-runner <args>` with exactly these arguments (nothing
    /// added) and extra environment, in `dir` (also the working directory).
    pub fn spawn_exact(dir: tempfile::TempDir, args: &[String], env: &[(String, String)]) -> Self {
        let mut cmd = Command::new(runner_bin());
        cmd.current_dir(dir.path())
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)));
        Self::start(dir, cmd)
    }

    /// Runs `cmd` and waits for the address it serves on: the `Serving
    /// http://...` (or `https://...`) line, or the `"base_url"` of
    /// `--format json`.
    fn start(dir: tempfile::TempDir, mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn edge-runner");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        for (is_stdout, stream) in [
            (
                true,
                Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            ),
            (
                false,
                Box::new(child.stderr.take().expect("stderr")) as Box<dyn Read + Send>,
            ),
        ] {
            let output = output.clone();
            let stdout = stdout.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let json_base = line
                        .trim()
                        .strip_prefix("\"base_url\": \"")
                        .map(|rest| rest.trim_end_matches(',').trim_end_matches('"'));
                    if let Some(url) = line.strip_prefix("Serving ").or(json_base)
                        && let Some((scheme @ ("http" | "https"), addr)) = url.split_once("://")
                    {
                        let _ = tx.send((scheme == "https", addr.trim().to_string()));
                    }
                    if is_stdout {
                        stdout.lock().unwrap().push_str(&format!("{line}\n"));
                    }
                    output.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        drop(tx);
        // The first start compiles the components into the shared cache.
        match rx.recv_timeout(Duration::from_secs(240)) {
            Ok((https, addr)) => Runner {
                child,
                addr: addr.parse().expect("listen address"),
                https,
                output,
                stdout,
                dir,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "edge-runner did not start; its output:\n{}",
                    output.lock().unwrap()
                );
            }
        }
    }

    /// Everything the runner printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// What the runner printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits (up to `timeout`) until the runner's output satisfies `done`;
    /// returns the output, or panics with it.
    pub fn wait_for_output(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let out = self.output();
            if done(&out) {
                return out;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting on the runner's output:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        wait_timeout(&mut self.child, Duration::from_secs(20)).expect("runner exits after SIGTERM")
    }

    /// The runner's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The runner's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A GET request.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// A POST with a JSON body.
    pub fn post_json(&self, path: &str, body: &str) -> Response {
        self.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
    }

    /// Any request.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        request(self.addr, method, path, headers, body)
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // Give the reader threads a moment to drain the pipes.
            std::thread::sleep(Duration::from_millis(100));
            eprintln!(
                "---- edge-runner output ----\n{}----------------------------",
                self.output.lock().unwrap()
            );
        }
    }
}

/// Runs `edge-runner <args>` (exactly these) in `dir` to its exit, which
/// must come within two minutes; returns the status and everything printed.
pub fn run_exact(
    dir: &Path,
    args: &[String],
    env: &[(String, String)],
) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(runner_bin())
        .current_dir(dir)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edge-runner");
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr")) as Box<dyn Read + Send>,
    ]
    .into_iter()
    .map(|mut stream| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stream.read_to_string(&mut text);
            text
        })
    })
    .collect();
    let Some(status) = wait_timeout(&mut child, Duration::from_secs(120)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("edge-runner {args:?} did not exit");
    };
    let output = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("");
    (status, output)
}

/// Waits for a child with a timeout.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// The `error.code` of an error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code in {}", self.text()))
            .to_string()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    let bytes = raw_exchange(addr, &raw, Duration::from_secs(60));
    parse_response(&bytes).unwrap_or_else(|| {
        panic!(
            "not an HTTP response to {method} {path}: {:?}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Writes `raw` bytes and reads until the server closes (or `timeout`).
pub fn raw_exchange(addr: SocketAddr, raw: &[u8], timeout: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(timeout)).unwrap();
    let _ = stream.write_all(raw);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// Parses an HTTP/1.1 response (content-length, chunked, or read-to-close).
pub fn parse_response(bytes: &[u8]) -> Option<Response> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &bytes[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some((_, len)) = headers.iter().find(|(k, _)| k == "content-length") {
        let len: usize = len.parse().ok()?;
        rest.get(..len)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
