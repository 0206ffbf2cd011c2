//! Bounded request bodies: `max_body_bytes` is enforced before and while
//! reading, so no body is ever buffered beyond the limit, and the whole body
//! must arrive within [`BODY_TIMEOUT_MS`].

use crate::error::AppError;

/// How long the router waits for a request's whole body, from the moment
/// it starts reading it (just after the headers), before answering 408.
///
/// Spin itself puts no limit on a body that stalls after its headers, so
/// without this a client could hold an instance (and its memory) for as
/// long as it keeps the connection open. A total deadline rather than an
/// idle one: a body trickling one byte every few seconds is stopped too.
/// 10 s is generous for `max_body_bytes` (64 KiB by default) on any link.
pub const BODY_TIMEOUT_MS: u64 = 10_000;

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
    fn one_byte_over_the_limit_is_413() {
        let mut b = BoundedBody::new(4);
        b.push(b"abc").unwrap();
        assert_eq!(b.push(b"de").unwrap_err().status(), 413);
    }
}
