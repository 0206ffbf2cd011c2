//! Validation of the `{key}` in `GET /api/data/{key}`.
//!
//! The key is appended to the upstream URL, so it is restricted to 1–128
//! characters of `[A-Za-z0-9._-]` and may not be `.` or `..`. It is checked
//! as it appears in the raw request path, before any percent-decoding: an
//! encoded slash (`%2F`), NUL (`%00`), `@`, a URL or a backslash all
//! contain a character outside the alphabet and are rejected with 400.

use crate::error::AppError;

/// Maximum key length, in bytes (all allowed characters are ASCII).
pub const MAX_KEY_LEN: usize = 128;

/// Returns the key if it is acceptable, otherwise a 400 `invalid_key`.
pub fn validate(key: &str) -> Result<&str, AppError> {
    let reason = if key.is_empty() {
        "the key is empty"
    } else if key.len() > MAX_KEY_LEN {
        "the key is longer than 128 characters"
    } else if key == "." || key == ".." {
        "`.` and `..` are not keys"
    } else if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        "the key contains a character outside the allowed set"
    } else {
        return Ok(key);
    };
    Err(AppError::InvalidKey { reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ordinary_keys_are_accepted() {
        for key in [
            "a",
            "user-42",
            "v1.2_final",
            "...",
            ".hidden",
            &"x".repeat(128),
        ] {
            assert_eq!(validate(key), Ok(key));
        }
    }

    #[test]
    fn dangerous_keys_are_rejected_with_400() {
        for key in [
            "",
            ".",
            "..",
            "a/b",
            "a%2Fb",
            "%2e%2e",
            "a%00",
            "a\0b",
            "user@host",
            "http://evil.example",
            "a\\b",
            "a b",
            "a?x=1",
            "a#frag",
            "é",
            &"x".repeat(129),
        ] {
            let e = validate(key).unwrap_err();
            assert_eq!((e.status(), e.code()), (400, "invalid_key"), "{key:?}");
        }
    }

    proptest! {
        #[test]
        fn accepted_keys_are_exactly_the_allowed_alphabet(key in "\\PC{0,140}") {
            let ok = !key.is_empty()
                && key.len() <= 128
                && key != "."
                && key != ".."
                && key.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            prop_assert_eq!(validate(&key).is_ok(), ok);
        }
    }
}
