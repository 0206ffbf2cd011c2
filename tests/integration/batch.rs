//! `POST /api/process/batch`: same length and order, one bad item fails
//! alone, `max_batch_items`, the empty batch, and a body that is no array.

use serde_json::{Value, json};

use crate::fixtures::{App, assert_api_response, assert_error, batch};
use crate::helpers::Runner;

fn items(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({ "id": format!("item-{i}"), "value": 95 + i as u64, "timestamp": 1 }))
        .collect()
}

#[test]
fn a_batch_keeps_its_order_and_length() {
    let r = Runner::app();
    let input = items(12);
    let res = batch(&r, &Value::Array(input.clone()).to_string());
    assert_eq!(res.status, 200, "{}", res.text());
    let out = assert_api_response(&res);
    let out = out.as_array().expect("an array");
    assert_eq!(out.len(), input.len());
    for (i, (answer, item)) in out.iter().zip(&input).enumerate() {
        assert_eq!(answer["id"], item["id"], "element {i} answers item {i}");
        let value = item["value"].as_u64().unwrap();
        if value > 100 {
            assert_eq!(answer["status"], "processed");
            assert_eq!(answer["result"], value * 2);
        } else {
            assert_eq!(answer["status"], "skipped");
            assert_eq!(answer["result"], value);
        }
        assert_eq!(answer["source"], "rust-wasm");
        assert!(answer["processed_at"].is_u64());
    }
    assert_eq!(res.header("x-cache"), None, "batches are not cached");
}

#[test]
fn a_bad_item_fails_alone_with_its_index_in_the_message() {
    let r = Runner::app();
    let body = json!([
        { "id": "ok-1", "value": 150, "timestamp": 1 },
        { "id": "neg", "value": -1, "timestamp": 1 },
        "not an object",
        { "id": "ok-2", "value": 5, "timestamp": 1 },
        { "value": 1, "timestamp": 1 },
        { "id": "", "value": 1, "timestamp": 1 },
        { "id": "str", "value": "1", "timestamp": 1 },
        { "id": "ok-3", "value": 101, "timestamp": 1 }
    ]);
    let res = r.request(
        "POST",
        "/api/process/batch",
        &[
            ("content-type", "application/json"),
            ("x-request-id", "batch-1"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let out = res.json();
    let out = out.as_array().expect("array");
    assert_eq!(out.len(), 8);
    let expected = [
        (0, None, Some(300)),
        (1, Some("out_of_range"), None),
        (2, Some("invalid_type"), None),
        (3, None, Some(5)),
        (4, Some("missing_field"), None),
        (5, Some("invalid_length"), None),
        (6, Some("invalid_type"), None),
        (7, None, Some(202)),
    ];
    for (i, code, result) in expected {
        let element = &out[i];
        match code {
            Some(code) => {
                let error = element["error"].as_object().unwrap_or_else(|| {
                    panic!("element {i} is an error: {element}");
                });
                assert_eq!(element.as_object().unwrap().len(), 1, "{element}");
                assert_eq!(error["code"], code, "element {i}");
                assert_eq!(error["request_id"], "batch-1");
                let message = error["message"].as_str().unwrap();
                assert!(message.starts_with(&format!("item {i}: ")), "{message}");
            }
            None => {
                assert_eq!(element["result"].as_u64(), result, "element {i}: {element}");
            }
        }
    }
}

#[test]
fn an_item_that_overflows_fails_alone() {
    let r = App::new().var("multiplier", u64::MAX).start();
    let res = batch(
        &r,
        r#"[{"id":"big","value":150,"timestamp":1},{"id":"small","value":3,"timestamp":1}]"#,
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let out = res.json();
    assert_eq!(out[0]["error"]["code"], "result_overflow");
    assert_eq!(out[1]["result"], 3);
}

#[test]
fn an_empty_batch_is_an_empty_array() {
    let r = Runner::app();
    let res = batch(&r, " [ ] ");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(assert_api_response(&res), json!([]));
}

#[test]
fn a_batch_over_max_batch_items_is_422_and_at_the_limit_is_fine() {
    let r = App::new().var("max_batch_items", 5).start();
    let res = batch(&r, &Value::Array(items(5)).to_string());
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json().as_array().map(Vec::len), Some(5));

    let res = batch(&r, &Value::Array(items(6)).to_string());
    let message = assert_error(&res, 422, "batch_too_large");
    assert!(message.contains('6') && message.contains('5'), "{message}");
}

#[test]
fn the_default_limit_is_1000_items() {
    let r = Runner::app();
    let res = batch(&r, &Value::Array(items(1000)).to_string());
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json().as_array().map(Vec::len), Some(1000));
    // Small items, so the 1001-item body stays under max_body_bytes.
    let small: Vec<Value> = (0..1001).map(|_| json!({})).collect();
    let res = batch(&r, &Value::Array(small).to_string());
    assert_error(&res, 422, "batch_too_large");
}

#[test]
fn a_batch_body_that_is_not_an_array_is_400() {
    let r = Runner::app();
    for (body, code) in [
        (r#"{"id":"a","value":1,"timestamp":1}"#, "invalid_type"),
        ("null", "invalid_type"),
        ("[", "malformed_json"),
        ("[1,]", "malformed_json"),
    ] {
        assert_error(&batch(&r, body), 400, code);
    }
    let res = r.request(
        "POST",
        "/api/process/batch",
        &[("content-type", "application/json")],
        b"[\xff]",
    );
    assert_error(&res, 400, "invalid_utf8");
}

#[test]
fn a_batch_needs_json_and_respects_max_body_bytes() {
    let r = App::new().var("max_body_bytes", 256).start();
    let res = r.request(
        "POST",
        "/api/process/batch",
        &[("content-type", "text/csv")],
        b"[]",
    );
    assert_error(&res, 415, "unsupported_media_type");
    let res = batch(&r, &Value::Array(items(20)).to_string());
    assert_error(&res, 413, "payload_too_large");
}
