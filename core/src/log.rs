//! The router's access log: one JSON line per request on stdout (Spin
//! collects component stdout), e.g.
//! `{"method":"POST","path":"/api/process","status":200,"duration_us":1250,"cache":"miss","request_id":"…"}`,
//! with `"trace_id":"…"` last when the request carried a valid
//! `traceparent` (see [`crate::trace_context`]).
//! JSON keeps a hostile path from forging extra lines or fields.

use serde::Serialize;

/// Paths longer than this are cut in the log.
pub const MAX_LOGGED_PATH: usize = 256;

/// One access-log record.
#[derive(Debug, Serialize)]
pub struct AccessLog<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// Whole microseconds (an integer keeps float formatting out of the
    /// component).
    pub duration_us: u64,
    /// `x-cache` when the route has one.
    pub cache: Option<&'a str>,
    pub request_id: &'a str,
    /// The trace id of the request's `traceparent`, when it has a valid one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
}

impl AccessLog<'_> {
    /// The line to print (without the newline).
    pub fn line(&self) -> String {
        let mut end = self.path.len().min(MAX_LOGGED_PATH);
        while !self.path.is_char_boundary(end) {
            end -= 1;
        }
        let record = AccessLog {
            path: &self.path[..end],
            ..*self
        };
        serde_json::to_string(&record).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(path: &str) -> AccessLog<'_> {
        AccessLog {
            method: "GET",
            path,
            status: 200,
            duration_us: 1234,
            cache: Some("hit"),
            request_id: "r",
            trace_id: None,
        }
    }

    #[test]
    fn the_line_has_every_field() {
        assert_eq!(
            log("/api/health").line(),
            r#"{"method":"GET","path":"/api/health","status":200,"duration_us":1234,"cache":"hit","request_id":"r"}"#
        );
    }

    #[test]
    fn the_trace_id_comes_last_when_known() {
        let line = AccessLog {
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
            ..log("/api/health")
        }
        .line();
        assert!(
            line.ends_with(r#""request_id":"r","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}"#),
            "{line}"
        );
    }

    #[test]
    fn a_hostile_path_stays_on_one_line() {
        let line = log("/a\n{\"status\":500}").line();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["status"], 200);
    }

    #[test]
    fn long_paths_are_cut_on_a_char_boundary() {
        let path = format!("/{}", "é".repeat(300));
        let v: serde_json::Value = serde_json::from_str(&log(&path).line()).unwrap();
        assert!(v["path"].as_str().unwrap().len() <= MAX_LOGGED_PATH);
    }
}
