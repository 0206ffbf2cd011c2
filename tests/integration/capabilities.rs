//! Capability denials: each component gets exactly what spin.toml grants.
//!
//! The real components never try what they may not do, so each test runs the
//! probe component under one component's capabilities exactly as spin.toml
//! declares them (`allowed_outbound_hosts`, `key_value_stores`), and has it
//! attempt the forbidden: the attempt must fail inside the guest as Spin
//! reports it (`HttpRequestDenied`, `AccessDenied`), and no connection may
//! reach the would-be target.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::helpers::{Runner, Spawn, root};

/// The component table of the app's spin.toml.
fn app_components() -> toml::Table {
    let text = std::fs::read_to_string(root().join("spin.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest["component"].as_table().unwrap().clone()
}

fn string_list(component: &toml::Table, key: &str) -> Vec<String> {
    component
        .get(key)
        .and_then(|v| v.as_array())
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A manifest where `subject` is the probe with the capabilities spin.toml
/// gives `component`, beside probe stand-ins for the app's other
/// components (so chaining targets exist).
fn manifest_as(component: &str) -> String {
    let text = std::fs::read_to_string(root().join("spin.toml")).unwrap();
    let app: toml::Table = toml::from_str(&text).unwrap();
    let components = app_components();
    let granted = components[component].as_table().unwrap();
    let mut out = String::from("spin_manifest_version = 2\n[application]\nname = \"caps\"\n");
    out.push_str("[variables]\n");
    for (name, decl) in app["variables"].as_table().unwrap() {
        out.push_str(&format!("{name} = {decl}\n"));
    }
    out.push_str("[[trigger.http]]\nroute = \"/...\"\ncomponent = \"subject\"\n");
    for id in components.keys() {
        out.push_str(&format!(
            "[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"{id}\"\n[component.{id}]\nsource = \"{{{{probe.wasm}}}}\"\n"
        ));
    }
    out.push_str(&format!(
        "[component.subject]\nsource = \"{{{{probe.wasm}}}}\"\nallowed_outbound_hosts = {:?}\nkey_value_stores = {:?}\n",
        string_list(granted, "allowed_outbound_hosts"),
        string_list(granted, "key_value_stores"),
    ));
    out
}

fn run_as(component: &str, env: &[(&str, &str)]) -> Runner {
    let manifest = manifest_as(component);
    Runner::spawn(Spawn {
        manifest: Some(&manifest),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Spawn::default()
    })
}

/// A loopback HTTP server that answers `200 upstream` and counts connections.
struct Target {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Target {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { break };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nupstream",
                );
            }
        });
        Self { addr, hits }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn assert_denied(r: &Runner, url: &str) {
    let res = r.get(&format!("/fetch?url={url}"));
    assert_eq!(res.status, 502, "{url}: {}", res.text());
    assert!(
        res.text().contains("HttpRequestDenied"),
        "{url}: {}",
        res.text()
    );
}

#[test]
fn spin_toml_grants_each_component_least_privilege() {
    let c = app_components();
    let get = |id: &str, key: &str| string_list(c[id].as_table().unwrap(), key);
    assert!(get("processor", "allowed_outbound_hosts").is_empty());
    assert!(get("processor", "key_value_stores").is_empty());
    let mut router_hosts = get("router", "allowed_outbound_hosts");
    router_hosts.sort();
    assert_eq!(
        router_hosts,
        [
            "http://cache.spin.internal",
            "http://processor.spin.internal"
        ]
    );
    assert!(get("router", "key_value_stores").is_empty());
    assert_eq!(
        get("cache", "allowed_outbound_hosts"),
        ["http://processor.spin.internal", "{{ upstream_origin }}"]
    );
    assert_eq!(get("cache", "key_value_stores"), ["default"]);
}

#[test]
fn the_processor_reaches_no_network_no_component_and_no_store() {
    let target = Target::start();
    let r = run_as("processor", &[]);
    assert_denied(&r, &target.url());
    assert_denied(&r, "http://cache.spin.internal/hello");
    assert_denied(&r, "http://router.spin.internal/hello");
    let kv = r.get("/kv?store=default&op=get&key=k");
    assert_eq!(kv.status, 500);
    assert!(kv.text().contains("AccessDenied"), "{}", kv.text());
    assert_eq!(target.hits(), 0, "a denied request reached the network");
}

#[test]
fn the_router_reaches_only_the_cache_and_the_processor() {
    let target = Target::start();
    let r = run_as("router", &[]);
    assert_eq!(
        r.get("/fetch?url=http://cache.spin.internal/hello").text(),
        "200 hello"
    );
    assert_eq!(
        r.get("/fetch?url=http://processor.spin.internal/hello")
            .text(),
        "200 hello"
    );
    assert_denied(&r, &target.url());
    assert_denied(&r, "https://example.com/");
    let kv = r.get("/kv?store=default&op=get&key=k");
    assert!(kv.text().contains("AccessDenied"), "{}", kv.text());
    assert_eq!(target.hits(), 0, "a denied request reached the network");
}

#[test]
fn the_cache_reaches_only_the_processor_the_configured_upstream_and_its_store() {
    let upstream = Target::start();
    let other = Target::start();
    let origin = upstream.url();
    let r = run_as("cache", &[("SPIN_VARIABLE_UPSTREAM_ORIGIN", &origin)]);
    assert_eq!(
        r.get(&format!("/fetch?url={origin}/data/1")).text(),
        "200 upstream"
    );
    assert_eq!(
        r.get("/fetch?url=http://processor.spin.internal/hello")
            .text(),
        "200 hello"
    );
    assert_denied(&r, &other.url());
    assert_denied(&r, "http://router.spin.internal/hello");
    assert_eq!(r.get("/kv?store=default&op=set&key=k&value=v").text(), "ok");
    let kv = r.get("/kv?store=other&op=get&key=k");
    assert!(kv.text().contains("AccessDenied"), "{}", kv.text());
    assert_eq!(upstream.hits(), 1);
    assert_eq!(other.hits(), 0, "a denied request reached the network");
}

#[test]
fn the_cache_reaches_only_the_processor_when_no_upstream_is_configured() {
    let target = Target::start();
    let r = run_as("cache", &[]);
    assert_eq!(
        r.get("/fetch?url=http://processor.spin.internal/hello")
            .text(),
        "200 hello"
    );
    assert_denied(&r, &target.url());
    assert_denied(&r, "https://api.example.com/");
    assert_eq!(target.hits(), 0);
}
