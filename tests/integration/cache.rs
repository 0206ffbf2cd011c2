//! The `/api/process` answer cache over time and failure: entries expire
//! after `cache_ttl_seconds`, and a store that fails makes answers
//! `x-cache: bypass` (correct, uncached, logged), never errors.

use std::time::Duration;

use crate::fixtures::{
    App, assert_api_response, first_miss_after_expiry, free_port, item, process,
    redis_runtime_config, wait_for_log, x_cache,
};

#[test]
fn an_entry_expires_after_cache_ttl_seconds_and_is_computed_again() {
    let r = App::new().var("cache_ttl_seconds", 1).start();
    let body = item("ttl", 150, 1);
    let first = process(&r, &body);
    assert_eq!(x_cache(&first), "miss");
    // The clock may be warped: poll until the entry reads as expired rather
    // than sleeping a fixed time.
    let again = first_miss_after_expiry(
        &r,
        &body,
        &first,
        "the entry to expire",
        Duration::from_secs(30),
    );
    let (a, b) = (first.json(), again.json());
    assert_eq!(a["result"], b["result"]);
    assert!(
        b["processed_at"].as_u64() > a["processed_at"].as_u64(),
        "recomputed after expiry: {a} then {b}"
    );
    // And the recomputed answer is cached in turn.
    let third = process(&r, &body);
    if x_cache(&third) == "hit" {
        assert_eq!(third.body, again.body);
    }
}

#[test]
fn a_store_failure_is_a_bypass_with_the_right_body_and_is_logged() {
    let r = App::new()
        .runtime_config(redis_runtime_config(free_port()))
        .start();
    for value in [150, 150, 7] {
        let res = r.request(
            "POST",
            "/api/process",
            &[
                ("content-type", "application/json"),
                ("x-request-id", &format!("bypass-{value}")),
            ],
            item("down", value, 1).as_bytes(),
        );
        assert_eq!(res.status, 200, "never an error: {}", res.text());
        assert_eq!(x_cache(&res), "bypass");
        let body = assert_api_response(&res);
        assert_eq!(body["id"], "down");
        if value > 100 {
            assert_eq!(
                (body["status"].as_str(), body["result"].as_u64()),
                (Some("processed"), Some(300))
            );
        } else {
            assert_eq!(
                (body["status"].as_str(), body["result"].as_u64()),
                (Some("skipped"), Some(7))
            );
        }
    }
    // The cause at its source (the cache's store call) and the consequence
    // (the router's bypass), both under the request id.
    wait_for_log(&r, &["bypass-150", "store"]);
    let line = wait_for_log(&r, &["bypass-150", "x-cache: bypass"]);
    assert!(line.contains("router"), "{line}");
    let access = wait_for_log(&r, &["\"request_id\":\"bypass-7\""]);
    assert!(access.contains("\"cache\":\"bypass\""), "{access}");
}
