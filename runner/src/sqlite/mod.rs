//! Spin's SQLite databases (`fermyon:spin/sqlite@2.0.0`): the label →
//! database table built from the runtime config ([`Databases`]), the
//! in-process connection on rusqlite ([`Connection`]) and the host binding on
//! top ([`host`]).
//!
//! Semantics follow Spin 4.0.2's `factor-sqlite`, `sqlite` and
//! `sqlite-inproc` crates:
//! - a component opens only the labels in its `sqlite_databases`, else
//!   `access-denied` (whether the label is configured or not); a listed
//!   label nothing configures cannot happen at run time, because the app is
//!   refused at load ([`Databases::check_components`], Spin's message);
//! - `"default"` is always defined: `<state-dir>/sqlite_db.db`, or in
//!   memory without a state directory, unless `[sqlite_database.default]`
//!   says otherwise;
//! - every `open` is a new connection, opened lazily on its first statement
//!   (so an in-memory database lives as long as one guest connection, as in
//!   Spin), `ATTACH` of an existing file denied unless `allow_attach_file`;
//! - every failure of a statement is `io(<SQLite's message>)`, and a result
//!   past 128 MiB is `io("query result exceeds limit of 134217728 bytes")`.

pub mod host;
pub mod statements;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;

use crate::runtime_config::{RuntimeConfig, SqliteDatabaseConfig};
pub use host::{Error, QueryResult, RowResult, SqliteCtx, Value, add_to_linker};

/// The label every Spin application may use without a runtime config.
pub const DEFAULT_LABEL: &str = "default";

/// The default database's file name in the state directory (Spin's
/// `DEFAULT_SQLITE_DB_FILENAME`).
pub const DEFAULT_SQLITE_FILE: &str = "sqlite_db.db";

/// Spin's `MAX_HOST_BUFFERED_BYTES`: the largest result the host buffers.
pub const MAX_RESULT_BYTES: usize = 128 << 20;

/// Where a database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A fresh in-memory database per connection.
    Memory,
    /// A file (its directory is created when the database is defined).
    File(PathBuf),
}

/// One configured database: how to make a connection to it.
#[derive(Debug, Clone)]
pub struct Database {
    location: Location,
    allow_attach_file: bool,
}

impl Database {
    /// A database at `location`.
    pub fn new(location: Location, allow_attach_file: bool) -> Self {
        Self {
            location,
            allow_attach_file,
        }
    }

    /// A new connection (nothing is opened until its first statement).
    pub fn connect(&self) -> Connection {
        Connection {
            database: self.clone(),
            connection: OnceLock::new(),
        }
    }

    /// Spin's summary of the backend, e.g. `"/srv/.spin/sqlite_db.db"` (with
    /// the quotes) or `a temporary in-memory database`.
    pub fn summary(&self) -> String {
        match &self.location {
            Location::Memory => "a temporary in-memory database".to_string(),
            Location::File(path) => format!("\"{}\"", path.display()),
        }
    }
}

/// Every configured database, by label.
#[derive(Debug, Clone, Default)]
pub struct Databases {
    databases: BTreeMap<String, Database>,
}

/// Components list SQLite labels nothing configures (Spin refuses to start,
/// with this message: `factor-sqlite` `ensure_allowed_databases_are_configured`).
#[derive(Debug, thiserror::Error)]
#[error(
    "One or more components use SQLite databases which are not defined.\n\
     Check the spelling, or pass a runtime configuration file that defines these stores.\n\
     See https://spinframework.dev/dynamic-configuration#sqlite-storage-runtime-configuration\n\
     Details:\n{}",
    .0.iter().map(|(c, l)| format!("- Component {c} uses database '{l}'")).collect::<Vec<_>>().join("\n")
)]
pub struct UndefinedDatabases(pub Vec<(String, String)>);

impl Databases {
    /// The databases of `config`, with Spin's default: `"default"` is
    /// `<state_dir>/sqlite_db.db` (in memory when `state_dir` is `None`)
    /// unless `[sqlite_database.default]` says otherwise. Relative paths are
    /// made absolute against the working directory, as Spin does, and their
    /// directories created (Spin's `InProcDatabaseLocation::from_path`).
    pub fn from_config(config: &RuntimeConfig, state_dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut configs = config.sqlite_databases.clone();
        configs
            .entry(DEFAULT_LABEL.to_string())
            .or_insert_with(|| SqliteDatabaseConfig {
                path: state_dir.map(|dir| dir.join(DEFAULT_SQLITE_FILE)),
                allow_attach_file: false,
            });
        let mut databases = BTreeMap::new();
        for (label, config) in configs {
            let location = match &config.path {
                None => Location::Memory,
                Some(path) => {
                    let path = std::path::absolute(path)
                        .with_context(|| format!("SQLite database {label:?}: bad path {path:?}"))?;
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir).with_context(|| {
                            format!(
                                "failed to create sqlite database directory '{}'",
                                dir.display()
                            )
                        })?;
                    }
                    Location::File(path)
                }
            };
            databases.insert(label, Database::new(location, config.allow_attach_file));
        }
        Ok(Self { databases })
    }

    /// Databases given directly (tests, embedders).
    pub fn new(databases: impl IntoIterator<Item = (String, Database)>) -> Self {
        Self {
            databases: databases.into_iter().collect(),
        }
    }

    /// The database for `label`, if one is configured.
    pub fn get(&self, label: &str) -> Option<&Database> {
        self.databases.get(label)
    }

    /// Spin's load-time check: every label of every component's
    /// `sqlite_databases` must be configured; all the missing ones are named
    /// at once, in Spin's words.
    pub fn check_components<'a>(
        &self,
        components: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Result<(), UndefinedDatabases> {
        let missing: Vec<(String, String)> = components
            .into_iter()
            .flat_map(|(id, labels)| {
                let mut seen = HashSet::new();
                labels
                    .iter()
                    .filter(|l| !self.databases.contains_key(l.as_str()) && seen.insert(*l))
                    .map(|l| (id.to_owned(), l.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(UndefinedDatabases(missing))
        }
    }

    /// Spin's startup line when some component uses the default database
    /// (`SqliteDefaultStoreSummaryHook`), or none.
    pub fn default_banner<'a>(
        &self,
        mut components: impl Iterator<Item = &'a [String]>,
    ) -> Option<String> {
        if !components.any(|labels| labels.iter().any(|l| l == DEFAULT_LABEL)) {
            return None;
        }
        let summary = self.get(DEFAULT_LABEL)?.summary();
        Some(format!("Storing default SQLite data to {summary}."))
    }
}

/// One guest connection: Spin's `InProcConnection`, its rusqlite connection
/// opened on first use and kept for the guest connection's life.
pub struct Connection {
    database: Database,
    connection: OnceLock<Arc<Mutex<rusqlite::Connection>>>,
}

impl Connection {
    fn db_connection(&self) -> Result<Arc<Mutex<rusqlite::Connection>>, Error> {
        if let Some(c) = self.connection.get() {
            return Ok(c.clone());
        }
        let mut opened = match &self.database.location {
            Location::Memory => rusqlite::Connection::open_in_memory(),
            Location::File(path) => rusqlite::Connection::open(path),
        }
        .map_err(|e| Error::Io(e.to_string()))?;
        if !self.database.allow_attach_file {
            opened
                .authorizer(Some(|ctx: rusqlite::hooks::AuthContext<'_>| {
                    use rusqlite::hooks::{AuthAction, Authorization};
                    match ctx.action {
                        // Only a temporary ("") or in-memory database may be attached.
                        AuthAction::Attach { filename } if !matches!(filename, "" | ":memory:") => {
                            Authorization::Deny
                        }
                        _ => Authorization::Allow,
                    }
                }))
                .map_err(|e| Error::Io(e.to_string()))?;
        }
        let opened = Arc::new(Mutex::new(opened));
        Ok(self.connection.get_or_init(|| opened).clone())
    }

    /// Runs `statement` with `parameters` on a blocking thread; its rows,
    /// at most `max_result_bytes` of them (Spin's accounting).
    pub async fn query(
        &self,
        statement: &str,
        parameters: Vec<Value>,
        max_result_bytes: usize,
    ) -> Result<QueryResult, Error> {
        let statement = statement.to_owned();
        self.blocking(move |conn| execute_query(conn, &statement, parameters, max_result_bytes))
            .await
    }

    /// The database's summary (Spin's `sqlite.backend`).
    pub fn summary(&self) -> String {
        self.database.summary()
    }

    /// Runs `sql`, any number of statements, on a blocking thread (Spin's
    /// `execute_batch`, for `up --sqlite @file`).
    pub async fn execute_batch(&self, sql: &str) -> Result<(), Error> {
        let sql = sql.to_owned();
        self.blocking(move |conn| {
            conn.execute_batch(&sql)
                .map_err(|e| Error::Io(e.to_string()))
        })
        .await
    }

    /// Runs `work` on the connection (opened on first use) on a blocking
    /// thread; a failed lock or blocking task is Spin's
    /// `io("internal runtime error")`.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let internal = || Error::Io("internal runtime error".to_string());
        let connection = self.db_connection()?;
        tokio::task::spawn_blocking(move || work(&*connection.lock().map_err(|_| internal())?))
            .await
            // Spin's words when the blocking task fails (e.g. it panicked).
            .map_err(|_| internal())?
    }
}

fn execute_query(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<Value>,
    max_result_bytes: usize,
) -> Result<QueryResult, Error> {
    let io = |e: rusqlite::Error| Error::Io(e.to_string());
    let mut prepared = conn.prepare_cached(statement).map_err(io)?;
    let columns: Vec<String> = prepared.column_names().map(ToOwned::to_owned).collect();
    let width = prepared.column_count();
    let mut byte_count = std::mem::size_of::<QueryResult>();
    let mut rows = prepared
        .query(rusqlite::params_from_iter(
            parameters.into_iter().map(to_sql),
        ))
        .map_err(io)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(io)? {
        let mut values = Vec::with_capacity(width);
        for column in 0..width {
            values.push(from_sql(row.get_ref(column).map_err(io)?)?);
        }
        byte_count += values.iter().map(memory_size).sum::<usize>();
        if byte_count > max_result_bytes {
            return Err(Error::Io(format!(
                "query result exceeds limit of {max_result_bytes} bytes"
            )));
        }
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

fn to_sql(value: Value) -> rusqlite::types::Value {
    match value {
        Value::Null => rusqlite::types::Value::Null,
        Value::Integer(i) => rusqlite::types::Value::Integer(i),
        Value::Real(r) => rusqlite::types::Value::Real(r),
        Value::Text(t) => rusqlite::types::Value::Text(t),
        Value::Blob(b) => rusqlite::types::Value::Blob(b),
    }
}

fn from_sql(value: rusqlite::types::ValueRef<'_>) -> Result<Value, Error> {
    use rusqlite::types::ValueRef;
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        // Spin unwraps the UTF-8 conversion in its blocking task, so text
        // that is not UTF-8 fails the call as its failed task does.
        ValueRef::Text(t) => Value::Text(
            String::from_utf8(t.to_vec())
                .map_err(|_| Error::Io("internal runtime error".to_string()))?,
        ),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

/// Spin's `Value::memory_size`.
fn memory_size(value: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match value {
            Value::Null | Value::Integer(_) | Value::Real(_) => 0,
            Value::Text(t) => t.len(),
            Value::Blob(b) => b.len(),
        }
}

/// The labels a component may open, shared by its instances.
pub type Allowed = Arc<HashSet<String>>;

/// `(component id, sqlite_databases)` pairs of a manifest, for
/// [`Databases::check_components`].
pub fn components_of(
    manifest: &crate::manifest::Manifest,
) -> impl Iterator<Item = (&str, &[String])> {
    manifest
        .component
        .iter()
        .map(|(id, c)| (id.as_str(), c.sqlite_databases.as_slice()))
}
