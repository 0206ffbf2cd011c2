//! Admin authorisation: `Authorization: Bearer <admin_token>`, compared in
//! constant time.

use crate::error::AppError;

/// Checks an admin request. `token` is the configured `admin_token` (`None`
/// when empty: the admin API is disabled, 403); `authorization` is the
/// request's header (missing or wrong: 401).
pub fn authorize(token: Option<&str>, authorization: Option<&str>) -> Result<(), AppError> {
    let Some(token) = token else {
        return Err(AppError::AdminDisabled);
    };
    let presented = authorization.and_then(bearer).unwrap_or("");
    // The comparison runs even when the header is absent, so timing does not
    // tell "no header" from "wrong token".
    if constant_time_eq(presented.as_bytes(), token.as_bytes()) && !presented.is_empty() {
        Ok(())
    } else {
        Err(AppError::Unauthorized)
    }
}

/// The credentials of a `Bearer` authorization header (scheme is
/// case-insensitive, per RFC 9110 §11.1).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_start())
}

/// Compares two byte strings in time that depends only on their lengths,
/// never on where they first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    // Fold the length difference in, then visit every byte position of the
    // longer input.
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_unset_token_disables_admin_with_403() {
        let e = authorize(None, Some("Bearer x")).unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "admin_disabled"));
    }

    #[test]
    fn a_missing_header_is_401() {
        assert_eq!(authorize(Some("t"), None).unwrap_err().status(), 401);
    }

    #[test]
    fn a_wrong_token_is_401() {
        for h in [
            "Bearer nope",
            "Bearer t2",
            "Bearer ",
            "Basic dDp0",
            "t",
            "Bearer  T",
        ] {
            assert_eq!(
                authorize(Some("t"), Some(h)).unwrap_err().status(),
                401,
                "{h}"
            );
        }
    }

    #[test]
    fn the_right_token_is_accepted_with_any_scheme_case() {
        assert!(authorize(Some("s3cret"), Some("Bearer s3cret")).is_ok());
        assert!(authorize(Some("s3cret"), Some("bearer s3cret")).is_ok());
        assert!(authorize(Some("s3cret"), Some("  BEARER   s3cret ")).is_ok());
    }

    #[test]
    fn a_prefix_of_the_token_is_not_the_token() {
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }

    proptest! {
        #[test]
        fn constant_time_eq_agrees_with_eq(a in proptest::collection::vec(any::<u8>(), 0..40), b in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(constant_time_eq(&a, &b), a == b);
        }
    }
}
