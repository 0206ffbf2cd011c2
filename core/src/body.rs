//! Bounded request bodies: `max_body_bytes` is enforced before and while
//! reading, so no body is ever buffered beyond the limit, and the whole body
//! must arrive within [`BODY_TIMEOUT_MS`].
//!
//! Any answer given before the body is read to its end (413, and 404, 405,
//! 415, 401/403... given without reading it) comes after the rest is read
//! and dropped, up to [`DRAIN_MAX_BYTES`] in all and within the same
//! deadline ([`Drain`]): a host (Spin as much as edge-runner) closes the
//! connection when the guest answers with the body unread, and a client
//! that writes its whole body before reading (Python's http.client, many
//! simple clients) would get a reset instead of the answer.

use crate::error::AppError;

/// How long the router waits for a request's whole body, from the moment
/// it gets the request (just after the headers), before answering 408 (or,
/// while draining it, answering at once with the rest unread).
///
/// Spin itself puts no limit on a body that stalls after its headers, so
/// without this a client could hold an instance (and its memory) for as
/// long as it keeps the connection open. A total deadline rather than an
/// idle one: a body trickling one byte every few seconds is stopped too.
/// 10 s is generous for `max_body_bytes` (64 KiB by default) on any link.
pub const BODY_TIMEOUT_MS: u64 = 10_000;

/// The largest request body (all of it, not the part past the limit) that
/// the router reads to its end, discarding it, before an answer given with
/// the body unread (a 413, a 404...); past this, or past
/// [`BODY_TIMEOUT_MS`], it answers at once and the host closes the
/// connection with the rest unread.
///
/// 16 MiB: a 10 MB upload from a client that writes before it reads gets
/// its answer (drained in a fraction of a second over loopback, in ~1.3 s at
/// 100 Mbit/s, well inside the deadline), while an instance is never held
/// longer than a body that stalls already may hold it (10 s), and the
/// bytes are skipped by the host (wasi:io `skip`), never copied into the
/// guest, so a drain costs no guest memory.
pub const DRAIN_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Largest single `skip` while draining (the host skips at most what it
/// has buffered, so this allocates nothing).
pub const DRAIN_CHUNK: u64 = 1024 * 1024;

/// Whether a body answered before any of it is read (a 413 on its declared
/// `content-length`, a 404...) is still drained: not when that length is
/// over [`DRAIN_MAX_BYTES`] (it would be cut off anyway), nor when the
/// client sent `expect: 100-continue` (it has sent no body yet, and a
/// final answer without `100 Continue` tells it not to).
pub fn drains_declared(content_length: Option<&str>, expect: Option<&str>) -> bool {
    let waits = expect.is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    let length = content_length.and_then(|v| v.trim().parse::<u64>().ok());
    !waits && length.is_none_or(|n| n <= DRAIN_MAX_BYTES)
}

/// Counts the bytes of an unread body that are skipped against
/// [`DRAIN_MAX_BYTES`].
#[derive(Debug)]
pub struct Drain {
    left: u64,
}

impl Drain {
    /// A drain of a body of which `read` bytes were already read.
    pub fn after(read: u64) -> Self {
        Drain {
            left: DRAIN_MAX_BYTES.saturating_sub(read),
        }
    }

    /// How many bytes to skip next: one more than may be left, so that a
    /// body exactly at the bound is seen to end, and one past it is seen
    /// to be over.
    pub fn want(&self) -> u64 {
        self.left.saturating_add(1).min(DRAIN_CHUNK)
    }

    /// Records `n` skipped bytes; `false` once the body is over the bound
    /// (stop: the rest stays unread).
    pub fn skipped(&mut self, n: u64) -> bool {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                true
            }
            None => {
                self.left = 0;
                false
            }
        }
    }
}

/// Rejects a request whose declared `content-length` is already too large
/// (an unparsable length is left to the streaming check).
pub fn check_declared_length(content_length: Option<&str>, max: usize) -> Result<(), AppError> {
    match content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(n) if n > max as u64 => Err(AppError::PayloadTooLarge { max }),
        _ => Ok(()),
    }
}

/// Collects a body chunk by chunk, failing as soon as it exceeds `max`.
#[derive(Debug)]
pub struct BoundedBody {
    max: usize,
    buf: Vec<u8>,
}

impl BoundedBody {
    pub fn new(max: usize) -> Self {
        BoundedBody {
            max,
            buf: Vec::new(),
        }
    }

    /// How many more bytes may be read (read at most this plus one to detect
    /// an overflow).
    pub fn remaining(&self) -> usize {
        self.max.saturating_sub(self.buf.len())
    }

    /// Appends a chunk; 413 once the total is over the limit (the chunk is
    /// then dropped, and the caller stops reading).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), AppError> {
        if chunk.len() > self.remaining() {
            return Err(AppError::PayloadTooLarge { max: self.max });
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_length_over_the_limit_is_413() {
        assert_eq!(
            check_declared_length(Some("11"), 10).unwrap_err().status(),
            413
        );
        assert!(check_declared_length(Some("10"), 10).is_ok());
        assert!(check_declared_length(None, 10).is_ok());
        assert!(check_declared_length(Some("junk"), 10).is_ok());
    }

    #[test]
    fn a_body_exactly_at_the_limit_is_accepted() {
        let mut b = BoundedBody::new(4);
        b.push(b"ab").unwrap();
        b.push(b"cd").unwrap();
        assert_eq!(b.remaining(), 0);
        assert_eq!(b.into_bytes(), b"abcd");
    }

    #[test]
    fn a_declared_length_is_drained_up_to_the_bound_unless_the_client_awaits_100_continue() {
        let bound = DRAIN_MAX_BYTES.to_string();
        let over = (DRAIN_MAX_BYTES + 1).to_string();
        assert!(drains_declared(Some("10485760"), None));
        assert!(drains_declared(Some(&bound), None));
        assert!(drains_declared(None, None));
        assert!(drains_declared(Some("junk"), None));
        assert!(!drains_declared(Some(&over), None));
        assert!(!drains_declared(Some("10485760"), Some("100-Continue")));
        assert!(drains_declared(Some("10485760"), Some("something-else")));
    }

    #[test]
    fn a_drain_stops_one_byte_past_the_bound_and_counts_what_was_read() {
        let mut exact = Drain::after(0);
        let mut skipped = 0;
        while skipped < DRAIN_MAX_BYTES {
            let n = exact.want().min(DRAIN_MAX_BYTES - skipped);
            assert!(exact.skipped(n));
            skipped += n;
        }
        // A body exactly at the bound: one more byte is asked for, to see
        // its end.
        assert_eq!(exact.want(), 1);
        assert!(!exact.skipped(1));

        let mut after = Drain::after(DRAIN_MAX_BYTES - 10);
        assert_eq!(after.want(), 11);
        assert!(after.skipped(10));
        assert!(!after.skipped(1));
        assert_eq!(Drain::after(u64::MAX).want(), 1);
        assert_eq!(Drain::after(0).want(), DRAIN_CHUNK);
    }

    #[test]
    fn one_byte_over_the_limit_is_413() {
        let mut b = BoundedBody::new(4);
        b.push(b"abc").unwrap();
        assert_eq!(b.push(b"de").unwrap_err().status(), 413);
    }
}
