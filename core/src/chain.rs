//! How the router reads the answers of the internal components (see
//! [`crate::internal`]); the I/O is in the router, the decisions are here.
//!
//! The cache never turns a good request into an error: any failure to look
//! up or store an answer makes it `x-cache: bypass`, and the processed answer
//! is still returned.

use crate::error::AppError;
use crate::internal::CacheOutcome;

/// The result of `GET /entries/{digest}` on the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// 200: the stored answer, served byte for byte.
    Hit(Vec<u8>),
    /// 404: compute, then store.
    Miss,
    /// Anything else (503, unexpected status, transport error): compute,
    /// do not store.
    Unavailable,
}

/// Interprets the cache's lookup answer (`None` = the call itself failed).
pub fn lookup(answer: Option<(u16, Vec<u8>)>) -> Lookup {
    match answer {
        Some((200, body)) => Lookup::Hit(body),
        Some((404, _)) => Lookup::Miss,
        _ => Lookup::Unavailable,
    }
}

/// The `x-cache` of a computed answer: `miss` if it was looked up and then
/// stored, `bypass` otherwise.
pub fn computed_outcome(lookup: &Lookup, stored: bool) -> CacheOutcome {
    match lookup {
        Lookup::Miss if stored => CacheOutcome::Miss,
        _ => CacheOutcome::Bypass,
    }
}

/// Whether the cache's `PUT /entries/{digest}` answer means "stored".
pub fn stored(answer: Option<u16>) -> bool {
    matches!(answer, Some(200..=299))
}

/// The processor's answer to `POST /process` or `POST /process/batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// 200: the answer body.
    Ok(Vec<u8>),
    /// A 4xx with the processor's error body (already in the public shape,
    /// with the propagated request id): passed through as is.
    Rejected(u16, Vec<u8>),
}

/// Interprets the processor's answer (`None` = the call itself failed, a
/// 500 for the caller). The `Err` text is for the log.
pub fn processed(answer: Option<(u16, Vec<u8>)>) -> Result<Processed, String> {
    match answer {
        Some((200, body)) => Ok(Processed::Ok(body)),
        Some((status @ 400..=499, body)) if is_error_body(&body) => {
            Ok(Processed::Rejected(status, body))
        }
        Some((status, _)) => Err(format!("processor answered {status}")),
        None => Err("processor unreachable".into()),
    }
}

/// Interprets an answer of the cache that the router passes through
/// (`/data`, `/stats`, purge): a JSON body with status and `x-cache`, or
/// `None` (a 500) when the cache could not be reached or answered garbage.
pub fn passthrough(answer: Option<(u16, Vec<u8>)>) -> Result<(u16, Vec<u8>), AppError> {
    match answer {
        Some((status, body))
            if (200..=599).contains(&status)
                && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() =>
        {
            Ok((status, body))
        }
        _ => Err(AppError::Internal),
    }
}

/// Whether a body has the public error shape `{"error":{"code":…}}`.
fn is_error_body(body: &[u8]) -> bool {
    use serde::de::IgnoredAny;
    #[derive(serde::Deserialize)]
    struct Shape {
        #[serde(rename = "error")]
        _error: Code,
    }
    #[derive(serde::Deserialize)]
    struct Code {
        #[serde(rename = "code")]
        _code: IgnoredAny,
    }
    serde_json::from_slice::<Shape>(body).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_200_lookup_is_a_hit_with_the_stored_bytes() {
        assert_eq!(
            lookup(Some((200, b"x".to_vec()))),
            Lookup::Hit(b"x".to_vec())
        );
    }

    #[test]
    fn a_404_lookup_is_a_miss() {
        assert_eq!(lookup(Some((404, vec![]))), Lookup::Miss);
    }

    #[test]
    fn store_trouble_is_never_an_error() {
        assert_eq!(lookup(Some((503, vec![]))), Lookup::Unavailable);
        assert_eq!(lookup(Some((500, vec![]))), Lookup::Unavailable);
        assert_eq!(lookup(None), Lookup::Unavailable);
    }

    #[test]
    fn only_a_stored_miss_is_reported_as_miss() {
        assert_eq!(computed_outcome(&Lookup::Miss, true), CacheOutcome::Miss);
        assert_eq!(computed_outcome(&Lookup::Miss, false), CacheOutcome::Bypass);
        assert_eq!(
            computed_outcome(&Lookup::Unavailable, true),
            CacheOutcome::Bypass
        );
        assert!(stored(Some(204)));
        assert!(!stored(Some(503)));
        assert!(!stored(None));
    }

    #[test]
    fn processor_rejections_pass_through_and_failures_are_internal() {
        let err = AppError::ResultOverflow {
            value: 2,
            multiplier: 3,
        }
        .to_json("r")
        .into_bytes();
        assert_eq!(
            processed(Some((422, err.clone()))),
            Ok(Processed::Rejected(422, err))
        );
        assert_eq!(
            processed(Some((200, b"{}".to_vec()))),
            Ok(Processed::Ok(b"{}".to_vec()))
        );
        assert!(processed(Some((422, b"not json".to_vec()))).is_err());
        assert!(processed(Some((500, vec![]))).is_err());
        assert!(processed(None).is_err());
    }

    #[test]
    fn passthrough_requires_a_json_body() {
        assert_eq!(
            passthrough(Some((502, b"{}".to_vec()))),
            Ok((502, b"{}".to_vec()))
        );
        assert_eq!(
            passthrough(Some((200, b"<html>".to_vec()))),
            Err(AppError::Internal)
        );
        assert_eq!(passthrough(None), Err(AppError::Internal));
    }
}
