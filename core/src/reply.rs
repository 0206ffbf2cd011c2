//! A response as plain data (status, headers, body), built by pure code and
//! turned into a Spin response by each component in one place. Every reply
//! carries `x-request-id`; JSON replies carry `content-type:
//! application/json`; a 405 carries `Allow`.

use crate::error::AppError;
use crate::internal::CacheOutcome;
use crate::internal::{CACHE_HEADER, REQUEST_ID_HEADER};

/// `content-type` of every JSON reply.
pub const JSON: &str = "application/json";

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: impl Into<Vec<u8>>, request_id: &str) -> Reply {
        Reply {
            status,
            headers: vec![
                ("content-type", JSON.to_owned()),
                (REQUEST_ID_HEADER, request_id.to_owned()),
            ],
            body: body.into(),
        }
    }

    /// A reply without a body (e.g. 204).
    pub fn empty(status: u16, request_id: &str) -> Reply {
        Reply {
            status,
            headers: vec![(REQUEST_ID_HEADER, request_id.to_owned())],
            body: Vec::new(),
        }
    }

    /// The error's JSON reply, with `Allow` for a 405.
    pub fn error(error: &AppError, request_id: &str) -> Reply {
        let reply = Reply::json(error.status(), error.to_json(request_id), request_id);
        match error.allow() {
            Some(allow) => reply.with_header("allow", allow),
            None => reply,
        }
    }

    /// Adds (or replaces) a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    /// Adds `x-cache`.
    pub fn with_cache(self, outcome: CacheOutcome) -> Reply {
        self.with_header(CACHE_HEADER, outcome.as_str())
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_replies_carry_content_type_and_request_id() {
        let r = Reply::json(200, "{}", "rid");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-request-id"), Some("rid"));
    }

    #[test]
    fn error_replies_use_the_error_status_and_shape() {
        let r = Reply::error(&AppError::UnsupportedMediaType, "rid");
        assert_eq!(r.status, 415);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["request_id"], "rid");
        assert_eq!(r.header("allow"), None);
    }

    #[test]
    fn a_405_reply_has_an_allow_header() {
        let r = Reply::error(&AppError::MethodNotAllowed { allow: "GET" }, "rid");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET"));
    }

    #[test]
    fn headers_are_replaced_not_duplicated() {
        let r = Reply::json(200, "{}", "a")
            .with_cache(CacheOutcome::Miss)
            .with_cache(CacheOutcome::Bypass);
        assert_eq!(r.header("x-cache"), Some("bypass"));
        assert_eq!(r.headers.iter().filter(|(n, _)| *n == "x-cache").count(), 1);
    }
}
