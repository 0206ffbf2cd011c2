//! `POST /api/process`: the rule, its configuration, and the answer cache
//! (miss, then a byte-identical hit).

use crate::fixtures::{App, assert_api_response, assert_error, item, process, x_cache};
use crate::helpers::Runner;

#[test]
fn a_value_above_the_threshold_is_processed_and_multiplied() {
    let r = Runner::app();
    let res = process(&r, &item("sensor-42", 150, 1_700_000_000));
    assert_eq!(res.status, 200, "{}", res.text());
    let body = assert_api_response(&res);
    assert_eq!(body["id"], "sensor-42");
    assert_eq!(body["status"], "processed");
    assert_eq!(body["result"], 300);
    assert_eq!(body["source"], "rust-wasm");
    assert!(body["processed_at"].is_u64(), "{body}");
    assert_eq!(
        body.as_object().unwrap().len(),
        5,
        "id, status, result, source, processed_at: {body}"
    );
}

#[test]
fn the_threshold_itself_is_skipped_and_one_above_is_processed() {
    let r = Runner::app();
    for (value, status, result) in [
        (0, "skipped", 0u64),
        (99, "skipped", 99),
        (100, "skipped", 100),
        (101, "processed", 202),
        (4_294_967_295, "processed", 8_589_934_590),
    ] {
        let res = process(&r, &item("edge", value, 1));
        assert_eq!(res.status, 200, "{value}: {}", res.text());
        let body = res.json();
        assert_eq!(body["status"], status, "{value}");
        assert_eq!(body["result"], result, "{value}");
        assert_eq!(body["source"], "rust-wasm");
    }
}

#[test]
fn processed_at_is_the_current_unix_time() {
    let r = Runner::app();
    let before = unix_now();
    let res = process(&r, &item("clock", 5, 1));
    let after = unix_now();
    let at = res.json()["processed_at"].as_u64().expect("processed_at");
    assert!(
        before.saturating_sub(5) <= at && at <= after + 5,
        "{before} <= {at} <= {after}"
    );
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_repeated_request_is_a_hit_with_a_byte_identical_body() {
    let r = Runner::app();
    let body = item("cached", 150, 1_700_000_000);
    let first = process(&r, &body);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(x_cache(&first), "miss");
    // Let the clock move on: a recomputed answer would differ in processed_at.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for _ in 0..3 {
        let again = process(&r, &body);
        assert_eq!(again.status, 200);
        assert_eq!(x_cache(&again), "hit");
        assert_eq!(
            again.body, first.body,
            "byte-identical, processed_at included"
        );
        assert_ne!(
            again.header("x-request-id"),
            first.header("x-request-id"),
            "a hit still gets its own request id"
        );
    }
}

#[test]
fn the_same_item_written_differently_is_the_same_cache_entry() {
    let r = Runner::app();
    let first = process(&r, r#"{"id":"same","value":150,"timestamp":7}"#);
    assert_eq!(x_cache(&first), "miss");
    let reordered = process(
        &r,
        r#"  { "timestamp" : 7 , "value":150, "id":"same", "extra": [1, 2] }  "#,
    );
    assert_eq!(reordered.status, 200, "{}", reordered.text());
    assert_eq!(x_cache(&reordered), "hit");
    assert_eq!(reordered.body, first.body);
}

#[test]
fn a_different_input_is_a_miss() {
    let r = Runner::app();
    assert_eq!(x_cache(&process(&r, &item("a", 150, 1))), "miss");
    assert_eq!(x_cache(&process(&r, &item("a", 150, 1))), "hit");
    for other in [item("b", 150, 1), item("a", 151, 1), item("a", 150, 2)] {
        let res = process(&r, &other);
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(x_cache(&res), "miss", "{other}");
    }
}

#[test]
fn threshold_and_multiplier_come_from_variables() {
    let r = App::new().var("threshold", 10).var("multiplier", 5).start();
    let body = process(&r, &item("v", 11, 1)).json();
    assert_eq!(
        (body["status"].as_str(), body["result"].as_u64()),
        (Some("processed"), Some(55))
    );
    let body = process(&r, &item("v", 10, 1)).json();
    assert_eq!(
        (body["status"].as_str(), body["result"].as_u64()),
        (Some("skipped"), Some(10))
    );
}

#[test]
fn threshold_and_multiplier_come_from_spin_variable_environment() {
    let r = App::new()
        .env("SPIN_VARIABLE_THRESHOLD", "1000")
        .env("SPIN_VARIABLE_MULTIPLIER", "3")
        .start();
    let body = process(&r, &item("env", 1000, 1)).json();
    assert_eq!(body["status"], "skipped");
    let body = process(&r, &item("env", 1001, 1)).json();
    assert_eq!(
        (body["status"].as_str(), body["result"].as_u64()),
        (Some("processed"), Some(3003))
    );
}

#[test]
fn a_variable_flag_wins_over_the_environment() {
    let r = App::new()
        .env("SPIN_VARIABLE_MULTIPLIER", "3")
        .var("multiplier", 7)
        .start();
    assert_eq!(process(&r, &item("p", 150, 1)).json()["result"], 1050);
}

#[test]
fn a_changed_rule_does_not_serve_answers_cached_under_the_old_one() {
    let first = App::new().var("multiplier", 2).start();
    let body = item("rule", 150, 1);
    assert_eq!(process(&first, &body).json()["result"], 300);
    let dir = crate::fixtures::stop_keeping_dir(first);

    let second = App::new().var("multiplier", 3).start_in(dir);
    let res = process(&second, &body);
    assert_eq!(x_cache(&res), "miss", "the rule is part of the cache key");
    assert_eq!(res.json()["result"], 450);
}

#[test]
fn a_result_that_overflows_is_422_result_overflow() {
    let r = App::new().var("multiplier", u64::MAX).start();
    let message = assert_error(&process(&r, &item("big", 150, 1)), 422, "result_overflow");
    assert!(message.contains("150"), "{message}");
    // Skipped values are not multiplied, so they cannot overflow.
    let res = process(&r, &item("small", 100, 1));
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["result"], 100);
    // The largest value with the largest multiplier that still fits.
    let r = App::new()
        .var("multiplier", u64::MAX / 4_294_967_295)
        .start();
    let res = process(&r, &item("fits", 4_294_967_295, 1));
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json()["result"].as_u64(),
        Some(4_294_967_295 * (u64::MAX / 4_294_967_295))
    );
}

#[test]
fn an_invalid_variable_is_a_generic_500_with_the_details_only_in_the_log() {
    let r = App::new().var("multiplier", 0).start();
    let res = r.request(
        "POST",
        "/api/process",
        &[
            ("content-type", "application/json"),
            ("x-request-id", "bad-config"),
        ],
        item("x", 150, 1).as_bytes(),
    );
    let message = assert_error(&res, 500, "internal_error");
    assert!(
        !message.contains("multiplier"),
        "no details to the caller: {message}"
    );
    let line = crate::fixtures::wait_for_log(&r, &["bad-config", "multiplier"]);
    assert!(line.contains("configuration"), "{line}");
    // Health does not depend on the rule.
    assert_eq!(r.get("/api/health").status, 200);
}

#[test]
fn ids_with_any_characters_round_trip_exactly() {
    let r = Runner::app();
    for id in [
        "quote\" backslash\\ slash/",
        "new\nline\ttab",
        "nul\u{0}byte",
        "emoji \u{1f980} and \u{e9}",
        "<script>alert(1)</script>",
        " ",
    ] {
        let res = process(&r, &item(id, 150, 1));
        assert_eq!(res.status, 200, "{id:?}: {}", res.text());
        assert_eq!(res.json()["id"], id);
        let hit = process(&r, &item(id, 150, 1));
        assert_eq!(x_cache(&hit), "hit", "{id:?}");
        assert_eq!(hit.body, res.body);
    }
}

#[test]
fn a_rejected_item_is_not_cached() {
    let r = App::new().var("multiplier", u64::MAX).start();
    for _ in 0..2 {
        let res = process(&r, &item("overflow", 150, 1));
        assert_error(&res, 422, "result_overflow");
        assert_eq!(res.header("x-cache"), None);
    }
}

#[test]
fn concurrent_requests_are_all_answered_consistently() {
    let r = Runner::app();
    let addr = r.addr;
    let answers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..48)
            .map(|i| {
                s.spawn(move || {
                    let body = item(&format!("c{}", i % 4), 150, 1);
                    crate::helpers::request(
                        addr,
                        "POST",
                        "/api/process",
                        &[("content-type", "application/json")],
                        body.as_bytes(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, res) in answers.iter().enumerate() {
        assert_eq!(res.status, 200, "{}", res.text());
        assert!(
            matches!(x_cache(res), "hit" | "miss"),
            "{:?}",
            res.header("x-cache")
        );
        assert_eq!(res.json()["id"], format!("c{}", i % 4));
        assert_eq!(res.json()["result"], 300);
    }
    // Once settled, each item has one cached answer.
    for i in 0..4 {
        let body = item(&format!("c{i}"), 150, 1);
        let a = process(&r, &body);
        let b = process(&r, &body);
        assert_eq!((x_cache(&a), x_cache(&b)), ("hit", "hit"));
        assert_eq!(a.body, b.body);
    }
}
