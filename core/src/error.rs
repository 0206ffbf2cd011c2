//! The one error type of the HTTP API and its JSON shape.
//!
//! Every error answer, from any route, is
//! `{"error":{"code":"snake_case","message":"…","request_id":"…"}}` with
//! `content-type: application/json`. 4xx messages name the field and the fix;
//! 5xx messages are generic, the details go to the log with the request id.

use serde::Serialize;

/// An error the caller sees: an HTTP status, a stable snake_case code and a
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// 400: the body is not UTF-8.
    InvalidUtf8,
    /// 400: the body is not JSON (the detail is serde_json's position report).
    MalformedJson { detail: String },
    /// 400: a field (or the body itself) has the wrong JSON type.
    InvalidType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    /// 400: a required field is absent.
    MissingField {
        field: &'static str,
        expected: &'static str,
    },
    /// 400: the same field appears twice in one object.
    DuplicateField { field: String },
    /// 400: a `/api/data/{key}` key outside the allowed alphabet or length.
    InvalidKey { reason: &'static str },
    /// 401: admin route without the right bearer token.
    Unauthorized,
    /// 403: admin route while `admin_token` is unset.
    AdminDisabled,
    /// 404: no such route, or the upstream has no such key.
    NotFound { message: String },
    /// 405: known path, wrong method; `allow` goes into the `Allow` header.
    MethodNotAllowed { allow: &'static str },
    /// 408: the body did not arrive within `timeout_ms` of the request.
    RequestTimeout { timeout_ms: u64 },
    /// 413: the body is longer than `max_body_bytes`.
    PayloadTooLarge { max: usize },
    /// 415: the content type is not `application/json`.
    UnsupportedMediaType,
    /// 422: a number that is negative, fractional, in exponent form or too
    /// large.
    OutOfRange { field: String, reason: String },
    /// 422: a string whose length is outside its bounds.
    InvalidLength {
        field: &'static str,
        min: usize,
        max: usize,
        actual: usize,
    },
    /// 422: `value × multiplier` does not fit in an unsigned 64-bit integer.
    ResultOverflow { value: u64, multiplier: u64 },
    /// 422: a batch with more than `max_batch_items` items.
    BatchTooLarge { items: usize, max: usize },
    /// 500: anything unexpected; details are logged, never shown.
    Internal,
    /// 502: the upstream failed and there is no cached copy.
    UpstreamFailed,
    /// 503: `upstream_origin` is unset (empty or a reserved `.invalid` host).
    UpstreamNotConfigured,
    /// 503: the key-value store cannot be used (internal API of the cache
    /// component; the router turns it into `x-cache: bypass`).
    StoreUnavailable,
    /// 504: the upstream did not answer within `upstream_timeout_ms`.
    UpstreamTimeout { timeout_ms: u64 },
}

impl AppError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        use AppError::*;
        match self {
            InvalidUtf8 | MalformedJson { .. } | InvalidType { .. } | MissingField { .. } => 400,
            DuplicateField { .. } | InvalidKey { .. } => 400,
            Unauthorized => 401,
            AdminDisabled => 403,
            NotFound { .. } => 404,
            MethodNotAllowed { .. } => 405,
            RequestTimeout { .. } => 408,
            PayloadTooLarge { .. } => 413,
            UnsupportedMediaType => 415,
            OutOfRange { .. } | InvalidLength { .. } | ResultOverflow { .. } => 422,
            BatchTooLarge { .. } => 422,
            Internal => 500,
            UpstreamFailed => 502,
            UpstreamNotConfigured | StoreUnavailable => 503,
            UpstreamTimeout { .. } => 504,
        }
    }

    /// The stable, snake_case error code.
    pub fn code(&self) -> &'static str {
        use AppError::*;
        match self {
            InvalidUtf8 => "invalid_utf8",
            MalformedJson { .. } => "malformed_json",
            InvalidType { .. } => "invalid_type",
            MissingField { .. } => "missing_field",
            DuplicateField { .. } => "duplicate_field",
            InvalidKey { .. } => "invalid_key",
            Unauthorized => "unauthorized",
            AdminDisabled => "admin_disabled",
            NotFound { .. } => "not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            RequestTimeout { .. } => "request_timeout",
            PayloadTooLarge { .. } => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            OutOfRange { .. } => "out_of_range",
            InvalidLength { .. } => "invalid_length",
            ResultOverflow { .. } => "result_overflow",
            BatchTooLarge { .. } => "batch_too_large",
            Internal => "internal_error",
            UpstreamFailed => "upstream_error",
            UpstreamNotConfigured => "upstream_not_configured",
            StoreUnavailable => "store_unavailable",
            UpstreamTimeout { .. } => "upstream_timeout",
        }
    }

    /// The human message: what is wrong and how to fix it.
    pub fn message(&self) -> String {
        use AppError::*;
        match self {
            InvalidUtf8 => "the request body is not valid UTF-8; send UTF-8 encoded JSON".into(),
            MalformedJson { detail } => format!("the request body is not valid JSON ({detail})"),
            InvalidType {
                field,
                expected,
                found,
            } => format!("`{field}` must be {expected}, but it is {found}"),
            MissingField { field, expected } => {
                format!("missing field `{field}`: add it as {expected}")
            }
            DuplicateField { field } => {
                format!("field `{field}` appears more than once; send it once")
            }
            InvalidKey { reason } => format!(
                "invalid key: {reason}; use 1 to 128 characters of A-Z a-z 0-9 . _ - (not `.` or `..`)"
            ),
            Unauthorized => {
                "missing or wrong admin token; send `Authorization: Bearer <admin_token>`".into()
            }
            AdminDisabled => {
                "the admin API is disabled; set the `admin_token` variable to enable it".into()
            }
            NotFound { message } => message.clone(),
            MethodNotAllowed { allow } => {
                format!("method not allowed on this route; use {allow}")
            }
            RequestTimeout { timeout_ms } => format!(
                "the request body did not arrive within {timeout_ms} ms; send it without pausing"
            ),
            PayloadTooLarge { max } => {
                format!("the request body is larger than {max} bytes; send a smaller body")
            }
            UnsupportedMediaType => {
                "the request content type must be `application/json` (a charset parameter is fine)"
                    .into()
            }
            OutOfRange { field, reason } => format!("`{field}` {reason}"),
            InvalidLength {
                field,
                min,
                max,
                actual,
            } => format!("`{field}` must be {min} to {max} characters long, but it has {actual}"),
            ResultOverflow { value, multiplier } => format!(
                "`value` {value} times the multiplier {multiplier} overflows an unsigned 64-bit integer; send a smaller value"
            ),
            BatchTooLarge { items, max } => {
                format!("the batch has {items} items, more than the maximum of {max}; split it")
            }
            Internal => "internal error; the details are logged under this request id".into(),
            UpstreamFailed => {
                "the upstream API failed and no cached copy exists; retry later".into()
            }
            UpstreamNotConfigured => {
                "no upstream API is configured; set the `upstream_origin` variable".into()
            }
            StoreUnavailable => "the key-value store is unavailable".into(),
            UpstreamTimeout { timeout_ms } => {
                format!("the upstream API did not answer within {timeout_ms} ms; retry later")
            }
        }
    }

    /// The value of the `Allow` header for a 405, if this is one.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            AppError::MethodNotAllowed { allow } => Some(allow),
            _ => None,
        }
    }

    /// The JSON body for this error.
    pub fn to_json(&self, request_id: &str) -> String {
        error_json(self.code(), &self.message(), request_id)
    }

    /// The same error inside a batch, its message prefixed by the item index.
    pub fn to_item_json(&self, index: usize, request_id: &str) -> String {
        error_json(
            self.code(),
            &format!("item {index}: {}", self.message()),
            request_id,
        )
    }

    /// A 404 for a route that does not exist.
    pub fn no_route() -> Self {
        AppError::NotFound {
            message: "no such route; see docs/openapi.yaml for the API".into(),
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status(), self.code(), self.message())
    }
}

impl std::error::Error for AppError {}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
}

/// `{"error":{"code":…,"message":…,"request_id":…}}`.
pub fn error_json(code: &str, message: &str, request_id: &str) -> String {
    let body = ErrorBody {
        error: ErrorDetail {
            code,
            message,
            request_id,
        },
    };
    // Serialising string slices into a String cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_the_documented_shape() {
        let json = AppError::UnsupportedMediaType.to_json("req-1");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["error"]["code"], "unsupported_media_type");
        assert_eq!(v["error"]["request_id"], "req-1");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert_eq!(v["error"].as_object().unwrap().len(), 3);
    }

    #[test]
    fn statuses_match_the_specification() {
        let cases: Vec<(AppError, u16)> = vec![
            (AppError::InvalidUtf8, 400),
            (AppError::MalformedJson { detail: "x".into() }, 400),
            (
                AppError::MissingField {
                    field: "id",
                    expected: "a string",
                },
                400,
            ),
            (AppError::Unauthorized, 401),
            (AppError::AdminDisabled, 403),
            (AppError::no_route(), 404),
            (AppError::MethodNotAllowed { allow: "GET" }, 405),
            (AppError::RequestTimeout { timeout_ms: 1 }, 408),
            (AppError::PayloadTooLarge { max: 1 }, 413),
            (AppError::UnsupportedMediaType, 415),
            (
                AppError::ResultOverflow {
                    value: 1,
                    multiplier: 2,
                },
                422,
            ),
            (AppError::BatchTooLarge { items: 2, max: 1 }, 422),
            (AppError::Internal, 500),
            (AppError::UpstreamFailed, 502),
            (AppError::UpstreamNotConfigured, 503),
            (AppError::UpstreamTimeout { timeout_ms: 5 }, 504),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err:?}");
        }
    }

    #[test]
    fn codes_are_snake_case() {
        let all = [
            AppError::InvalidUtf8,
            AppError::UpstreamNotConfigured,
            AppError::Internal,
            AppError::MethodNotAllowed { allow: "GET" },
            AppError::DuplicateField { field: "x".into() },
            AppError::StoreUnavailable,
            AppError::UpstreamTimeout { timeout_ms: 1 },
        ];
        for err in all {
            let code = err.code();
            assert!(
                code.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
                "{code}"
            );
        }
    }

    #[test]
    fn missing_field_message_names_the_field() {
        let msg = AppError::MissingField {
            field: "timestamp",
            expected: "an unsigned integer",
        }
        .message();
        assert!(msg.contains("`timestamp`"), "{msg}");
    }

    #[test]
    fn internal_error_message_reveals_nothing() {
        assert_eq!(
            AppError::Internal.message(),
            "internal error; the details are logged under this request id"
        );
    }

    #[test]
    fn method_not_allowed_carries_the_allow_header() {
        assert_eq!(
            AppError::MethodNotAllowed { allow: "POST" }.allow(),
            Some("POST")
        );
        assert_eq!(AppError::Internal.allow(), None);
    }

    #[test]
    fn item_errors_are_prefixed_with_their_index() {
        let json = AppError::InvalidUtf8.to_item_json(3, "r");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("item 3: ")
        );
    }

    #[test]
    fn error_json_escapes_quotes_in_the_message() {
        let json = error_json("c", "say \"hi\"\n", "r");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["error"]["message"], "say \"hi\"\n");
    }
}
