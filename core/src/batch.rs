//! Batches: each item is parsed and processed on its own, so one bad item
//! yields an `{"error":{…}}` in its slot and does not fail the others.

use serde_json::value::RawValue;

use crate::input::item_from_raw;
use crate::rule::Rule;

/// Processes already-split raw items (see [`crate::input::parse_batch`]) and
/// returns the JSON array of answers, same length and order.
pub fn process_batch(items: &[&RawValue], rule: &Rule, now: u64, request_id: &str) -> String {
    let mut out = String::with_capacity(items.len() * 96 + 2);
    out.push('[');
    for (index, raw) in items.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let answer = item_from_raw(raw, "item").and_then(|item| rule.apply(&item, now));
        match answer {
            Ok(outcome) => out.push_str(&outcome.to_json()),
            Err(e) => out.push_str(&e.to_item_json(index, request_id)),
        }
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::parse_batch;

    const RULE: Rule = Rule {
        threshold: 100,
        multiplier: 2,
    };

    fn run(body: &str) -> serde_json::Value {
        let items = parse_batch(body.as_bytes(), 100).unwrap();
        serde_json::from_str(&process_batch(&items, &RULE, 9, "rid")).unwrap()
    }

    #[test]
    fn answers_keep_the_order_and_length_of_the_batch() {
        let v = run(r#"[{"id":"a","value":150,"timestamp":1},{"id":"b","value":5,"timestamp":1}]"#);
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 2);
        assert_eq!(arr[0]["id"], "a");
        assert_eq!(arr[0]["result"], 300);
        assert_eq!(arr[1]["id"], "b");
        assert_eq!(arr[1]["status"], "skipped");
    }

    #[test]
    fn one_bad_item_does_not_fail_the_others() {
        let v = run(
            r#"[{"id":"a","value":1,"timestamp":1},{"id":"b","value":-1,"timestamp":1},"x",{"id":"c","value":2,"timestamp":1}]"#,
        );
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 4);
        assert_eq!(arr[0]["id"], "a");
        assert_eq!(arr[1]["error"]["code"], "out_of_range");
        assert_eq!(arr[1]["error"]["request_id"], "rid");
        assert!(
            arr[1]["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("item 1: ")
        );
        assert_eq!(arr[2]["error"]["code"], "invalid_type");
        assert_eq!(arr[3]["id"], "c");
    }

    #[test]
    fn an_overflowing_item_is_an_item_error() {
        let rule = Rule {
            threshold: 0,
            multiplier: u64::MAX,
        };
        let items = parse_batch(br#"[{"id":"a","value":2,"timestamp":1}]"#, 1).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&process_batch(&items, &rule, 0, "r")).unwrap();
        assert_eq!(v[0]["error"]["code"], "result_overflow");
    }

    #[test]
    fn an_empty_batch_is_an_empty_array() {
        assert_eq!(process_batch(&[], &RULE, 0, "r"), "[]");
    }
}
