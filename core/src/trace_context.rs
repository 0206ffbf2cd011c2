//! The trace id of a W3C `traceparent` header, for the access log: the
//! join key between a log line and its trace.
//!
//! Spin passes the client's headers to the component as they came and adds
//! no `traceparent` of its own (spinframework/spin v4.0.2,
//! `crates/trigger-http/src/headers.rs` copies them; only outgoing requests
//! get one injected). So the router knows the trace id when the caller sent
//! a `traceparent`, which is then the id of Spin's whole trace (its server
//! span joins the caller's trace); otherwise it knows none, and the request
//! id stays the join key.

/// The trace id (32 lowercase hex digits) of a valid `traceparent`, parsed
/// as the W3C TraceContext propagator does: `version-traceid-parentid-flags`,
/// lowercase hex, version `ff` invalid, version `00` with exactly four
/// fields, neither id all zeros.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let is_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !is_hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !is_hex(trace_id, 32) || !is_hex(parent_id, 16) || !is_hex(flags, 2) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') || parent_id.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(trace_id)
}

#[cfg(test)]
mod tests {
    use super::trace_id;

    const ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn a_valid_traceparent_gives_its_trace_id() {
        let header = format!("00-{ID}-00f067aa0ba902b7-01");
        assert_eq!(trace_id(&header), Some(ID));
        // Unsampled is still a trace id.
        assert_eq!(trace_id(&format!("00-{ID}-00f067aa0ba902b7-00")), Some(ID));
        // A later version may carry more fields.
        assert_eq!(
            trace_id(&format!("01-{ID}-00f067aa0ba902b7-01-x")),
            Some(ID)
        );
    }

    #[test]
    fn anything_the_propagator_rejects_gives_none() {
        for bad in [
            String::new(),
            "garbage".into(),
            format!("00-{}-00f067aa0ba902b7-01", ID.to_uppercase()),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{ID}-0000000000000000-01"),
            format!("ff-{ID}-00f067aa0ba902b7-01"),
            format!("00-{ID}-00f067aa0ba902b7-01-extra"),
            format!("00-{ID}-00f067aa0ba902b7"),
            format!("00-{}-00f067aa0ba902b7-01", &ID[..31]),
            format!("0-{ID}-00f067aa0ba902b7-01"),
        ] {
            assert_eq!(trace_id(&bad), None, "{bad:?}");
        }
    }
}
