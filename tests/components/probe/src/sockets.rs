//! The probe's `wasi:sockets` routes, on the raw WASI 0.2 calls, so an
//! error is exactly the code the guest got (its Display, as a Spin
//! conformance guest prints it: `access-denied (error 1)`) and the call that
//! returned it: `start-connect: access-denied (error 1)`.

use std::net::SocketAddr;

use wasi::io::poll;
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasi::sockets::udp::OutgoingDatagram;
use wasi::sockets::{ip_name_lookup, tcp_create_socket, udp_create_socket};

fn socket_address(addr: &str) -> Result<(IpAddressFamily, IpSocketAddress), String> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| format!("bad address {addr:?}: {e}"))?;
    Ok(match addr {
        SocketAddr::V4(a) => {
            let [a0, a1, a2, a3] = a.ip().octets();
            (
                IpAddressFamily::Ipv4,
                IpSocketAddress::Ipv4(Ipv4SocketAddress {
                    port: a.port(),
                    address: (a0, a1, a2, a3),
                }),
            )
        }
        SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            (
                IpAddressFamily::Ipv6,
                IpSocketAddress::Ipv6(Ipv6SocketAddress {
                    port: a.port(),
                    flow_info: a.flowinfo(),
                    address: (s0, s1, s2, s3, s4, s5, s6, s7),
                    scope_id: a.scope_id(),
                }),
            )
        }
    })
}

fn code(e: ErrorCode) -> String {
    e.to_string()
}

/// The error of the call `step`, as `<step>: <code>`.
fn step(step: &'static str) -> impl Fn(ErrorCode) -> String {
    move |e| format!("{step}: {e}")
}

/// Connects to `addr`, writes `msg`, reads as many bytes back.
pub fn tcp_echo(addr: &str, msg: &str) -> Result<String, String> {
    let (family, remote) = socket_address(addr)?;
    let socket = tcp_create_socket::create_tcp_socket(family).map_err(step("create"))?;
    socket
        .start_connect(&instance_network(), remote)
        .map_err(step("start-connect"))?;
    let (input, output) = loop {
        match socket.finish_connect() {
            Err(ErrorCode::WouldBlock) => {
                poll::poll(&[&socket.subscribe()]);
            }
            result => break result.map_err(step("finish-connect"))?,
        }
    };
    output
        .blocking_write_and_flush(msg.as_bytes())
        .map_err(|e| format!("write: {e:?}"))?;
    let mut echoed = Vec::new();
    while echoed.len() < msg.len() {
        let chunk = input
            .blocking_read((msg.len() - echoed.len()) as u64)
            .map_err(|e| format!("read: {e:?}"))?;
        echoed.extend(chunk);
    }
    Ok(String::from_utf8_lossy(&echoed).into_owned())
}

/// Binds a TCP socket to `addr`.
pub fn tcp_bind(addr: &str) -> Result<String, String> {
    let (family, local) = socket_address(addr)?;
    let socket = tcp_create_socket::create_tcp_socket(family).map_err(step("create"))?;
    socket
        .start_bind(&instance_network(), local)
        .map_err(step("start-bind"))?;
    loop {
        match socket.finish_bind() {
            Err(ErrorCode::WouldBlock) => {
                poll::poll(&[&socket.subscribe()]);
            }
            result => break result.map_err(step("finish-bind"))?,
        }
    }
    Ok("bound".into())
}

/// Binds a UDP socket to `bind`, sends `msg` to `addr`, waits for one
/// datagram back.
pub fn udp_echo(bind: &str, addr: &str, msg: &str) -> Result<String, String> {
    let (family, local) = socket_address(bind)?;
    let (_, remote) = socket_address(addr)?;
    let socket = udp_create_socket::create_udp_socket(family).map_err(step("create"))?;
    socket
        .start_bind(&instance_network(), local)
        .map_err(step("bind"))?;
    loop {
        match socket.finish_bind() {
            Err(ErrorCode::WouldBlock) => {
                poll::poll(&[&socket.subscribe()]);
            }
            result => break result.map_err(step("bind"))?,
        }
    }
    let (incoming, outgoing) = socket.stream(Some(remote)).map_err(step("stream"))?;
    while outgoing.check_send().map_err(step("send"))? == 0 {
        poll::poll(&[&outgoing.subscribe()]);
    }
    outgoing
        .send(&[OutgoingDatagram {
            data: msg.as_bytes().to_vec(),
            remote_address: None,
        }])
        .map_err(step("send"))?;
    loop {
        let datagrams = incoming.receive(1).map_err(step("receive"))?;
        if let Some(datagram) = datagrams.into_iter().next() {
            return Ok(String::from_utf8_lossy(&datagram.data).into_owned());
        }
        poll::poll(&[&incoming.subscribe()]);
    }
}

/// Looks `name` up with wasi:sockets/ip-name-lookup.
pub fn resolve(name: &str) -> Result<String, String> {
    let stream = ip_name_lookup::resolve_addresses(&instance_network(), name).map_err(code)?;
    let mut addresses = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(IpAddress::Ipv4((a, b, c, d)))) => addresses.push(format!("{a}.{b}.{c}.{d}")),
            Ok(Some(IpAddress::Ipv6(s))) => addresses.push(format!("{s:x?}")),
            Ok(None) => break,
            Err(ErrorCode::WouldBlock) => {
                poll::poll(&[&stream.subscribe()]);
            }
            Err(e) => return Err(code(e)),
        }
    }
    Ok(addresses.join(","))
}
