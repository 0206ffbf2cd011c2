//! The Redis backend against a real redis-server: the shared suite, and
//! outages (stopped, restarted, never answering) that must fail calls fast
//! and never hang.

use super::super::{RedisOptions, RedisStore, Store, StoreError};
use super::suite::{Backend, all_behaviour_tests};
use edge_testkit::RedisServer;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Labels `a` and `b` in two databases of one server: Spin does not prefix
/// Redis keys by label, so separate labels use separate databases.
fn redis() -> Backend {
    let server = RedisServer::start();
    Backend {
        a: Arc::new(RedisStore::new(&server.url(0), RedisOptions::default()).unwrap()),
        b: Arc::new(RedisStore::new(&server.url(1), RedisOptions::default()).unwrap()),
        _guard: Box::new(server),
    }
}

mod redis_backend {
    super::all_behaviour_tests!(super::redis);
}

/// Every call during an outage must end (with an error) well inside this.
const FAST: Duration = Duration::from_millis(2500);

async fn assert_fails_fast(store: &RedisStore) {
    let started = Instant::now();
    let result = store.get("k").await;
    let took = started.elapsed();
    assert!(
        result.is_err(),
        "get succeeded while Redis was down: {result:?}"
    );
    assert!(
        took < FAST,
        "get took {took:?} to fail while Redis was down"
    );
    let started = Instant::now();
    assert!(store.set("k", b"v").await.is_err());
    assert!(started.elapsed() < FAST, "set hung while Redis was down");
}

/// Polls until `store` answers again, which the manager must do by itself.
async fn wait_until_reconnected(store: &RedisStore) -> Duration {
    let started = Instant::now();
    loop {
        if store.set("probe", b"1").await.is_ok() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the store did not reconnect within 15s of Redis restarting"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_fast_while_redis_is_down_and_recover_after_it_restarts() {
    let mut server = RedisServer::start();
    let store = RedisStore::new(&server.url(0), RedisOptions::default()).unwrap();
    store.set("k", b"before").await.unwrap();

    server.stop();
    for _ in 0..3 {
        assert_fails_fast(&store).await;
    }

    server.restart();
    wait_until_reconnected(&store).await;
    // No persistence (--save ""), so the restart emptied it; the store works.
    assert_eq!(store.get("k").await.unwrap(), None);
    store.set("k", b"after").await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(b"after".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_after_a_quick_restart_succeeds() {
    let mut server = RedisServer::start();
    let store = RedisStore::new(&server.url(0), RedisOptions::default()).unwrap();
    store.set("k", b"v").await.unwrap();
    // Redis restarts between two requests: the old connection is dead, and
    // the call retries once on a fresh one instead of failing.
    server.restart();
    store.set("k", b"again").await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(b"again".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_created_while_redis_is_down_connects_once_it_is_up() {
    let mut server = RedisServer::start();
    server.stop();
    let store = RedisStore::new(&server.url(0), RedisOptions::default()).unwrap();
    assert_fails_fast(&store).await;
    server.restart();
    wait_until_reconnected(&store).await;
    assert_eq!(store.get("probe").await.unwrap(), Some(b"1".to_vec()));
}

/// A loopback server that accepts connections and reads, but never writes
/// a byte back: its port, and the task to abort when done.
async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_instead_of_hanging() {
    // Accepts connections and reads, but never writes a byte back.
    let (port, silent) = silent_server().await;
    let options = RedisOptions {
        call_timeout: Duration::from_millis(600),
        connect_timeout: Duration::from_millis(300),
        response_timeout: Duration::from_millis(300),
        ..RedisOptions::default()
    };
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}"), options).unwrap();
    let started = Instant::now();
    let result = store.get("k").await;
    let took = started.elapsed();
    assert!(result.is_err(), "a silent server returned {result:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_deadline_bounds_every_call() {
    // A deadline shorter than anything Redis could do proves the bound is
    // applied around the whole call, reconnects included.
    let (port, silent) = silent_server().await;
    let options = RedisOptions {
        call_timeout: Duration::from_millis(100),
        connect_timeout: Duration::from_secs(30),
        response_timeout: Duration::from_secs(30),
        ..RedisOptions::default()
    };
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}"), options).unwrap();
    let started = Instant::now();
    let err = store.exists("k").await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Timeout {
                operation: "EXISTS",
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    silent.abort();
}

#[test]
fn the_summary_hides_the_password() {
    let store = RedisStore::new("redis://:hunter2@127.0.0.1:1/0", RedisOptions::default()).unwrap();
    assert!(!store.summary().contains("hunter2"), "{}", store.summary());
}
