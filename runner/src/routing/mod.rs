//! Spin's HTTP routing rules (pure: no I/O).
//!
//! Built from the `[[trigger.http]]` entries, a [`Router`] answers "which
//! component serves this path?" the way `spin up` does (spinframework/spin
//! `crates/routes/src/lib.rs`, which matches with the `routefinder` crate):
//!
//! - Routes are segment patterns: literal segments (`/users`), single-segment
//!   wildcards (`/users/:id`, captured as a param), and a trailing wildcard
//!   (`/users/...`, also spelled `/users/*`) that matches the prefix itself and
//!   anything under it. `:id.json`-style dotted segments also work.
//! - The most specific route wins, compared segment by segment from the left:
//!   a literal beats a dotted pattern, which beats `:param`, which beats the
//!   trailing wildcard; a route that ends where the path ends beats a wildcard.
//!   So exact beats wildcard and the longest wildcard prefix wins.
//! - Paths are compared without their leading and trailing slashes, and runs of
//!   `/` inside a path count as one; trailing slashes still show in the path
//!   info (`/test/...` on `/test/` gives `spin-path-info: /`).
//! - `{ private = true }` routes are never reachable from outside (only by
//!   service chaining, see [`RouteMatch::chained`]).
//! - A route written twice is a duplicate: the later entry wins and the
//!   earlier one is reported, not rejected (Spin logs it and keeps serving).

use std::{cmp::Ordering, fmt, net::SocketAddr};

mod headers;
pub use headers::{
    RequestError, SERVICE_CHAINING_DOMAIN, chained_request, component_headers, request_uri,
    routed_request, service_chaining_target, strip_forbidden_headers,
};

/// Routes under this prefix are answered by the runtime itself
/// (`/.well-known/spin/health`, `/.well-known/spin/info`), never by components.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// The `spin-client-addr` Spin reports for a service-chained request.
pub const CHAINED_CLIENT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// The `route` of one `[[trigger.http]]` entry.
///
/// ```toml
/// route = "/api/..."           # RouteConfig::Route("/api/...")
/// route = { private = true }   # RouteConfig::Private { private: true }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteConfig {
    /// A routable pattern.
    Route(String),
    /// Not routable from outside; only `private = true` is valid (as in Spin).
    Private {
        /// Must be `true`.
        private: bool,
    },
}

impl From<&str> for RouteConfig {
    fn from(route: &str) -> Self {
        Self::Route(route.to_string())
    }
}

/// Why a router could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// `route = { private = false }`.
    #[error(
        "route must be a string pattern or '{{ private = true }}': '{component}' has {{ private = false }}"
    )]
    NotPrivate {
        /// The component with the bad route.
        component: String,
    },
    /// A pattern that cannot be parsed (a named or mid-route `*`, an unnamed `:`).
    #[error("Error parsing route {route} associated with component {component}: {reason}")]
    Invalid {
        /// The route, with the base applied.
        route: String,
        /// The component it routes to.
        component: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A route that was written more than once; only the later one is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateRoute {
    /// The duplicated route (with the base applied).
    pub route: String,
    /// The component whose route was replaced (never reached by it).
    pub replaced_id: String,
    /// The component that serves the route.
    pub effective_id: String,
}

impl fmt::Display for DuplicateRoute {
    /// One line of Spin's warning, which it prints after the header
    /// "The following component routes are duplicates and will never be used:".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let route = if self.route.is_empty() {
            "/"
        } else {
            &self.route
        };
        write!(
            f,
            "  {}: {} (duplicate of {})",
            self.replaced_id, route, self.effective_id
        )
    }
}

/// The router for the HTTP trigger.
#[derive(Clone, Debug)]
pub struct Router {
    /// Reachable routes in manifest order (the order of "Available Routes:").
    entries: Vec<Entry>,
    /// Indexes into `entries`, most specific first: the first match wins.
    by_specificity: Vec<usize>,
}

#[derive(Clone, Debug)]
struct Entry {
    component_id: String,
    /// The route as written in the manifest.
    raw_route: String,
    /// The route with the base applied and one trailing slash removed.
    based_route: String,
    pattern: Pattern,
}

/// A parsed route: segments, then optionally a trailing wildcard.
#[derive(Clone, Debug)]
struct Pattern {
    segments: Vec<Segment>,
    trailing_wildcard: bool,
    /// The based route without its wildcard suffix (shown in the banner).
    prefix: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// A segment mixing literals and params around dots, e.g. `:name.json`.
    Dotted(Vec<Piece>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Param(String),
}

/// What a pattern took from a path: `(param name, value)` pairs and, for a
/// trailing-wildcard route, the rest of the path.
type Captures<'r, 'p> = (Vec<(&'r str, &'p str)>, Option<&'p str>);

impl Router {
    /// Builds a router from `(component id, route)` pairs in manifest order.
    ///
    /// `base` is the application base path; Spin 2+ always uses `"/"`.
    /// Private routes are left out. Duplicates are returned, not rejected.
    pub fn build<'a>(
        base: &str,
        routes: impl IntoIterator<Item = (&'a str, &'a RouteConfig)>,
    ) -> Result<(Self, Vec<DuplicateRoute>), RouteError> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut duplicates = Vec::new();
        for (component_id, route) in routes {
            let raw_route = match route {
                RouteConfig::Route(raw) => raw,
                RouteConfig::Private { private: true } => continue,
                RouteConfig::Private { private: false } => {
                    return Err(RouteError::NotPrivate {
                        component: component_id.to_string(),
                    });
                }
            };
            let based_route = with_base(base, raw_route);
            let pattern = Pattern::parse(&based_route).map_err(|reason| RouteError::Invalid {
                route: based_route.clone(),
                component: component_id.to_string(),
                reason,
            })?;
            let entry = Entry {
                component_id: component_id.to_string(),
                raw_route: raw_route.clone(),
                based_route,
                pattern,
            };
            // Spin keys routes by their text (the later one replaces the earlier
            // in place); routefinder then keeps one handler per pattern, so
            // `/a/:x` after `/a/:y`, or `/foo/` after `/foo`, also replaces it.
            let same = entries.iter().position(|e| {
                e.raw_route == entry.raw_route || e.pattern.same_shape(&entry.pattern)
            });
            match same {
                Some(index) => {
                    let replaced = std::mem::replace(&mut entries[index], entry);
                    duplicates.push(DuplicateRoute {
                        route: replaced.based_route,
                        replaced_id: replaced.component_id,
                        effective_id: entries[index].component_id.clone(),
                    });
                }
                None => entries.push(entry),
            }
        }
        let mut by_specificity: Vec<usize> = (0..entries.len()).collect();
        // Stable: patterns of equal rank keep manifest order.
        by_specificity.sort_by(|&a, &b| entries[a].pattern.cmp_specificity(&entries[b].pattern));
        Ok((
            Self {
                entries,
                by_specificity,
            },
            duplicates,
        ))
    }

    /// The best route for a request path (`uri.path()`, not percent-decoded,
    /// no query), or `None` for a 404.
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        self.by_specificity.iter().find_map(|&index| {
            let entry = &self.entries[index];
            let (params, wildcard) = entry.pattern.matches(path)?;
            Some(RouteMatch {
                component_id: &entry.component_id,
                based_route: &entry.based_route,
                raw_route: &entry.raw_route,
                path_info: wildcard.map(|w| path_info(w, path)).unwrap_or_default(),
                params: params
                    .into_iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect(),
            })
        })
    }

    /// The reachable routes in manifest order, for the "Available Routes:" banner.
    pub fn routes(&self) -> impl Iterator<Item = RouteInfo<'_>> {
        self.entries.iter().map(|e| RouteInfo {
            component_id: &e.component_id,
            path: &e.pattern.prefix,
            wildcard: e.pattern.trailing_wildcard,
        })
    }

    /// The lines `spin up` prints under "Available Routes:", e.g.
    /// `  api: http://127.0.0.1:3000/api (wildcard)`, each followed by the
    /// component's description (indented by four) when `describe` has one.
    pub fn available_routes(
        &self,
        base_url: &str,
        describe: impl Fn(&str) -> Option<String>,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        for route in self.routes() {
            lines.push(format!("  {}: {base_url}{route}", route.component_id));
            if let Some(description) = describe(route.component_id) {
                lines.push(format!("    {description}"));
            }
        }
        lines
    }

    /// Whether a route lies under [`WELL_KNOWN_PREFIX`] (Spin warns that such
    /// routes are never reached).
    pub fn contains_reserved_route(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.based_route.starts_with(WELL_KNOWN_PREFIX))
    }
}

/// One reachable route, as listed in the banner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo<'a> {
    /// The component serving it.
    pub component_id: &'a str,
    /// The route without its wildcard suffix (`""` for the root).
    pub path: &'a str,
    /// Whether it ends in `/...`.
    pub wildcard: bool,
}

impl fmt::Display for RouteInfo<'_> {
    /// As Spin shows it after the base URL: `/api (wildcard)`, `/users/:id`,
    /// and for the root `""` or `" (wildcard)"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            write!(f, "{} (wildcard)", self.path)
        } else {
            f.write_str(self.path)
        }
    }
}

/// The outcome of routing one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    /// The component to run.
    pub component_id: &'a str,
    /// The matched route with the base applied (`spin-matched-route`).
    pub based_route: &'a str,
    /// The matched route as written in the manifest (`spin-raw-component-route`).
    pub raw_route: &'a str,
    /// What the trailing wildcard matched, with Spin's slashes (`spin-path-info`):
    /// `/foo/...` gives `""` on `/foo`, `/` on `/foo/`, `/bar` on `/foo/bar`.
    pub path_info: String,
    /// `:name` segments and their values, in route order (`spin-path-match-<name>`).
    pub params: Vec<(String, String)>,
}

impl<'a> RouteMatch<'a> {
    /// The match Spin makes for a service-chained request to
    /// `http://<component-id>.spin.internal<path>`: as if the component were
    /// routed at `/...`, whatever its route (private or not).
    pub fn chained(component_id: &'a str, path: &str) -> Self {
        Self {
            component_id,
            based_route: "/...",
            raw_route: "/...",
            path_info: path.to_string(),
            params: Vec::new(),
        }
    }

    /// The manifest route without a trailing `/...` (`spin-component-route`).
    pub fn component_route(&self) -> &str {
        self.raw_route
            .strip_suffix("/...")
            .unwrap_or(self.raw_route)
    }
}

/// The `spin-full-url` value: `<scheme>://<Host header or "localhost"><path and query>`.
pub fn full_url(scheme: &str, host: Option<&str>, path_and_query: &str) -> String {
    let host = host.unwrap_or("localhost");
    format!("{scheme}://{host}{path_and_query}")
}

/// The headers Spin adds to a routed request, in Spin's order, with Spin's
/// names: `spin-path-info`, `spin-full-url`, `spin-matched-route`,
/// `spin-base-path` (always `/` in Spin 2+), `spin-raw-component-route`,
/// `spin-component-route`, `spin-client-addr`, then one
/// `spin-path-match-<param>` per `:param` (Spin's `compute_default_headers`).
///
/// Spin appends these after the client's own headers, without removing
/// client-sent `spin-*` headers first: see [`component_headers`].
pub fn spin_headers(
    route: &RouteMatch<'_>,
    full_url: &str,
    client_addr: SocketAddr,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("spin-path-info".to_string(), route.path_info.clone()),
        ("spin-full-url".to_string(), full_url.to_string()),
        (
            "spin-matched-route".to_string(),
            route.based_route.to_string(),
        ),
        ("spin-base-path".to_string(), "/".to_string()),
        (
            "spin-raw-component-route".to_string(),
            route.raw_route.to_string(),
        ),
        (
            "spin-component-route".to_string(),
            route.component_route().to_string(),
        ),
        ("spin-client-addr".to_string(), client_addr.to_string()),
    ];
    for (name, value) in &route.params {
        // Spin builds `SPIN_PATH_MATCH_<NAME>` and then turns `_` into `-`
        // and lower-cases the whole header name.
        let name = name.replace('_', "-").to_ascii_lowercase();
        headers.push((format!("spin-path-match-{name}"), value.clone()));
    }
    headers
}

/// Spin's `sanitize_with_base`: make the route absolute, then drop one
/// trailing slash from the base and from the route.
fn with_base(base: &str, raw_route: &str) -> String {
    fn strip_one_slash(s: &str) -> &str {
        s.strip_suffix('/').unwrap_or(s)
    }
    let absolute = if raw_route.starts_with('/') {
        raw_route.to_string()
    } else {
        format!("/{raw_route}")
    };
    format!("{}{}", strip_one_slash(base), strip_one_slash(&absolute))
}

/// Spin's path info for a wildcard capture: Spin "has traditionally captured
/// trailing slashes", so the capture gets back the slashes the match trimmed.
fn path_info(wildcard: &str, path: &str) -> String {
    match (wildcard.is_empty(), path.ends_with('/')) {
        (true, false) => String::new(),
        (true, true) => "/".to_string(),
        (false, false) => format!("/{wildcard}"),
        (false, true) => format!("/{wildcard}/"),
    }
}

/// Splits off the first segment; the rest loses its leading slashes (so `//`
/// inside a path counts as one separator, as in routefinder).
fn split_segment(path: &str) -> (&str, &str) {
    match path.split_once('/') {
        Some((segment, rest)) => (segment, rest.trim_start_matches('/')),
        None => (path, ""),
    }
}

impl Pattern {
    fn parse(based_route: &str) -> Result<Self, String> {
        let (prefix, trailing_wildcard) = if let Some(prefix) = based_route.strip_suffix("/...") {
            (prefix, true)
        } else if let Some(prefix) = based_route.strip_suffix("/*") {
            (prefix, true)
        } else {
            (based_route, false)
        };
        let mut segments = Vec::new();
        for section in prefix.split('/').filter(|s| !s.is_empty()) {
            segments.push(Segment::parse(section)?);
        }
        Ok(Self {
            segments,
            trailing_wildcard,
            prefix: prefix.to_string(),
        })
    }

    /// The params captured and, for a wildcard route, the rest of the path.
    fn matches<'p>(&self, path: &'p str) -> Option<Captures<'_, 'p>> {
        let mut rest = path.trim_start_matches('/').trim_end_matches('/');
        let mut params = Vec::new();
        for segment in &self.segments {
            if rest.is_empty() {
                return None;
            }
            let (head, tail) = split_segment(rest);
            segment.matches(head, &mut params)?;
            rest = tail;
        }
        match (self.trailing_wildcard, rest.is_empty()) {
            (true, _) => Some((params, Some(rest))),
            (false, true) => Some((params, None)),
            (false, false) => None,
        }
    }

    /// Per-position ranks, lower is more specific: where the route ends (0),
    /// then each segment's kind, then the trailing wildcard (6) if any.
    fn ranks(&self) -> impl Iterator<Item = u8> + '_ {
        let end = if self.trailing_wildcard { 6 } else { 0 };
        self.segments
            .iter()
            .map(Segment::rank)
            .chain(std::iter::once(end))
    }

    /// Routefinder's precedence, made a total order. Two routes that match the
    /// same path agree on every position up to the first difference in kind,
    /// so comparing kinds left to right is the same as its backtracking search
    /// (exact child, then dotted, then `:param`, then wildcard).
    fn cmp_specificity(&self, other: &Self) -> Ordering {
        self.ranks().cmp(other.ranks())
    }

    /// Whether both patterns match exactly the same paths (param names aside).
    fn same_shape(&self, other: &Self) -> bool {
        self.trailing_wildcard == other.trailing_wildcard
            && self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| a.same_shape(b))
    }
}

impl Segment {
    fn parse(section: &str) -> Result<Self, String> {
        if section.starts_with('*') {
            return Err(if section == "*" {
                "a wildcard must be the last segment of a route".to_string()
            } else {
                format!(
                    "since there can only be one wildcard, it doesn't need a name. replace `{section}` with `*`"
                )
            });
        }
        let pieces = section
            .split('.')
            .map(|piece| match piece.strip_prefix(':') {
                Some("") => Err("params must be named".to_string()),
                Some(name) => Ok(Piece::Param(name.to_string())),
                None => Ok(Piece::Literal(piece.to_string())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match pieces.as_slice() {
            [Piece::Param(name)] => Self::Param(name.clone()),
            _ if pieces.iter().all(|p| matches!(p, Piece::Literal(_))) => {
                Self::Literal(section.to_string())
            }
            _ => Self::Dotted(pieces),
        })
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Literal(_) => 1,
            Self::Dotted(pieces) => match pieces.as_slice() {
                [Piece::Literal(_), Piece::Param(_)] => 2,
                [Piece::Param(_), Piece::Literal(_)] => 3,
                _ => 4,
            },
            Self::Param(_) => 5,
        }
    }

    fn same_shape(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Literal(a), Self::Literal(b)) => a == b,
            (Self::Param(_), Self::Param(_)) => true,
            (Self::Dotted(a), Self::Dotted(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|pair| match pair {
                        (Piece::Literal(x), Piece::Literal(y)) => x == y,
                        (Piece::Param(_), Piece::Param(_)) => true,
                        _ => false,
                    })
            }
            _ => false,
        }
    }

    /// Matches one non-empty path segment, pushing any params.
    fn matches<'r, 'p>(
        &'r self,
        segment: &'p str,
        params: &mut Vec<(&'r str, &'p str)>,
    ) -> Option<()> {
        match self {
            Self::Literal(literal) => (literal == segment).then_some(()),
            Self::Param(name) => {
                params.push((name, segment));
                Some(())
            }
            Self::Dotted(pieces) => {
                let mut rest = segment;
                for (index, piece) in pieces.iter().enumerate() {
                    if index > 0 {
                        rest = rest.strip_prefix('.')?;
                    }
                    let last = index + 1 == pieces.len();
                    rest = match piece {
                        Piece::Literal(literal) => rest.strip_prefix(literal.as_str())?,
                        // A param before a dot takes up to the next dot; a last
                        // param takes the rest of the segment.
                        Piece::Param(_) if last && rest.is_empty() => return None,
                        Piece::Param(name) if last => {
                            params.push((name, rest));
                            ""
                        }
                        Piece::Param(name) => {
                            let end = rest.find('.')?;
                            params.push((name, &rest[..end]));
                            &rest[end..]
                        }
                    };
                }
                rest.is_empty().then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
