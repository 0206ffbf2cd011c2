//! Every caller mistake on `POST /api/process` and its status and code: 400
//! (malformed JSON, invalid UTF-8, wrong types, missing fields), 413 (body
//! over `max_body_bytes`, however it is framed), 415 (content type), 422
//! (numbers out of range, `id` length). Each message names the field.

use std::time::{Duration, Instant};

use crate::fixtures::{App, assert_error, item, process};
use crate::helpers::{Response, Runner, parse_response, raw_exchange};

fn post_bytes(r: &Runner, body: &[u8]) -> Response {
    r.request(
        "POST",
        "/api/process",
        &[("content-type", "application/json")],
        body,
    )
}

#[test]
fn malformed_json_is_400_malformed_json() {
    let r = Runner::app();
    for body in [
        "",
        "{",
        "{bad",
        "{\"id\":\"a\",}",
        "{\"id\":\"a\",\"value\":1,\"timestamp\":1} trailing",
        "nul",
        "{\"id\":\"unterminated}",
    ] {
        let res = post_bytes(&r, body.as_bytes());
        let message = assert_error(&res, 400, "malformed_json");
        assert!(message.contains("JSON"), "{body:?}: {message}");
    }
}

#[test]
fn invalid_utf8_is_400_invalid_utf8() {
    let r = Runner::app();
    for body in [
        &b"{\"id\":\"\xff\",\"value\":1,\"timestamp\":1}"[..],
        b"\xc3\x28",
        b"{\"id\":\"\xed\xa0\x80\",\"value\":1,\"timestamp\":1}",
    ] {
        let message = assert_error(&post_bytes(&r, body), 400, "invalid_utf8");
        assert!(message.contains("UTF-8"), "{message}");
    }
}

#[test]
fn a_wrong_type_is_400_invalid_type_naming_the_field() {
    let r = Runner::app();
    for (body, field, found) in [
        (
            r#"{"id":"a","value":"150","timestamp":1}"#,
            "value",
            "a string",
        ),
        (
            r#"{"id":"a","value":true,"timestamp":1}"#,
            "value",
            "a boolean",
        ),
        (r#"{"id":"a","value":null,"timestamp":1}"#, "value", "null"),
        (
            r#"{"id":"a","value":{"n":1},"timestamp":1}"#,
            "value",
            "an object",
        ),
        (
            r#"{"id":"a","value":[1],"timestamp":1}"#,
            "value",
            "an array",
        ),
        (r#"{"id":42,"value":1,"timestamp":1}"#, "id", "a number"),
        (r#"{"id":null,"value":1,"timestamp":1}"#, "id", "null"),
        (
            r#"{"id":"a","value":1,"timestamp":"now"}"#,
            "timestamp",
            "a string",
        ),
        (
            r#"{"id":"a","value":1,"timestamp":false}"#,
            "timestamp",
            "a boolean",
        ),
        (
            r#"[{"id":"a","value":1,"timestamp":1}]"#,
            "body",
            "an array",
        ),
        (r#""just a string""#, "body", "a string"),
        ("42", "body", "a number"),
        ("null", "body", "null"),
    ] {
        let message = assert_error(&post_bytes(&r, body.as_bytes()), 400, "invalid_type");
        assert!(message.contains(&format!("`{field}`")), "{body}: {message}");
        assert!(message.contains(found), "{body}: {message}");
    }
}

#[test]
fn a_missing_field_is_400_missing_field_naming_it() {
    let r = Runner::app();
    for (body, field) in [
        (r#"{"value":1,"timestamp":1}"#, "id"),
        (r#"{"id":"a","timestamp":1}"#, "value"),
        (r#"{"id":"a","value":1}"#, "timestamp"),
        ("{}", "id"),
    ] {
        let message = assert_error(&post_bytes(&r, body.as_bytes()), 400, "missing_field");
        assert!(message.contains(&format!("`{field}`")), "{body}: {message}");
    }
}

#[test]
fn a_duplicated_field_is_400_duplicate_field() {
    let r = Runner::app();
    let res = post_bytes(&r, br#"{"id":"a","value":1,"value":500,"timestamp":1}"#);
    let message = assert_error(&res, 400, "duplicate_field");
    assert!(message.contains("`value`"), "{message}");
}

#[test]
fn a_number_out_of_range_is_422_out_of_range() {
    let r = Runner::app();
    for (body, field, hint) in [
        (
            r#"{"id":"a","value":-1,"timestamp":1}"#,
            "value",
            "negative",
        ),
        (
            r#"{"id":"a","value":-0,"timestamp":1}"#,
            "value",
            "negative",
        ),
        (
            r#"{"id":"a","value":1.5,"timestamp":1}"#,
            "value",
            "fraction",
        ),
        (
            r#"{"id":"a","value":150.0,"timestamp":1}"#,
            "value",
            "fraction",
        ),
        (
            r#"{"id":"a","value":1e3,"timestamp":1}"#,
            "value",
            "exponent",
        ),
        (
            r#"{"id":"a","value":1E3,"timestamp":1}"#,
            "value",
            "exponent",
        ),
        (
            r#"{"id":"a","value":4294967296,"timestamp":1}"#,
            "value",
            "4294967295",
        ),
        (
            r#"{"id":"a","value":99999999999999999999999,"timestamp":1}"#,
            "value",
            "4294967295",
        ),
        (
            r#"{"id":"a","value":1,"timestamp":-5}"#,
            "timestamp",
            "negative",
        ),
        (
            r#"{"id":"a","value":1,"timestamp":1.25}"#,
            "timestamp",
            "fraction",
        ),
        (
            r#"{"id":"a","value":1,"timestamp":18446744073709551616}"#,
            "timestamp",
            "18446744073709551615",
        ),
    ] {
        let message = assert_error(&post_bytes(&r, body.as_bytes()), 422, "out_of_range");
        assert!(message.contains(&format!("`{field}`")), "{body}: {message}");
        assert!(message.contains(hint), "{body}: {message}");
    }
    // The bounds themselves are fine.
    let res = post_bytes(
        &r,
        br#"{"id":"a","value":4294967295,"timestamp":18446744073709551615}"#,
    );
    assert_eq!(res.status, 200, "{}", res.text());
}

#[test]
fn an_id_of_the_wrong_length_is_422_invalid_length() {
    let r = Runner::app();
    for id in [String::new(), "x".repeat(257), "\u{e9}".repeat(257)] {
        let message = assert_error(&process(&r, &item(&id, 1, 1)), 422, "invalid_length");
        assert!(message.contains("`id`"), "{message}");
    }
    // 256 characters (of two bytes each) are fine.
    for id in ["x".repeat(256), "\u{e9}".repeat(256), "a".into()] {
        let res = process(&r, &item(&id, 1, 1));
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.json()["id"], id.as_str());
    }
}

#[test]
fn a_content_type_other_than_json_is_415() {
    let r = Runner::app();
    let body = item("ct", 150, 1);
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        Some("application/json; charset=latin1"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| ("content-type", c))
            .into_iter()
            .collect();
        let res = r.request("POST", "/api/process", &headers, body.as_bytes());
        let message = assert_error(&res, 415, "unsupported_media_type");
        assert!(message.contains("application/json"), "{message}");
    }
}

#[test]
fn json_with_a_charset_parameter_is_accepted() {
    let r = Runner::app();
    let body = item("ct", 150, 1);
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON;charset=\"UTF-8\"",
    ] {
        let res = r.request(
            "POST",
            "/api/process",
            &[("content-type", content_type)],
            body.as_bytes(),
        );
        assert_eq!(res.status, 200, "{content_type}: {}", res.text());
    }
}

/// A valid item padded with spaces to exactly `len` bytes.
fn padded_item(len: usize) -> Vec<u8> {
    let mut body = item("pad", 150, 1).into_bytes();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

#[test]
fn a_body_at_max_body_bytes_is_accepted_and_one_byte_more_is_413() {
    let r = App::new().var("max_body_bytes", 1024).start();
    let res = post_bytes(&r, &padded_item(1024));
    assert_eq!(res.status, 200, "{}", res.text());
    let message = assert_error(
        &post_bytes(&r, &padded_item(1025)),
        413,
        "payload_too_large",
    );
    assert!(message.contains("1024"), "{message}");
    // The default limit is 65536.
    let r = Runner::app();
    assert_eq!(post_bytes(&r, &padded_item(65536)).status, 200);
    assert_error(
        &post_bytes(&r, &padded_item(65537)),
        413,
        "payload_too_large",
    );
}

/// `body` framed as chunks of at most `size` bytes.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn raw_post(r: &Runner, extra_headers: &str, body: &[u8]) -> Response {
    let mut raw = format!(
        "POST /api/process HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-type: application/json\r\n{extra_headers}\r\n",
        r.addr
    )
    .into_bytes();
    raw.extend_from_slice(body);
    let bytes = raw_exchange(r.addr, &raw, Duration::from_secs(30));
    parse_response(&bytes)
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&bytes)))
}

#[test]
fn a_chunked_body_without_content_length_is_bounded_too() {
    let r = App::new().var("max_body_bytes", 1024).start();
    let res = raw_post(
        &r,
        "transfer-encoding: chunked\r\n",
        &chunked(&padded_item(1024), 100),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let res = raw_post(
        &r,
        "transfer-encoding: chunked\r\n",
        &chunked(&padded_item(1025), 100),
    );
    assert_error(&res, 413, "payload_too_large");
    // Much larger, in one chunk.
    let res = raw_post(
        &r,
        "transfer-encoding: chunked\r\n",
        &chunked(&padded_item(200_000), 200_000),
    );
    assert_error(&res, 413, "payload_too_large");
}

#[test]
fn a_declared_length_over_the_limit_is_413_before_the_body_is_sent() {
    let r = App::new().var("max_body_bytes", 1024).start();
    // Claims a gigabyte, sends a few bytes and waits: the answer must come
    // without the rest of the body.
    let started = Instant::now();
    let res = raw_post(&r, "content-length: 1000000000\r\n", b"{\"id\":");
    assert_error(&res, 413, "payload_too_large");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answered without waiting for the body"
    );
}

#[test]
fn an_endless_chunked_body_is_cut_off_at_the_limit() {
    use std::io::{Read, Write};
    let r = App::new().var("max_body_bytes", 4096).start();
    let mut stream = std::net::TcpStream::connect(r.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /api/process HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        r.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    // Keep sending (never the final chunk) until the server answers or stops
    // reading; stop well before anything like "unbounded".
    let chunk = chunked(&[b' '; 1024], 1024);
    let chunk = &chunk[..chunk.len() - 5]; // without the terminating 0-chunk
    let mut sent = 0usize;
    for _ in 0..256 {
        if stream.write_all(chunk).is_err() {
            break;
        }
        sent += 1024;
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let res = parse_response(&out).unwrap_or_else(|| {
        panic!(
            "no answer after {sent} bytes: {:?}",
            String::from_utf8_lossy(&out)
        )
    });
    assert_error(&res, 413, "payload_too_large");
}

#[test]
fn validation_errors_are_answered_before_any_processing_or_caching() {
    let r = App::new().admin().start();
    for body in [&b"{"[..], br#"{"id":"a","value":-1,"timestamp":1}"#] {
        let res = post_bytes(&r, body);
        assert!(res.status == 400 || res.status == 422, "{}", res.text());
        assert_eq!(
            res.header("x-cache"),
            None,
            "no cache outcome for a rejected item"
        );
    }
    let stats =
        crate::fixtures::admin_request(&r, "GET", "/api/cache/stats", crate::fixtures::ADMIN_TOKEN)
            .json();
    assert_eq!(stats["entries"], 0, "nothing stored: {stats}");
}

#[test]
fn an_oversized_body_is_never_read_as_the_next_request() {
    let r = App::new().var("max_body_bytes", 64).start();
    // A body over the limit that looks like a request, then a real second
    // request on the same keep-alive connection.
    let smuggled = b"GET /api/smuggled HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut body = smuggled.to_vec();
    body.resize(100, b' ');
    for framing in ["content-length", "chunked"] {
        let mut raw = format!(
            "POST /api/process HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n",
            r.addr
        )
        .into_bytes();
        if framing == "chunked" {
            raw.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            raw.extend_from_slice(&chunked(&body, 100));
        } else {
            raw.extend_from_slice(b"content-length: 100\r\n\r\n");
            raw.extend_from_slice(&body);
        }
        raw.extend_from_slice(b"GET /api/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        let bytes = raw_exchange(r.addr, &raw, Duration::from_secs(30));
        let answers = split_responses(&bytes);
        assert!(!answers.is_empty(), "{framing}: no answer");
        assert_error(&answers[0], 413, "payload_too_large");
        // The connection is either closed after the 413 or goes on with the
        // real next request; the body is never taken for a request.
        for next in &answers[1..] {
            assert_eq!(next.status, 200, "{framing}: {}", next.text());
            assert_eq!(next.json()["status"], "ok");
        }
    }
    // Logs arrive asynchronously: wait for a later request's line first.
    r.request(
        "GET",
        "/api/health",
        &[("x-request-id", "after-smuggling")],
        b"",
    );
    crate::fixtures::wait_for_log(&r, &["after-smuggling"]);
    assert!(
        !r.output().contains("/api/smuggled"),
        "the body was parsed as a request: {}",
        r.output()
    );
}

/// Every HTTP/1.1 response in a byte stream (one connection's answers).
fn split_responses(bytes: &[u8]) -> Vec<Response> {
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| {
            bytes[i..].starts_with(b"HTTP/1.1 ") && (i == 0 || bytes[..i].ends_with(b"\r\n"))
        })
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
            parse_response(&bytes[start..end]).expect("an HTTP response")
        })
        .collect()
}
