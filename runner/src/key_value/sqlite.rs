//! The SQLite backend, Spin's `type = "spin"`: one table, `spin_key_value
//! (store, key, value)`, shared by every label kept in the same file, with the
//! schema Spin's `key-value-spin` crate uses so the file is interchangeable.
//!
//! Built for concurrency where Spin uses one connection behind a mutex: the
//! database is in WAL mode (readers never wait for the writer), a small pool of
//! connections serves calls in parallel on Tokio's blocking threads, and a busy
//! timeout makes concurrent writers (in this process or another) queue instead
//! of failing.
//!
//! Point reads (`get`, `exists`) take a fast path first: on an idle pooled
//! connection, on the calling thread, with no busy wait. A primary-key read
//! in WAL mode takes microseconds, less than the two thread hand-offs of the
//! blocking pool (the largest cost of a cache hit in bench/README.md). A read
//! that would have to wait (no idle connection, or SQLite busy) goes the
//! blocking way instead, so the caller's thread never waits on a lock.

use super::{Store, StoreError};
use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a connection waits for another writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key   TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
)";
const GET: &str = "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2";
const SET: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
    ON CONFLICT (store, key) DO UPDATE SET value = excluded.value";
const DELETE: &str = "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2";
const EXISTS: &str = "SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2 LIMIT 1";
const KEYS: &str = "SELECT key FROM spin_key_value WHERE store = ?1";

/// Where a SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SqliteLocation {
    /// A file, created (with the table) on first use.
    File(PathBuf),
    /// Memory only: gone when the runner exits (Spin's `type = "spin"` with
    /// no `path`, or no state directory).
    Memory,
}

/// A pool of connections to one SQLite database, shared by every label
/// stored in it.
pub struct SqlitePool {
    location: SqliteLocation,
    /// Idle connections, reused most-recently-returned first.
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection the pool may have open at once; a call
    /// waits here (asynchronously) rather than on a blocking thread.
    permits: Arc<Semaphore>,
    /// Whether the table and journal mode have been set up.
    initialized: Mutex<bool>,
}

impl SqlitePool {
    /// A pool for `location` allowing `max_connections` at once. Opens
    /// nothing yet: the file and table are created on first use, as in Spin.
    /// A memory database always has exactly one connection, since each
    /// in-memory connection is a database of its own.
    pub fn new(location: SqliteLocation, max_connections: usize) -> Arc<Self> {
        let max = match location {
            SqliteLocation::Memory => 1,
            SqliteLocation::File(_) => max_connections.max(1),
        };
        Arc::new(Self {
            location,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max)),
            initialized: Mutex::new(false),
        })
    }

    /// The default pool size: enough for the blocking pool to overlap reads on
    /// every core, small enough to keep file handles and page caches modest.
    pub fn default_max_connections() -> usize {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        (cores * 2).clamp(4, 16)
    }

    /// Where this database lives.
    pub fn location(&self) -> &SqliteLocation {
        &self.location
    }

    /// Runs `work` on a pooled connection on a blocking thread. The permit
    /// travels with the work, so a caller that gives up (timeout, dropped
    /// request) still releases the connection when the work finishes.
    async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Worker("connection pool closed".into()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool.checkout()?;
            let result = work(&conn);
            pool.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
            Ok(result?)
        })
        .await
        .map_err(|err| StoreError::Worker(err.to_string()))?
    }

    /// Runs a short read on the calling thread if it can start at once: a
    /// free permit, an idle connection and no lock to wait for. `None` means
    /// "could not, use [`Self::run`]"; any other outcome is the answer.
    fn try_inline<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<Result<T, StoreError>> {
        let _permit = self.permits.try_acquire().ok()?;
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
        // No busy wait on this thread: a lock means "go the blocking way".
        let result = conn.busy_timeout(Duration::ZERO).and_then(|()| work(&conn));
        let restored = conn.busy_timeout(BUSY_TIMEOUT);
        if restored.is_ok() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
        match result {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                None
            }
            other => Some(other.map_err(StoreError::from)),
        }
    }

    /// [`Self::try_inline`], else [`Self::run`].
    pub(super) async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + Sync + 'static,
    {
        if let Some(done) = self.try_inline(&work) {
            return done;
        }
        self.run(move |conn| work(conn)).await
    }

    /// An idle connection, or a new one (the caller holds a permit, so the
    /// pool never exceeds its size).
    fn checkout(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = match &self.location {
            SqliteLocation::File(path) => Connection::open(path)?,
            SqliteLocation::Memory => Connection::open_in_memory()?,
        };
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if matches!(self.location, SqliteLocation::File(_)) {
            // In WAL mode a commit is durable against a crash of this process
            // (even kill -9) once it returns; NORMAL only skips the fsync that
            // protects against power loss, which costs a disk flush per write.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let mut initialized = self.initialized.lock().unwrap_or_else(|e| e.into_inner());
        if !*initialized {
            if matches!(self.location, SqliteLocation::File(_)) {
                // Persistent in the file; later connections inherit it.
                let mode: String =
                    conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(StoreError::Worker(format!(
                        "SQLite refused WAL mode (journal_mode is {mode:?})"
                    )));
                }
            }
            conn.execute(CREATE_TABLE, [])?;
            *initialized = true;
        }
        Ok(conn)
    }

    /// Holds one pooled connection busy until the returned sender is dropped
    /// or sent to; lets tests prove other calls do not queue behind it.
    #[cfg(test)]
    pub(super) async fn hold_one_connection(
        self: &Arc<Self>,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let (held_tx, held_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let pool = Arc::clone(self);
        let task = tokio::spawn(async move {
            let _ = pool
                .run(move |conn| {
                    // An open read transaction, as a slow reader would hold.
                    conn.execute_batch("BEGIN")?;
                    conn.query_row("SELECT count(*) FROM spin_key_value", [], |r| {
                        r.get::<_, i64>(0)
                    })?;
                    let _ = held_tx.send(());
                    let _ = release_rx.blocking_recv();
                    conn.execute_batch("COMMIT")
                })
                .await;
        });
        held_rx.await.expect("holder started");
        (release_tx, task)
    }
}

/// One label's view of a SQLite database.
pub struct SqliteStore {
    pool: Arc<SqlitePool>,
    label: Arc<str>,
}

impl SqliteStore {
    /// The store `label` in the database behind `pool`.
    pub fn new(pool: Arc<SqlitePool>, label: &str) -> Self {
        Self {
            pool,
            label: label.into(),
        }
    }
}

impl Store for SqliteStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let (label, key) = (Arc::clone(&self.label), key.to_owned());
        Box::pin(self.pool.read(move |conn| {
            conn.prepare_cached(GET)?
                .query_row((&*label, &key), |row| row.get::<_, Vec<u8>>(0))
                .optional()
        }))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<(), StoreError>> {
        let (label, key, value) = (Arc::clone(&self.label), key.to_owned(), value.to_vec());
        Box::pin(self.pool.run(move |conn| {
            conn.prepare_cached(SET)?
                .execute((&*label, &key, &value))
                .map(drop)
        }))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let (label, key) = (Arc::clone(&self.label), key.to_owned());
        Box::pin(self.pool.run(move |conn| {
            conn.prepare_cached(DELETE)?
                .execute((&*label, &key))
                .map(drop)
        }))
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (label, key) = (Arc::clone(&self.label), key.to_owned());
        Box::pin(
            self.pool
                .read(move |conn| conn.prepare_cached(EXISTS)?.exists((&*label, &key))),
        )
    }

    fn get_keys(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        let label = Arc::clone(&self.label);
        Box::pin(self.pool.run(move |conn| {
            conn.prepare_cached(KEYS)?
                .query_map([&*label], |row| row.get::<_, String>(0))?
                .collect()
        }))
    }

    fn summary(&self) -> String {
        match &self.pool.location {
            // Spin's words (`key-value-spin` `summary`).
            SqliteLocation::File(path) => format!("\"{}\"", path.display()),
            SqliteLocation::Memory => "a temporary in-memory store".to_owned(),
        }
    }
}
