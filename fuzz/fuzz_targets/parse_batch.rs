//! `POST /api/process/batch`: arbitrary bytes into the batch parser (with a
//! small `max_batch_items` taken from the first byte, so the limit is hit),
//! then, when accepted, into the batch processing the processor runs. Never
//! panics; an accepted batch has at most the maximum of items; the answer is
//! a JSON array of the same length and order, each element the item's answer
//! (within bounds) or its own `{"error":{…}}` prefixed `item N: `.

#![no_main]

#[path = "common.rs"]
mod common;

use edge_core::Rule;
use edge_core::batch::process_batch;
use edge_core::input::{item_from_raw, parse_batch};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const BATCH_CODES: &[&str] = &[
    "malformed_json",
    "invalid_utf8",
    "invalid_type",
    "batch_too_large",
];

const ITEM_CODES: &[&str] = &[
    "malformed_json",
    "invalid_type",
    "missing_field",
    "duplicate_field",
    "out_of_range",
    "invalid_length",
    "result_overflow",
];

const MULTIPLIERS: [u64; 4] = [2, 1, 1 << 32, u64::MAX];

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let max_items = usize::from(control & 0x0f);
    let rule = Rule {
        threshold: 100,
        multiplier: MULTIPLIERS[usize::from(control >> 4) & 3],
    };

    let items = match parse_batch(body, max_items) {
        Ok(items) => items,
        Err(e) => {
            common::check_error(&e, BATCH_CODES);
            return;
        }
    };
    assert!(
        items.len() <= max_items,
        "{} items over {max_items}",
        items.len()
    );
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let arr = v.as_array().expect("an accepted batch is a JSON array");
        assert_eq!(arr.len(), items.len());
    }
    // The processor re-parses the same body without the limit.
    assert_eq!(
        parse_batch(body, usize::MAX).map(|i| i.len()),
        Ok(items.len())
    );

    let answer = process_batch(&items, &rule, 1_700_000_000, "fuzz-rid");
    let answers: Value = serde_json::from_str(&answer).expect("the batch answer is JSON");
    let answers = answers.as_array().expect("the batch answer is an array");
    assert_eq!(answers.len(), items.len());

    for (index, (raw, out)) in items.iter().zip(answers).enumerate() {
        match item_from_raw(raw, "item").and_then(|item| {
            common::check_item(&item);
            rule.apply(&item, 1_700_000_000).map(|o| (item, o))
        }) {
            Ok((item, outcome)) => {
                let obj = out.as_object().expect("an answer is an object");
                assert_eq!(obj["id"].as_str(), Some(item.id.as_str()));
                assert_eq!(obj["result"].as_u64(), Some(outcome.result));
                let status = obj["status"].as_str().unwrap();
                assert_eq!(status == "processed", item.value > rule.threshold);
                assert_eq!(obj["source"].as_str(), Some("rust-wasm"));
                assert_eq!(obj["processed_at"].as_u64(), Some(1_700_000_000));
            }
            Err(e) => {
                common::check_error(&e, ITEM_CODES);
                common::check_error_json(
                    &out.to_string(),
                    e.code(),
                    Some(&format!("item {index}: ")),
                );
            }
        }
    }
});
