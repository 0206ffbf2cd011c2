//! Local service chaining (`http://<name>.spin.internal`), always
//! forwarding `x-request-id`: the router calls the cache and the processor,
//! the cache calls the processor.
//!
//! Written over the wasi:http bindings spin-sdk ships (`spin_sdk::wit`)
//! rather than `spin_sdk::http::send`: `send` goes through `Request`, whose
//! URI parsing and async plumbing cost a component ~32 KiB of its 300 KiB
//! budget. The calls are sequential, so blocking on each is no loss.

use edge_core::internal::{CACHE_HEADER, CacheOutcome, REQUEST_ID_HEADER};
use spin_sdk::http::{Fields, IncomingResponse, Method, OutgoingRequest, Scheme};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{IncomingBody, OutgoingBody};
use wasi::io::streams::StreamError;

/// wasi:io allows at most 4096 bytes per `blocking-write-and-flush`.
const WRITE_CHUNK: usize = 4096;
const READ_CHUNK: u64 = 64 * 1024;
/// Internal answers are produced by our own components and are small; this
/// only guards against a runaway.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// A chained call's answer.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// The `x-cache` header, if it names an outcome.
    pub cache: Option<CacheOutcome>,
}

impl Answer {
    pub fn status_and_body(self) -> (u16, Vec<u8>) {
        (self.status, self.body)
    }

    pub fn into_parts(self) -> (u16, Option<CacheOutcome>, Vec<u8>) {
        (self.status, self.cache, self.body)
    }
}

/// A chained request: method, `http://{host}{path}`, an extra header if
/// any, a JSON body if any.
pub struct Call<'a> {
    pub method: Method,
    pub host: &'a str,
    pub path: &'a str,
    pub header: Option<(&'a str, &'a [u8])>,
    pub body: Option<&'a [u8]>,
}

/// Makes the call; `None` (logged, naming `component`, the caller) when
/// the call itself fails.
pub fn call(component: &str, call: Call<'_>, request_id: &str) -> Option<Answer> {
    let (host, path) = (call.host, call.path);
    match try_call(call, request_id) {
        Ok(answer) => Some(answer),
        Err(reason) => {
            eprintln!(
                "{component}: request_id={request_id} call to http://{host}{path} failed: {reason}"
            );
            None
        }
    }
}

fn try_call(call: Call<'_>, request_id: &str) -> Result<Answer, String> {
    let Call {
        method,
        host,
        path,
        header,
        body,
    } = call;
    let mut headers = vec![(REQUEST_ID_HEADER.to_owned(), request_id.as_bytes().to_vec())];
    if let Some((name, value)) = header {
        headers.push((name.to_owned(), value.to_vec()));
    }
    if body.is_some() {
        headers.push(("content-type".to_owned(), b"application/json".to_vec()));
    }
    let fields = Fields::from_list(&headers).map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    request
        .set_method(&method)
        .and_then(|()| request.set_scheme(Some(&Scheme::Http)))
        .and_then(|()| request.set_authority(Some(host)))
        .and_then(|()| request.set_path_with_query(Some(path)))
        .map_err(|()| "invalid request line".to_owned())?;
    let future = match body {
        // No body taken: the host sends an empty one, with no body stream
        // between the instances (two host calls and a stream fewer).
        None => outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?,
        Some(body) => {
            let outgoing = request
                .body()
                .map_err(|()| "request body unavailable".to_owned())?;
            // Send first, then stream the body: the host reads it
            // concurrently.
            let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
            {
                let stream = outgoing
                    .write()
                    .map_err(|()| "request body stream unavailable".to_owned())?;
                for chunk in body.chunks(WRITE_CHUNK) {
                    stream
                        .blocking_write_and_flush(chunk)
                        .map_err(|e| format!("writing the body: {e:?}"))?;
                }
            }
            OutgoingBody::finish(outgoing, None)
                .map_err(|e| format!("finishing the body: {e:?}"))?;
            future
        }
    };

    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("{code:?}")),
        Some(Err(())) | None => return Err("no response".to_owned()),
    };
    let status = response.status();
    let cache = {
        let headers = response.headers();
        let value = headers.get(CACHE_HEADER).into_iter().next();
        value.and_then(|v| std::str::from_utf8(&v).ok().and_then(CacheOutcome::parse))
    };
    let body = read_all(&response)?;
    Ok(Answer {
        status,
        body,
        cache,
    })
}

fn read_all(response: &IncomingResponse) -> Result<Vec<u8>, String> {
    let body = response
        .consume()
        .map_err(|()| "response body unavailable".to_owned())?;
    let result = {
        let stream = body
            .stream()
            .map_err(|()| "response body stream unavailable".to_owned())?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_ANSWER_BYTES {
                        break Err("answer too large".to_owned());
                    }
                }
                Err(StreamError::Closed) => break Ok(bytes),
                Err(StreamError::LastOperationFailed(e)) => break Err(e.to_debug_string()),
            }
        }
    };
    drop(IncomingBody::finish(body));
    result
}
