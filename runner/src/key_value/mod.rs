//! Spin's key-value store (`fermyon:spin/key-value@2.0.0`): a backend trait,
//! the SQLite and Redis backends, the label → backend table built from the
//! runtime config ([`Stores`]) and the host binding on top ([`host`]).
//!
//! Semantics follow Spin's `factor-key-value`: a component opens only the
//! labels in its `key_value_stores` (else `access-denied`); a label with no
//! backend is `no-such-store`; `"default"` is always defined, as SQLite at
//! `<state-dir>/sqlite_key_value.db` unless the runtime config says otherwise.

pub mod host;
pub mod host_v3;
mod redis;
mod sqlite;
mod stores;
#[cfg(test)]
mod tests;

use futures::future::BoxFuture;
use std::time::Duration;

pub use self::redis::{RedisOptions, RedisStore};
pub use self::sqlite::{SqliteLocation, SqlitePool, SqliteStore};
pub use self::stores::{DEFAULT_LABEL, DEFAULT_SQLITE_FILE, Stores, UnknownStoreLabel};
pub use host::{KeyValueCtx, add_to_linker};

/// A key-value store bound to one label: what a guest's open `store` resource
/// points at. Object-safe (boxed futures) so [`Stores`] can hold any backend.
pub trait Store: Send + Sync {
    /// The value of `key`, or `None` when it is not set. An empty value is
    /// `Some(vec![])`, distinct from a missing key.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// Sets `key` to `value`, replacing any existing value.
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Deletes `key`; deleting a missing key is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Whether `key` is set.
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Every key in the store, in no particular order.
    fn get_keys(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>>;
    /// A one-line description for logs, e.g. `SQLite at "/srv/.spin/kv.db"`.
    /// Never contains a password.
    fn summary(&self) -> String;
}

/// A backend failure. The guest sees it as `error::other(message)`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (I/O, corruption, lock timeout...).
    #[error("SQLite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Redis answered with an error or the connection failed.
    #[error("Redis error: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// The operation did not finish in time (e.g. Redis unreachable).
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// The command, e.g. "GET".
        operation: &'static str,
        /// The deadline that passed.
        after: Duration,
    },
    /// The blocking worker running a SQLite call panicked or was cancelled.
    #[error("SQLite worker failed: {0}")]
    Worker(String),
}
