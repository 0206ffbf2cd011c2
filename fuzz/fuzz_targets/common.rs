//! Checks shared by the parser targets: what an accepted item and a
//! rejection must look like, as documented in docs/openapi.yaml.

#![allow(dead_code)]

use edge_core::AppError;
use edge_core::input::{ID_MAX_CHARS, ID_MIN_CHARS, Item, MAX_VALUE, parse_item};
use serde_json::Value;

/// The 400/422 codes the processing routes document for a body (schema
/// `Error`, responses `BadRequest` and `Unprocessable`).
pub const BODY_CODES: &[(&str, u16)] = &[
    ("malformed_json", 400),
    ("invalid_utf8", 400),
    ("invalid_type", 400),
    ("missing_field", 400),
    ("duplicate_field", 400),
    ("out_of_range", 422),
    ("invalid_length", 422),
    ("batch_too_large", 422),
    ("result_overflow", 422),
];

/// An accepted item is within the documented bounds, and so is its
/// canonical JSON (what the router sends the processor), which parses back
/// to the same item.
pub fn check_item(item: &Item) {
    let chars = item.id.chars().count();
    assert!(
        (ID_MIN_CHARS..=ID_MAX_CHARS).contains(&chars),
        "accepted id of {chars} characters"
    );
    assert!(item.value <= MAX_VALUE, "accepted value {}", item.value);

    let json = item.to_json();
    let v: Value = serde_json::from_str(&json).expect("the canonical JSON is JSON");
    let obj = v.as_object().expect("the canonical JSON is an object");
    assert_eq!(obj.len(), 3, "canonical JSON {json}");
    let id = obj["id"].as_str().expect("id is a string");
    assert_eq!(id, item.id);
    assert!((ID_MIN_CHARS..=ID_MAX_CHARS).contains(&id.chars().count()));
    let value = obj["value"].as_u64().expect("value is an unsigned integer");
    assert!(value <= MAX_VALUE);
    assert_eq!(value, item.value);
    assert_eq!(obj["timestamp"].as_u64(), Some(item.timestamp));

    let again = parse_item(json.as_bytes()).expect("the canonical JSON is accepted");
    assert_eq!(
        &again, item,
        "re-serialised item does not round-trip: {json}"
    );
}

/// When the body also parses as a plain `serde_json::Value` (it may not:
/// `Value` has a nesting limit the item parser does not need), the accepted
/// item is exactly the body's three fields, with the numbers written as
/// plain unsigned integers.
pub fn check_item_against_value(item: &Item, body: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let obj = v.as_object().expect("an accepted body is a JSON object");
    assert_eq!(
        obj.get("id").and_then(Value::as_str),
        Some(item.id.as_str())
    );
    assert_eq!(obj.get("value").and_then(Value::as_u64), Some(item.value));
    assert_eq!(
        obj.get("timestamp").and_then(Value::as_u64),
        Some(item.timestamp)
    );
}

/// A rejection is one of the documented body errors, with its documented
/// status, and its JSON is the one error shape.
pub fn check_error(e: &AppError, allowed: &[&str]) {
    let code = e.code();
    assert!(
        allowed.contains(&code),
        "undocumented code {code} here: {e}"
    );
    let status = BODY_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, s)| *s)
        .unwrap();
    assert_eq!(e.status(), status, "{e}");
    if let AppError::DuplicateField { field } = e {
        assert!(
            ["id", "value", "timestamp"].contains(&field.as_str()),
            "duplicate_field names {field:?}"
        );
    }
    check_error_json(&e.to_json("fuzz-rid"), code, None);
}

/// `{"error":{"code","message","request_id"}}` and nothing else.
pub fn check_error_json(json: &str, code: &str, message_prefix: Option<&str>) {
    let v: Value = serde_json::from_str(json).expect("the error body is JSON");
    let outer = v.as_object().expect("error body is an object");
    assert_eq!(outer.len(), 1, "{json}");
    let inner = outer["error"].as_object().expect("`error` is an object");
    assert_eq!(inner.len(), 3, "{json}");
    assert_eq!(inner["code"].as_str(), Some(code));
    assert_eq!(inner["request_id"].as_str(), Some("fuzz-rid"));
    let message = inner["message"].as_str().expect("message is a string");
    assert!(!message.is_empty());
    if let Some(prefix) = message_prefix {
        assert!(message.starts_with(prefix), "{message:?} lacks {prefix:?}");
    }
}
