//! The input model (the seed's `InputData`) and its strict parser.
//!
//! `{"id": string (1–256 characters), "value": unsigned integer ≤ 4294967295,
//! "timestamp": unsigned integer}`. Unknown fields are ignored; a field given
//! twice is an error.
//!
//! Each number is checked as written, via `serde_json::value::RawValue`:
//! `-1`, `1.0`, `1.5`, `1e3` and anything above the field's maximum are 422
//! (`out_of_range`), while a string, bool, null, object or array where a
//! number belongs is 400 (`invalid_type`). Parsing into `f64` first would
//! accept `1e3` and `1.0` and lose precision above 2^53.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::AppError;

/// The largest accepted `value` (the seed's u32 range).
pub const MAX_VALUE: u64 = u32::MAX as u64;
/// `id` length bounds, in characters.
pub const ID_MIN_CHARS: usize = 1;
pub const ID_MAX_CHARS: usize = 256;

/// One item to process. Serialises back to canonical JSON
/// `{"id","value","timestamp"}` (what the router sends the processor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub id: String,
    pub value: u64,
    pub timestamp: u64,
}

impl Item {
    /// Canonical JSON of the item.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The JSON type of a raw value, from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl JsonKind {
    /// Classifies valid JSON text.
    pub fn of(raw: &str) -> JsonKind {
        match raw.trim_start().as_bytes().first() {
            Some(b'{') => JsonKind::Object,
            Some(b'[') => JsonKind::Array,
            Some(b'"') => JsonKind::String,
            Some(b't' | b'f') => JsonKind::Bool,
            Some(b'n') => JsonKind::Null,
            _ => JsonKind::Number,
        }
    }

    /// "a string", "null"… for messages.
    pub fn described(self) -> &'static str {
        match self {
            JsonKind::Object => "an object",
            JsonKind::Array => "an array",
            JsonKind::String => "a string",
            JsonKind::Number => "a number",
            JsonKind::Bool => "a boolean",
            JsonKind::Null => "null",
        }
    }
}

/// The body as UTF-8 text (400 `invalid_utf8` otherwise).
pub fn body_text(body: &[u8]) -> Result<&str, AppError> {
    std::str::from_utf8(body).map_err(|_| AppError::InvalidUtf8)
}

/// The body as one JSON value (400 `malformed_json` otherwise).
pub fn parse_json(body: &[u8]) -> Result<&RawValue, AppError> {
    let text = body_text(body)?;
    serde_json::from_str::<&RawValue>(text).map_err(|e| AppError::MalformedJson {
        detail: e.to_string(),
    })
}

/// Parses a `POST /api/process` body.
pub fn parse_item(body: &[u8]) -> Result<Item, AppError> {
    item_from_raw(parse_json(body)?, "body")
}

/// Parses a batch body: a JSON array of at most `max_items` raw items, each
/// to be parsed on its own with [`item_from_raw`].
pub fn parse_batch(body: &[u8], max_items: usize) -> Result<Vec<&RawValue>, AppError> {
    let raw = parse_json(body)?;
    let kind = JsonKind::of(raw.get());
    if kind != JsonKind::Array {
        return Err(AppError::InvalidType {
            field: "body".into(),
            expected: "a JSON array of items",
            found: kind.described(),
        });
    }
    let items: Vec<&RawValue> =
        serde_json::from_str(raw.get()).map_err(|e| AppError::MalformedJson {
            detail: e.to_string(),
        })?;
    if items.len() > max_items {
        return Err(AppError::BatchTooLarge {
            items: items.len(),
            max: max_items,
        });
    }
    Ok(items)
}

/// Parses one item from raw JSON; `what` names it in messages ("body").
pub fn item_from_raw(raw: &RawValue, what: &str) -> Result<Item, AppError> {
    let kind = JsonKind::of(raw.get());
    if kind != JsonKind::Object {
        return Err(AppError::InvalidType {
            field: what.into(),
            expected: "a JSON object with `id`, `value` and `timestamp`",
            found: kind.described(),
        });
    }
    let fields: RawFields<'_> =
        serde_json::from_str(raw.get()).map_err(|e| match e.classify() {
            // Only our own visitor reports data errors: a duplicate field.
            serde_json::error::Category::Data => AppError::DuplicateField {
                field: duplicate_name(&e.to_string()),
            },
            _ => AppError::MalformedJson {
                detail: e.to_string(),
            },
        })?;

    let id_raw = fields.id.ok_or(AppError::MissingField {
        field: "id",
        expected: ID_EXPECTED,
    })?;
    let value_raw = fields.value.ok_or(AppError::MissingField {
        field: "value",
        expected: VALUE_EXPECTED,
    })?;
    let timestamp_raw = fields.timestamp.ok_or(AppError::MissingField {
        field: "timestamp",
        expected: TIMESTAMP_EXPECTED,
    })?;

    let id = parse_id(id_raw)?;
    let value = parse_unsigned("value", value_raw.get(), MAX_VALUE, VALUE_EXPECTED)?;
    let timestamp = parse_unsigned(
        "timestamp",
        timestamp_raw.get(),
        u64::MAX,
        TIMESTAMP_EXPECTED,
    )?;
    Ok(Item {
        id,
        value,
        timestamp,
    })
}

const ID_EXPECTED: &str = "a string of 1 to 256 characters";
const VALUE_EXPECTED: &str = "an unsigned integer from 0 to 4294967295 (e.g. 150)";
const TIMESTAMP_EXPECTED: &str = "an unsigned integer (unix seconds, e.g. 1700000000)";

fn parse_id(raw: &RawValue) -> Result<String, AppError> {
    let kind = JsonKind::of(raw.get());
    if kind != JsonKind::String {
        return Err(AppError::InvalidType {
            field: "id".into(),
            expected: ID_EXPECTED,
            found: kind.described(),
        });
    }
    let id: String = serde_json::from_str(raw.get()).map_err(|e| AppError::MalformedJson {
        detail: e.to_string(),
    })?;
    let chars = id.chars().count();
    if !(ID_MIN_CHARS..=ID_MAX_CHARS).contains(&chars) {
        return Err(AppError::InvalidLength {
            field: "id",
            min: ID_MIN_CHARS,
            max: ID_MAX_CHARS,
            actual: chars,
        });
    }
    Ok(id)
}

/// Parses a JSON number token as an unsigned integer in `0..=max`, rejecting
/// every other spelling of a number.
pub fn parse_unsigned(
    field: &str,
    token: &str,
    max: u64,
    expected: &'static str,
) -> Result<u64, AppError> {
    let token = token.trim();
    let kind = JsonKind::of(token);
    if kind != JsonKind::Number {
        return Err(AppError::InvalidType {
            field: field.into(),
            expected,
            found: kind.described(),
        });
    }
    let out_of_range = |reason: String| AppError::OutOfRange {
        field: field.into(),
        reason,
    };
    if token.starts_with('-') {
        return Err(out_of_range(format!(
            "must not be negative (got {token}); send an unsigned integer"
        )));
    }
    if token.contains(['e', 'E']) {
        return Err(out_of_range(format!(
            "must be written as plain digits, not in exponent form (got {token})"
        )));
    }
    if token.contains('.') {
        return Err(out_of_range(format!(
            "must be a whole number without a fraction (got {token})"
        )));
    }
    match token.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(out_of_range(format!("must be at most {max} (got {token})"))),
    }
}

/// The three fields as raw JSON, with duplicates detected (serde's derived
/// `Option` fields would read `null` as absent and keep the last duplicate).
#[derive(Default)]
struct RawFields<'a> {
    id: Option<&'a RawValue>,
    value: Option<&'a RawValue>,
    timestamp: Option<&'a RawValue>,
}

const DUPLICATE_PREFIX: &str = "duplicate field `";

fn duplicate_name(message: &str) -> String {
    message
        .split_once(DUPLICATE_PREFIX)
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .unwrap_or_else(|| "?".into())
}

impl<'de: 'a, 'a> Deserialize<'de> for RawFields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for FieldsVisitor<'a> {
            type Value = RawFields<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut out = RawFields::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "id" => &mut out.id,
                        "value" => &mut out.value,
                        "timestamp" => &mut out.timestamp,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "{DUPLICATE_PREFIX}{key}`"
                        )));
                    }
                    *slot = Some(map.next_value::<&'de RawValue>()?);
                }
                Ok(out)
            }
        }

        deserializer.deserialize_map(FieldsVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(body: &str) -> AppError {
        parse_item(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_valid_body_parses() {
        let item = parse_item(br#"{"id":"a-1","value":150,"timestamp":1700000000}"#).unwrap();
        assert_eq!(
            item,
            Item {
                id: "a-1".into(),
                value: 150,
                timestamp: 1_700_000_000
            }
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert!(
            parse_item(br#"{"id":"a","value":1,"timestamp":2,"extra":[1,{"x":null}]}"#).is_ok()
        );
    }

    #[test]
    fn whitespace_around_tokens_is_fine() {
        assert!(parse_item(b" { \"id\" : \"a\" , \"value\" : 1 , \"timestamp\" : 2 } \n").is_ok());
    }

    #[test]
    fn invalid_utf8_is_400_invalid_utf8() {
        let e = parse_item(b"{\"id\":\"\xff\",\"value\":1,\"timestamp\":1}").unwrap_err();
        assert_eq!((e.status(), e.code()), (400, "invalid_utf8"));
    }

    #[test]
    fn malformed_json_is_400() {
        for body in ["", "{", "{\"id\":}", "nope", "{\"id\":\"a\",}", "{} {}"] {
            let e = err(body);
            assert_eq!((e.status(), e.code()), (400, "malformed_json"), "{body:?}");
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_is_400_invalid_type() {
        for body in ["[]", "1", "\"x\"", "null", "true"] {
            let e = err(body);
            assert_eq!((e.status(), e.code()), (400, "invalid_type"), "{body:?}");
        }
    }

    #[test]
    fn each_missing_field_is_named() {
        for (body, field) in [
            (r#"{"value":1,"timestamp":1}"#, "`id`"),
            (r#"{"id":"a","timestamp":1}"#, "`value`"),
            (r#"{"id":"a","value":1}"#, "`timestamp`"),
        ] {
            let e = err(body);
            assert_eq!((e.status(), e.code()), (400, "missing_field"));
            assert!(e.message().contains(field), "{}", e.message());
        }
    }

    #[test]
    fn wrong_types_are_400_naming_the_field() {
        for (body, field) in [
            (r#"{"id":1,"value":1,"timestamp":1}"#, "`id`"),
            (r#"{"id":null,"value":1,"timestamp":1}"#, "`id`"),
            (r#"{"id":"a","value":"1","timestamp":1}"#, "`value`"),
            (r#"{"id":"a","value":true,"timestamp":1}"#, "`value`"),
            (r#"{"id":"a","value":null,"timestamp":1}"#, "`value`"),
            (r#"{"id":"a","value":{},"timestamp":1}"#, "`value`"),
            (r#"{"id":"a","value":[1],"timestamp":1}"#, "`value`"),
            (r#"{"id":"a","value":1,"timestamp":"now"}"#, "`timestamp`"),
        ] {
            let e = err(body);
            assert_eq!((e.status(), e.code()), (400, "invalid_type"), "{body}");
            assert!(e.message().contains(field), "{}", e.message());
        }
    }

    #[test]
    fn out_of_range_numbers_are_422() {
        for value in [
            "-1",
            "-0",
            "1.5",
            "1.0",
            "1e3",
            "1E3",
            "4294967296",
            "18446744073709551616",
            "100000000000000000000000000",
        ] {
            let body = format!(r#"{{"id":"a","value":{value},"timestamp":1}}"#);
            let e = err(&body);
            assert_eq!((e.status(), e.code()), (422, "out_of_range"), "{value}");
            assert!(e.message().contains("`value`"));
        }
    }

    #[test]
    fn the_exponent_form_is_named_as_such() {
        let e = err(r#"{"id":"a","value":1e3,"timestamp":1}"#);
        assert!(e.message().contains("exponent"), "{}", e.message());
    }

    #[test]
    fn value_bounds_are_inclusive() {
        assert_eq!(
            parse_item(br#"{"id":"a","value":4294967295,"timestamp":18446744073709551615}"#)
                .unwrap()
                .value,
            MAX_VALUE
        );
        assert!(parse_item(br#"{"id":"a","value":0,"timestamp":0}"#).is_ok());
    }

    #[test]
    fn a_timestamp_beyond_u64_is_422() {
        let e = err(r#"{"id":"a","value":1,"timestamp":18446744073709551616}"#);
        assert_eq!((e.status(), e.code()), (422, "out_of_range"));
        assert!(e.message().contains("`timestamp`"));
    }

    #[test]
    fn id_length_is_counted_in_characters() {
        let ok = format!(r#"{{"id":"{}","value":1,"timestamp":1}}"#, "é".repeat(256));
        assert!(parse_item(ok.as_bytes()).is_ok());
        let long = format!(r#"{{"id":"{}","value":1,"timestamp":1}}"#, "a".repeat(257));
        let e = parse_item(long.as_bytes()).unwrap_err();
        assert_eq!((e.status(), e.code()), (422, "invalid_length"));
        let e = err(r#"{"id":"","value":1,"timestamp":1}"#);
        assert_eq!((e.status(), e.code()), (422, "invalid_length"));
    }

    #[test]
    fn escaped_ids_are_unescaped() {
        let item = parse_item(br#"{"id":"a\"b\u00e9","value":1,"timestamp":1}"#).unwrap();
        assert_eq!(item.id, "a\"bé");
    }

    #[test]
    fn a_duplicate_field_is_400_naming_it() {
        let e = err(r#"{"id":"a","value":1,"value":2,"timestamp":1}"#);
        assert_eq!((e.status(), e.code()), (400, "duplicate_field"));
        assert!(e.message().contains("`value`"), "{}", e.message());
    }

    #[test]
    fn a_batch_must_be_an_array() {
        let e = parse_batch(br#"{"id":"a"}"#, 10).unwrap_err();
        assert_eq!((e.status(), e.code()), (400, "invalid_type"));
    }

    #[test]
    fn a_batch_over_the_maximum_is_422() {
        let e = parse_batch(b"[1,2,3]", 2).unwrap_err();
        assert_eq!((e.status(), e.code()), (422, "batch_too_large"));
        assert_eq!(parse_batch(b"[1,2]", 2).unwrap().len(), 2);
        assert_eq!(parse_batch(b"[]", 2).unwrap().len(), 0);
    }

    #[test]
    fn a_malformed_batch_is_400() {
        let e = parse_batch(b"[1,", 2).unwrap_err();
        assert_eq!(e.code(), "malformed_json");
    }

    #[test]
    fn canonical_json_round_trips() {
        let item = Item {
            id: "x\"y".into(),
            value: 3,
            timestamp: 4,
        };
        assert_eq!(parse_item(item.to_json().as_bytes()).unwrap(), item);
    }

    proptest! {
        #[test]
        fn any_valid_item_round_trips_through_its_json(
            id in "\\PC{1,256}",
            value in 0u64..=MAX_VALUE,
            timestamp in any::<u64>(),
        ) {
            let item = Item { id, value, timestamp };
            prop_assert_eq!(parse_item(item.to_json().as_bytes()).unwrap(), item);
        }

        #[test]
        fn any_integer_token_is_accepted_exactly_when_in_range(n in any::<u128>()) {
            let body = format!(r#"{{"id":"a","value":{n},"timestamp":1}}"#);
            match parse_item(body.as_bytes()) {
                Ok(item) => { prop_assert!(n <= MAX_VALUE as u128); prop_assert_eq!(item.value as u128, n); }
                Err(e) => { prop_assert!(n > MAX_VALUE as u128); prop_assert_eq!(e.code(), "out_of_range"); }
            }
        }

        #[test]
        fn any_negative_or_fractional_number_is_out_of_range(n in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let token = serde_json::to_string(&n).unwrap();
            let body = format!(r#"{{"id":"a","value":{token},"timestamp":1}}"#);
            // serde_json writes every f64 with a `.` or an exponent, so none is accepted.
            let e = parse_item(body.as_bytes()).unwrap_err();
            prop_assert_eq!(e.code(), "out_of_range");
        }

        #[test]
        fn the_parser_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Err(e) = parse_item(&body) {
                prop_assert!(e.status() == 400 || e.status() == 422);
            }
        }

        #[test]
        fn the_parser_never_panics_on_json_like_text(body in "[{}\\[\\]\":,0-9a-z.eE+ -]{0,80}") {
            if let Err(e) = parse_item(body.as_bytes()) {
                prop_assert!(e.status() == 400 || e.status() == 422);
            }
        }
    }
}
