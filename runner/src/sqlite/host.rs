//! The `fermyon:spin/sqlite@2.0.0` host binding (world `sqlite-host` in
//! `runner/wit/sqlite.wit`), as Spin's `factor-sqlite` `InstanceState`:
//! every failure the guest can cause is the inner [`Error`], never a trap.
//! `open` checks the component's `sqlite_databases` first (`access-denied`),
//! then the configured labels (`no-such-database`); at most 256 connections
//! are open at once (the next `open` is `io("too many connections
//! opened")`); a handle not open is `invalid-connection`.
//!
//! Each call is Spin's span (`spin_sqlite.open`, and `spin_sqlite.execute`
//! named by the statement) under the instance's, failed as Spin's
//! `err(level = INFO)` fails it ([`spans::call_failed`]).

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource};

use super::{Allowed, Connection as DbConnection, Databases, MAX_RESULT_BYTES};
use crate::handles::Table;
use crate::telemetry::{Trace, spans};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "sqlite-host",
        imports: { default: async | trappable },
        additional_derives: [PartialEq],
    });
}

use bindings::fermyon::spin::sqlite;
/// The generated interface: what the guest sees, and the traits
/// [`SqliteCtx`] implements (callable directly, as the tests do).
pub use sqlite::{Connection, Error, Host, HostConnection, QueryResult, RowResult, Value};

/// Connections one instance may hold at once (Spin's table capacity).
pub const MAX_CONNECTIONS: usize = 256;

/// Per-instance SQLite state: the labels this component may open, the
/// application's databases, and the instance's open connections.
pub struct SqliteCtx {
    allowed: Allowed,
    databases: Arc<Databases>,
    connections: Table<Arc<DbConnection>>,
    /// The instance's span: each call is a `spin_sqlite.*` span under it.
    pub(crate) trace: Trace,
}

impl SqliteCtx {
    /// State for one instance of a component whose `sqlite_databases` is
    /// `allowed`.
    pub fn new(databases: Arc<Databases>, allowed: Allowed) -> Self {
        Self {
            allowed,
            databases,
            connections: Table::new(MAX_CONNECTIONS),
            trace: Trace::off(),
        }
    }
}

/// Adds the SQLite interface to `linker`; `get` finds the instance's
/// [`SqliteCtx`] in the store data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut SqliteCtx,
) -> anyhow::Result<()> {
    sqlite::add_to_linker::<T, SqliteData>(linker, get)
        .map_err(|err| anyhow::Error::from_boxed(err.into_boxed_dyn_error()))
}

struct SqliteData;

impl HasData for SqliteData {
    type Data<'a> = &'a mut SqliteCtx;
}

impl Host for SqliteCtx {}

impl SqliteCtx {
    fn open_connection(
        &mut self,
        database: &str,
        span: &Trace,
    ) -> Result<Resource<Connection>, Error> {
        // Spin checks the permission before the label exists.
        if !self.allowed.contains(database) {
            return Err(Error::AccessDenied);
        }
        let db = self.databases.get(database).ok_or(Error::NoSuchDatabase)?;
        let connection = Arc::new(db.connect());
        // Spin records the backend once the connection is made, before it
        // takes a slot in the table.
        spans::sqlite_backend(span, || connection.summary());
        self.connections
            .push(connection)
            .map(Resource::new_own)
            .ok_or_else(|| Error::Io("too many connections opened".to_string()))
    }
}

/// The module Spin's SQLite host calls are instrumented in (the `target`
/// of their error events).
const TARGET: &str = "spin_factor_sqlite::host";

/// `result`, with `span` failed as Spin's `err(level = INFO)` fails it.
fn traced<T>(span: &Trace, result: Result<T, Error>) -> Result<T, Error> {
    spans::traced(span, TARGET, result)
}

impl HostConnection for SqliteCtx {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let span = spans::sqlite_open(&self.trace, &database);
        let result = self.open_connection(&database, &span);
        Ok(traced(&span, result))
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let span = spans::sqlite_execute(&self.trace, &statement);
        let Some(connection) = self.connections.get(connection.rep()).cloned() else {
            return Ok(traced(&span, Err(Error::InvalidConnection)));
        };
        spans::sqlite_backend(&span, || connection.summary());
        let result = connection
            .query(&statement, parameters, MAX_RESULT_BYTES)
            .await;
        Ok(traced(&span, result))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.connections.remove(connection.rep());
        Ok(())
    }
}
