//! Both key-value backends end to end: the same process / hit / purge suite
//! on SQLite (the default) and on a real Redis; persistence across runner
//! restarts; Redis shared by two runners; Redis going away and coming back.

use std::time::{Duration, Instant};

use crate::fixtures::{
    ADMIN_TOKEN, App, admin_request, eventually, item, process, redis_runtime_config,
    stop_keeping_dir, wait_for_log, x_cache,
};
use crate::helpers::Runner;
use edge_testkit::RedisServer;

/// Health, miss, byte-identical hit, another miss, stats, purge, miss again.
fn process_hit_purge(r: &Runner) {
    let health = r.get("/api/health").json();
    assert_eq!(health["store"], "ok", "{health}");

    let body = item("kv", 150, 1);
    let first = process(r, &body);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(x_cache(&first), "miss");
    let hit = process(r, &body);
    assert_eq!(x_cache(&hit), "hit");
    assert_eq!(hit.body, first.body);
    assert_eq!(x_cache(&process(r, &item("kv-2", 5, 1))), "miss");

    let stats = admin_request(r, "GET", "/api/cache/stats", ADMIN_TOKEN).json();
    assert_eq!(stats["entries"], 2, "{stats}");

    let purge = admin_request(r, "DELETE", "/api/cache", ADMIN_TOKEN);
    assert_eq!(purge.status, 200, "{}", purge.text());
    assert_eq!(purge.json()["purged"], 2);
    assert_eq!(x_cache(&process(r, &body)), "miss");
    assert_eq!(x_cache(&process(r, &body)), "hit");
}

#[test]
fn the_sqlite_store_serves_misses_hits_and_purges() {
    let r = App::new().admin().start();
    wait_for_log(
        &r,
        &[
            "Storing default key-value data to \"",
            "sqlite_key_value.db\".",
        ],
    );
    process_hit_purge(&r);
}

#[test]
fn the_sqlite_store_from_a_runtime_config_file_serves_misses_hits_and_purges() {
    let r = App::new()
        .admin()
        .runtime_config("[key_value_store.default]\ntype = \"spin\"\npath = \"kv/cache.db\"\n")
        .start();
    process_hit_purge(&r);
    assert!(
        r.dir.path().join("kv/cache.db").exists(),
        "the file is where the config says"
    );
}

#[test]
fn the_redis_store_serves_misses_hits_and_purges() {
    let redis = RedisServer::start();
    let r = App::new()
        .admin()
        .runtime_config(redis_runtime_config(redis.port))
        .start();
    wait_for_log(
        &r,
        &["Storing default key-value data to Redis at 127.0.0.1:"],
    );
    process_hit_purge(&r);
    assert!(redis.dbsize() >= 1, "the entries live in Redis");
}

#[test]
fn sqlite_entries_survive_a_runner_restart() {
    let first = App::new().start();
    let body = item("durable", 150, 1);
    let stored = process(&first, &body);
    assert_eq!(x_cache(&stored), "miss");
    let dir = stop_keeping_dir(first);

    let second = App::new().start_in(dir);
    let res = process(&second, &body);
    assert_eq!(x_cache(&res), "hit", "the same state dir, the same store");
    assert_eq!(res.body, stored.body);
}

#[test]
fn two_runners_on_one_redis_share_the_cache() {
    let redis = RedisServer::start();
    let a = App::new()
        .runtime_config(redis_runtime_config(redis.port))
        .start();
    let b = App::new()
        .runtime_config(redis_runtime_config(redis.port))
        .start();
    let body = item("shared", 150, 1);
    let stored = process(&a, &body);
    assert_eq!(x_cache(&stored), "miss");
    let res = process(&b, &body);
    assert_eq!(x_cache(&res), "hit", "replicas share one cache");
    assert_eq!(res.body, stored.body);
}

#[test]
fn redis_going_away_is_a_bypass_and_its_return_brings_hits_back() {
    let mut redis = RedisServer::start();
    let r = App::new()
        .runtime_config(redis_runtime_config(redis.port))
        .start();
    let body = item("flaky", 150, 1);
    assert_eq!(x_cache(&process(&r, &body)), "miss");
    assert_eq!(x_cache(&process(&r, &body)), "hit");

    redis.stop();
    for _ in 0..3 {
        let res = process(&r, &body);
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(x_cache(&res), "bypass");
        assert_eq!(res.json()["result"], 300);
    }
    assert_eq!(r.get("/api/health").json()["store"], "unavailable");

    // Back, empty (nothing was persisted): the first answer is stored again,
    // then served as a hit.
    redis.restart();
    let stored = eventually("the store to come back", Duration::from_secs(20), || {
        let res = process(&r, &body);
        (x_cache(&res) != "bypass").then_some(res)
    });
    assert_eq!(x_cache(&stored), "miss");
    let res = process(&r, &body);
    assert_eq!(x_cache(&res), "hit");
    assert_eq!(res.body, stored.body);
    assert_eq!(r.get("/api/health").json()["store"], "ok");
}

#[test]
fn a_redis_that_hangs_is_a_bypass_within_the_store_deadline() {
    let redis = RedisServer::start();
    let r = App::new()
        .runtime_config(redis_runtime_config(redis.port))
        .start();
    let body = item("frozen", 150, 1);
    assert_eq!(x_cache(&process(&r, &body)), "miss");

    redis.pause();
    let started = Instant::now();
    let res = process(&r, &body);
    let took = started.elapsed();
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(x_cache(&res), "bypass");
    assert_eq!(res.json()["result"], 300);
    assert!(
        took < Duration::from_secs(15),
        "bounded, not hung: {took:?}"
    );
    assert_eq!(r.get("/api/health").json()["store"], "unavailable");

    redis.resume();
    let res = eventually("the store to answer again", Duration::from_secs(20), || {
        let res = process(&r, &body);
        (x_cache(&res) == "hit").then_some(res)
    });
    assert_eq!(res.json()["result"], 300);
}
