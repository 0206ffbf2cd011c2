//! Two replicas on one Redis behave as one service: two runners (A and B)
//! of the application, each with its own state dir and process, the same
//! admin token, and one runtime config naming the same redis-server as the
//! key-value store `default`. What one replica stores, purges, counts or
//! lets expire, the other sees.
//!
//! No load balancer here (that is `scripts/replicas`, issue 14): each test
//! talks to A and B directly, so it knows which replica answered.

use std::time::Duration;

use serde_json::Value;

use crate::fixtures::{
    ADMIN_TOKEN, App, admin_request, first_miss_after_expiry, item, process, redis_runtime_config,
    x_cache,
};
use crate::helpers::{Response, Runner};
use edge_testkit::RedisServer;

/// Polling bound for the expiry waits: generous, as the machine is shared
/// and the clock may jump; polling ends as soon as the condition holds.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(60);

/// How many sequential events the stats test sends before it expects a
/// sampled one. Each event is sampled with probability 1/SAMPLE_EVERY,
/// independently, so none of 400 is with probability (7/8)^400 ≈ 6·10⁻²⁴:
/// a bound on work, not on time, and never reached in practice (8 events
/// are needed on average).
const MAX_EVENTS_FOR_ONE_SAMPLE: usize = 400;

/// Two replicas of the app on `redis`, both with the admin token, started
/// side by side (each start loads the compiled components from the shared
/// cache).
fn two_replicas(redis: &RedisServer, vars: &[(&str, u64)]) -> (Runner, Runner) {
    let start = || {
        let mut app = App::new()
            .admin()
            .runtime_config(redis_runtime_config(redis.port));
        for (name, value) in vars {
            app = app.var(name, value);
        }
        app.start()
    };
    std::thread::scope(|s| {
        let a = s.spawn(start);
        let b = s.spawn(start);
        (
            a.join().expect("replica A starts"),
            b.join().expect("replica B starts"),
        )
    })
}

/// `GET /api/cache/stats` with the shared admin token.
fn stats(r: &Runner) -> Value {
    let res = admin_request(r, "GET", "/api/cache/stats", ADMIN_TOKEN);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

/// The stats from both replicas at a quiet moment: they are the same
/// numbers (one set of counters in the one store), returned once.
fn stats_from_both(a: &Runner, b: &Runner) -> Value {
    let (from_a, from_b) = (stats(a), stats(b));
    assert_eq!(
        from_a, from_b,
        "both replicas read the same counters and entries"
    );
    from_a
}

fn count(stats: &Value, field: &str) -> u64 {
    stats[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no `{field}` in {stats}"))
}

fn processed_at(res: &Response) -> u64 {
    res.json()["processed_at"]
        .as_u64()
        .unwrap_or_else(|| panic!("no processed_at in {}", res.text()))
}

#[test]
fn a_miss_on_one_replica_is_a_hit_on_the_other_with_the_same_bytes() {
    let redis = RedisServer::start();
    let (a, b) = two_replicas(&redis, &[]);
    for (n, (stores, reads)) in [(&a, &b), (&b, &a), (&a, &b)].into_iter().enumerate() {
        let body = item(&format!("replicated-{n}"), 150 + n as u64, 1);
        let stored = process(stores, &body);
        assert_eq!(stored.status, 200, "{}", stored.text());
        assert_eq!(x_cache(&stored), "miss", "item {n}: the first answer");
        let hit = process(reads, &body);
        assert_eq!(hit.status, 200, "{}", hit.text());
        assert_eq!(x_cache(&hit), "hit", "item {n}: the other replica's answer");
        assert_eq!(
            hit.body, stored.body,
            "item {n}: byte-identical, processed_at included"
        );
        // And the replica that stored it hits too: one entry, not two.
        let again = process(stores, &body);
        assert_eq!(x_cache(&again), "hit");
        assert_eq!(again.body, stored.body);
    }
    assert_eq!(count(&stats_from_both(&a, &b), "entries"), 3);
}

#[test]
fn delete_api_cache_on_one_replica_purges_the_other() {
    let redis = RedisServer::start();
    let (a, b) = two_replicas(&redis, &[]);
    let (x, y) = (item("purged-x", 150, 1), item("purged-y", 7, 1));
    let stored_x = process(&b, &x);
    assert_eq!(x_cache(&stored_x), "miss");
    assert_eq!(x_cache(&process(&b, &y)), "miss");
    assert_eq!(x_cache(&process(&b, &x)), "hit");
    assert_eq!(count(&stats_from_both(&a, &b), "entries"), 2);

    // The same token on both replicas: A's purge is authorised and deletes
    // what B stored.
    let purge = admin_request(&a, "DELETE", "/api/cache", ADMIN_TOKEN);
    assert_eq!(purge.status, 200, "{}", purge.text());
    assert_eq!(purge.json()["purged"], 2, "B's entries, purged through A");
    assert_eq!(count(&stats_from_both(&a, &b), "entries"), 0);

    let recomputed = process(&b, &x);
    assert_eq!(x_cache(&recomputed), "miss", "gone for B as well");
    assert_eq!(recomputed.json()["result"], stored_x.json()["result"]);
    assert_eq!(x_cache(&process(&a, &x)), "hit", "stored again, for both");
    assert_eq!(x_cache(&process(&a, &y)), "miss");
}

// How exact `/api/cache/stats` is across replicas (see edge_core::stats for
// the sampling itself):
//
// - The counters are keys in the shared store (`stats:hits`, `stats:misses`,
//   `stats:stale`), not per-replica memory. Every replica reads and writes
//   the same keys, so at a quiet moment A and B answer *the same numbers*,
//   exactly, and each counter estimates the events of all replicas
//   together.
// - Each event is sampled with probability 1/SAMPLE_EVERY (1/8) and a
//   sampled one adds SAMPLE_EVERY: an unbiased estimate of the total with a
//   standard deviation of about sqrt(7·n) after n events (±~84 after 1000).
//   More replicas do not change that: the estimate is over all their
//   events.
// - A sampled update is a read, then a write (Spin's key-value interface
//   has no atomic increment). Two sampled updates that overlap (on one
//   replica or, more likely with more replicas, on two) can lose one of
//   them: under concurrent load the counters can only undercount, by
//   SAMPLE_EVERY per lost update. Nothing is counted twice.
// - `entries` is exact at the moment of the call (a count of the store's
//   entry keys, whichever replica wrote them), expired ones not yet evicted
//   included.
//
// This test sends its requests one at a time, so no update overlaps: each
// event moves its counter by exactly 0 or SAMPLE_EVERY, and each miss adds
// exactly one entry. It asserts that, step by step, reading through the
// replica that did not serve the event.
#[test]
fn cache_stats_from_either_replica_count_both_replicas_events() {
    let redis = RedisServer::start();
    let (a, b) = two_replicas(&redis, &[]);
    let start = stats_from_both(&a, &b);
    assert_eq!(start["approximate"], true, "{start}");
    // SAMPLE_EVERY, as the answer states it (edge_core::stats: 8).
    let sample_every = count(&start, "sample_every");
    assert!(sample_every >= 1, "{start}");
    assert_eq!(count(&start, "entries"), 0);

    // Misses served by A, counted as seen through B: every miss adds one
    // entry, exactly; the misses counter moves by 0 or 8 per miss until a
    // sampled one moves it.
    let mut misses = count(&start, "misses");
    let mut entries = 0;
    for n in 0..MAX_EVENTS_FOR_ONE_SAMPLE {
        let res = process(&a, &item(&format!("counted-{n}"), 150, 1));
        assert_eq!(x_cache(&res), "miss", "{}", res.text());
        entries += 1;
        let seen = stats(&b);
        assert_eq!(count(&seen, "entries"), entries, "B counts A's entries");
        let now = count(&seen, "misses");
        assert!(
            now == misses || now == misses + sample_every,
            "one miss moves the counter by 0 or {sample_every}: {misses} → {now}"
        );
        if now > misses {
            misses = now;
            break;
        }
    }
    assert!(
        misses > count(&start, "misses"),
        "{MAX_EVENTS_FOR_ONE_SAMPLE} misses on A and B never saw one counted"
    );
    assert_eq!(count(&stats_from_both(&a, &b), "misses"), misses);

    // Hits served by B, counted as seen through A.
    let hot = item("counted-0", 150, 1);
    let mut hits = count(&stats(&a), "hits");
    let before = hits;
    for _ in 0..MAX_EVENTS_FOR_ONE_SAMPLE {
        let res = process(&b, &hot);
        assert_eq!(x_cache(&res), "hit", "{}", res.text());
        let seen = stats(&a);
        let now = count(&seen, "hits");
        assert!(
            now == hits || now == hits + sample_every,
            "one hit moves the counter by 0 or {sample_every}: {hits} → {now}"
        );
        assert_eq!(count(&seen, "misses"), misses, "a hit is not a miss");
        if now > hits {
            hits = now;
            break;
        }
    }
    assert!(
        hits > before,
        "{MAX_EVENTS_FOR_ONE_SAMPLE} hits on B and A never saw one counted"
    );

    // Both replicas' events in one set of counters, read the same anywhere.
    let end = stats_from_both(&a, &b);
    assert_eq!(
        (
            count(&end, "hits"),
            count(&end, "misses"),
            count(&end, "entries")
        ),
        (hits, misses, entries)
    );
    assert_eq!(count(&end, "stale"), 0, "no upstream data was served");
}

#[test]
fn an_entry_expires_for_both_replicas() {
    const TTL: u64 = 2;
    let redis = RedisServer::start();
    let (a, b) = two_replicas(&redis, &[("cache_ttl_seconds", TTL)]);
    let body = item("expiring", 150, 1);

    // Waits on `reader` until the entry `stored` expires: until then every
    // answer is a hit with the stored bytes; the first miss is recomputed
    // (at least TTL seconds after the stored answer, which shows it is
    // expiry and not an absent entry) and stored in turn.
    let wait_for_expiry = |reader: &Runner, stored: &Response, what: &str| {
        let again = first_miss_after_expiry(reader, &body, stored, what, EXPIRY_DEADLINE);
        assert!(
            processed_at(&again) >= processed_at(stored) + TTL,
            "a miss only after expiry: {} then {}",
            stored.text(),
            again.text()
        );
        again
    };

    let from_a = process(&a, &body);
    assert_eq!(x_cache(&from_a), "miss");
    // A's entry expires for B; B stores a fresh answer...
    let from_b = wait_for_expiry(&b, &from_a, "A's entry to expire for B");
    // ...which A serves until it expires for A in turn.
    let again_a = wait_for_expiry(&a, &from_b, "B's entry to expire for A");
    assert_eq!(again_a.json()["result"], from_a.json()["result"]);
    assert_eq!(
        count(&stats_from_both(&a, &b), "entries"),
        1,
        "an expired entry is replaced, not added to"
    );
}
