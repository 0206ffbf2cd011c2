//! `wasi:sockets` (0.2) as Spin v4.0.2 gives it to a component: TCP and UDP
//! on, each address checked against the component's `allowed_outbound_hosts`
//! (the same allow-list, templates and matcher as outgoing HTTP), binding a
//! TCP socket and name lookup refused.
//!
//! Spin (`crates/factor-outbound-networking/src/lib.rs`, `prepare`, and
//! `crates/factor-wasi/src/lib.rs`, `outbound_socket_addr_check`) installs
//! one `socket_addr_check` on wasmtime-wasi 44's `WasiCtxBuilder`:
//! - TCP connect: allowed when the list allows `tcp://<ip>:<port>`;
//! - TCP bind: always refused (so is listening, which WASI 0.2 allows only
//!   on a bound socket);
//! - UDP bind, connect and each outgoing datagram: allowed when the list
//!   allows `udp://<ip>:<port>` (the bind address too: `udp://0.0.0.0:0`
//!   for an ephemeral one);
//! - a refusal is `access-denied`, from the call that was checked.
//!
//! TCP and UDP are on and name lookup is off: wasmtime-wasi 44's defaults,
//! which Spin does not change, so `resolve-addresses` fails with
//! `permanent-resolver-failure` (`invalid-argument` for a name that is no
//! host) whatever the allow-list says; a guest connects to addresses only.
//!
//! The runner is on wasmtime-wasi 48, whose defaults and checks differ:
//! TCP and UDP default to off; `start-connect` checks an implicit bind of
//! the wildcard address (so Spin's "never bind" rule would refuse every
//! connect) and checks the destination only later, in `finish-connect`;
//! UDP checks each datagram received; name lookup checks permission before
//! the name. So the runner turns TCP and UDP on, answers the checks as
//! wasmtime-wasi 44 asked them ([`SocketPolicy::check`]), and replaces
//! three functions with Spin's behaviour ([`add_to_linker`]):
//! `tcp-socket.start-bind` (always `access-denied`), `start-connect` (the
//! allow-list first, so a refusal comes from `start-connect` as on Spin),
//! and `resolve-addresses`.

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::ResolveAddressStream;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpSocketAddress};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::{Network, TcpSocket};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsView};

use crate::engine::WasmtimeResultExt;
use crate::outbound::{ComponentOutbound, OutboundApp};
use crate::state::HostState;

/// The `wasi:sockets` interfaces wasmtime-wasi 48 links (its WIT package
/// version; a guest's `@0.2.x` import links to them by semver).
const TCP: &str = "wasi:sockets/tcp@0.2.12";
const IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// One component's socket permissions: its allow-list, resolved once per
/// component as for outgoing HTTP.
#[derive(Clone)]
pub struct SocketPolicy {
    app: Arc<dyn OutboundApp>,
    component: Arc<ComponentOutbound>,
}

impl SocketPolicy {
    /// The policy of `component` in `app`.
    pub fn new(app: Arc<dyn OutboundApp>, component: Arc<ComponentOutbound>) -> Self {
        Self { app, component }
    }

    /// Whether the allow-list allows `scheme://addr` (`tcp` or `udp`); a
    /// refusal is logged as Spin's disallowed-host handler logs it. A list
    /// that does not resolve or parse allows nothing.
    pub fn allows(&self, scheme: &str, addr: SocketAddr) -> bool {
        let id = &self.component.id;
        match self.component.allow_list(&*self.app) {
            Ok(list) if list.allows_socket(scheme, addr) => true,
            Ok(_) => {
                eprintln!(
                    "[{id}] A component tried to make an outbound network connection to disallowed destination '{scheme}://{addr}'. \
                     To allow it, add \"{scheme}://{addr}\" to the component's `allowed_outbound_hosts` in spin.toml"
                );
                false
            }
            Err(e) => {
                eprintln!("[{id}] outbound connection to {scheme}://{addr} refused: {e}");
                false
            }
        }
    }

    /// wasmtime-wasi 48's check, answered as Spin answers wasmtime-wasi
    /// 44's. A TCP bind reaches it only as the implicit bind of a connect
    /// ([`add_to_linker`] refuses explicit binds before wasmtime sees them),
    /// which wasmtime-wasi 44 did not check: allowed. Listening and
    /// accepting did not exist there (a WASI 0.2 listener must be bound):
    /// refused. UDP receive was not checked: allowed.
    pub fn check(&self, addr: SocketAddr, addr_use: SocketAddrUse) -> bool {
        match addr_use {
            SocketAddrUse::TcpBind => true,
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
            SocketAddrUse::TcpConnect => self.allows("tcp", addr),
            SocketAddrUse::UdpBind | SocketAddrUse::UdpSend => self.allows("udp", addr),
            SocketAddrUse::UdpReceive => true,
        }
    }
}

/// Spin's socket settings on an instance's WASI context.
pub trait SpinSockets {
    /// TCP and UDP on, each address checked by `policy`, name lookup off.
    fn spin_sockets(&mut self, policy: SocketPolicy) -> &mut Self;
}

impl SpinSockets for WasiCtxBuilder {
    fn spin_sockets(&mut self, policy: SocketPolicy) -> &mut Self {
        self.allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(false)
            .socket_addr_check(move |addr, addr_use| {
                let allowed = policy.check(addr, addr_use);
                Box::pin(async move { allowed })
            })
    }
}

/// Replaces, in a linker that has wasmtime-wasi's `wasi:sockets`, the three
/// functions whose behaviour differs from Spin's (see the module docs).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    let result = shadow(linker);
    linker.allow_shadowing(false);
    result
}

fn shadow(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    type Args = (Resource<TcpSocket>, Resource<Network>, IpSocketAddress);
    let mut tcp = linker.instance(TCP).anyhow()?;
    // Spin refuses every bind: `access-denied`, once the network handle is
    // known good (and before the socket or the address is looked at).
    tcp.func_wrap(
        "[method]tcp-socket.start-bind",
        |store: StoreContextMut<'_, HostState>, (_socket, network, _addr): Args| {
            store.data().table.get(&network)?;
            Ok((Err::<(), _>(ErrorCode::AccessDenied),))
        },
    )
    .anyhow()?;
    // The allow-list first, then wasmtime's connect.
    tcp.func_wrap(
        "[method]tcp-socket.start-connect",
        |mut store: StoreContextMut<'_, HostState>, (socket, network, addr): Args| {
            let state = store.data_mut();
            state.table.get(&network)?;
            let policy = SocketPolicy::new(state.hooks.app.clone(), state.hooks.component.clone());
            if !policy.allows("tcp", SocketAddr::from(addr)) {
                return Ok((Err(ErrorCode::AccessDenied),));
            }
            match HostTcpSocket::start_connect(&mut state.sockets(), socket, network, addr) {
                Ok(()) => Ok((Ok(()),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )
    .anyhow()?;
    let mut lookup = linker.instance(IP_NAME_LOOKUP).anyhow()?;
    // wasmtime-wasi 44 with lookups off: the name is parsed first.
    lookup
        .func_wrap(
            "resolve-addresses",
            |store: StoreContextMut<'_, HostState>,
             (network, name): (Resource<Network>, String)| {
                store.data().table.get(&network)?;
                let code = if is_host(&name) {
                    ErrorCode::PermanentResolverFailure
                } else {
                    ErrorCode::InvalidArgument
                };
                Ok((Err::<Resource<ResolveAddressStream>, _>(code),))
            },
        )
        .anyhow()?;
    Ok(())
}

/// wasmtime-wasi 44's `parse_host`: a name or address as a URL host, or a
/// bare IPv6 address.
fn is_host(name: &str) -> bool {
    url::Host::parse(name).is_ok() || name.parse::<std::net::Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> SocketPolicy {
        let hosts = hosts.iter().map(|h| h.to_string()).collect();
        SocketPolicy::new(
            Arc::new(crate::outbound::test_app::TestApp::new(&[])),
            Arc::new(ComponentOutbound::new("probe", hosts)),
        )
    }

    #[test]
    fn wasmtime_48s_checks_are_answered_as_spin_answers_wasmtime_44s() {
        use SocketAddrUse::*;
        let peer: SocketAddr = "127.0.0.1:7".parse().unwrap();
        let wildcard: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let tcp = policy(&["tcp://127.0.0.1:7"]);
        assert!(tcp.check(peer, TcpConnect));
        assert!(!tcp.check("127.0.0.1:8".parse().unwrap(), TcpConnect));
        // The implicit bind of a connect: not checked by wasmtime-wasi 44.
        assert!(tcp.check(wildcard, TcpBind));
        assert!(!tcp.check(peer, TcpListen));
        assert!(!tcp.check(peer, TcpAccept));
        assert!(!tcp.check(peer, UdpSend));
        assert!(!tcp.check(wildcard, UdpBind));
        let udp = policy(&["udp://0.0.0.0:0", "udp://127.0.0.1:7"]);
        assert!(udp.check(wildcard, UdpBind));
        assert!(udp.check(peer, UdpSend));
        assert!(!udp.check(peer, TcpConnect));
        // wasmtime-wasi 44 did not check what a UDP socket receives.
        assert!(policy(&[]).check(peer, UdpReceive));
    }

    #[test]
    fn an_allow_list_that_does_not_parse_allows_no_socket() {
        let broken = policy(&["tcp://127.0.0.1:7", ""]);
        assert!(!broken.allows("tcp", "127.0.0.1:7".parse().unwrap()));
    }

    #[test]
    fn a_lookup_of_a_name_or_address_is_a_resolver_failure_and_of_garbage_invalid() {
        for host in ["localhost", "example.com", "127.0.0.1", "::1", "[::1]"] {
            assert!(is_host(host), "{host}");
        }
        for garbage in ["", "a b", "[::1"] {
            assert!(!is_host(garbage), "{garbage}");
        }
    }
}
