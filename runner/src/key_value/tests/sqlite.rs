//! The SQLite backend: the shared suite, persistence across restarts and a
//! kill -9, Spin's schema, and concurrency (WAL, the pool).

use super::super::{SqliteLocation, SqlitePool, SqliteStore, Store, Stores};
use super::suite::{Backend, all_behaviour_tests};
use crate::runtime_config::RuntimeConfig;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Labels `a` and `b` in one database file, as two labels share Spin's table.
fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let pool = SqlitePool::new(SqliteLocation::File(dir.path().join("kv.db")), 4);
    Backend {
        a: Arc::new(SqliteStore::new(Arc::clone(&pool), "a")),
        b: Arc::new(SqliteStore::new(pool, "b")),
        _guard: Box::new(dir),
    }
}

/// The same suite on an in-memory database (`type = "spin"` without `path`).
fn sqlite_in_memory() -> Backend {
    let pool = SqlitePool::new(SqliteLocation::Memory, 8);
    Backend {
        a: Arc::new(SqliteStore::new(Arc::clone(&pool), "a")),
        b: Arc::new(SqliteStore::new(pool, "b")),
        _guard: Box::new(()),
    }
}

mod file_backend {
    super::all_behaviour_tests!(super::sqlite);
}

mod memory_backend {
    super::all_behaviour_tests!(super::sqlite_in_memory);
}

fn default_store(state_dir: &Path) -> Arc<dyn Store> {
    let stores = Stores::from_config(&RuntimeConfig::default(), Some(state_dir)).unwrap();
    Arc::clone(stores.get("default").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_the_default_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = default_store(dir.path());
    store.set("greeting", b"hello").await.unwrap();
    store.set("empty", b"").await.unwrap();
    drop(store);

    assert!(dir.path().join("sqlite_key_value.db").is_file());
    let reopened = default_store(dir.path());
    assert_eq!(
        reopened.get("greeting").await.unwrap(),
        Some(b"hello".to_vec())
    );
    assert_eq!(reopened.get("empty").await.unwrap(), Some(Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_uses_spins_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store = default_store(dir.path());
    store.set("k", b"v").await.unwrap();

    let conn = rusqlite::Connection::open(dir.path().join("sqlite_key_value.db")).unwrap();
    let row: (String, String, Vec<u8>) = conn
        .query_row("SELECT store, key, value FROM spin_key_value", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(row, ("default".into(), "k".into(), b"v".to_vec()));
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

const CHILD_DB_ENV: &str = "EDGE_RUNNER_KV_SIGKILL_CHILD_DB";

/// Not a test on its own: the writer process that
/// `committed_writes_survive_sigkill_of_the_writer` starts and kills.
/// It writes keys forever, printing `ACK <n>` after each write returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of committed_writes_survive_sigkill_of_the_writer"]
async fn sigkill_writer_child() {
    let Some(db) = std::env::var_os(CHILD_DB_ENV) else {
        return;
    };
    let pool = SqlitePool::new(SqliteLocation::File(db.into()), 4);
    let store = SqliteStore::new(pool, "default");
    for n in 0u64.. {
        let value = format!("value-{n}").repeat(50);
        store
            .set(&format!("key-{n}"), value.as_bytes())
            .await
            .unwrap();
        println!("ACK {n}");
    }
}

#[test]
fn committed_writes_survive_sigkill_of_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sqlite_key_value.db");
    let test_name = concat!(module_path!(), "::sigkill_writer_child");
    let test_name = test_name.split_once("::").unwrap().1;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            test_name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // Let it commit a few thousand writes (past a WAL checkpoint), then kill
    // it mid-stream.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last_ack = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while last_ack.is_none_or(|n| n < 3000) {
        assert!(Instant::now() < deadline, "writer too slow");
        let line = lines.next().expect("writer exited early").unwrap();
        if let Some(n) = line.strip_prefix("ACK ") {
            last_ack = Some(n.parse::<u64>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Acks printed before the kill still count: their writes had returned.
    for line in lines {
        if let Some(n) = line.unwrap().strip_prefix("ACK ") {
            last_ack = Some(n.parse().unwrap());
        }
    }
    let last_ack = last_ack.unwrap();

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = default_store(dir.path());
        for n in 0..=last_ack {
            let value = store.get(&format!("key-{n}")).await.unwrap();
            assert_eq!(
                value,
                Some(format!("value-{n}").repeat(50).into_bytes()),
                "acknowledged write {n} of {last_ack} lost"
            );
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_do_not_queue_behind_a_busy_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pool = SqlitePool::new(SqliteLocation::File(dir.path().join("kv.db")), 4);
    let store = SqliteStore::new(Arc::clone(&pool), "default");
    store.set("k", b"v").await.unwrap();

    let (release, holder) = pool.hold_one_connection().await;
    let read = tokio::time::timeout(Duration::from_secs(2), store.get("k")).await;
    assert_eq!(
        read.expect("read queued behind the busy connection")
            .unwrap(),
        Some(b"v".to_vec())
    );
    release.send(()).unwrap();
    holder.await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_point_read_on_an_idle_connection_runs_on_the_calling_thread() {
    let dir = tempfile::tempdir().unwrap();
    let pool = SqlitePool::new(SqliteLocation::File(dir.path().join("kv.db")), 4);
    let store = SqliteStore::new(Arc::clone(&pool), "s");
    store.set("k", b"v").await.unwrap();

    // Polled once, with no runtime turn in between: only an inline read can
    // be ready (the blocking pool would need another thread to run first).
    let mut read = std::pin::pin!(store.get("k"));
    let waker = std::task::Waker::noop();
    let polled = read
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker));
    assert!(
        matches!(polled, std::task::Poll::Ready(Ok(Some(ref v))) if v == b"v"),
        "the read did not complete inline: {polled:?}"
    );
    let mut exists = std::pin::pin!(store.exists("missing"));
    assert!(matches!(
        exists
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker)),
        std::task::Poll::Ready(Ok(false))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_inline_read_is_retried_the_blocking_way() {
    let dir = tempfile::tempdir().unwrap();
    let pool = SqlitePool::new(SqliteLocation::File(dir.path().join("kv.db")), 4);
    SqliteStore::new(Arc::clone(&pool), "s")
        .set("k", b"v")
        .await
        .unwrap();

    // SQLITE_BUSY on the calling thread (another process's exclusive lock,
    // a WAL recovery): the read goes again on a blocking thread, where the
    // busy timeout may wait, instead of failing or waiting inline.
    let caller = std::thread::current().id();
    let attempts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&attempts);
    let value = pool
        .read(move |conn| {
            seen.lock().unwrap().push(std::thread::current().id());
            if seen.lock().unwrap().len() == 1 {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("database is locked".into()),
                ));
            }
            conn.query_row(
                "SELECT value FROM spin_key_value WHERE key = 'k'",
                [],
                |r| r.get::<_, Vec<u8>>(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(value, b"v");
    let attempts = attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0], caller, "the first attempt was not inline");
    assert_ne!(
        attempts[1], caller,
        "the retry did not leave the caller's thread"
    );

    // Any other error is the answer: no second attempt.
    let tries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&tries);
    let failed = pool
        .read(move |conn| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            conn.query_row("SELECT nope FROM spin_key_value", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_are_not_blocked_by_an_uncommitted_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let store = SqliteStore::new(SqlitePool::new(SqliteLocation::File(path.clone()), 4), "s");
    store.set("k", b"old").await.unwrap();

    // Another process's writer, holding the write lock with a change pending.
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    writer
        .execute(
            "UPDATE spin_key_value SET value = x'6e6577' WHERE key = 'k'",
            [],
        )
        .unwrap();

    let started = Instant::now();
    assert_eq!(store.get("k").await.unwrap(), Some(b"old".to_vec()));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "reader waited for the writer"
    );

    writer.execute_batch("COMMIT").unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(b"new".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_readers_and_writers_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let pool = SqlitePool::new(SqliteLocation::File(dir.path().join("kv.db")), 8);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::new(pool, "default"));
    store.set("hot", b"value").await.unwrap();

    let mut tasks = Vec::new();
    for task in 0..32 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                if task % 4 == 0 {
                    store.set(&format!("w{task}-{i}"), b"x").await.unwrap();
                } else {
                    assert_eq!(store.get("hot").await.unwrap(), Some(b"value".to_vec()));
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.get_keys().await.unwrap().len(), 1 + 8 * 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_on_one_file_see_each_others_writes() {
    // Two runner processes (or two labels configured with the same path).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let first = SqliteStore::new(SqlitePool::new(SqliteLocation::File(path.clone()), 2), "x");
    let second = SqliteStore::new(SqlitePool::new(SqliteLocation::File(path), 2), "x");
    first.set("k", b"1").await.unwrap();
    assert_eq!(second.get("k").await.unwrap(), Some(b"1".to_vec()));
    second.delete("k").await.unwrap();
    assert!(!first.exists("k").await.unwrap());
}
