//! The API's conventions, route by route: health, unknown routes (404),
//! wrong methods (405 with `Allow`), and `x-request-id` on every answer.

use crate::fixtures::{
    ADMIN_TOKEN, App, assert_api_response, assert_error, free_port, is_sane_request_id, item,
    process, redis_runtime_config,
};
use crate::helpers::{Response, Runner};

#[test]
fn health_is_200_with_status_version_and_store() {
    let r = Runner::app();
    let res = r.get("/api/health");
    assert_eq!(res.status, 200, "{}", res.text());
    let body = assert_api_response(&res);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["store"], "ok", "SQLite is always there");
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
}

#[test]
fn health_says_the_store_is_unavailable_when_redis_is_down_and_processing_still_works() {
    let r = App::new()
        .runtime_config(redis_runtime_config(free_port()))
        .start();
    let res = r.get("/api/health");
    assert_eq!(res.status, 200, "{}", res.text());
    let body = assert_api_response(&res);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["store"], "unavailable");

    let res = process(&r, &item("still-works", 150, 1));
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["result"], 300);
}

#[test]
fn unknown_routes_are_404_not_found() {
    let r = Runner::app();
    for path in [
        "/",
        "/api",
        "/api/",
        "/api/health/",
        "/api/processes",
        "/api/data",
        "/API/health",
        "/favicon.ico",
        "/api/cache/stats/extra",
    ] {
        let res = r.get(path);
        assert_error(&res, 404, "not_found");
    }
    let res = process_at(&r, "/api/process/other");
    assert_error(&res, 404, "not_found");
}

fn process_at(r: &Runner, path: &str) -> Response {
    r.post_json(path, &item("a", 1, 1))
}

#[test]
fn a_wrong_method_is_405_with_an_allow_header_naming_the_right_one() {
    let r = App::new().admin().start();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    for (method, path, allow) in [
        ("POST", "/api/health", "GET"),
        ("DELETE", "/api/health", "GET"),
        ("GET", "/api/process", "POST"),
        ("PUT", "/api/process", "POST"),
        ("GET", "/api/process/batch", "POST"),
        ("DELETE", "/api/data/abc", "GET"),
        ("POST", "/api/data/abc", "GET"),
        ("POST", "/api/cache/stats", "GET"),
        ("GET", "/api/cache", "DELETE"),
        ("PATCH", "/api/cache", "DELETE"),
    ] {
        // With the admin token too: the method is checked before anything else.
        let res = r.request(method, path, &[("authorization", auth.as_str())], b"");
        let message = assert_error(&res, 405, "method_not_allowed");
        assert_eq!(res.header("allow"), Some(allow), "{method} {path}");
        assert!(message.contains(allow), "{message}");
    }
}

#[test]
fn a_sane_request_id_is_echoed_on_successes_and_errors() {
    let r = Runner::app();
    let max = "a".repeat(128);
    for rid in ["abc-123_x.y", "A", max.as_str()] {
        let res = r.request("GET", "/api/health", &[("x-request-id", rid)], b"");
        assert_eq!(res.header("x-request-id"), Some(rid));

        let res = r.request(
            "POST",
            "/api/process",
            &[("x-request-id", rid), ("content-type", "application/json")],
            b"{",
        );
        assert_error(&res, 400, "malformed_json");
        assert_eq!(res.header("x-request-id"), Some(rid));
        assert_eq!(res.json()["error"]["request_id"], rid);
    }
}

#[test]
fn an_oversized_or_insane_request_id_is_replaced_and_never_echoed() {
    let r = Runner::app();
    let oversized = "a".repeat(129);
    let mut seen = Vec::new();
    for bad in [
        oversized.as_str(),
        "has space",
        "<script>alert(1)</script>",
        "quote\"d",
        "semi;colon",
        "slash/ed",
        "caf\u{e9}",
        "",
    ] {
        let res = r.request(
            "POST",
            "/api/process",
            &[("x-request-id", bad), ("content-type", "text/plain")],
            b"{}",
        );
        assert_error(&res, 415, "unsupported_media_type");
        let rid = res
            .header("x-request-id")
            .expect("x-request-id")
            .to_string();
        assert_ne!(rid, bad);
        assert!(
            is_uuid_v4(&rid),
            "a generated id looks like a UUID v4: {rid}"
        );
        assert!(
            bad.is_empty() || !res.text().contains(bad),
            "the insane id {bad:?} is not echoed in {}",
            res.text()
        );
        seen.push(rid);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8, "every generated id is new");
}

#[test]
fn every_answer_has_a_generated_request_id_when_none_is_sent() {
    let r = Runner::app();
    for res in [
        r.get("/api/health"),
        r.get("/nope"),
        r.get("/api/process"),
        r.get("/api/data/x"),
        r.get("/api/cache/stats"),
        process(&r, &item("a", 1, 1)),
    ] {
        let rid = res.header("x-request-id").expect("x-request-id");
        assert!(is_uuid_v4(rid), "{rid}");
        assert!(is_sane_request_id(rid));
        assert_api_response(&res);
    }
}

#[test]
fn the_router_logs_one_access_line_per_request_with_the_request_id() {
    let r = Runner::app();
    let res = r.request(
        "POST",
        "/api/process?debug=1",
        &[
            ("x-request-id", "log-line-check"),
            ("content-type", "application/json"),
        ],
        item("logged", 150, 1).as_bytes(),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let line = crate::fixtures::wait_for_log(&r, &["\"request_id\":\"log-line-check\""]);
    let json = line
        .split_once('{')
        .map(|(_, rest)| format!("{{{rest}"))
        .expect("a JSON access line");
    let entry: serde_json::Value = serde_json::from_str(&json).expect("access line is JSON");
    assert_eq!(entry["method"], "POST");
    assert_eq!(entry["path"], "/api/process", "the query is not logged");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["cache"], "miss");
    assert!(entry["duration_us"].is_u64(), "{entry}");
    let count = r
        .output()
        .lines()
        .filter(|l| l.contains("\"request_id\":\"log-line-check\"") && l.contains("\"method\""))
        .count();
    assert_eq!(count, 1, "one access line per request");
}

fn is_uuid_v4(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        && parts[2].starts_with('4')
        && parts[3].starts_with(['8', '9', 'a', 'b'])
}

#[test]
fn the_private_components_are_unreachable_from_outside() {
    let r = App::new().admin().start();
    let body = item("private", 150, 1);
    assert_eq!(crate::fixtures::x_cache(&process(&r, &body)), "miss");
    // The cache's and the processor's own routes, by path, by Host header
    // and in absolute form: all land on the router, which knows none of
    // them, or are refused before any component as Spin refuses them: a
    // Host naming `*.spin.internal` is dropped, and a request left with no
    // Host, or whose absolute URI differs from its Host, is closed
    // unanswered (Spin's trigger-http server.rs, `set_req_uri`).
    for (method, target, host, answered) in [
        ("GET", "/stats", None, true),
        ("GET", "/health", None, true),
        ("DELETE", "/entries", None, true),
        ("POST", "/process", None, true),
        ("GET", "/stats", Some("cache.spin.internal"), false),
        ("DELETE", "/entries", Some("cache.spin.internal"), false),
        (
            "GET",
            "http://cache.spin.internal/stats",
            Some("cache.spin.internal"),
            true,
        ),
        ("DELETE", "http://cache.spin.internal/entries", None, false),
        (
            "POST",
            "http://processor.spin.internal/process",
            None,
            false,
        ),
    ] {
        let mut raw = format!("{method} {target} HTTP/1.1\r\n");
        raw.push_str(&format!("host: {}\r\n", host.unwrap_or("localhost")));
        raw.push_str(
            "content-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        );
        let bytes = crate::helpers::raw_exchange(
            r.addr,
            raw.as_bytes(),
            std::time::Duration::from_secs(30),
        );
        if answered {
            let res = crate::helpers::parse_response(&bytes).expect("an HTTP response");
            assert_error(&res, 404, "not_found");
        } else {
            assert!(
                bytes.is_empty(),
                "{method} {target}: {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    assert_eq!(
        crate::fixtures::x_cache(&process(&r, &body)),
        "hit",
        "nothing was purged from outside"
    );
}
