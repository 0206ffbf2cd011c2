//! The read-through of `POST /api/process` across the components (see
//! [`crate::internal`]): the I/O is in the cache and the router, the
//! decisions are here.
//!
//! The cache never turns a good request into an error: any failure to look
//! up or store an answer makes it `x-cache: bypass`, and the processed answer
//! is still returned.

use crate::envelope::Envelope;
use crate::error::AppError;
use crate::internal::{CacheOutcome, PROCESSOR_FAILED};

/// What the cache found in its store for an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A fresh entry: its stored answer, served byte for byte.
    Hit(Vec<u8>),
    /// No entry: compute, then store.
    Miss,
    /// An expired entry: deleted now (lazy eviction), then as a miss.
    Expired,
    /// The store failed (open or read): compute, do not store.
    Unavailable,
}

/// Reads the cache's store answer for an entry (`None` = the store failed)
/// at `now` (Unix seconds).
pub fn lookup(read: Option<Option<Envelope>>, now: u64) -> Lookup {
    match read {
        Some(Some(envelope)) if !envelope.is_expired(now) => Lookup::Hit(envelope.body),
        Some(Some(_)) => Lookup::Expired,
        Some(None) => Lookup::Miss,
        None => Lookup::Unavailable,
    }
}

impl Lookup {
    /// Whether a computed answer is to be stored: only after a read that
    /// worked (a store that just failed is not written to).
    pub fn stores(&self) -> bool {
        matches!(self, Lookup::Miss | Lookup::Expired)
    }
}

/// The `x-cache` of a computed answer: `miss` if it was looked up and then
/// stored, `bypass` otherwise.
pub fn computed_outcome(lookup: &Lookup, stored: bool) -> CacheOutcome {
    match lookup {
        Lookup::Miss | Lookup::Expired if stored => CacheOutcome::Miss,
        _ => CacheOutcome::Bypass,
    }
}

/// What the cache's `POST /entries/{digest}` answer means to the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// 200 with `x-cache` hit, miss or bypass: served as is.
    Answer(Vec<u8>, CacheOutcome),
    /// A 4xx with the processor's error body: passed through as is.
    Rejected(u16, Vec<u8>),
    /// [`PROCESSOR_FAILED`]: the processor failed behind the cache; a 500
    /// for the caller, as when the router calls it itself.
    ProcessorFailed,
    /// Anything else, or no answer: the cache itself failed. The router
    /// asks the processor itself and answers `x-cache: bypass`.
    Unavailable,
}

/// Interprets the cache's answer: status, `x-cache`, body (`None` = the
/// call itself failed).
pub fn entry(answer: Option<(u16, Option<CacheOutcome>, Vec<u8>)>) -> Entry {
    match answer {
        Some((
            200,
            Some(outcome @ (CacheOutcome::Hit | CacheOutcome::Miss | CacheOutcome::Bypass)),
            body,
        )) => Entry::Answer(body, outcome),
        Some((status @ 400..=499, _, body)) if is_error_body(&body) => {
            Entry::Rejected(status, body)
        }
        Some((PROCESSOR_FAILED, _, _)) => Entry::ProcessorFailed,
        _ => Entry::Unavailable,
    }
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

    fn envelope(stored_at: u64) -> Envelope {
        Envelope::new(b"x".to_vec(), stored_at, 10)
    }

    #[test]
    fn a_fresh_entry_is_a_hit_with_the_stored_bytes() {
        assert_eq!(
            lookup(Some(Some(envelope(100))), 105),
            Lookup::Hit(b"x".to_vec())
        );
    }

    #[test]
    fn an_absent_or_expired_entry_is_computed_and_stored() {
        assert_eq!(lookup(Some(None), 100), Lookup::Miss);
        assert_eq!(lookup(Some(Some(envelope(100))), 200), Lookup::Expired);
        assert!(Lookup::Miss.stores());
        assert!(Lookup::Expired.stores());
    }

    #[test]
    fn a_failed_store_is_computed_and_never_written() {
        assert_eq!(lookup(None, 100), Lookup::Unavailable);
        assert!(!Lookup::Unavailable.stores());
    }

    #[test]
    fn only_a_stored_miss_is_reported_as_miss() {
        assert_eq!(computed_outcome(&Lookup::Miss, true), CacheOutcome::Miss);
        assert_eq!(computed_outcome(&Lookup::Expired, true), CacheOutcome::Miss);
        assert_eq!(computed_outcome(&Lookup::Miss, false), CacheOutcome::Bypass);
        assert_eq!(
            computed_outcome(&Lookup::Unavailable, true),
            CacheOutcome::Bypass
        );
    }

    #[test]
    fn the_caches_answer_is_served_with_its_outcome() {
        for outcome in [CacheOutcome::Hit, CacheOutcome::Miss, CacheOutcome::Bypass] {
            assert_eq!(
                entry(Some((200, Some(outcome), b"{}".to_vec()))),
                Entry::Answer(b"{}".to_vec(), outcome)
            );
        }
    }

    #[test]
    fn a_processor_rejection_passes_through_the_cache() {
        let err = AppError::ResultOverflow {
            value: 2,
            multiplier: 3,
        }
        .to_json("r")
        .into_bytes();
        assert_eq!(
            entry(Some((422, None, err.clone()))),
            Entry::Rejected(422, err)
        );
    }

    #[test]
    fn a_processor_failure_behind_the_cache_is_not_retried() {
        assert_eq!(entry(Some((502, None, vec![]))), Entry::ProcessorFailed);
    }

    #[test]
    fn a_failing_cache_is_never_an_error() {
        for answer in [
            None,
            Some((500, None, b"{}".to_vec())),
            Some((503, None, b"{}".to_vec())),
            Some((200, None, b"{}".to_vec())),
            Some((200, Some(CacheOutcome::Stale), b"{}".to_vec())),
            Some((404, None, b"<html>".to_vec())),
        ] {
            assert_eq!(entry(answer.clone()), Entry::Unavailable, "{answer:?}");
        }
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
