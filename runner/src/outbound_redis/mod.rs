//! Outbound Redis (`fermyon:spin/redis@2.0.0`, world `redis-host` in
//! `runner/wit/redis.wit`), as Spin 4.0.2's `factor-outbound-redis`
//! (`host.rs`, the v2 `HostConnection`):
//!
//! - `open(address)`: the address must be allowed by the component's
//!   `allowed_outbound_hosts` as a `redis://` destination ([`Permit`]);
//!   denied (or not a URL) is `invalid-address`, an allow-list that cannot
//!   be resolved `other(<why>)`; a URL the client refuses is
//!   `invalid-address`; a failed connection `other(<client's error>)`;
//!   past 1024 open connections `too-many-connections`;
//! - each command is the client's (`SET`, `GET`, `INCRBY key 1`, ...), a
//!   failure `other(<client's error>)`; `sadd` alone reports a reply of the
//!   wrong type as `type-error`; a `get` or `execute` reply past 128 MiB is
//!   `other("query result exceeds limit of 134217728 bytes")`;
//! - `execute`'s reply is flattened as Spin's `RedisResults` does: nested
//!   arrays and sets inline, `OK` as `status("OK")`, doubles and big numbers
//!   as their text in `binary`, booleans as 1/0; maps, attributes, verbatim
//!   strings and pushes are errors.
//!
//! Each call is Spin's span (`spin_outbound_redis.open_connection`, then
//! one per command named as Spin names it: `GET <key>`, `INCRBY <key> 1`,
//! ...) under the instance's, failed as Spin's `err(level = INFO)` fails
//! it ([`spans::call_failed`]).

use std::borrow::Cow;
use std::future::Future;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncCommands, FromRedisValue, ParsingError, Value};
use opentelemetry::KeyValue;
use wasmtime::component::{HasData, Linker, Resource};

use crate::handles::Table;
use crate::permit::Permit;
use crate::telemetry::{Trace, spans};

#[cfg(test)]
mod tests;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "redis-host",
        imports: { default: async | trappable },
        additional_derives: [PartialEq],
    });
}

use bindings::fermyon::spin::redis as wit;
/// The generated interface: what the guest sees, and the traits
/// [`RedisCtx`] implements.
pub use wit::{Connection, Error, Host, HostConnection, RedisParameter, RedisResult};

/// Connections one instance may hold at once (Spin's table capacity).
pub const MAX_CONNECTIONS: usize = 1024;

/// Spin's `MAX_HOST_BUFFERED_BYTES`.
pub const MAX_RESULT_BYTES: usize = 128 << 20;

/// Per-instance outbound Redis state: the component's permission and the
/// instance's open connections.
pub struct RedisCtx {
    permit: Permit,
    connections: Table<MultiplexedConnection>,
    /// The instance's span: each call is a Redis span under it.
    pub(crate) trace: Trace,
}

impl RedisCtx {
    /// State for one instance of a component with `permit`.
    pub fn new(permit: Permit) -> Self {
        Self {
            permit,
            connections: Table::new(MAX_CONNECTIONS),
            trace: Trace::off(),
        }
    }

    fn conn(&self, connection: &Resource<Connection>) -> Result<MultiplexedConnection, Error> {
        // A multiplexed connection is a cheap handle: cloning it lets the
        // command run without holding the table.
        self.connections
            .get(connection.rep())
            .cloned()
            .ok_or_else(|| Error::Other("could not find connection for resource".into()))
    }

    /// Runs `op` on `connection` under `span` (a command's span, see
    /// [`RedisCtx::command`]).
    async fn with_conn<T, F, Fut>(
        &self,
        connection: &Resource<Connection>,
        span: Trace,
        op: F,
    ) -> wasmtime::Result<Result<T, Error>>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let result = match self.conn(connection) {
            Ok(conn) => op(conn).await,
            Err(e) => Err(e),
        };
        Ok(traced(&span, result))
    }

    /// A command's span, named `name()` (Spin's `otel.name`), with the
    /// command's arguments Spin records (`attributes()`).
    fn command(
        &self,
        name: impl FnOnce() -> String,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Trace {
        spans::redis(&self.trace, || Cow::Owned(name()), attributes)
    }

    /// Spin's `open`: the permission, then the client and its connection.
    async fn connect(&self, address: &str) -> Result<MultiplexedConnection, Error> {
        match self.permit.allows(address, "redis") {
            Ok(true) => {}
            Ok(false) => return Err(Error::InvalidAddress),
            Err(why) => return Err(Error::Other(why)),
        }
        let client = ::redis::Client::open(address).map_err(|_| Error::InvalidAddress)?;
        // Spin's client (redis 0.32) sets no connection or response
        // deadline; this one's defaults (1 s, 500 ms) would fail a BLPOP
        // that Spin serves, so both are off.
        let config = ::redis::AsyncConnectionConfig::new()
            .set_connection_timeout(None)
            .set_response_timeout(None);
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(other)
    }
}

/// The module Spin's Redis host calls are instrumented in (the `target` of
/// their error events).
const TARGET: &str = "spin_factor_outbound_redis::host";

/// `result`, with `span` failed as Spin's `err(level = INFO)` fails it.
fn traced<T>(span: &Trace, result: Result<T, Error>) -> Result<T, Error> {
    spans::traced(span, TARGET, result)
}

/// A `String` argument Spin's `#[instrument]` records as it is.
fn text(key: &'static str, value: &str) -> KeyValue {
    KeyValue::new(key, value.to_string())
}

/// Adds the outbound Redis interface to `linker`; `get` finds the
/// instance's [`RedisCtx`] in the store data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut RedisCtx,
) -> anyhow::Result<()> {
    wit::add_to_linker::<T, RedisData>(linker, get)
        .map_err(|err| anyhow::Error::from_boxed(err.into_boxed_dyn_error()))
}

struct RedisData;

impl HasData for RedisData {
    type Data<'a> = &'a mut RedisCtx;
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

impl Host for RedisCtx {}

impl HostConnection for RedisCtx {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let span = spans::redis(
            &self.trace,
            || Cow::Borrowed("spin_outbound_redis.open_connection"),
            Vec::new,
        );
        let result = match self.connect(&address).await {
            Ok(conn) => self
                .connections
                .push(conn)
                .map(Resource::new_own)
                .ok_or(Error::TooManyConnections),
            Err(e) => Err(e),
        };
        Ok(traced(&span, result))
    }

    async fn publish(
        &mut self,
        connection: Resource<Connection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let span = self.command(
            || format!("PUBLISH {channel}"),
            || vec![text("channel", &channel)],
        );
        self.with_conn(&connection, span, |mut conn| async move {
            conn.publish::<_, _, ()>(&channel, &payload)
                .await
                .map_err(other)
        })
        .await
    }

    async fn get(
        &mut self,
        connection: Resource<Connection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let span = self.command(|| format!("GET {key}"), || vec![text("key", &key)]);
        self.with_conn(&connection, span, |mut conn| async move {
            let value = conn.get::<_, Option<Vec<u8>>>(&key).await.map_err(other)?;
            if std::mem::size_of::<Option<Vec<u8>>>() + value.as_ref().map_or(0, Vec::len)
                > MAX_RESULT_BYTES
            {
                return Err(too_large());
            }
            Ok(value)
        })
        .await
    }

    async fn set(
        &mut self,
        connection: Resource<Connection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let span = self.command(|| format!("SET {key}"), || vec![text("key", &key)]);
        self.with_conn(&connection, span, |mut conn| async move {
            conn.set::<_, _, ()>(&key, &value).await.map_err(other)
        })
        .await
    }

    async fn incr(
        &mut self,
        connection: Resource<Connection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let span = self.command(|| format!("INCRBY {key} 1"), || vec![text("key", &key)]);
        self.with_conn(&connection, span, |mut conn| async move {
            conn.incr::<_, _, i64>(&key, 1).await.map_err(other)
        })
        .await
    }

    async fn del(
        &mut self,
        connection: Resource<Connection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let span = self.command(
            || format!("DEL {}", keys.join(" ")),
            || vec![KeyValue::new("keys", format!("{keys:?}"))],
        );
        self.with_conn(&connection, span, |mut conn| async move {
            conn.del::<_, u32>(&keys).await.map_err(other)
        })
        .await
    }

    async fn sadd(
        &mut self,
        connection: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let span = self.command(
            || format!("SADD {key} {}", values.join(" ")),
            || vec![text("key", &key)],
        );
        self.with_conn(&connection, span, |mut conn| async move {
            conn.sadd::<_, _, u32>(&key, &values).await.map_err(|e| {
                // Spin's client (redis 0.32) calls a reply it cannot convert
                // a TypeError; this client calls it a parse error.
                if e.kind() == ::redis::ErrorKind::Parse {
                    Error::TypeError
                } else {
                    other(e)
                }
            })
        })
        .await
    }

    async fn smembers(
        &mut self,
        connection: Resource<Connection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let span = self.command(|| format!("SMEMBERS {key}"), || vec![text("key", &key)]);
        self.with_conn(&connection, span, |mut conn| async move {
            conn.smembers::<_, Vec<String>>(&key).await.map_err(other)
        })
        .await
    }

    async fn srem(
        &mut self,
        connection: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let span = self.command(
            || format!("SREM {key} {}", values.join(" ")),
            || vec![text("key", &key)],
        );
        self.with_conn(&connection, span, |mut conn| async move {
            conn.srem::<_, _, u32>(&key, &values).await.map_err(other)
        })
        .await
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let span = self.command(
            || command.clone(),
            || {
                vec![
                    text("command", &command),
                    KeyValue::new("arguments", format!("{arguments:?}")),
                ]
            },
        );
        self.with_conn(&connection, span, |mut conn| async move {
            let mut cmd = ::redis::cmd(&command);
            for argument in arguments {
                match argument {
                    RedisParameter::Int64(v) => cmd.arg(v),
                    RedisParameter::Binary(v) => cmd.arg(v),
                };
            }
            let results = cmd
                .query_async::<RedisResults>(&mut conn)
                .await
                .map_err(other)?;
            if std::mem::size_of::<Vec<RedisResult>>()
                + results.0.iter().map(memory_size).sum::<usize>()
                > MAX_RESULT_BYTES
            {
                return Err(too_large());
            }
            Ok(results.0)
        })
        .await
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.connections.remove(connection.rep());
        Ok(())
    }
}

fn too_large() -> Error {
    Error::Other(format!(
        "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
    ))
}

fn memory_size(value: &RedisResult) -> usize {
    std::mem::size_of::<RedisResult>()
        + match value {
            RedisResult::Nil | RedisResult::Int64(_) => 0,
            RedisResult::Binary(b) => b.len(),
            RedisResult::Status(s) => s.len(),
        }
}

/// An `execute` reply, flattened as Spin's `RedisResults`.
struct RedisResults(Vec<RedisResult>);

impl FromRedisValue for RedisResults {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut values = Vec::new();
        flatten(&mut values, value)?;
        Ok(RedisResults(values))
    }
}

fn flatten(values: &mut Vec<RedisResult>, value: Value) -> Result<(), ParsingError> {
    let unsupported = |what: &str| -> ParsingError {
        format!("Could not convert Redis response - Redis {what} is not supported").into()
    };
    match value {
        Value::Nil => values.push(RedisResult::Nil),
        Value::Int(v) => values.push(RedisResult::Int64(v)),
        Value::BulkString(bytes) => values.push(RedisResult::Binary(bytes)),
        Value::SimpleString(s) => values.push(RedisResult::Status(s)),
        Value::Okay => values.push(RedisResult::Status("OK".to_string())),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                flatten(values, item)?;
            }
        }
        Value::Double(v) => values.push(RedisResult::Binary(v.to_string().into_bytes())),
        Value::Boolean(v) => values.push(RedisResult::Int64(i64::from(v))),
        Value::Map(_) => return Err(unsupported("Map type")),
        Value::Attribute { .. } => return Err(unsupported("Attribute type")),
        Value::VerbatimString { .. } => return Err(unsupported("string with format attribute")),
        Value::Push { .. } => return Err(unsupported("Pub/Sub types")),
        Value::ServerError(err) => return Err(format!("Server error - {err:?}").into()),
        // Big numbers (RESP3), as their decimal text.
        other => match big_number_text(&other) {
            Some(text) => values.push(RedisResult::Binary(text.into_bytes())),
            None => return Err(unsupported("value")),
        },
    }
    Ok(())
}

fn big_number_text(value: &Value) -> Option<String> {
    match value {
        Value::BigNumber(n) => Some(String::from_utf8_lossy(n).into_owned()),
        _ => None,
    }
}
