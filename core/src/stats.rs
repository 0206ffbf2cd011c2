//! Cache statistics, kept without a key-value write on every hit.
//!
//! How they are kept: each hit, miss or stale serve is *sampled* — with
//! probability 1/[`SAMPLE_EVERY`] (decided from a random number) the counter
//! `stats:<name>` is read, increased by [`SAMPLE_EVERY`] and written back.
//! A hit therefore costs a store write only once in [`SAMPLE_EVERY`] on
//! average, and nothing otherwise.
//!
//! How exact they are: each counter is an unbiased estimate (its expected
//! value is the true count) with a standard deviation of about
//! `sqrt(count × (SAMPLE_EVERY − 1))`, e.g. ±~84 after 1000 hits (±8%);
//! the relative error shrinks as traffic grows. Spin's key-value interface
//! has no atomic increment, so two concurrent sampled updates may also lose
//! one of them. The answer says `"approximate": true` for this reason.
//! `entries` is exact at the moment of the call: the number of cache entries
//! in the store, including expired ones not yet evicted.

use serde::Serialize;

use crate::cache_key::STATS_PREFIX;

/// One sampled write per this many events, on average.
pub const SAMPLE_EVERY: u64 = 8;

/// A counted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Hits,
    Misses,
    Stale,
}

impl Counter {
    /// The counter's store key.
    pub fn key(self) -> String {
        let name = match self {
            Counter::Hits => "hits",
            Counter::Misses => "misses",
            Counter::Stale => "stale",
        };
        format!("{STATS_PREFIX}{name}")
    }
}

/// Whether this event is the sampled one, given a uniformly random number.
pub fn is_sampled(random: u64) -> bool {
    random.is_multiple_of(SAMPLE_EVERY)
}

/// Reads a stored counter (absent or unreadable counts as 0).
pub fn decode_count(stored: Option<&[u8]>) -> u64 {
    stored
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The new stored value of a counter after one sampled event.
pub fn bump(stored: Option<&[u8]>) -> Vec<u8> {
    decode_count(stored)
        .saturating_add(SAMPLE_EVERY)
        .to_string()
        .into_bytes()
}

/// The body of `GET /api/cache/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub stale: u64,
    pub entries: u64,
    /// Always true: the counters are sampled (see the module docs).
    pub approximate: bool,
    pub sample_every: u64,
}

impl Stats {
    pub fn new(hits: u64, misses: u64, stale: u64, entries: u64) -> Self {
        Stats {
            hits,
            misses,
            stale,
            entries,
            approximate: true,
            sample_every: SAMPLE_EVERY,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_in_sample_every_is_written() {
        let sampled = (0..SAMPLE_EVERY * 100).filter(|r| is_sampled(*r)).count() as u64;
        assert_eq!(sampled, 100);
    }

    #[test]
    fn a_sampled_event_adds_sample_every() {
        assert_eq!(bump(None), SAMPLE_EVERY.to_string().into_bytes());
        assert_eq!(decode_count(Some(&bump(Some(b"16")))), 16 + SAMPLE_EVERY);
    }

    #[test]
    fn garbage_counters_read_as_zero() {
        assert_eq!(decode_count(Some(b"x")), 0);
        assert_eq!(decode_count(Some(b"\xff")), 0);
        assert_eq!(decode_count(None), 0);
    }

    #[test]
    fn counters_saturate() {
        let max = u64::MAX.to_string();
        assert_eq!(decode_count(Some(&bump(Some(max.as_bytes())))), u64::MAX);
    }

    #[test]
    fn counter_keys_are_in_the_stats_namespace() {
        assert_eq!(Counter::Hits.key(), "stats:hits");
        assert!(!crate::cache_key::is_entry_key(&Counter::Stale.key()));
    }

    #[test]
    fn the_stats_body_says_it_is_approximate() {
        let v: serde_json::Value = serde_json::from_str(&Stats::new(1, 2, 3, 4).to_json()).unwrap();
        assert_eq!(v["hits"], 1);
        assert_eq!(v["misses"], 2);
        assert_eq!(v["stale"], 3);
        assert_eq!(v["entries"], 4);
        assert_eq!(v["approximate"], true);
    }
}
