//! The app's public API as one function from request parts to a reply, built
//! from edge-core exactly as the router, cache and processor components use
//! it: same routes, same validation and errors, same cache key (SHA-256 over
//! the input and the rule), same rule and JSON. Only the cache differs: a
//! `HashMap` in this process instead of the key-value store.

use std::time::{SystemTime, UNIX_EPOCH};

use edge_core::body::{BoundedBody, check_declared_length};
use edge_core::cache_key::process_digest;
use edge_core::health::{StoreStatus, health_json};
use edge_core::input::{parse_batch, parse_item};
use edge_core::internal::CacheOutcome;
use edge_core::routes::{Route, route};
use edge_core::{AppError, CacheConfig, Reply, RouterConfig, batch::process_batch};

use crate::cache::TtlCache;

/// Everything a request needs, shared by all connections.
pub struct App {
    pub config: RouterConfig,
    pub ttl_seconds: u64,
    pub cache: TtlCache,
}

/// A request as the handler sees it (the body is read by the caller, bounded
/// by [`App::max_body`]).
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl App {
    /// The app with every variable at its default, as `spin up` without
    /// overrides.
    pub fn with_defaults() -> App {
        let config = RouterConfig::from_vars(|_| None).expect("defaults are valid");
        let cache = CacheConfig::from_vars(|_| None).expect("defaults are valid");
        App {
            config,
            ttl_seconds: cache.ttl_seconds,
            cache: TtlCache::default(),
        }
    }

    pub fn max_body(&self) -> usize {
        self.config.max_body_bytes
    }

    /// Checks the route and the declared body size before the body is read.
    pub fn precheck(
        &self,
        method: &str,
        path: &str,
        content_length: Option<&str>,
    ) -> Result<(), AppError> {
        let route = route(method, path)?;
        if matches!(route, Route::Process | Route::ProcessBatch) {
            check_declared_length(content_length, self.max_body())?;
        }
        Ok(())
    }

    /// Answers one request.
    pub fn handle(&self, req: &Incoming<'_>, request_id: &str) -> Reply {
        self.dispatch(req, request_id)
            .unwrap_or_else(|e| Reply::error(&e, request_id))
    }

    fn dispatch(&self, req: &Incoming<'_>, request_id: &str) -> Result<Reply, AppError> {
        match route(req.method, req.path)? {
            Route::Health => Ok(Reply::json(
                200,
                health_json(edge_core::VERSION, StoreStatus::Ok),
                request_id,
            )),
            Route::Process => {
                json_body(req)?;
                let item = parse_item(req.body)?;
                let key = process_digest(&item, &self.config.rule);
                let now = now();
                if let Some(body) = self.cache.get(&key, now) {
                    return Ok(
                        Reply::json(200, body.to_vec(), request_id).with_cache(CacheOutcome::Hit)
                    );
                }
                let body = self.config.rule.apply(&item, now)?.to_json();
                self.cache
                    .put(key, body.clone().into(), now, self.ttl_seconds);
                Ok(Reply::json(200, body, request_id).with_cache(CacheOutcome::Miss))
            }
            Route::ProcessBatch => {
                json_body(req)?;
                let items = parse_batch(req.body, self.config.max_batch_items)?;
                Ok(Reply::json(
                    200,
                    process_batch(&items, &self.config.rule, now(), request_id),
                    request_id,
                ))
            }
            // The data, stats and purge routes need an upstream or the
            // admin token; the benchmark does not exercise them.
            _ => Err(AppError::no_route()),
        }
    }
}

fn json_body(req: &Incoming<'_>) -> Result<(), AppError> {
    if edge_core::content_type::is_json(req.content_type) {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType)
    }
}

/// Unix seconds.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads a body chunk by chunk, stopping past `max` bytes (413).
pub fn bounded(max: usize) -> BoundedBody {
    BoundedBody::new(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(app: &App, path: &str, body: &str) -> Reply {
        app.handle(
            &Incoming {
                method: "POST",
                path,
                content_type: Some("application/json"),
                body: body.as_bytes(),
            },
            "rid",
        )
    }

    #[test]
    fn a_repeated_item_is_a_byte_identical_hit() {
        let app = App::with_defaults();
        let body = r#"{"id":"a","value":150,"timestamp":1}"#;
        let first = post(&app, "/api/process", body);
        let second = post(&app, "/api/process", body);
        assert_eq!(first.header("x-cache"), Some("miss"));
        assert_eq!(second.header("x-cache"), Some("hit"));
        assert_eq!(first.body, second.body);
        assert!(String::from_utf8_lossy(&first.body).contains(r#""result":300"#));
    }

    #[test]
    fn a_batch_answers_every_item() {
        let app = App::with_defaults();
        let reply = post(
            &app,
            "/api/process/batch",
            r#"[{"id":"a","value":1,"timestamp":1},{"id":"b","value":101,"timestamp":1}]"#,
        );
        assert_eq!(reply.status, 200);
        let text = String::from_utf8_lossy(&reply.body);
        assert!(text.contains(r#""status":"skipped""#) && text.contains(r#""result":202"#));
    }

    #[test]
    fn a_wrong_content_type_is_415() {
        let app = App::with_defaults();
        let reply = app.handle(
            &Incoming {
                method: "POST",
                path: "/api/process",
                content_type: Some("text/plain"),
                body: b"{}",
            },
            "rid",
        );
        assert_eq!(reply.status, 415);
    }
}
