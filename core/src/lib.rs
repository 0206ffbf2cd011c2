//! edge-core: everything the edge-processor components do that does not need
//! Spin: configuration parsing, the input model and its strict parser, the
//! processing rule, the one error type and its JSON shape, request ids, routing
//! tables, cache keys and the TTL envelope, the upstream read-through decision,
//! admin authorisation. The components (router, processor, cache) are thin
//! shells over these functions, so every behaviour is tested natively here.

pub mod auth;
pub mod batch;
pub mod body;
pub mod cache_key;
pub mod chain;
pub mod config;
pub mod content_type;
pub mod data_key;
pub mod envelope;
pub mod error;
pub mod health;
pub mod input;
pub mod internal;
pub mod log;
pub mod reply;
pub mod request_id;
pub mod routes;
pub mod rule;
mod sha256;
pub mod stats;
pub mod trace_context;
pub mod upstream;

pub use config::{CacheConfig, ConfigError, ProcessorConfig, RouterConfig};
pub use error::AppError;
pub use input::Item;
pub use reply::Reply;
pub use rule::{Outcome, Rule};

/// The version reported by `GET /api/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
