//! The `content-type` check for JSON bodies: `application/json`, with any
//! case and optional parameters; a `charset` parameter must name UTF-8.

/// Whether a request's content-type header accepts it as JSON.
pub fn is_json(header: Option<&str>) -> bool {
    let Some(header) = header else {
        return false;
    };
    let mut parts = header.split(';');
    let essence = parts.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| {
        let Some((name, value)) = param.split_once('=') else {
            // A bare `;` (empty parameter) is tolerated, garbage is not.
            return param.trim().is_empty();
        };
        if name.trim().eq_ignore_ascii_case("charset") {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        } else {
            true
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_charset_json_are_accepted() {
        for h in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json; charset=utf-8; foo=bar",
            "application/json;",
        ] {
            assert!(is_json(Some(h)), "{h}");
        }
    }

    #[test]
    fn everything_else_is_rejected() {
        for h in [
            "",
            "text/plain",
            "application/jsonx",
            "application/json-patch+json",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin1",
            "application/json; garbage",
            "json",
        ] {
            assert!(!is_json(Some(h)), "{h}");
        }
        assert!(!is_json(None));
    }
}
