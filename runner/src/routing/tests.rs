//! Routing: Spin's route syntax, matching order, headers and URLs.

use super::*;

/// A router over `(component, route)` pairs; panics on build errors.
fn router(routes: &[(&str, &str)]) -> Router {
    let configs: Vec<(&str, RouteConfig)> = routes
        .iter()
        .map(|(id, route)| (*id, RouteConfig::from(*route)))
        .collect();
    Router::build("/", configs.iter().map(|(id, r)| (*id, r)))
        .expect("routes should build")
        .0
}

fn routed(router: &Router, path: &str) -> Option<String> {
    router.route(path).map(|m| m.component_id.to_string())
}

/// `(component, route)` pairs.
type Routes<'a> = &'a [(&'a str, &'a str)];
/// `(path, expected component or None for a 404)` pairs.
type Requests<'a> = &'a [(&'a str, Option<&'a str>)];

/// Each case: routes, then the requests to route through them.
fn check_table(cases: &[(Routes<'_>, Requests<'_>)]) {
    for (routes, requests) in cases {
        let router = router(routes);
        for (path, expected) in *requests {
            assert_eq!(
                routed(&router, path).as_deref(),
                *expected,
                "routes {routes:?}, path {path:?}"
            );
        }
    }
}

#[test]
fn exact_routes_match_only_their_path() {
    // Spin: test_router_exact.
    check_table(&[(
        &[("foo", "/foo"), ("foobar", "/foo/bar")],
        &[
            ("/foo", Some("foo")),
            ("/foo/bar", Some("foobar")),
            ("/foo/", Some("foo")),
            ("/foo/baz", None),
            ("/fo", None),
            ("/", None),
        ],
    )]);
}

#[test]
fn exact_beats_wildcard() {
    // Spin: test_router_exact_beats_wildcard.
    check_table(&[
        (
            &[("one_exact", "/one"), ("wildcard", "/...")],
            &[("/one", Some("one_exact")), ("/two", Some("wildcard"))],
        ),
        (
            &[("wildcard", "/one/..."), ("one_exact", "/one")],
            &[
                ("/one", Some("one_exact")),
                ("/one/", Some("one_exact")),
                ("/one/x", Some("wildcard")),
            ],
        ),
        (
            &[("all", "/..."), ("root", "/")],
            &[("/", Some("root")), ("/x", Some("all"))],
        ),
    ]);
}

#[test]
fn longest_wildcard_prefix_wins() {
    // Spin: test_router_respects_longest_match, in both orders.
    let one = ("one_wildcard", "/one/...");
    let two = ("onetwo_wildcard", "/one/two/...");
    let three = ("onetwothree_wildcard", "/one/two/three/...");
    let requests: Requests<'_> = &[
        ("/one/two/three/four", Some("onetwothree_wildcard")),
        ("/one/two/three", Some("onetwothree_wildcard")),
        ("/one/two/x", Some("onetwo_wildcard")),
        ("/one", Some("one_wildcard")),
        ("/onetwo", None),
    ];
    check_table(&[
        (&[one, two, three], requests),
        (&[three, two, one], requests),
    ]);
}

#[test]
fn wildcards_match_whole_segments_only() {
    check_table(&[(
        &[("foo", "/foo/..."), ("star", "/bar/*")],
        &[
            ("/foo", Some("foo")),
            ("/foo/", Some("foo")),
            ("/foo/bar/baz", Some("foo")),
            ("/foobar", None),
            ("/bar", Some("star")),
            ("/bar/x/y", Some("star")),
        ],
    )]);
}

#[test]
fn root_wildcard_matches_everything() {
    // Spin: test_router_wildcard.
    check_table(&[(
        &[("all", "/...")],
        &[
            ("/foo/bar", Some("all")),
            ("/abc/", Some("all")),
            ("/", Some("all")),
            ("/this/should/be/captured?abc=def", Some("all")),
        ],
    )]);
}

#[test]
fn params_match_one_segment_and_lose_to_literals() {
    check_table(&[
        (
            &[("param", "/users/:id"), ("me", "/users/me")],
            &[
                ("/users/me", Some("me")),
                ("/users/42", Some("param")),
                ("/users", None),
                ("/users/42/edit", None),
            ],
        ),
        (
            &[("param_first", "/:a/b"), ("literal_first", "/a/:b")],
            &[
                ("/a/b", Some("literal_first")),
                ("/x/b", Some("param_first")),
            ],
        ),
        (
            &[("deep", "/a/b/c"), ("param", "/a/:x/d")],
            &[("/a/b/d", Some("param")), ("/a/b/c", Some("deep"))],
        ),
        (
            &[("param", "/users/:id"), ("wild", "/users/...")],
            &[
                ("/users/7", Some("param")),
                ("/users", Some("wild")),
                ("/users/7/x", Some("wild")),
            ],
        ),
    ]);
}

#[test]
fn private_components_are_never_routed() {
    // Spin: unroutable_routes_are_skipped.
    let configs = [
        ("comp-/", RouteConfig::from("/")),
        ("comp-/foo", RouteConfig::from("/foo")),
        ("comp-private", RouteConfig::Private { private: true }),
        ("comp-/whee/...", RouteConfig::from("/whee/...")),
    ];
    let (router, duplicates) = Router::build("/", configs.iter().map(|(id, r)| (*id, r))).unwrap();
    assert!(duplicates.is_empty());
    assert_eq!(router.routes().count(), 3);
    assert!(router.routes().all(|r| r.component_id != "comp-private"));
    assert_eq!(routed(&router, "/comp-private"), None);
}

#[test]
fn private_false_is_an_error_naming_the_component() {
    // Spin: unroutable_routes_have_to_be_unroutable_thats_just_common_sense.
    let configs = [
        ("comp-/", RouteConfig::from("/")),
        (
            "comp-bad component",
            RouteConfig::Private { private: false },
        ),
    ];
    let err = Router::build("/", configs.iter().map(|(id, r)| (*id, r))).unwrap_err();
    assert!(err.to_string().contains("comp-bad component"), "{err}");
}

#[test]
fn duplicate_routes_last_one_wins_and_are_reported() {
    // Spin: duplicate_routes_are_unreachable, duplicate_routes_last_one_wins.
    let configs: Vec<(&str, RouteConfig)> = [
        ("comp-/", "/"),
        ("comp-first /foo", "/foo"),
        ("comp-second /foo", "/foo"),
        ("comp-/whee/...", "/whee/..."),
    ]
    .into_iter()
    .map(|(id, r)| (id, RouteConfig::from(r)))
    .collect();
    let (router, duplicates) = Router::build("/", configs.iter().map(|(id, r)| (*id, r))).unwrap();
    assert_eq!(router.routes().count(), 3);
    // The winner takes the first one's place in the listing.
    assert_eq!(
        router.routes().nth(1).unwrap().component_id,
        "comp-second /foo"
    );
    assert_eq!(routed(&router, "/foo").as_deref(), Some("comp-second /foo"));
    assert_eq!(
        duplicates,
        vec![DuplicateRoute {
            route: "/foo".into(),
            replaced_id: "comp-first /foo".into(),
            effective_id: "comp-second /foo".into(),
        }]
    );
    assert_eq!(
        duplicates[0].to_string(),
        "  comp-first /foo: /foo (duplicate of comp-second /foo)"
    );
}

#[test]
fn duplicate_routes_reporting_is_faithful() {
    // Spin: duplicate_routes_reporting_is_faithful (the root shows as "/").
    let configs: Vec<(&str, RouteConfig)> = [
        ("comp-first /", "/"),
        ("comp-second /", "/"),
        ("comp-first /foo", "/foo"),
        ("comp-second /foo", "/foo"),
        ("comp-first /...", "/..."),
        ("comp-second /...", "/..."),
        ("comp-first /whee/...", "/whee/..."),
        ("comp-second /whee/...", "/whee/..."),
    ]
    .into_iter()
    .map(|(id, r)| (id, RouteConfig::from(r)))
    .collect();
    let (_, duplicates) = Router::build("/", configs.iter().map(|(id, r)| (*id, r))).unwrap();
    let shown: Vec<(String, String)> = duplicates
        .iter()
        .map(|d| {
            let line = d.to_string();
            let route = line.split(": ").nth(1).unwrap().split(" (").next().unwrap();
            (d.replaced_id.clone(), route.to_string())
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("comp-first /", "/"),
            ("comp-first /foo", "/foo"),
            ("comp-first /...", "/..."),
            ("comp-first /whee/...", "/whee/..."),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[test]
fn equivalent_patterns_are_duplicates_too() {
    let configs: Vec<(&str, RouteConfig)> = [
        ("first", "/foo"),
        ("second", "/foo/"),
        ("x", "/a/:x"),
        ("y", "/a/:y"),
    ]
    .into_iter()
    .map(|(id, r)| (id, RouteConfig::from(r)))
    .collect();
    let (router, duplicates) = Router::build("/", configs.iter().map(|(id, r)| (*id, r))).unwrap();
    assert_eq!(duplicates.len(), 2);
    assert_eq!(routed(&router, "/foo").as_deref(), Some("second"));
    assert_eq!(routed(&router, "/a/1").as_deref(), Some("y"));
}

#[test]
fn sensible_routes_are_reachable_in_manifest_order() {
    // Spin: sensible_routes_are_reachable, order_of_reachable_routes_is_preserved.
    let router = router(&[
        ("comp-/", "/"),
        ("comp-/foo", "/foo"),
        ("comp-/bar", "/bar"),
        ("comp-/whee/...", "/whee/..."),
    ]);
    let ids: Vec<&str> = router.routes().map(|r| r.component_id).collect();
    assert_eq!(ids, ["comp-/", "comp-/foo", "comp-/bar", "comp-/whee/..."]);
}

#[test]
fn trailing_wildcard_is_captured_with_spins_slashes() {
    // Spin: trailing_wildcard_is_captured, trailing_wildcard_respects_trailing_slash.
    let cases: &[(&str, &str, &str)] = &[
        ("/...", "/1/2/3", "/1/2/3"),
        ("/1/...", "/1/2/3", "/2/3"),
        ("/test/...", "/test", ""),
        ("/test/...", "/test/", "/"),
        ("/test/...", "/test/hello", "/hello"),
        ("/test/...", "/test/hello/", "/hello/"),
        ("/test/...", "/test//hello", "/hello"),
        ("/...", "/", "/"),
        ("/exact", "/exact", ""),
    ];
    for (route, path, expected) in cases {
        let router = router(&[("comp", route)]);
        let m = router
            .route(path)
            .unwrap_or_else(|| panic!("{path} on {route}"));
        assert_eq!(m.path_info, *expected, "route {route}, path {path}");
    }
}

#[test]
fn named_wildcards_are_captured() {
    // Spin: named_wildcard_is_captured.
    // (route, path, expected params)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: &[Case<'_>] = &[
        ("/1/:two/3", "/1/2/3", &[("two", "2")]),
        ("/1/:two/...", "/1/2/3", &[("two", "2")]),
        (
            "/users/:user_id/posts/:post",
            "/users/a/posts/b",
            &[("user_id", "a"), ("post", "b")],
        ),
        (
            "/files/:name.json",
            "/files/report.json",
            &[("name", "report")],
        ),
        ("/files/v.:version", "/files/v.2", &[("version", "2")]),
    ];
    for (route, path, expected) in cases {
        let router = router(&[("comp", route)]);
        let m = router
            .route(path)
            .unwrap_or_else(|| panic!("{path} on {route}"));
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(m.params, expected, "route {route}");
    }
    let dotted = router(&[("comp", "/files/:name.json")]);
    assert_eq!(routed(&dotted, "/files/report.txt"), None);
}

#[test]
fn routes_are_made_absolute_and_lose_one_trailing_slash() {
    let cases: &[(&str, &str, &str)] = &[
        // (raw route, based route, component route)
        ("/", "", "/"),
        ("foo", "/foo", "foo"),
        ("/foo/", "/foo", "/foo/"),
        ("/...", "/...", ""),
        ("/api/...", "/api/...", "/api"),
        ("/api/*", "/api/*", "/api/*"),
    ];
    for (raw, based, component) in cases {
        let router = router(&[("comp", raw)]);
        let path = based.trim_end_matches("/...").trim_end_matches("/*");
        let m = router
            .route(if path.is_empty() { "/" } else { path })
            .unwrap();
        assert_eq!(
            (m.raw_route, m.based_route, m.component_route()),
            (*raw, *based, *component)
        );
    }
}

#[test]
fn base_is_prefixed_to_every_route() {
    // Spin: test_router_respects_base.
    let configs = [
        ("foo", RouteConfig::from("/foo")),
        ("foobar", RouteConfig::from("/foo/bar")),
    ];
    let (router, _) = Router::build("/base/", configs.iter().map(|(id, r)| (*id, r))).unwrap();
    assert_eq!(routed(&router, "/base/foo").as_deref(), Some("foo"));
    assert_eq!(routed(&router, "/base/foo/bar").as_deref(), Some("foobar"));
    assert_eq!(routed(&router, "/foo"), None);
}

#[test]
fn malformed_routes_are_errors_naming_the_component() {
    for route in ["/a/*/b", "/a/*name", "/a/:/b", "/:"] {
        let configs = [("bad", RouteConfig::from(route))];
        let err = Router::build("/", configs.iter().map(|(id, r)| (*id, r))).unwrap_err();
        assert!(
            err.to_string().contains("associated with component bad"),
            "{route}: {err}"
        );
    }
}

#[test]
fn banner_lists_routes_as_spin_prints_them() {
    // Spin: wildcard_routes_use_custom_display, print_startup_msgs.
    let router = router(&[
        ("root", "/"),
        ("api", "/api/..."),
        ("user", "/users/:id"),
        ("all", "/..."),
    ]);
    let lines = router.available_routes("http://127.0.0.1:3000", |id| {
        (id == "api").then(|| "The API".to_string())
    });
    assert_eq!(
        lines,
        [
            "  root: http://127.0.0.1:3000",
            "  api: http://127.0.0.1:3000/api (wildcard)",
            "    The API",
            "  user: http://127.0.0.1:3000/users/:id",
            "  all: http://127.0.0.1:3000 (wildcard)",
        ]
    );
}

#[test]
fn reserved_routes_are_reserved() {
    // Spin: reserved_routes_are_reserved, unreserved_routes_are_unreserved.
    for (route, reserved) in [
        ("/.well-known/spin/...", true),
        ("/.well-known/spin/fie", true),
        ("/.well-known/spindle/...", false),
        ("/.well-known/spi/...", false),
        ("/.well-known/spin", false),
    ] {
        assert_eq!(
            router(&[("comp", route)]).contains_reserved_route(),
            reserved,
            "{route}"
        );
    }
}

#[test]
fn spin_headers_match_spins_default_headers() {
    // Spin: test_default_headers, test_default_headers_with_named_wildcards.
    let client: SocketAddr = "127.0.0.1:8777".parse().unwrap();
    let router = router(&[("DUMMY", "/foo/:userid/...")]);
    let m = router.route("/foo/42/bar").unwrap();
    let url = full_url(
        "https",
        Some("fermyon.dev"),
        "/foo/42/bar?key1=value1&key2=value2",
    );
    let headers = spin_headers(&m, &url, client);
    let expected = [
        ("spin-path-info", "/bar"),
        (
            "spin-full-url",
            "https://fermyon.dev/foo/42/bar?key1=value1&key2=value2",
        ),
        ("spin-matched-route", "/foo/:userid/..."),
        ("spin-base-path", "/"),
        ("spin-raw-component-route", "/foo/:userid/..."),
        ("spin-component-route", "/foo/:userid"),
        ("spin-client-addr", "127.0.0.1:8777"),
        ("spin-path-match-userid", "42"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(headers, expected);
    assert_eq!(full_url("http", None, "/x"), "http://localhost/x");
}

#[test]
fn param_header_names_use_dashes() {
    let router = router(&[("c", "/:user_id")]);
    let m = router.route("/7").unwrap();
    let headers = spin_headers(&m, "http://localhost/7", CHAINED_CLIENT_ADDR);
    assert_eq!(
        headers.last().unwrap(),
        &("spin-path-match-user-id".to_string(), "7".to_string())
    );
}

#[test]
fn chained_requests_match_as_a_root_wildcard() {
    // Spin: RouteMatch::synthetic, used by the service-chaining interceptor.
    let m = RouteMatch::chained("backend", "/items/1");
    let headers = spin_headers(
        &m,
        "http://backend.spin.internal/items/1",
        CHAINED_CLIENT_ADDR,
    );
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).unwrap().1.clone();
    assert_eq!(get("spin-path-info"), "/items/1");
    assert_eq!(get("spin-matched-route"), "/...");
    assert_eq!(get("spin-raw-component-route"), "/...");
    assert_eq!(get("spin-component-route"), "");
    assert_eq!(get("spin-client-addr"), "0.0.0.0:0");
}

/// A request as hyper gives it to the server: origin-form URI, headers.
fn inbound(uri: &str, headers: &[(&str, &[u8])]) -> http::Request<()> {
    let mut builder = http::Request::get(uri);
    for (name, value) in headers {
        builder = builder.header(*name, http::HeaderValue::from_bytes(value).unwrap());
    }
    builder.body(()).unwrap()
}

fn values<'h>(headers: &'h http::HeaderMap, name: &str) -> Vec<&'h str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[test]
fn a_routed_request_gets_the_host_headers_authority_and_spins_headers_after_its_own() {
    // Spin: set_req_uri, prepare_request_headers, wasi::prepare_request.
    let router = router(&[("c", "/api/...")]);
    let m = router.route("/api/items/1").unwrap();
    let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let req = inbound(
        "/api/items/1?x=1",
        &[
            ("host", b"example.test:3000"),
            ("accept", b"*/*"),
            ("spin-full-url", b"http://forged/"),
        ],
    );
    let req = routed_request(req, &m, http::uri::Scheme::HTTP, client).unwrap();
    assert_eq!(
        req.uri().to_string(),
        "http://example.test:3000/api/items/1?x=1"
    );
    let h = req.headers();
    assert_eq!(values(h, "host"), ["example.test:3000"]);
    assert_eq!(values(h, "accept"), ["*/*"]);
    // The client's own spin-full-url stays, before Spin's (appended).
    assert_eq!(
        values(h, "spin-full-url"),
        ["http://forged/", "http://example.test:3000/api/items/1?x=1"]
    );
    assert_eq!(values(h, "spin-path-info"), ["/items/1"]);
    assert_eq!(values(h, "spin-matched-route"), ["/api/..."]);
    assert_eq!(values(h, "spin-raw-component-route"), ["/api/..."]);
    assert_eq!(values(h, "spin-component-route"), ["/api"]);
    assert_eq!(values(h, "spin-base-path"), ["/"]);
    assert_eq!(values(h, "spin-client-addr"), ["127.0.0.1:5000"]);
    let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        &names[..2],
        ["host", "accept"],
        "the request's headers first"
    );
}

#[test]
fn a_routed_request_without_a_usable_host_is_refused_as_spin_refuses_it() {
    let router = router(&[("c", "/...")]);
    let m = router.route("/x").unwrap();
    let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let route = |req| routed_request(req, &m, http::uri::Scheme::HTTP, client).map(|_| ());
    assert_eq!(route(inbound("/x", &[])), Err(RequestError::NoHost));
    assert_eq!(
        route(inbound("/x", &[("host", b"bad host")])),
        Err(RequestError::InvalidHost)
    );
    assert_eq!(
        route(inbound("http://a.test/x", &[("host", b"b.test")])),
        Err(RequestError::HostMismatch)
    );
    assert_eq!(
        route(inbound("http://a.test/x", &[("host", b"A.test")])),
        Ok(())
    );
    assert_eq!(route(inbound("http://a.test/x", &[])), Ok(()));
    // Not closed: Spin answers these with a 500.
    let not_utf8 = route(inbound("/x", &[("host", b"a.test"), ("x-bin", b"\xff")]));
    assert_eq!(not_utf8, Err(RequestError::NotUtf8("x-bin".into())));
    assert!(not_utf8.unwrap_err().is_internal_error());
    assert!(!RequestError::NoHost.is_internal_error());
}

#[test]
fn a_client_host_naming_a_chaining_host_is_stripped() {
    // Spin: strip_forbidden_headers and its two tests.
    for host in ["test.spin.internal", "test.spin.internal:1234"] {
        let mut req = inbound("/", &[("host", host.as_bytes()), ("accept", b"text/plain")]);
        strip_forbidden_headers(req.headers_mut());
        assert_eq!(req.headers().len(), 1, "{host}");
        assert!(req.headers().get("host").is_none(), "{host}");
    }
    let mut req = inbound("/", &[("host", b"test.example.org")]);
    strip_forbidden_headers(req.headers_mut());
    assert_eq!(values(req.headers(), "host"), ["test.example.org"]);
}

#[test]
fn service_chaining_hosts_are_one_label_under_spin_internal() {
    assert_eq!(
        service_chaining_target("cache.spin.internal"),
        Some("cache")
    );
    assert_eq!(
        service_chaining_target("cache.spin.internal:80"),
        Some("cache")
    );
    assert_eq!(service_chaining_target("a.b.spin.internal"), None);
    assert_eq!(service_chaining_target("spin.internal"), None);
    assert_eq!(service_chaining_target("cache.example.com"), None);
    assert_eq!(service_chaining_target("cache.spin.internal.example"), None);
    assert_eq!(service_chaining_target("localhost"), None);
    // As written: the case is kept, and only `spin.internal` itself counts.
    assert_eq!(
        service_chaining_target("Cache.spin.internal"),
        Some("Cache")
    );
    assert_eq!(service_chaining_target("cache.SPIN.internal"), None);
}

#[test]
fn a_chained_request_says_localhost_in_its_full_url_and_keeps_its_uri() {
    // Spin: the outbound factor removes Host, the interceptor routes the
    // request as RouteMatch::synthetic from 0.0.0.0:0 with scheme http.
    let req = http::Request::get("http://hidden.spin.internal/headers?a=b")
        .header("host", "hidden.spin.internal")
        .header("x-mine", "1")
        .body(())
        .unwrap();
    let req = chained_request(req, "hidden").unwrap();
    assert_eq!(
        req.uri().to_string(),
        "http://hidden.spin.internal/headers?a=b"
    );
    let h = req.headers();
    assert!(h.get("host").is_none(), "{h:?}");
    assert_eq!(values(h, "x-mine"), ["1"]);
    assert_eq!(values(h, "spin-full-url"), ["http://localhost/headers?a=b"]);
    assert_eq!(values(h, "spin-path-info"), ["/headers"]);
    assert_eq!(values(h, "spin-matched-route"), ["/..."]);
    assert_eq!(values(h, "spin-raw-component-route"), ["/..."]);
    assert_eq!(values(h, "spin-component-route"), [""]);
    assert_eq!(values(h, "spin-base-path"), ["/"]);
    assert_eq!(values(h, "spin-client-addr"), ["0.0.0.0:0"]);
}

#[test]
fn a_chained_https_request_reaches_its_target_as_http() {
    let req = http::Request::get("https://hidden.spin.internal/x")
        .body(())
        .unwrap();
    let req = chained_request(req, "hidden").unwrap();
    assert_eq!(req.uri().to_string(), "http://hidden.spin.internal/x");
    assert_eq!(
        values(req.headers(), "spin-full-url"),
        ["http://localhost/x"]
    );
}
