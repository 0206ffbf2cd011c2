//! `GET /api/data/{key}`: the read-through cache of the upstream API,
//! against a real HTTP server on loopback ([`FakeUpstream`]) that answers
//! JSON, errors, garbage, a huge body, closes, or stalls, as told.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::fixtures::{
    App, assert_api_response, assert_error, eventually, free_port, redis_runtime_config,
    wait_for_log, x_cache,
};
use crate::helpers::Runner;

/// What the fake upstream does with the next requests.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with this JSON body.
    Json(String),
    /// This status with a small JSON body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a JSON string body of this many bytes.
    Huge(usize),
    /// Reads the request and never answers (until the server is dropped).
    Stall,
    /// Answers 200 at once, then sends the JSON body one byte per 100 ms.
    SlowBody,
    /// Declares a longer body than it sends (valid JSON so far), then closes.
    Truncated,
    /// 200 with a chunked JSON body.
    Chunked(String),
    /// Reads the request and closes the connection without answering.
    Close,
}

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
}

/// A tiny HTTP/1.1 server on 127.0.0.1, one thread per connection.
pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FakeUpstream {
    pub fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake upstream");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let state = shared.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = state.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        FakeUpstream {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`, the value for `upstream_origin`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes what the next requests get.
    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    shared.seen.lock().unwrap().push(Seen { path, headers });

    let behaviour = shared.behaviour.lock().unwrap().clone();
    let (status, content_type, body) = match behaviour {
        Behaviour::Json(body) => (200, "application/json", body.into_bytes()),
        Behaviour::Status(status) => (
            status,
            "application/json",
            format!(r#"{{"upstream_status":{status}}}"#).into_bytes(),
        ),
        Behaviour::Garbage => (200, "text/html", b"<html>not json</html>".to_vec()),
        Behaviour::Huge(len) => {
            let mut body = vec![b'a'; len.max(2)];
            body[0] = b'"';
            *body.last_mut().unwrap() = b'"';
            (200, "application/json", body)
        }
        Behaviour::Stall => {
            let started = Instant::now();
            while !shared.stop.load(Ordering::SeqCst)
                && started.elapsed() < Duration::from_secs(120)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        Behaviour::Close => return,
        Behaviour::Truncated => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"a\":1}";
            let _ = stream.write_all(head.as_bytes());
            return;
        }
        Behaviour::Chunked(body) => {
            let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
            for chunk in body.as_bytes().chunks(3) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            let _ = stream.write_all(&out);
            return;
        }
        Behaviour::SlowBody => {
            let body =
                br#"{"slow":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            for byte in body {
                if shared.stop.load(Ordering::SeqCst) || stream.write_all(&[*byte]).is_err() {
                    return;
                }
                let _ = stream.flush();
                std::thread::sleep(Duration::from_millis(100));
            }
            return;
        }
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    for chunk in body.chunks(16 * 1024) {
        if stream.write_all(chunk).is_err() {
            return;
        }
    }
    let _ = stream.flush();
}

/// The app with its upstream at `upstream`, under `/v1/items`.
fn app_for(upstream: &FakeUpstream) -> App {
    App::new()
        .var("upstream_origin", upstream.origin())
        .var("upstream_path", "/v1/items")
}

const BODY: &str = r#"{"name":"first","n":1}"#;

#[test]
fn data_is_503_while_no_upstream_is_configured() {
    let r = Runner::app();
    let message = assert_error(&r.get("/api/data/abc"), 503, "upstream_not_configured");
    assert!(message.contains("upstream_origin"), "{message}");
    // Key validation still comes first.
    assert_error(&r.get("/api/data/a%2Fb"), 400, "invalid_key");
}

#[test]
fn a_key_is_fetched_once_then_served_from_the_cache() {
    let upstream = FakeUpstream::start(Behaviour::Json(BODY.into()));
    let r = app_for(&upstream).start();

    let res = r.request(
        "GET",
        "/api/data/user-42",
        &[("x-request-id", "data-1")],
        b"",
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_api_response(&res);
    assert_eq!(x_cache(&res), "miss");
    assert_eq!(res.text(), BODY, "the upstream's body, verbatim");

    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/items/user-42");
    assert_eq!(
        seen[0].header("x-request-id"),
        Some("data-1"),
        "the request id is passed along"
    );

    // Even when the upstream has changed its mind, the fresh copy is served.
    upstream.set(Behaviour::Status(500));
    for _ in 0..3 {
        let res = r.get("/api/data/user-42");
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(x_cache(&res), "hit");
        assert_eq!(res.text(), BODY);
    }
    assert_eq!(upstream.seen().len(), 1, "hits do not reach the upstream");
}

#[test]
fn the_upstream_can_be_configured_from_the_environment() {
    let upstream = FakeUpstream::start(Behaviour::Json(BODY.into()));
    // The origin also fills the cache's allowed_outbound_hosts template.
    let r = App::new()
        .env("SPIN_VARIABLE_UPSTREAM_ORIGIN", &upstream.origin())
        .env("SPIN_VARIABLE_UPSTREAM_PATH", "/env/path/")
        .start();
    let res = r.get("/api/data/from-env");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), BODY);
    assert_eq!(upstream.seen()[0].path, "/env/path/from-env");
}

#[test]
fn a_chunked_upstream_answer_is_read_whole() {
    let upstream = FakeUpstream::start(Behaviour::Chunked(BODY.into()));
    let r = app_for(&upstream).start();
    let res = r.get("/api/data/chunky");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), BODY);
}

#[test]
fn different_keys_are_different_entries() {
    let upstream = FakeUpstream::start(Behaviour::Json(BODY.into()));
    let r = app_for(&upstream).start();
    let long = "k".repeat(128);
    for key in ["a", "b.json", "A_b-c.1", "...", long.as_str()] {
        let res = r.get(&format!("/api/data/{key}"));
        assert_eq!(res.status, 200, "{key}: {}", res.text());
        assert_eq!(x_cache(&res), "miss", "{key}");
    }
    let paths: Vec<String> = upstream.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths.len(), 5);
    assert!(paths.contains(&format!("/v1/items/{long}")), "{paths:?}");
}

#[test]
fn an_expired_copy_is_refreshed_from_the_upstream() {
    let upstream = FakeUpstream::start(Behaviour::Json(BODY.into()));
    let r = app_for(&upstream).var("cache_ttl_seconds", 1).start();
    assert_eq!(x_cache(&r.get("/api/data/k")), "miss");
    let newer = r#"{"name":"second","n":2}"#;
    upstream.set(Behaviour::Json(newer.into()));
    let res = eventually("a refreshed copy", Duration::from_secs(30), || {
        let res = r.get("/api/data/k");
        (x_cache(&res) == "miss").then_some(res)
    });
    assert_eq!(res.text(), newer);
}

#[test]
fn an_expired_copy_is_served_stale_when_the_upstream_fails() {
    let upstream = FakeUpstream::start(Behaviour::Json(BODY.into()));
    let r = app_for(&upstream).var("cache_ttl_seconds", 1).start();
    assert_eq!(x_cache(&r.get("/api/data/k")), "miss");

    upstream.set(Behaviour::Status(500));
    let res = eventually("a stale answer", Duration::from_secs(30), || {
        let res = r.get("/api/data/k");
        assert_eq!(res.status, 200, "{}", res.text());
        (x_cache(&res) != "hit").then_some(res)
    });
    assert_eq!(x_cache(&res), "stale");
    assert_eq!(res.text(), BODY);
    assert_api_response(&res);

    // Every kind of failure gets the stale copy.
    for failure in [
        Behaviour::Status(503),
        Behaviour::Garbage,
        Behaviour::Huge(600 * 1024),
        Behaviour::Close,
    ] {
        upstream.set(failure.clone());
        let res = r.get("/api/data/k");
        assert_eq!(res.status, 200, "{failure:?}: {}", res.text());
        assert_eq!(x_cache(&res), "stale", "{failure:?}");
        assert_eq!(res.text(), BODY, "{failure:?}");
    }
}

#[test]
fn an_expired_copy_is_served_stale_when_the_upstream_is_too_slow() {
    let upstream = FakeUpstream::start(Behaviour::Json(BODY.into()));
    let r = app_for(&upstream)
        .var("cache_ttl_seconds", 1)
        .var("upstream_timeout_ms", 300)
        .start();
    assert_eq!(x_cache(&r.get("/api/data/k")), "miss");
    upstream.set(Behaviour::Stall);
    let res = eventually("a stale answer", Duration::from_secs(30), || {
        let res = r.get("/api/data/k");
        (x_cache(&res) != "hit").then_some(res)
    });
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(x_cache(&res), "stale");
    assert_eq!(res.text(), BODY);
}

#[test]
fn an_upstream_failure_without_a_cached_copy_is_502() {
    let upstream = FakeUpstream::start(Behaviour::Status(500));
    let r = app_for(&upstream).start();
    for (i, failure) in [
        Behaviour::Status(500),
        Behaviour::Status(503),
        Behaviour::Status(302),
        Behaviour::Garbage,
        Behaviour::Huge(600 * 1024),
        Behaviour::Close,
        Behaviour::Truncated,
    ]
    .into_iter()
    .enumerate()
    {
        upstream.set(failure.clone());
        let rid = format!("fail-{i}");
        let res = r.request(
            "GET",
            &format!("/api/data/key{i}"),
            &[("x-request-id", &rid)],
            b"",
        );
        let message = assert_error(&res, 502, "upstream_error");
        assert!(
            !message.contains("127.0.0.1"),
            "no details to the caller: {message}"
        );
        // The cause is in the log under the request id.
        wait_for_log(&r, &[&rid, "upstream"]);
    }
    // Nothing was cached: a working upstream is asked next time.
    upstream.set(Behaviour::Json(BODY.into()));
    let res = r.get("/api/data/key0");
    assert_eq!(x_cache(&res), "miss");
}

#[test]
fn an_unreachable_upstream_without_a_cached_copy_is_502() {
    let r = App::new()
        .var(
            "upstream_origin",
            format!("http://127.0.0.1:{}", free_port()),
        )
        .start();
    assert_error(&r.get("/api/data/k"), 502, "upstream_error");
}

#[test]
fn an_upstream_slower_than_upstream_timeout_ms_is_504() {
    let upstream = FakeUpstream::start(Behaviour::Stall);
    let r = app_for(&upstream).var("upstream_timeout_ms", 300).start();
    let started = Instant::now();
    let res = r.request("GET", "/api/data/slow", &[("x-request-id", "slow-1")], b"");
    let message = assert_error(&res, 504, "upstream_timeout");
    assert!(message.contains("300 ms"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded by the timeout, not by the upstream: {:?}",
        started.elapsed()
    );
    wait_for_log(&r, &["slow-1", "timed out"]);
}

#[test]
fn an_upstream_body_trickling_past_upstream_timeout_ms_is_504() {
    let upstream = FakeUpstream::start(Behaviour::SlowBody);
    let r = app_for(&upstream).var("upstream_timeout_ms", 300).start();
    let started = Instant::now();
    assert_error(&r.get("/api/data/trickle"), 504, "upstream_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the timeout bounds the whole fetch, body included: {:?}",
        started.elapsed()
    );
}

#[test]
fn purge_also_forgets_upstream_copies() {
    let upstream = FakeUpstream::start(Behaviour::Json(BODY.into()));
    let r = app_for(&upstream).admin().start();
    assert_eq!(x_cache(&r.get("/api/data/k")), "miss");
    assert_eq!(x_cache(&r.get("/api/data/k")), "hit");
    let res =
        crate::fixtures::admin_request(&r, "DELETE", "/api/cache", crate::fixtures::ADMIN_TOKEN);
    assert_eq!(res.json()["purged"], 1);
    assert_eq!(x_cache(&r.get("/api/data/k")), "miss");
    // With no copy left, a failing upstream is a 502, not stale.
    crate::fixtures::admin_request(&r, "DELETE", "/api/cache", crate::fixtures::ADMIN_TOKEN);
    upstream.set(Behaviour::Status(500));
    assert_error(&r.get("/api/data/k"), 502, "upstream_error");
}

#[test]
fn stale_answers_are_counted_in_the_stats() {
    let upstream = FakeUpstream::start(Behaviour::Json(BODY.into()));
    let r = app_for(&upstream)
        .admin()
        .var("cache_ttl_seconds", 1)
        .start();
    assert_eq!(x_cache(&r.get("/api/data/k")), "miss");
    upstream.set(Behaviour::Status(500));
    eventually("a stale answer", Duration::from_secs(30), || {
        (x_cache(&r.get("/api/data/k")) == "stale").then_some(())
    });
    // Sampled 1-in-8: after 160 stale answers the chance that none was
    // counted is (7/8)^160 ≈ 5e-10.
    for _ in 0..160 {
        assert_eq!(x_cache(&r.get("/api/data/k")), "stale");
    }
    let stats =
        crate::fixtures::admin_request(&r, "GET", "/api/cache/stats", crate::fixtures::ADMIN_TOKEN)
            .json();
    let stale = stats["stale"].as_u64().expect("stale");
    assert!((8..=161 * 3).contains(&stale), "{stats}");
    assert_eq!(stats["entries"], 1, "the stale copy is kept: {stats}");
}

#[test]
fn an_upstream_404_is_a_404_and_drops_the_cached_copy() {
    let upstream = FakeUpstream::start(Behaviour::Status(404));
    let r = app_for(&upstream).var("cache_ttl_seconds", 1).start();
    assert_error(&r.get("/api/data/gone"), 404, "not_found");

    upstream.set(Behaviour::Json(BODY.into()));
    assert_eq!(x_cache(&r.get("/api/data/gone")), "miss");
    upstream.set(Behaviour::Status(404));
    eventually(
        "the upstream's 404 after expiry",
        Duration::from_secs(30),
        || {
            let res = r.get("/api/data/gone");
            match res.status {
                200 => None,
                _ => Some(assert_error(&res, 404, "not_found")),
            }
        },
    );
    // The copy is gone: an upstream failure now is a 502, not stale.
    upstream.set(Behaviour::Status(500));
    assert_error(&r.get("/api/data/gone"), 502, "upstream_error");
}

#[test]
fn bad_keys_are_400_and_never_reach_the_upstream() {
    let upstream = FakeUpstream::start(Behaviour::Json(BODY.into()));
    let r = app_for(&upstream).start();
    let long = "k".repeat(129);
    for key in [
        "",
        ".",
        "..",
        "%2e%2e",
        "a%2Fb",
        "a%2fb",
        "a/b",
        "..%2F..%2Fetc",
        "a%00b",
        "%00",
        "user@evil.example",
        "a%5Cb",
        "http:%2F%2Fevil.example",
        "a%20b",
        "caf%C3%A9",
        long.as_str(),
    ] {
        let res = r.get(&format!("/api/data/{key}"));
        let message = assert_error(&res, 400, "invalid_key");
        assert!(message.contains("128"), "{key}: {message}");
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
}

#[test]
fn a_store_failure_still_serves_the_upstream_answer_as_bypass() {
    let upstream = FakeUpstream::start(Behaviour::Json(BODY.into()));
    let r = app_for(&upstream)
        .runtime_config(redis_runtime_config(free_port()))
        .start();
    for _ in 0..2 {
        let res = r.get("/api/data/k");
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(x_cache(&res), "bypass");
        assert_eq!(res.text(), BODY);
    }
    assert_eq!(upstream.seen().len(), 2, "nothing could be cached");
}
