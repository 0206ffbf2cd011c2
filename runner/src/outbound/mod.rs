//! Outgoing HTTP: the ONE hook every guest request passes through.
//!
//! [`OutboundHooks::send_request`] decides, from the calling component's
//! `allowed_outbound_hosts`, between three outcomes (see [`decide`]):
//! - denied: the guest gets `HTTP-request-denied`, as on Spin, and nothing
//!   leaves the process;
//! - service chaining (`http://<id>.spin.internal/...`): the request is
//!   handed in-process to that component (private or not), no socket;
//! - the network: through the [`Upstream`] sender, which tests replace with
//!   a fake to prove a denial never reaches it.

pub mod allowed;

use std::sync::Arc;

use http::uri::Scheme;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::app::{App, ComponentRuntime};

/// The domain suffix of service chaining hosts.
pub const SERVICE_CHAINING_SUFFIX: &str = ".spin.internal";

/// What happens to an outgoing request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not in the allow-list (or not a valid URL): refused.
    Denied(String),
    /// To a component of this app, in-process.
    Chain(String),
    /// To the network.
    Network,
}

/// Decides an outgoing request to `uri` from a component whose allow-list
/// check is `allows(scheme, host, port)`. Pure, so it is tested by table.
pub fn decide(
    uri: &http::Uri,
    allows: impl Fn(&str, &str, u16) -> bool,
    component_exists: impl Fn(&str) -> bool,
) -> Decision {
    let Some(scheme) = uri.scheme_str() else {
        return Decision::Denied(format!("{uri} has no scheme"));
    };
    let Some(host) = uri.host() else {
        return Decision::Denied(format!("{uri} has no host"));
    };
    let host = host.to_ascii_lowercase();
    let Some(port) = uri.port_u16().or_else(|| allowed::well_known_port(scheme)) else {
        return Decision::Denied(format!("{uri} has no port"));
    };
    if !allows(scheme, &host, port) {
        return Decision::Denied(format!(
            "A component tried to make an HTTP request to the non-allowed host '{scheme}://{host}:{port}'. \
             To allow it, add \"{scheme}://{host}:{port}\" to the component's `allowed_outbound_hosts` in spin.toml"
        ));
    }
    if let Some(id) = host.strip_suffix(SERVICE_CHAINING_SUFFIX) {
        // Spin chains whatever the scheme (its interceptor reads only the
        // host) and hands the target an `http` request.
        if component_exists(id) {
            return Decision::Chain(id.to_string());
        }
        return Decision::Denied(format!(
            "{uri}: there is no component `{id}` in this application to chain to"
        ));
    }
    Decision::Network
}

/// The future a hook returns: the response and an I/O driver future.
pub type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

/// Sends requests that are allowed to leave the process.
pub trait Upstream: Send + Sync + 'static {
    /// Sends `request` to the network.
    fn send(&self, request: http::Request<WasiBody>, options: Option<RequestOptions>)
    -> SendFuture;
}

/// The real network, through wasmtime-wasi-http's client (timeouts from the
/// guest's request options are honoured there).
pub struct Network;

impl Upstream for Network {
    fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> SendFuture {
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// The per-instance hooks: who is calling, and the app to chain into.
pub struct OutboundHooks {
    pub(crate) app: Arc<App>,
    pub(crate) component: Arc<ComponentRuntime>,
    /// The number of chained hops that led to this instance.
    pub(crate) depth: u32,
}

/// Longest chain of in-process calls before a request is refused: a
/// component calling itself in a loop must end, not exhaust the pool.
pub const MAX_CHAIN_DEPTH: u32 = 10;

impl WasiHttpHooks for OutboundHooks {
    fn default_scheme(&mut self) -> Option<Scheme> {
        Some(Scheme::HTTPS)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let allow_list = match self.component.allow_list(&self.app) {
            Ok(list) => list,
            Err(e) => {
                eprintln!("[{}] outbound request refused: {e}", self.component.id);
                return Box::new(async { Err(HttpError::HttpRequestDenied) });
            }
        };
        let decision = decide(
            request.uri(),
            |s, h, p| allow_list.allows(s, h, p),
            |id| self.app.components.contains_key(id),
        );
        match decision {
            Decision::Denied(why) => {
                eprintln!("[{}] {why}", self.component.id);
                Box::new(async { Err(HttpError::HttpRequestDenied) })
            }
            Decision::Chain(target) => {
                if self.depth >= MAX_CHAIN_DEPTH {
                    eprintln!(
                        "[{}] service chaining deeper than {MAX_CHAIN_DEPTH} hops refused (a loop?)",
                        self.component.id
                    );
                    return Box::new(async { Err(HttpError::LoopDetected) });
                }
                let app = self.app.clone();
                let depth = self.depth + 1;
                Box::new(async move {
                    let response = app.handle_chained(&target, request, depth).await;
                    Ok((
                        response,
                        Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                    ))
                })
            }
            Decision::Network => self.app.upstream.send(request, options),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide_for(list: &[&str], uri: &str) -> Decision {
        let list = allowed::AllowList::parse(list.iter().copied()).unwrap();
        decide(
            &uri.parse().unwrap(),
            |s, h, p| list.allows(s, h, p),
            |id| ["cache", "processor"].contains(&id),
        )
    }

    #[test]
    fn an_allowed_internal_host_is_chained() {
        let d = decide_for(
            &["http://cache.spin.internal"],
            "http://cache.spin.internal/x",
        );
        assert_eq!(d, Decision::Chain("cache".into()));
    }

    #[test]
    fn an_allowed_https_internal_host_is_chained_too() {
        let d = decide_for(
            &["https://cache.spin.internal"],
            "https://cache.spin.internal/x",
        );
        assert_eq!(d, Decision::Chain("cache".into()));
    }

    #[test]
    fn an_internal_host_not_listed_is_denied() {
        let d = decide_for(
            &["http://cache.spin.internal"],
            "http://processor.spin.internal/",
        );
        assert!(matches!(d, Decision::Denied(_)));
    }

    #[test]
    fn a_wildcard_chains_to_existing_components_only() {
        let d = decide_for(
            &["http://*.spin.internal"],
            "http://processor.spin.internal/",
        );
        assert_eq!(d, Decision::Chain("processor".into()));
        let d = decide_for(&["http://*.spin.internal"], "http://nope.spin.internal/");
        assert!(matches!(d, Decision::Denied(_)));
    }

    #[test]
    fn an_unlisted_network_host_is_denied_and_a_listed_one_goes_out() {
        assert!(matches!(
            decide_for(&["https://api.example.com"], "https://evil.example.com/"),
            Decision::Denied(_)
        ));
        assert_eq!(
            decide_for(
                &["https://api.example.com"],
                "https://api.example.com/data/1"
            ),
            Decision::Network
        );
    }

    #[test]
    fn an_empty_allow_list_denies_everything() {
        assert!(matches!(
            decide_for(&[], "http://cache.spin.internal/"),
            Decision::Denied(_)
        ));
        assert!(matches!(
            decide_for(&[""], "https://api.example.com/"),
            Decision::Denied(_)
        ));
    }

    #[test]
    fn the_denial_message_says_how_to_allow_the_host() {
        let Decision::Denied(why) = decide_for(&[], "https://api.example.com/") else {
            panic!("not denied")
        };
        assert!(why.contains("allowed_outbound_hosts"), "{why}");
        assert!(why.contains("https://api.example.com:443"), "{why}");
    }
}
