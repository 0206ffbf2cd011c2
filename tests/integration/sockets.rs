//! `wasi:sockets` under `allowed_outbound_hosts`, as Spin v4.0.2 gates it:
//! the probe connects to a loopback echo server with the raw WASI calls and
//! answers what it read back, or the error code it got (Spin's own
//! conformance tests expect `access-denied (error 1)` for a refusal). A
//! refused connection never reaches the server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::helpers::{Response, Runner, Spawn};

/// A loopback TCP echo server that counts its connections.
struct Echo {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Echo {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { addr, connections }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A loopback UDP echo server that counts the datagrams it gets.
struct UdpEcho {
    addr: SocketAddr,
    datagrams: Arc<AtomicUsize>,
}

impl UdpEcho {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let datagrams = Arc::new(AtomicUsize::new(0));
        let counter = datagrams.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = socket.send_to(&buf[..n], from);
            }
        });
        Self { addr, datagrams }
    }

    fn datagrams(&self) -> usize {
        self.datagrams.load(Ordering::SeqCst)
    }
}

/// An app of probes, one public route per component, each with its own
/// `allowed_outbound_hosts`: `/<id>/...` runs component `<id>`.
fn app(variables: &str, components: &[(&str, &[String])]) -> Runner {
    let mut manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"sockets\"\n[variables]\n{variables}\n"
    );
    for (id, hosts) in components {
        manifest.push_str(&format!(
            "[[trigger.http]]\nroute = \"/{id}/...\"\ncomponent = \"{id}\"\n[component.{id}]\nsource = \"{{{{probe.wasm}}}}\"\nallowed_outbound_hosts = {hosts:?}\n"
        ));
    }
    Runner::spawn(Spawn {
        manifest: Some(&manifest),
        ..Spawn::default()
    })
}

fn tcp(r: &Runner, component: &str, addr: SocketAddr) -> Response {
    r.get(&format!("/{component}/tcp?addr={addr}&msg=jabberwock"))
}

fn assert_echoed(res: &Response, what: &str) {
    assert_eq!(
        (res.status, res.text().as_str()),
        (200, "jabberwock"),
        "{what}"
    );
}

/// `call` failed with `access-denied`, the code Spin's conformance tests
/// expect of a refused address (on Spin, from `start-connect` itself).
fn assert_access_denied(res: &Response, call: &str, what: &str) {
    assert_eq!(
        (res.status, res.text()),
        (500, format!("{call}: access-denied (error 1)")),
        "{what}"
    );
}

#[test]
fn a_tcp_connection_allowed_by_address_network_port_range_or_wildcard_reaches_the_server() {
    let echo = Echo::start();
    let p = echo.port();
    let r = app(
        "",
        &[
            ("exact", &[format!("tcp://127.0.0.1:{p}")]),
            ("network", &[format!("tcp://127.0.0.0/24:{p}")]),
            // Host bits are truncated, as Spin's ip_network parse does.
            ("truncated", &[format!("*://127.0.0.1/8:{p}")]),
            ("range", &[format!("tcp://127.0.0.1:{p}..{}", p + 1)]),
            ("scheme", &[format!("*://127.0.0.1:{p}")]),
            ("any", &["*://*:*".to_string()]),
        ],
    );
    for component in ["exact", "network", "truncated", "range", "scheme", "any"] {
        assert_echoed(&tcp(&r, component, echo.addr), component);
    }
    assert_eq!(echo.connections(), 6);
}

#[test]
fn a_tcp_entry_from_a_variable_template_is_resolved_as_for_http() {
    let echo = Echo::start();
    let p = echo.port();
    let r = app(
        &format!(
            "echo_addr = {{ default = \"127.0.0.1:{p}\" }}\naddr_prefix = {{ default = \"127.0.0.0\" }}\nprefix_len = {{ default = \"24\" }}\n"
        ),
        &[
            ("whole", &["tcp://{{ echo_addr }}".to_string()]),
            (
                "parts",
                &[format!(
                    "*://{{{{ addr_prefix }}}}/{{{{ prefix_len }}}}:{p}"
                )],
            ),
        ],
    );
    assert_echoed(&tcp(&r, "whole", echo.addr), "whole");
    assert_echoed(&tcp(&r, "parts", echo.addr), "parts");
    assert_eq!(echo.connections(), 2);
}

#[test]
fn a_tcp_connection_outside_the_allow_list_is_access_denied_and_never_made() {
    let echo = Echo::start();
    let p = echo.port();
    let r = app(
        "",
        &[
            ("nothing", &[]),
            ("other-ip", &[format!("*://127.0.0.2:{p}")]),
            ("other-port", &[format!("*://127.0.0.1:{}", p + 1)]),
            // A range excludes its end.
            ("below", &[format!("tcp://127.0.0.1:{}..{p}", p - 1)]),
            ("other-network", &[format!("tcp://10.0.0.0/8:{p}")]),
            // A name is no address: there is no lookup behind the check.
            ("name", &[format!("tcp://localhost:{p}")]),
            ("udp", &[format!("udp://127.0.0.1:{p}")]),
        ],
    );
    for component in [
        "nothing",
        "other-ip",
        "other-port",
        "below",
        "other-network",
        "name",
        "udp",
    ] {
        assert_access_denied(&tcp(&r, component, echo.addr), "start-connect", component);
    }
    assert_eq!(echo.connections(), 0, "a refused connection was made");
    assert!(
        r.output().contains(&format!(
            "[nothing] A component tried to make an outbound network connection to disallowed destination 'tcp://{}'",
            echo.addr
        )),
        "{}",
        r.output()
    );
}

#[test]
fn an_http_entry_allows_no_tcp_connection_and_a_tcp_entry_no_http_request() {
    // Spin checks a connection as `tcp://<ip>:<port>`: the scheme must be
    // `tcp` (or `*`), whatever the port serves.
    let echo = Echo::start();
    let p = echo.port();
    let r = app(
        "",
        &[
            ("http", &[format!("http://127.0.0.1:{p}")]),
            ("tcp", &[format!("tcp://127.0.0.1:{p}")]),
        ],
    );
    assert_access_denied(&tcp(&r, "http", echo.addr), "start-connect", "http entry");
    let fetch = r.get(&format!("/tcp/fetch?url=http://127.0.0.1:{p}/"));
    assert_eq!(fetch.status, 502, "{}", fetch.text());
    assert!(
        fetch.text().contains("HttpRequestDenied"),
        "{}",
        fetch.text()
    );
    assert_eq!(echo.connections(), 0);
}

#[test]
fn binding_a_tcp_socket_is_refused_whatever_the_allow_list_as_on_spin() {
    let r = app("", &[("any", &["*://*:*".to_string()])]);
    for addr in ["0.0.0.0:0", "127.0.0.1:0", "[::]:0"] {
        let res = r.get(&format!("/any/tcp-bind?addr={addr}"));
        assert_access_denied(&res, "start-bind", addr);
    }
}

#[test]
fn name_lookup_is_refused_whatever_the_allow_list_as_on_spin() {
    // Spin never enables wasi:sockets/ip-name-lookup: a guest connects to
    // addresses only.
    let r = app(
        "",
        &[(
            "any",
            &["*://*:*".to_string(), "tcp://localhost:80".to_string()],
        )],
    );
    for name in ["localhost", "example.com", "127.0.0.1"] {
        let res = r.get(&format!("/any/resolve?name={name}"));
        assert_eq!(
            (res.status, res.text().as_str()),
            (500, "permanent-resolver-failure (error 20)"),
            "{name}"
        );
    }
    let res = r.get("/any/resolve?name=not%20a%20name");
    assert_eq!(
        (res.status, res.text().as_str()),
        (500, "invalid-argument (error 3)")
    );
}

#[test]
fn udp_needs_the_bind_and_the_destination_address_allowed_as_on_spin() {
    // Spin checks a UDP bind, connect and send as `udp://<ip>:<port>`: the
    // local address bound (here the wildcard, port 0) as well as the peer.
    let echo = UdpEcho::start();
    let peer = echo.addr;
    let r = app(
        "",
        &[
            (
                "both",
                &["udp://0.0.0.0:0".to_string(), format!("udp://{peer}")],
            ),
            ("any", &["*://*:*".to_string()]),
            ("peer-only", &[format!("udp://{peer}")]),
            ("bind-only", &["udp://0.0.0.0:0".to_string()]),
            ("tcp", &["tcp://*:*".to_string()]),
        ],
    );
    let udp = |component: &str| {
        r.get(&format!(
            "/{component}/udp?bind=0.0.0.0:0&addr={peer}&msg=vorpal"
        ))
    };
    for component in ["both", "any"] {
        let res = udp(component);
        assert_eq!(
            (res.status, res.text().as_str()),
            (200, "vorpal"),
            "{component}"
        );
    }
    let refused = |component: &str, step: &str| {
        let res = udp(component);
        assert_eq!(
            (res.status, res.text()),
            (500, format!("{step}: access-denied (error 1)")),
            "{component}"
        );
    };
    refused("peer-only", "bind");
    refused("bind-only", "stream");
    refused("tcp", "bind");
    assert_eq!(echo.datagrams(), 2, "a refused datagram was sent");
}
