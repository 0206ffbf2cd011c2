//! The admin routes: `GET /api/cache/stats` and `DELETE /api/cache`, only
//! with `Authorization: Bearer <admin_token>`; 403 while the token is
//! unset, 401 for a missing or wrong one.

use crate::fixtures::{
    ADMIN_TOKEN, App, admin_request, assert_api_response, assert_error, item, process, x_cache,
};
use crate::helpers::Runner;

const ROUTES: [(&str, &str); 2] = [("GET", "/api/cache/stats"), ("DELETE", "/api/cache")];

#[test]
fn admin_routes_are_403_while_admin_token_is_unset() {
    let r = Runner::app();
    for (method, path) in ROUTES {
        let message = assert_error(&r.request(method, path, &[], b""), 403, "admin_disabled");
        assert!(message.contains("admin_token"), "{message}");
        // Whatever token is presented, even an empty one.
        for token in ["", "anything"] {
            assert_error(
                &admin_request(&r, method, path, token),
                403,
                "admin_disabled",
            );
        }
    }
}

#[test]
fn admin_routes_are_401_without_the_right_token() {
    let r = App::new().admin().start();
    let wrong_case = ADMIN_TOKEN.to_uppercase();
    let longer = format!("{ADMIN_TOKEN}x");
    let prefix = &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1];
    let basic = format!("Basic {ADMIN_TOKEN}");
    let bare = ADMIN_TOKEN.to_string();
    for (method, path) in ROUTES {
        assert_error(&r.request(method, path, &[], b""), 401, "unauthorized");
        for header in [
            "Bearer",
            "Bearer ",
            "Bearer wrong",
            &format!("Bearer {wrong_case}"),
            &format!("Bearer {longer}"),
            &format!("Bearer {prefix}"),
            &basic,
            &bare,
        ] {
            let res = r.request(method, path, &[("authorization", header)], b"");
            let message = assert_error(&res, 401, "unauthorized");
            assert!(message.contains("Bearer"), "{message}");
            assert!(!res.text().contains(ADMIN_TOKEN), "the token never leaks");
        }
    }
}

#[test]
fn the_right_token_is_accepted_with_any_case_of_bearer() {
    let r = App::new().admin().start();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let header = format!("{scheme} {ADMIN_TOKEN}");
        let res = r.request(
            "GET",
            "/api/cache/stats",
            &[("authorization", &header)],
            b"",
        );
        assert_eq!(res.status, 200, "{scheme}: {}", res.text());
    }
}

#[test]
fn stats_have_the_documented_shape_and_sampled_counts() {
    let r = App::new().admin().start();
    let res = admin_request(&r, "GET", "/api/cache/stats", ADMIN_TOKEN);
    assert_eq!(res.status, 200, "{}", res.text());
    let fresh = assert_api_response(&res);
    assert_eq!(
        fresh,
        serde_json::json!({"hits":0,"misses":0,"stale":0,"entries":0,"approximate":true,"sample_every":8})
    );

    // 3 distinct items (3 misses, 3 entries), then many hits.
    for id in ["a", "b", "c"] {
        assert_eq!(x_cache(&process(&r, &item(id, 150, 1))), "miss");
    }
    let hits = 160u64;
    for i in 0..hits {
        let id = ["a", "b", "c"][i as usize % 3];
        assert_eq!(x_cache(&process(&r, &item(id, 150, 1))), "hit");
    }

    let stats = admin_request(&r, "GET", "/api/cache/stats", ADMIN_TOKEN).json();
    assert_eq!(stats["entries"], 3, "entries are exact: {stats}");
    assert_eq!(stats["approximate"], true);
    let every = stats["sample_every"].as_u64().expect("sample_every");
    assert_eq!(every, 8);
    for name in ["hits", "misses", "stale"] {
        let n = stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {stats}"));
        assert_eq!(
            n % every,
            0,
            "{name} moves in steps of sample_every: {stats}"
        );
    }
    // 160 hits sampled 1-in-8: ~Binomial(160, 1/8) × 8, mean 160, sd ~33.
    // The bounds are ~4.5 sd wide; only the upper one could be hit by luck
    // once in ~10^5 runs, the lower one never (P(0 samples) ≈ 5e-10).
    let counted = stats["hits"].as_u64().unwrap();
    assert!(
        (8..=hits * 2).contains(&counted),
        "hits {counted} for {hits} real hits: {stats}"
    );
    // 3 real misses: at most all 3 sampled.
    assert!(stats["misses"].as_u64().unwrap() <= 3 * every, "{stats}");
    assert_eq!(stats["stale"], 0);
}

#[test]
fn purge_deletes_every_entry_and_the_next_identical_request_is_a_miss() {
    let r = App::new().admin().start();
    let body = item("purged", 150, 1);
    let first = process(&r, &body);
    assert_eq!(x_cache(&first), "miss");
    assert_eq!(x_cache(&process(&r, &body)), "hit");
    assert_eq!(x_cache(&process(&r, &item("other", 1, 1))), "miss");

    let res = admin_request(&r, "DELETE", "/api/cache", ADMIN_TOKEN);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(assert_api_response(&res), serde_json::json!({"purged": 2}));

    let stats = admin_request(&r, "GET", "/api/cache/stats", ADMIN_TOKEN).json();
    assert_eq!(stats["entries"], 0, "{stats}");

    let again = process(&r, &body);
    assert_eq!(x_cache(&again), "miss", "purged");
    assert_eq!(x_cache(&process(&r, &body)), "hit", "and cached again");

    // A second purge deletes only what was stored since.
    let res = admin_request(&r, "DELETE", "/api/cache", ADMIN_TOKEN);
    assert_eq!(res.json(), serde_json::json!({"purged": 1}));
    // Purging an empty cache is fine.
    let res = admin_request(&r, "DELETE", "/api/cache", ADMIN_TOKEN);
    assert_eq!(res.json(), serde_json::json!({"purged": 0}));
}

#[test]
fn an_unauthorized_purge_deletes_nothing() {
    let r = App::new().admin().start();
    let body = item("kept", 150, 1);
    assert_eq!(x_cache(&process(&r, &body)), "miss");
    assert_error(
        &admin_request(&r, "DELETE", "/api/cache", "wrong"),
        401,
        "unauthorized",
    );
    assert_eq!(x_cache(&process(&r, &body)), "hit");
}

#[test]
fn admin_token_can_come_from_the_environment() {
    let r = App::new()
        .env("SPIN_VARIABLE_ADMIN_TOKEN", "from-env")
        .start();
    assert_eq!(
        admin_request(&r, "GET", "/api/cache/stats", "from-env").status,
        200
    );
    assert_error(
        &admin_request(&r, "GET", "/api/cache/stats", ADMIN_TOKEN),
        401,
        "unauthorized",
    );
}

#[test]
fn the_admin_token_never_appears_in_answers_or_logs() {
    let r = App::new().admin().start();
    for token in [ADMIN_TOKEN, "wrong"] {
        for (method, path) in ROUTES {
            let res = admin_request(&r, method, path, token);
            assert!(!res.text().contains(ADMIN_TOKEN), "{}", res.text());
        }
    }
    // Logs arrive asynchronously: wait for a later request's line first.
    r.request(
        "GET",
        "/api/health",
        &[("x-request-id", "after-admin")],
        b"",
    );
    crate::fixtures::wait_for_log(&r, &["after-admin"]);
    assert!(!r.output().contains(ADMIN_TOKEN), "{}", r.output());
    let logs = r.dir.path().join(".spin/logs");
    for entry in std::fs::read_dir(&logs).expect("log dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(!text.contains(ADMIN_TOKEN), "{}: {text}", path.display());
    }
}
