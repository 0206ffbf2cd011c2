//! Cache keys in the key-value store.
//!
//! Namespaces, so that a purge or an entry count never touches the counters:
//! - `p:<sha256 hex>`: a `/api/process` answer;
//! - `d:<key>`: an upstream `/api/data/{key}` answer (the key is already
//!   restricted to `[A-Za-z0-9._-]{1,128}`, so it is used as is);
//! - `stats:<name>`: the sampled counters (see [`crate::stats`]).
//!
//! All keys stay under Spin's documented 256-byte key limit.

use crate::input::Item;
use crate::rule::Rule;
use crate::sha256;

pub const PROCESS_PREFIX: &str = "p:";
pub const DATA_PREFIX: &str = "d:";
pub const STATS_PREFIX: &str = "stats:";

/// The digest identifying one `/api/process` answer: SHA-256 over the input
/// and the rule's parameters (so a changed threshold or multiplier never
/// serves an answer computed under the old rule). 64 lower-case hex chars.
pub fn process_digest(item: &Item, rule: &Rule) -> String {
    // A JSON array is an injective encoding: no two inputs share a preimage.
    let canonical = serde_json::to_string(&(
        "edge-processor/process/v1",
        &item.id,
        item.value,
        item.timestamp,
        rule.threshold,
        rule.multiplier,
    ))
    .unwrap_or_default();
    sha256::hex(&sha256::digest(canonical.as_bytes()))
}

/// Whether `s` looks like a [`process_digest`] (the cache's internal API
/// checks this before using it as part of a key).
pub fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The store key of a `/api/process` answer.
pub fn process_entry_key(digest: &str) -> String {
    format!("{PROCESS_PREFIX}{digest}")
}

/// The store key of an upstream answer for a (validated) data key.
pub fn data_entry_key(data_key: &str) -> String {
    format!("{DATA_PREFIX}{data_key}")
}

/// Whether a store key is a cache entry (as opposed to a counter).
pub fn is_entry_key(key: &str) -> bool {
    key.starts_with(PROCESS_PREFIX) || key.starts_with(DATA_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, value: u64, timestamp: u64) -> Item {
        Item {
            id: id.into(),
            value,
            timestamp,
        }
    }

    const RULE: Rule = Rule {
        threshold: 100,
        multiplier: 2,
    };

    #[test]
    fn the_same_input_gives_the_same_key() {
        assert_eq!(
            process_digest(&item("a", 1, 2), &RULE),
            process_digest(&item("a", 1, 2), &RULE)
        );
    }

    #[test]
    fn any_changed_field_or_rule_changes_the_key() {
        let base = process_digest(&item("a", 1, 2), &RULE);
        assert_ne!(base, process_digest(&item("b", 1, 2), &RULE));
        assert_ne!(base, process_digest(&item("a", 3, 2), &RULE));
        assert_ne!(base, process_digest(&item("a", 1, 3), &RULE));
        let other = Rule {
            threshold: 100,
            multiplier: 3,
        };
        assert_ne!(base, process_digest(&item("a", 1, 2), &other));
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        // "a1" + 2 vs "a" + 12 must not collide.
        assert_ne!(
            process_digest(&item("a1", 2, 0), &RULE),
            process_digest(&item("a", 12, 0), &RULE)
        );
    }

    #[test]
    fn keys_fit_spins_256_byte_limit() {
        let long = item(&"é".repeat(256), u32::MAX as u64, u64::MAX);
        let digest = process_digest(&long, &RULE);
        assert!(is_digest(&digest));
        assert!(process_entry_key(&digest).len() <= 256);
        assert!(data_entry_key(&"a".repeat(128)).len() <= 256);
    }

    #[test]
    fn counters_are_not_entries() {
        assert!(is_entry_key("p:abc"));
        assert!(is_entry_key("d:abc"));
        assert!(!is_entry_key("stats:hits"));
    }

    #[test]
    fn only_lowercase_hex_of_length_64_is_a_digest() {
        assert!(is_digest(&"a".repeat(64)));
        assert!(!is_digest(&"A".repeat(64)));
        assert!(!is_digest(&"a".repeat(63)));
        assert!(!is_digest("../../etc"));
    }
}
