//! `POST /api/process`: arbitrary bytes into the item parser. It must never
//! panic; what it accepts must satisfy the documented bounds (and so must the
//! re-serialised item the router forwards); what it rejects must be one of
//! the documented 400/422 errors.

#![no_main]

#[path = "common.rs"]
mod common;

use edge_core::input::parse_item;
use libfuzzer_sys::fuzz_target;

const ITEM_CODES: &[&str] = &[
    "malformed_json",
    "invalid_utf8",
    "invalid_type",
    "missing_field",
    "duplicate_field",
    "out_of_range",
    "invalid_length",
];

fuzz_target!(|data: &[u8]| {
    match parse_item(data) {
        Ok(item) => {
            assert!(std::str::from_utf8(data).is_ok(), "accepted invalid UTF-8");
            common::check_item(&item);
            common::check_item_against_value(&item, data);
        }
        Err(e) => {
            if std::str::from_utf8(data).is_err() {
                assert_eq!(e.code(), "invalid_utf8");
            }
            common::check_error(&e, ITEM_CODES);
        }
    }
});
