//! An in-memory TTL cache: what a native server would use instead of a
//! key-value store. Bounded (oldest entry evicted first) so a miss-heavy
//! benchmark cannot grow it without limit; expired entries read as misses.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Entries kept at most; the same bound as the Node baseline.
pub const MAX_ENTRIES: usize = 100_000;

struct Entry {
    expires_at: u64,
    body: bytes::Bytes,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    order: VecDeque<String>,
}

/// Answers by cache key, shared by all connections.
#[derive(Default)]
pub struct TtlCache {
    inner: Mutex<Inner>,
}

impl TtlCache {
    /// The cached answer, if present and not expired at `now`.
    pub fn get(&self, key: &str, now: u64) -> Option<bytes::Bytes> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.map.get(key) {
            Some(entry) if entry.expires_at > now => Some(entry.body.clone()),
            Some(_) => {
                inner.map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores an answer until `now + ttl`.
    pub fn put(&self, key: String, body: bytes::Bytes, now: u64, ttl: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let entry = Entry {
            expires_at: now.saturating_add(ttl),
            body,
        };
        if inner.map.insert(key.clone(), entry).is_none() {
            inner.order.push_back(key);
        }
        while inner.map.len() > MAX_ENTRIES {
            match inner.order.pop_front() {
                Some(oldest) => {
                    inner.map.remove(&oldest);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_until_it_expires() {
        let cache = TtlCache::default();
        cache.put("k".into(), bytes::Bytes::from_static(b"v"), 10, 5);
        assert_eq!(cache.get("k", 14).as_deref(), Some(&b"v"[..]));
        assert_eq!(cache.get("k", 15), None);
    }

    #[test]
    fn the_oldest_entry_is_evicted_when_full() {
        let cache = TtlCache::default();
        for i in 0..=MAX_ENTRIES {
            cache.put(i.to_string(), bytes::Bytes::new(), 0, 60);
        }
        assert_eq!(cache.get("0", 1), None);
        assert!(cache.get("1", 1).is_some());
    }
}
