//! Request ids: the client's `x-request-id` is echoed when it is sane (at
//! most 128 characters of `[A-Za-z0-9._-]`, so it is safe in headers, JSON
//! and log lines); otherwise a new one is made from 16 bytes of entropy.

/// Longest accepted client id.
pub const MAX_LEN: usize = 128;

/// The client's id if it is acceptable.
pub fn sanitize(header: Option<&str>) -> Option<&str> {
    let id = header?;
    let ok = !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then_some(id)
}

/// A new id from 16 random bytes, formatted as a version-4 UUID
/// (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`), which is within the sane set.
pub fn generate(mut entropy: [u8; 16]) -> String {
    entropy[6] = (entropy[6] & 0x0f) | 0x40;
    entropy[8] = (entropy[8] & 0x3f) | 0x80;
    let hex = crate::sha256::hex(&entropy);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The client's id if sane, else a generated one (`entropy` is only called
/// when needed).
pub fn resolve(header: Option<&str>, entropy: impl FnOnce() -> [u8; 16]) -> String {
    match sanitize(header) {
        Some(id) => id.to_owned(),
        None => generate(entropy()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sane_client_id_is_echoed() {
        assert_eq!(
            resolve(Some("abc-123_x.y"), || panic!("no entropy needed")),
            "abc-123_x.y"
        );
        let max = "a".repeat(128);
        assert_eq!(sanitize(Some(&max)), Some(max.as_str()));
    }

    #[test]
    fn an_insane_client_id_is_replaced() {
        for bad in ["", "a b", "a\nb", "a\"b", "<script>", "é", &"a".repeat(129)] {
            assert_eq!(sanitize(Some(bad)), None, "{bad:?}");
            let id = resolve(Some(bad), || [7; 16]);
            assert_ne!(id, bad);
            assert!(sanitize(Some(&id)).is_some());
        }
    }

    #[test]
    fn generated_ids_look_like_uuid_v4() {
        let id = generate([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(generate([0; 16]), "00000000-0000-4000-8000-000000000000");
    }

    proptest! {
        #[test]
        fn generated_ids_are_always_sane(entropy in any::<[u8; 16]>()) {
            let id = generate(entropy);
            prop_assert_eq!(id.len(), 36);
            prop_assert!(sanitize(Some(&id)).is_some());
        }
    }
}
