//! The Redis backend, Spin's `type = "redis"`: several replicas share one
//! store. As in Spin's `key-value-redis`, keys are stored as given (no label
//! prefix: two labels on the same URL share keys; give them different
//! databases, `redis://host/1`, to keep them apart) and `get-keys` is `KEYS *`.
//!
//! Unlike Spin, an outage must never hold a request: every call is bounded by
//! a deadline, the connection manager reconnects in the background after
//! Redis restarts, and it gives up a failed reconnect quickly so calls during
//! an outage fail fast rather than wait out a long backoff.

use super::{Store, StoreError};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Client, RedisResult};
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

/// Deadlines and reconnect pacing for a Redis store.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// The most any one call may take, reconnecting included.
    pub call_timeout: Duration,
    /// The most one TCP connect + handshake may take.
    pub connect_timeout: Duration,
    /// The most Redis may take to answer one command.
    pub response_timeout: Duration,
    /// Reconnect attempts per outage detection before the call fails (the
    /// next call starts a new round).
    pub reconnect_retries: usize,
    /// Longest pause between reconnect attempts.
    pub reconnect_max_delay: Duration,
}

impl Default for RedisOptions {
    /// Tuned for a cache on the request path: a healthy Redis answers in
    /// well under a millisecond, so a second is already an outage.
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            reconnect_retries: 1,
            reconnect_max_delay: Duration::from_millis(250),
        }
    }
}

/// A store backed by one Redis database, shared by every clone.
pub struct RedisStore {
    client: Client,
    options: RedisOptions,
    summary: String,
    /// Created on first use: the manager spawns its reconnect machinery on
    /// the Tokio runtime, which may not exist yet when stores are built.
    manager: OnceLock<RedisResult<ConnectionManager>>,
}

impl RedisStore {
    /// A store for `url`. Validates the URL but does not connect: the runner
    /// starts even while Redis is down, and the first call connects.
    pub fn new(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let client = Client::open(url)?;
        // Spin's summary (`key-value-redis` `summary`): the address only.
        let summary = format!("Redis at {}", client.get_connection_info().addr());
        Ok(Self {
            client,
            options,
            summary,
            manager: OnceLock::new(),
        })
    }

    fn manager(&self) -> Result<ConnectionManager, StoreError> {
        let manager = self.manager.get_or_init(|| {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.options.connect_timeout))
                .set_response_timeout(Some(self.options.response_timeout))
                .set_number_of_retries(self.options.reconnect_retries)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(self.options.reconnect_max_delay);
            ConnectionManager::new_lazy_with_config(self.client.clone(), config)
        });
        match manager {
            Ok(manager) => Ok(manager.clone()),
            Err(err) => Err(StoreError::Redis(err.clone())),
        }
    }

    /// Runs one command under the call deadline. A command that fails
    /// because an established connection dropped (Redis restarted) is tried
    /// once more on the manager's fresh connection, so the first call after a
    /// restart succeeds; every command here is idempotent. A refused connect
    /// or a timeout is not retried: Redis is down, so fail fast.
    async fn call<T, F, Fut>(&self, operation: &'static str, command: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let manager = self.manager()?;
        let attempt = async {
            match command(manager.clone()).await {
                Err(err)
                    if err.is_unrecoverable_error()
                        && !err.is_connection_refusal()
                        && !err.is_timeout() =>
                {
                    command(manager).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.options.call_timeout, attempt).await {
            Ok(result) => Ok(result?),
            Err(_elapsed) => Err(StoreError::Timeout {
                operation,
                after: self.options.call_timeout,
            }),
        }
    }
}

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(self.call("GET", move |mut conn| async move {
            conn.get::<_, Option<Vec<u8>>>(key).await
        }))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.call("SET", move |mut conn| async move {
            conn.set::<_, _, ()>(key, value).await
        }))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.call("DEL", move |mut conn| async move {
            conn.del::<_, ()>(key).await
        }))
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.call("EXISTS", move |mut conn| async move {
            conn.exists::<_, bool>(key).await
        }))
    }

    fn get_keys(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(self.call("KEYS", |mut conn| async move {
            conn.keys::<_, Vec<String>>("*").await
        }))
    }

    fn summary(&self) -> String {
        self.summary.clone()
    }
}
