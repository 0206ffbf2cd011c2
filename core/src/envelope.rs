//! The TTL envelope: Spin's key-value store has no expiry of its own, so each
//! cache entry carries its own.
//!
//! Layout: the 4 magic bytes `EDG1`, the expiry as unix seconds in 8
//! big-endian bytes, then the cached body verbatim (so a hit is byte-identical
//! to the answer that was stored). Anything else decodes as `None` and is
//! treated as a miss.

/// Identifies (and versions) the layout.
pub const MAGIC: &[u8; 4] = b"EDG1";
const HEADER_LEN: usize = MAGIC.len() + 8;

/// A cached body and the moment it stops being fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Unix seconds; the entry is expired from this second on.
    pub expires_at: u64,
    pub body: Vec<u8>,
}

impl Envelope {
    /// An entry stored at `now` that lives `ttl_seconds`.
    pub fn new(body: Vec<u8>, now: u64, ttl_seconds: u64) -> Self {
        Envelope {
            expires_at: now.saturating_add(ttl_seconds),
            body,
        }
    }

    /// Whether the entry is past its TTL at `now` (a miss, or stale).
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// The bytes stored in the key-value store.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// Reads stored bytes; `None` for anything not written by [`encode`].
    ///
    /// [`encode`]: Envelope::encode
    pub fn decode(bytes: &[u8]) -> Option<Envelope> {
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let (expiry, body) = rest.split_first_chunk::<8>()?;
        Some(Envelope {
            expires_at: u64::from_be_bytes(*expiry),
            body: body.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_entry_is_fresh_until_its_ttl_has_passed() {
        let e = Envelope::new(b"x".to_vec(), 1000, 300);
        assert!(!e.is_expired(1000));
        assert!(!e.is_expired(1299));
        assert!(e.is_expired(1300));
        assert!(e.is_expired(5000));
    }

    #[test]
    fn expiry_saturates_instead_of_wrapping() {
        let e = Envelope::new(vec![], u64::MAX - 1, 300);
        assert_eq!(e.expires_at, u64::MAX);
    }

    #[test]
    fn foreign_or_truncated_bytes_do_not_decode() {
        assert_eq!(Envelope::decode(b""), None);
        assert_eq!(Envelope::decode(b"EDG1\0\0"), None);
        assert_eq!(Envelope::decode(b"{\"id\":1}"), None);
        assert_eq!(Envelope::decode(b"EDG0\0\0\0\0\0\0\0\0"), None);
    }

    #[test]
    fn an_empty_body_round_trips() {
        let e = Envelope::new(vec![], 1, 1);
        assert_eq!(Envelope::decode(&e.encode()), Some(e));
    }

    proptest! {
        #[test]
        fn any_envelope_round_trips_byte_for_byte(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            expires_at in any::<u64>(),
        ) {
            let e = Envelope { expires_at, body };
            let decoded = Envelope::decode(&e.encode()).unwrap();
            prop_assert_eq!(decoded, e);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Envelope::decode(&bytes);
        }

        #[test]
        fn freshness_is_exactly_now_before_now_plus_ttl(now in any::<u64>(), ttl in 1u64..1_000_000, later in any::<u64>()) {
            let e = Envelope::new(vec![], now, ttl);
            prop_assert_eq!(e.is_expired(later), later >= now.saturating_add(ttl));
        }
    }
}
