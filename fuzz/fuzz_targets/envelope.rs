//! The cache's TTL envelope. Decoding arbitrary bytes never panics, decodes
//! exactly the `EDG1` + 8-byte expiry layout, and re-encodes to the same
//! bytes; an envelope built from the input round-trips through
//! encode→decode byte for byte (a hit is byte-identical to what was stored).

#![no_main]

use edge_core::envelope::{Envelope, MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // 1. Arbitrary stored bytes.
    let decoded = Envelope::decode(data);
    let well_formed = data.len() >= MAGIC.len() + 8 && data.starts_with(MAGIC);
    assert_eq!(decoded.is_some(), well_formed);
    if let Some(e) = &decoded {
        assert_eq!(e.encode(), data, "decode→encode is not the identity");
        assert_eq!(e.body, &data[MAGIC.len() + 8..]);
    }

    // 2. An envelope built from the input: the first 16 bytes are `now` and
    //    the TTL, the rest is the body.
    let word = |i: usize| {
        let mut b = [0u8; 8];
        for (j, slot) in b.iter_mut().enumerate() {
            *slot = data.get(i * 8 + j).copied().unwrap_or(0);
        }
        u64::from_be_bytes(b)
    };
    let (now, ttl) = (word(0), word(1));
    let body = data.get(16..).unwrap_or_default().to_vec();
    let e = Envelope::new(body, now, ttl);
    assert_eq!(e.expires_at, now.saturating_add(ttl));
    if let Some(end) = now.checked_add(ttl) {
        assert_eq!(e.is_expired(now), ttl == 0);
        assert!(e.is_expired(end));
        if ttl > 0 {
            assert!(!e.is_expired(end - 1));
        }
    }
    let bytes = e.encode();
    assert_eq!(bytes.len(), MAGIC.len() + 8 + e.body.len());
    assert_eq!(Envelope::decode(&bytes).as_ref(), Some(&e), "encode→decode");
});
