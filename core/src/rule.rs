//! The processing rule and the answer it produces.
//!
//! `value > threshold` → `processed`, result `value × multiplier`; otherwise
//! `skipped`, result `value`. The product is computed in u64 with
//! `checked_mul`: an overflow is a 422, never a wrap-around (the seed's u32
//! code wrapped silently).

use serde::Serialize;

use crate::error::AppError;
use crate::input::Item;

/// The `source` field of every answer.
pub const SOURCE: &str = "rust-wasm";

/// The rule's parameters (variables `threshold` and `multiplier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub threshold: u64,
    /// Never zero (the configuration rejects it).
    pub multiplier: u64,
}

/// Whether the rule changed the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Processed,
    Skipped,
}

/// The answer for one item, serialised in this field order:
/// `{"id","status","result","source","processed_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub id: String,
    pub status: Status,
    pub result: u64,
    pub source: &'static str,
    /// Unix seconds when the item was processed.
    pub processed_at: u64,
}

impl Outcome {
    /// The answer's JSON.
    pub fn to_json(&self) -> String {
        // Plain strings and integers: serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Rule {
    /// Applies the rule to `item`, stamping the answer with `now` (unix
    /// seconds).
    pub fn apply(&self, item: &Item, now: u64) -> Result<Outcome, AppError> {
        let (status, result) = if item.value > self.threshold {
            let product =
                item.value
                    .checked_mul(self.multiplier)
                    .ok_or(AppError::ResultOverflow {
                        value: item.value,
                        multiplier: self.multiplier,
                    })?;
            (Status::Processed, product)
        } else {
            (Status::Skipped, item.value)
        };
        Ok(Outcome {
            id: item.id.clone(),
            status,
            result,
            source: SOURCE,
            processed_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(value: u64) -> Item {
        Item {
            id: "a".into(),
            value,
            timestamp: 1,
        }
    }

    const RULE: Rule = Rule {
        threshold: 100,
        multiplier: 2,
    };

    #[test]
    fn a_value_above_the_threshold_is_multiplied() {
        let out = RULE.apply(&item(150), 42).unwrap();
        assert_eq!(out.status, Status::Processed);
        assert_eq!(out.result, 300);
        assert_eq!(out.processed_at, 42);
        assert_eq!(out.source, "rust-wasm");
    }

    #[test]
    fn a_value_equal_to_the_threshold_is_skipped() {
        let out = RULE.apply(&item(100), 0).unwrap();
        assert_eq!(out.status, Status::Skipped);
        assert_eq!(out.result, 100);
    }

    #[test]
    fn the_largest_value_does_not_wrap_like_the_seed_did() {
        // The seed computed this in u32 and returned 4294967294.
        let out = RULE.apply(&item(u32::MAX as u64), 0).unwrap();
        assert_eq!(out.result, 8_589_934_590);
    }

    #[test]
    fn an_overflowing_product_is_a_422() {
        let rule = Rule {
            threshold: 0,
            multiplier: u64::MAX,
        };
        let err = rule.apply(&item(2), 0).unwrap_err();
        assert_eq!(err.status(), 422);
        assert_eq!(err.code(), "result_overflow");
    }

    #[test]
    fn the_answer_serialises_in_the_documented_field_order() {
        let json = RULE.apply(&item(150), 7).unwrap().to_json();
        assert_eq!(
            json,
            r#"{"id":"a","status":"processed","result":300,"source":"rust-wasm","processed_at":7}"#
        );
    }

    proptest! {
        #[test]
        fn the_rule_matches_its_definition(
            value in 0u64..=u32::MAX as u64,
            threshold in any::<u64>(),
            multiplier in 1u64..=u64::MAX,
            now in any::<u64>(),
        ) {
            let rule = Rule { threshold, multiplier };
            match rule.apply(&item(value), now) {
                Ok(out) => {
                    prop_assert_eq!(out.processed_at, now);
                    if value > threshold {
                        prop_assert_eq!(out.status, Status::Processed);
                        prop_assert_eq!(out.result as u128, value as u128 * multiplier as u128);
                    } else {
                        prop_assert_eq!(out.status, Status::Skipped);
                        prop_assert_eq!(out.result, value);
                    }
                }
                Err(e) => {
                    prop_assert!(value > threshold);
                    prop_assert!(value as u128 * multiplier as u128 > u64::MAX as u128);
                    prop_assert_eq!(e.code(), "result_overflow");
                }
            }
        }

        #[test]
        fn the_default_multiplier_never_overflows_a_valid_value(value in 0u64..=u32::MAX as u64) {
            prop_assert!(RULE.apply(&item(value), 0).is_ok());
        }
    }
}
