//! The public routes (served by the router) as a pure table: method and path
//! in, route or a 404/405 out.
//!
//! | method | path                  | route        |
//! |--------|-----------------------|--------------|
//! | GET    | /api/health           | Health       |
//! | POST   | /api/process          | Process      |
//! | POST   | /api/process/batch    | ProcessBatch |
//! | GET    | /api/data/{key}       | Data         |
//! | GET    | /api/cache/stats      | CacheStats   |
//! | DELETE | /api/cache            | CachePurge   |

use crate::error::AppError;

/// A matched public route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Health,
    Process,
    ProcessBatch,
    /// The key exactly as in the raw path (validated separately, see
    /// [`crate::data_key`]).
    Data {
        key: &'a str,
    },
    CacheStats,
    CachePurge,
}

impl Route<'_> {
    /// Whether the route needs the admin token.
    pub fn is_admin(&self) -> bool {
        matches!(self, Route::CacheStats | Route::CachePurge)
    }
}

/// The path without its query string.
pub fn strip_query(path_with_query: &str) -> &str {
    path_with_query
        .split_once('?')
        .map_or(path_with_query, |(path, _)| path)
}

/// Checks `method` against the single method a path allows.
pub fn require_method(method: &str, allow: &'static str) -> Result<(), AppError> {
    if method == allow {
        Ok(())
    } else {
        Err(AppError::MethodNotAllowed { allow })
    }
}

/// Matches a public request.
pub fn route<'a>(method: &str, path_with_query: &'a str) -> Result<Route<'a>, AppError> {
    let path = strip_query(path_with_query);
    let (allow, route) = match path {
        "/api/health" => ("GET", Route::Health),
        "/api/process" => ("POST", Route::Process),
        "/api/process/batch" => ("POST", Route::ProcessBatch),
        "/api/cache/stats" => ("GET", Route::CacheStats),
        "/api/cache" => ("DELETE", Route::CachePurge),
        _ => match path.strip_prefix("/api/data/") {
            Some(key) => ("GET", Route::Data { key }),
            None => return Err(AppError::no_route()),
        },
    };
    require_method(method, allow)?;
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_matches() {
        let table = [
            ("GET", "/api/health", Route::Health),
            ("POST", "/api/process", Route::Process),
            ("POST", "/api/process/batch", Route::ProcessBatch),
            ("GET", "/api/data/abc", Route::Data { key: "abc" }),
            ("GET", "/api/cache/stats", Route::CacheStats),
            ("DELETE", "/api/cache", Route::CachePurge),
            ("GET", "/api/health?verbose=1", Route::Health),
        ];
        for (method, path, expected) in table {
            assert_eq!(route(method, path), Ok(expected), "{method} {path}");
        }
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "/",
            "/api",
            "/api/health/",
            "/api/processes",
            "/api/data",
            "/API/health",
        ] {
            let e = route("GET", path).unwrap_err();
            assert_eq!(e.status(), 404, "{path}");
        }
    }

    #[test]
    fn a_wrong_method_is_405_with_allow() {
        for (method, path, allow) in [
            ("POST", "/api/health", "GET"),
            ("GET", "/api/process", "POST"),
            ("PUT", "/api/process/batch", "POST"),
            ("DELETE", "/api/data/x", "GET"),
            ("POST", "/api/cache/stats", "GET"),
            ("GET", "/api/cache", "DELETE"),
            ("HEAD", "/api/health", "GET"),
        ] {
            let e = route(method, path).unwrap_err();
            assert_eq!(e.status(), 405, "{method} {path}");
            assert_eq!(e.allow(), Some(allow));
        }
    }

    #[test]
    fn data_keys_are_taken_raw_from_the_path() {
        assert_eq!(
            route("GET", "/api/data/a%2Fb"),
            Ok(Route::Data { key: "a%2Fb" })
        );
        assert_eq!(
            route("GET", "/api/data/a/b"),
            Ok(Route::Data { key: "a/b" })
        );
        assert_eq!(route("GET", "/api/data/"), Ok(Route::Data { key: "" }));
        assert_eq!(
            route("GET", "/api/data/k?x=1"),
            Ok(Route::Data { key: "k" })
        );
    }

    #[test]
    fn only_cache_routes_are_admin() {
        assert!(Route::CacheStats.is_admin());
        assert!(Route::CachePurge.is_admin());
        assert!(!Route::Health.is_admin());
        assert!(!Route::Data { key: "a" }.is_admin());
    }
}
