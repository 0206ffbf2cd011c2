//! The request a component receives, as Spin 4 builds it (pure: no I/O).
//!
//! Spin's `crates/trigger-http`: `server.rs` (`handle`, `set_req_uri`),
//! `headers.rs` (`strip_forbidden_headers`, `prepare_request_headers`),
//! `wasi.rs` (`prepare_request`) and, for service chaining,
//! `outbound_http.rs` with the outbound HTTP factor's `prepare_request`.
//!
//! - A routed request's URI gets the server's scheme and the `Host`
//!   header's authority. No `Host` (and a relative URI), a `Host` that is
//!   not an authority, or one that differs from an absolute URI's: Spin's
//!   handler fails and hyper closes the connection with no answer.
//! - A client's `Host` naming a service-chaining host (`x.spin.internal`)
//!   is dropped first (so such a request then has no `Host`).
//! - The component gets every header of the request, in order, then Spin's
//!   `spin-*` headers appended after them (a client's own `spin-full-url`
//!   stays, before Spin's). A header value that is not UTF-8 fails the
//!   request (Spin answers 500).
//! - `spin-full-url` is `<URI scheme or http>://<Host header or
//!   "localhost"><path and query>`.
//! - A chained request (`http://<id>.spin.internal/...`) reaches the target
//!   with its `Host` removed (Spin removes it from every outbound request),
//!   matched as `/...` with the whole path as path info, scheme `http`, from
//!   client address `0.0.0.0:0`: so its `spin-full-url` is
//!   `http://localhost<path and query>`.

use std::net::SocketAddr;

use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};

use super::{CHAINED_CLIENT_ADDR, RouteMatch, spin_headers};

/// The domain of service-chaining hosts (`<component-id>.spin.internal`).
pub const SERVICE_CHAINING_DOMAIN: &str = "spin.internal";

/// Why a request cannot be passed to a component.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// A relative URI and no `Host` header: Spin closes the connection.
    #[error("no 'Host' header present in request")]
    NoHost,
    /// A `Host` header that is not an authority: Spin closes the connection.
    #[error("'Host' header contains an invalid authority")]
    InvalidHost,
    /// An absolute URI whose authority is not the `Host` header's: Spin
    /// closes the connection.
    #[error("authority in 'Host' header does not match authority in URI")]
    HostMismatch,
    /// A header value that is not UTF-8: Spin answers 500.
    #[error("the value of header `{0}` is not valid UTF-8")]
    NotUtf8(String),
}

impl RequestError {
    /// Whether Spin answers 500 (else it closes the connection unanswered).
    pub fn is_internal_error(&self) -> bool {
        matches!(self, Self::NotUtf8(_))
    }
}

/// The component id of a service-chaining host (`cache.spin.internal`, with
/// or without a port), as Spin's `parse_service_chaining_host` reads it:
/// exactly one label before `.spin.internal`, compared as written.
pub fn service_chaining_target(host: &str) -> Option<&str> {
    let host = host.rsplit_once(':').map_or(host, |(host, _)| host);
    let (first, rest) = host.split_once('.')?;
    (rest == SERVICE_CHAINING_DOMAIN).then_some(first)
}

/// Spin's `strip_forbidden_headers`: a client's `Host` that names a
/// service-chaining host is removed before routing.
pub fn strip_forbidden_headers(headers: &mut HeaderMap) {
    let chaining = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| service_chaining_target(host).is_some());
    if chaining {
        headers.remove(http::header::HOST);
    }
}

/// Spin's `set_req_uri`: the URI a routed request carries into the
/// component, with `scheme` and the authority of the `Host` header (or of
/// the URI itself when there is no `Host`).
pub fn request_uri(uri: &Uri, headers: &HeaderMap, scheme: Scheme) -> Result<Uri, RequestError> {
    let from_header = headers
        .get(http::header::HOST)
        .map(|h| {
            h.to_str()
                .ok()
                .and_then(|h| h.parse::<Authority>().ok())
                .ok_or(RequestError::InvalidHost)
        })
        .transpose()?;
    let mut parts = uri.clone().into_parts();
    let authority = match (from_header, parts.authority.take()) {
        (None, None) => return Err(RequestError::NoHost),
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a), Some(b)) if a != b => return Err(RequestError::HostMismatch),
        (Some(a), Some(_)) => a,
    };
    parts.scheme = Some(scheme);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    Uri::from_parts(parts).map_err(|_| RequestError::InvalidHost)
}

/// Spin's `prepare_request_headers` and the Wasi executor's
/// `prepare_request`: the request's headers in order, then the `spin-*`
/// headers appended (a pair that does not make a header is left out, as
/// Spin leaves it out).
pub fn component_headers(
    headers: &HeaderMap,
    uri: &Uri,
    route: &RouteMatch<'_>,
    client_addr: SocketAddr,
) -> Result<HeaderMap, RequestError> {
    let mut out = HeaderMap::with_capacity(headers.len() + 8);
    for (name, value) in headers {
        if std::str::from_utf8(value.as_bytes()).is_err() {
            return Err(RequestError::NotUtf8(name.to_string()));
        }
        out.append(name.clone(), value.clone());
    }
    let host = match headers.get(http::header::HOST) {
        // Checked above: every value is UTF-8.
        Some(host) => std::str::from_utf8(host.as_bytes()).unwrap_or("localhost"),
        None => "localhost",
    };
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let full_url = super::full_url(
        uri.scheme_str().unwrap_or("http"),
        Some(host),
        path_and_query,
    );
    for (name, value) in spin_headers(route, &full_url, client_addr) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append(name, value);
        }
    }
    Ok(out)
}

/// A routed request made ready for its component: Spin's URI and headers.
pub fn routed_request<B>(
    request: Request<B>,
    route: &RouteMatch<'_>,
    scheme: Scheme,
    client_addr: SocketAddr,
) -> Result<Request<B>, RequestError> {
    let (mut parts, body) = request.into_parts();
    parts.uri = request_uri(&parts.uri, &parts.headers, scheme)?;
    parts.headers = component_headers(&parts.headers, &parts.uri, route, client_addr)?;
    Ok(Request::from_parts(parts, body))
}

/// A service-chained request (to `http://<target>.spin.internal/...`) made
/// ready for `target`, as Spin's chaining interceptor hands it to the
/// target's route: `Host` removed, matched as `/...`, scheme `http`, from
/// `0.0.0.0:0`.
pub fn chained_request<B>(
    mut request: Request<B>,
    target: &str,
) -> Result<Request<B>, RequestError> {
    request.headers_mut().remove(http::header::HOST);
    let path = request.uri().path().to_string();
    let route = RouteMatch::chained(target, &path);
    routed_request(request, &route, Scheme::HTTP, CHAINED_CLIENT_ADDR)
}
