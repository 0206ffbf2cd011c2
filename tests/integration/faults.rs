//! Faults under the app: Redis killed mid-load and restarted, the upstream
//! going down under load or answering a huge body, and the SQLite file
//! turning read-only or locked by another process. The cache never turns a
//! good request into an error: `x-cache: bypass` and a log line instead.
//!
//! Covered elsewhere, not repeated here: a Redis that hangs (SIGSTOP) and
//! one stopped between requests (`key_value.rs`); an upstream that is
//! unreachable, slow (504 within `upstream_timeout_ms`), trickling, closing,
//! truncating, or answering garbage or 600 KiB, with and without a stale
//! copy (`upstream.rs`); a component that traps (500) or loops (504) while
//! the runner stays up (`runner.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fixtures::{
    App, assert_error, eventually, item, process, redis_runtime_config, stop_keeping_dir,
    wait_for_log, x_cache,
};
use crate::helpers::{Runner, request};
use crate::upstream::{Behaviour, FakeUpstream};
use edge_testkit::RedisServer;

/// One request of a load run.
#[derive(Debug, Clone)]
struct Outcome {
    started: Instant,
    finished: Instant,
    status: u16,
    cache: String,
    /// Whether the body is the right answer for the item sent.
    correct: bool,
}

/// `workers` threads sending `/api/process` requests over `distinct` items
/// until stopped; every outcome is recorded.
struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(r: &Runner, workers: usize, distinct: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..workers as u64)
            .map(|w| {
                let (addr, stop, outcomes) = (r.addr, stop.clone(), outcomes.clone());
                std::thread::spawn(move || {
                    let mut n = w;
                    while !stop.load(Ordering::SeqCst) {
                        let value = 150 + n % distinct;
                        let body = item(&format!("load-{}", n % distinct), value, 1);
                        n += workers as u64;
                        let started = Instant::now();
                        let res = request(
                            addr,
                            "POST",
                            "/api/process",
                            &[("content-type", "application/json")],
                            body.as_bytes(),
                        );
                        let correct = res.status == 200
                            && serde_json::from_slice::<serde_json::Value>(&res.body)
                                .is_ok_and(|v| v["result"] == value * 2);
                        outcomes.lock().unwrap().push(Outcome {
                            started,
                            finished: Instant::now(),
                            status: res.status,
                            cache: x_cache(&res).to_string(),
                            correct,
                        });
                    }
                })
            })
            .collect();
        Load {
            stop,
            outcomes,
            threads,
        }
    }

    /// Waits until `enough` holds for the outcomes so far.
    fn until(&self, what: &str, enough: impl Fn(&[Outcome]) -> bool) {
        eventually(what, Duration::from_secs(60), || {
            enough(&self.outcomes.lock().unwrap()).then_some(())
        });
    }

    fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("load worker");
        }
        Arc::try_unwrap(self.outcomes)
            .expect("workers are done")
            .into_inner()
            .unwrap()
    }
}

#[test]
fn redis_killed_mid_load_and_restarted_never_fails_a_request() {
    let mut redis = RedisServer::start();
    let r = App::new()
        .runtime_config(redis_runtime_config(redis.port))
        .start();
    let load = Load::start(&r, 6, 20);
    load.until("hits while Redis is up", |o| {
        o.len() >= 60 && o.iter().any(|o| o.cache == "hit")
    });

    redis.stop();
    let down = Instant::now();
    load.until("requests while Redis is down", |o| {
        o.iter().filter(|o| o.started > down).count() >= 80
    });
    let health = r.get("/api/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["store"], "unavailable");

    let restarting = Instant::now();
    redis.restart();
    let up = Instant::now();
    load.until("hits after Redis is back", |o| {
        o.iter()
            .filter(|o| o.started > up && o.cache == "hit")
            .count()
            >= 20
    });
    let outcomes = load.finish();

    assert!(outcomes.len() >= 200, "only {} requests", outcomes.len());
    for o in &outcomes {
        assert_eq!(o.status, 200, "{o:?}");
        assert!(o.correct, "a wrong answer: {o:?}");
        assert!(
            o.finished - o.started < Duration::from_secs(10),
            "a request took {:?}",
            o.finished - o.started
        );
    }
    let while_down: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.started > down && o.finished < restarting)
        .collect();
    assert!(while_down.len() >= 50, "{} while down", while_down.len());
    assert!(
        while_down.iter().all(|o| o.cache == "bypass"),
        "{:?}",
        while_down.iter().find(|o| o.cache != "bypass")
    );
    assert_eq!(r.get("/api/health").json()["store"], "ok");
}

#[test]
fn an_upstream_going_down_under_load_serves_stale_copies_and_502s() {
    let upstream = FakeUpstream::start(Behaviour::Json(r#"{"n":1}"#.into()));
    let r = App::new()
        .var("upstream_origin", upstream.origin())
        .var("cache_ttl_seconds", 1)
        .var("upstream_timeout_ms", 1000)
        .start();
    for i in 0..5 {
        assert_eq!(x_cache(&r.get(&format!("/api/data/kept-{i}"))), "miss");
    }
    drop(upstream);
    eventually("the copies to expire", Duration::from_secs(30), || {
        (x_cache(&r.get("/api/data/kept-0")) == "stale").then_some(())
    });

    let addr = r.addr;
    let workers: Vec<_> = (0..6)
        .map(|w| {
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for i in 0..30 {
                    let key = match (w + i) % 2 {
                        0 => format!("kept-{}", i % 5),
                        _ => format!("never-{w}-{i}"),
                    };
                    let started = Instant::now();
                    let res = request(addr, "GET", &format!("/api/data/{key}"), &[], b"");
                    seen.push((key, res, started.elapsed()));
                }
                seen
            })
        })
        .collect();
    for worker in workers {
        for (key, res, took) in worker.join().expect("worker") {
            assert!(took < Duration::from_secs(10), "{key}: {took:?}");
            if key.starts_with("kept") {
                assert_eq!(res.status, 200, "{key}: {}", res.text());
                assert_eq!(x_cache(&res), "stale", "{key}");
                assert_eq!(res.text(), r#"{"n":1}"#);
            } else {
                assert_error(&res, 502, "upstream_error");
            }
        }
    }
    assert_eq!(r.get("/api/health").status, 200);
}

#[test]
fn a_huge_upstream_body_is_cut_off_in_bounded_time_and_memory() {
    // 64 MiB where at most 512 KiB are read (`upstream.rs` has 600 KiB).
    let upstream = FakeUpstream::start(Behaviour::Huge(64 << 20));
    let r = App::new().var("upstream_origin", upstream.origin()).start();
    assert_error(&r.get("/api/data/warm"), 502, "upstream_error");
    let before = r.rss_kib();
    for i in 0..8 {
        let started = Instant::now();
        let res = r.get(&format!("/api/data/huge-{i}"));
        assert_error(&res, 502, "upstream_error");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
    let after = r.rss_kib();
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 512 MiB offered"
    );
    wait_for_log(&r, &["upstream body larger than"]);
}

/// The default SQLite store's file in a runner's state dir.
fn sqlite_file(dir: &Path) -> PathBuf {
    dir.join(".spin/sqlite_key_value.db")
}

/// How a state dir was made read-only, undone on drop so the temporary
/// directory can be removed.
enum ReadOnly {
    /// Permissions (enough when not running as root).
    Chmod(Vec<PathBuf>),
    /// The immutable attribute: root ignores permissions, not this.
    Immutable(Vec<PathBuf>),
    /// No way to make a file unwritable here (root on a file system without
    /// attributes, or without CAP_LINUX_IMMUTABLE): the database file is
    /// moved aside and a directory takes its place, so SQLite cannot write
    /// it either (nor read it).
    Replaced { db: PathBuf, aside: PathBuf },
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chattr(flag: &str, paths: &[PathBuf]) -> bool {
    Command::new("chattr")
        .arg(flag)
        .args(paths)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn writable(db: &Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(db).is_ok()
}

impl ReadOnly {
    /// The database file and its WAL (never the `-shm` index: SQLite maps
    /// it, and making it immutable under a running runner kills that runner
    /// with SIGBUS), plus the directory, so no journal can be created.
    fn targets(db: &Path) -> Vec<PathBuf> {
        let mut paths = vec![db.to_path_buf()];
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        if wal.exists() {
            paths.push(wal);
        }
        paths.push(db.parent().expect("state dir").to_path_buf());
        paths
    }

    /// Makes the store read-only while the runner is running: only the
    /// immutable attribute acts on files the runner already has open.
    fn mid_run(db: &Path) -> Option<ReadOnly> {
        let paths = Self::targets(db);
        if chattr("+i", &paths) && !writable(db) {
            Some(ReadOnly::Immutable(paths))
        } else {
            chattr("-i", &paths);
            None
        }
    }

    /// Makes the store read-only before the runner starts.
    fn before_start(db: &Path) -> ReadOnly {
        let paths = Self::targets(db);
        for path in &paths {
            chmod(path, if path.is_dir() { 0o555 } else { 0o444 });
        }
        if !writable(db) {
            return ReadOnly::Chmod(paths);
        }
        // Root: permissions do not stop it.
        for path in &paths {
            chmod(path, if path.is_dir() { 0o755 } else { 0o644 });
        }
        if let Some(immutable) = Self::mid_run(db) {
            return immutable;
        }
        let aside = db.with_extension("db.aside");
        std::fs::rename(db, &aside).expect("move the database aside");
        std::fs::create_dir(db).expect("a directory in its place");
        ReadOnly::Replaced {
            db: db.to_path_buf(),
            aside,
        }
    }

    fn undo(&self) {
        match self {
            ReadOnly::Chmod(paths) => {
                for path in paths {
                    chmod(path, if path.is_dir() { 0o755 } else { 0o644 });
                }
            }
            ReadOnly::Immutable(paths) => {
                chattr("-i", paths);
            }
            ReadOnly::Replaced { db, aside } => {
                if db.is_dir() {
                    let _ = std::fs::remove_dir(db);
                    let _ = std::fs::rename(aside, db);
                }
            }
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        self.undo();
    }
}

/// The store fails, yet every answer is right: new items are bypasses
/// (nothing can be stored); `cached`, stored before, is a hit or a bypass.
fn assert_bypassed(r: &Runner, cached: &str, tag: &str) {
    for i in 0..5 {
        let value = 150 + i;
        let started = Instant::now();
        let res = process(r, &item(&format!("{tag}-{i}"), value, 1));
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(x_cache(&res), "bypass");
        assert_eq!(res.json()["result"], value * 2);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
    }
    let res = process(r, cached);
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(
        ["hit", "bypass"].contains(&x_cache(&res)),
        "{}",
        x_cache(&res)
    );
    // The cause, clearly, in the runner's log and the cache's.
    wait_for_log(r, &["key-value store \"default\"", "failed"]);
    wait_for_log(r, &["[cache]", "store", "failed"]);
}

#[test]
fn a_read_only_sqlite_file_at_start_is_a_bypass_with_a_clear_log() {
    let first = App::new().start();
    let cached = item("stored-before", 150, 1);
    assert_eq!(x_cache(&process(&first, &cached)), "miss");
    let dir = stop_keeping_dir(first);

    let read_only = ReadOnly::before_start(&sqlite_file(dir.path()));
    let r = App::new().start_in(dir);
    assert_bypassed(&r, &cached, "ro-start");
    let health = r.get("/api/health");
    assert_eq!(health.status, 200, "{}", health.text());
    drop(r);
    drop(read_only);
}

#[test]
fn sqlite_turning_read_only_mid_run_is_a_bypass_and_recovers() {
    let r = App::new().start();
    let cached = item("stored-before", 150, 1);
    assert_eq!(x_cache(&process(&r, &cached)), "miss");

    // The runner holds the file open: permissions no longer matter to it,
    // only the immutable attribute does (root with CAP_LINUX_IMMUTABLE, on
    // a file system with attributes).
    let Some(read_only) = ReadOnly::mid_run(&sqlite_file(r.dir.path())) else {
        eprintln!(
            "skipped: `chattr +i` is not available here, and nothing else makes an open file read-only"
        );
        return;
    };
    assert_bypassed(&r, &cached, "ro-mid");

    drop(read_only);
    let again = item("after-ro", 150, 1);
    let res = eventually(
        "the store to take writes again",
        Duration::from_secs(20),
        || {
            let res = process(&r, &again);
            (x_cache(&res) != "bypass").then_some(res)
        },
    );
    assert_eq!(x_cache(&res), "miss");
    assert_eq!(x_cache(&process(&r, &again)), "hit");
}

#[test]
fn sqlite_locked_by_another_process_is_a_bypass_within_the_busy_timeout() {
    let r = App::new().start();
    let cached = item("stored-before", 150, 1);
    assert_eq!(x_cache(&process(&r, &cached)), "miss");

    // Another process's writer lock (`BEGIN EXCLUSIVE`; in WAL mode readers
    // go on, writers wait for the runner's 5 s busy timeout, then fail).
    let db = sqlite_file(r.dir.path());
    let locker = rusqlite::Connection::open(&db).expect("open the store's file");
    locker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("take the lock");

    for i in 0..3 {
        let value = 200 + i;
        let started = Instant::now();
        let res = process(&r, &item(&format!("locked-{i}"), value, 1));
        let took = started.elapsed();
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(x_cache(&res), "bypass");
        assert_eq!(res.json()["result"], value * 2);
        // The PUT waits out the busy timeout; a sampled miss counter may
        // wait once more before it.
        assert!(took < Duration::from_secs(15), "not a hang: {took:?}");
    }
    // Reads are not blocked: the stored answer is still a hit.
    let res = process(&r, &cached);
    assert_eq!(x_cache(&res), "hit");
    wait_for_log(&r, &["key-value store \"default\"", "locked"]);

    locker.execute_batch("ROLLBACK").expect("release the lock");
    drop(locker);
    let after = item("locked-0", 200, 1);
    assert_eq!(x_cache(&process(&r, &after)), "miss");
    assert_eq!(x_cache(&process(&r, &after)), "hit");
}

#[test]
fn sqlite_locked_before_start_is_a_bypass_never_a_hang() {
    let first = App::new().start();
    let cached = item("stored-before", 150, 1);
    assert_eq!(x_cache(&process(&first, &cached)), "miss");
    let dir = stop_keeping_dir(first);

    // Exclusive locking mode plus a write: the file stays locked against
    // every other connection, readers included, until this one closes.
    let db = sqlite_file(dir.path());
    let locker = rusqlite::Connection::open(&db).expect("open the store's file");
    locker
        .execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE;
             BEGIN EXCLUSIVE;
             CREATE TABLE IF NOT EXISTS lock_holder (x);",
        )
        .expect("take the lock");

    let r = App::new().start_in(dir);
    let started = Instant::now();
    let res = process(&r, &cached);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(x_cache(&res), "bypass");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.get("/api/health").json()["store"], "unavailable");
    wait_for_log(&r, &["key-value store \"default\"", "locked"]);

    locker.execute_batch("ROLLBACK").expect("release the lock");
    drop(locker);
    let res = eventually("the store to answer again", Duration::from_secs(20), || {
        let res = process(&r, &cached);
        (x_cache(&res) == "hit").then_some(res)
    });
    assert_eq!(res.json()["result"], 300);
}
