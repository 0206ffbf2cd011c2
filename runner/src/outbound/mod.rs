//! Outgoing HTTP: the ONE hook every guest request passes through.
//!
//! [`OutboundHooks::send_request`] decides, from the calling component's
//! `allowed_outbound_hosts`, between four outcomes (see [`decide`]):
//! - denied: the guest gets `HTTP-request-denied`, as on Spin, and nothing
//!   leaves the process;
//! - service chaining (`http://<id>.spin.internal/...`): the request is
//!   handed in-process to that component (private or not), no socket;
//! - a chaining host naming no component an HTTP trigger runs: Spin's
//!   interceptor fails with a host error and the calling guest traps, so
//!   the runner ends the caller as a trap ([`GuestTrap`]);
//! - the network: through the [`Upstream`] sender, which tests replace with
//!   a fake to prove a denial never reaches it.
//!
//! This module depends on nothing above it: what it needs from the
//! application (template resolution, the component ids, the chaining
//! target) it asks through the [`OutboundApp`] trait, which `App`
//! implements.

pub mod allowed;
#[cfg(test)]
pub(crate) mod test_app;

use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use http::uri::Scheme;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use allowed::AllowList;

// The chaining host rule is routing's (Spin's `parse_service_chaining_target`:
// one label, as written, before exactly `spin.internal`), shared with the
// Host-header check there.
use crate::routing::service_chaining_target;
use crate::telemetry::{Trace, spans};

/// What happens to an outgoing request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not in the allow-list (or not a valid URL): refused.
    Denied(String),
    /// To a component of this app, in-process.
    Chain(String),
    /// To `<id>.spin.internal` where `id` is no component an HTTP trigger
    /// runs: on Spin the calling guest traps.
    Trap(String),
    /// To the network.
    Network,
}

/// Decides an outgoing request to `uri` from a component whose allow-list
/// check is `allows(scheme, host, port)`; `is_chain_target(id)` says
/// whether an HTTP trigger runs component `id`. Pure, so it is tested by
/// table. Spin's order: the allow-list first (host compared lowercased, as
/// its URL parser lowercases), then the chaining interceptor (which reads
/// the host as written).
pub fn decide(
    uri: &http::Uri,
    allows: impl Fn(&str, &str, Option<u16>) -> bool,
    is_chain_target: impl Fn(&str) -> bool,
) -> Decision {
    let Some(scheme) = uri.scheme_str() else {
        return Decision::Denied(format!("{uri} has no scheme"));
    };
    let Some(raw_host) = uri.host() else {
        return Decision::Denied(format!("{uri} has no host"));
    };
    let host = raw_host.to_ascii_lowercase();
    if !allows(scheme, &host, uri.port_u16()) {
        let authority = match uri.port_u16().or_else(|| allowed::well_known_port(scheme)) {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        return Decision::Denied(format!(
            "A component tried to make an HTTP request to the non-allowed host '{scheme}://{authority}'. \
             To allow it, add \"{scheme}://{authority}\" to the component's `allowed_outbound_hosts` in spin.toml"
        ));
    }
    if let Some(id) = service_chaining_target(raw_host) {
        // Spin chains whatever the scheme (its interceptor reads only the
        // host) and hands the target an `http` request.
        if is_chain_target(id) {
            return Decision::Chain(id.to_string());
        }
        return Decision::Trap(format!(
            "{uri}: unknown routing destination '{id}': no HTTP trigger runs a component `{id}` in this application (on Spin the calling component traps)"
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
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options)
                .await
                .map_err(spin_connect_error)?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// Spin's outbound client reports a name that does not resolve (and an
/// address not available) as `dns-error` with rcode "address not
/// available" and info code 0 (`factor-outbound-http` `wasi.rs`,
/// `dns_error("address not available", 0)`); wasmtime's client leaves the
/// info code out. Other errors are already Spin's.
fn spin_connect_error(e: HttpError) -> HttpError {
    match e {
        HttpError::Connect(io)
            if io.kind() == std::io::ErrorKind::AddrNotAvailable
                || io
                    .to_string()
                    .starts_with("failed to lookup address information") =>
        {
            HttpError::DnsError {
                rcode: Some("address not available".to_string()),
                info_code: Some(0),
            }
        }
        e => e,
    }
}

/// The response of a chained call.
pub type ChainFuture = Pin<Box<dyn Future<Output = http::Response<WasiBody>> + Send>>;

/// What outbound needs from the application above it (implemented by
/// `App`): so this module depends on nothing above it.
pub trait OutboundApp: Send + Sync + 'static {
    /// Resolves `{{ variable }}` templates in an `allowed_outbound_hosts`
    /// entry.
    fn resolve_template(&self, entry: &str) -> Result<String, String>;
    /// Every component id of the app (what `*.spin.internal` stands for).
    fn component_ids(&self) -> Vec<&str>;
    /// Whether an HTTP trigger runs component `id` (Spin chains only to
    /// those).
    fn is_chain_target(&self, id: &str) -> bool;
    /// Runs a chained `request` in component `target`, `depth` hops deep,
    /// its instance span under `trace` (the caller's client span); its
    /// failures are the response, as an HTTP answer would be.
    fn chain(
        self: Arc<Self>,
        target: String,
        request: http::Request<WasiBody>,
        depth: u32,
        trace: Trace,
    ) -> ChainFuture;
    /// Where requests allowed onto the network go.
    fn upstream(&self) -> &dyn Upstream;
}

/// One component's outbound policy: its id and `allowed_outbound_hosts`,
/// resolved at the first outbound request as Spin does, so an unset
/// `{{ upstream_origin }}` only matters if the component calls out.
pub struct ComponentOutbound {
    /// The component id from spin.toml.
    pub id: String,
    allowed_hosts: Vec<String>,
    allow_list: OnceLock<Result<Arc<AllowList>, String>>,
}

impl ComponentOutbound {
    /// The policy of component `id` with these `allowed_outbound_hosts`.
    pub fn new(id: impl Into<String>, allowed_hosts: Vec<String>) -> Self {
        Self {
            id: id.into(),
            allowed_hosts,
            allow_list: OnceLock::new(),
        }
    }

    /// The component's allow-list, its templates resolved and
    /// `*.spin.internal` expanded to the app's components.
    pub fn allow_list(&self, app: &dyn OutboundApp) -> Result<Arc<AllowList>, String> {
        self.allow_list
            .get_or_init(|| {
                let resolved = self
                    .allowed_hosts
                    .iter()
                    .map(|entry| app.resolve_template(entry))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("allowed_outbound_hosts: {e}"))?;
                AllowList::parse(resolved.iter().map(String::as_str))
                    .map(|list| Arc::new(list.expand_service_chaining(app.component_ids())))
                    .map_err(|e| format!("allowed_outbound_hosts: {e:#}"))
            })
            .clone()
    }
}

/// How the hook ends the calling guest with a trap where Spin's guest
/// traps (wasmtime's hook API has no trap outcome): the instance's runner
/// waits on the other end alongside the guest and ends the guest with the
/// reason. Made per instance with [`GuestTrap::new`].
pub struct GuestTrap(Option<tokio::sync::oneshot::Sender<String>>);

impl GuestTrap {
    /// A trap sender and the receiver the instance's runner waits on.
    pub fn new() -> (Self, tokio::sync::oneshot::Receiver<String>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Self(Some(tx)), rx)
    }

    /// Ends the guest with `why` (the first reason wins).
    pub fn raise(&mut self, why: String) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(why);
        }
    }
}

/// The per-instance hooks: who is calling, and the app to chain into.
pub struct OutboundHooks {
    pub(crate) app: Arc<dyn OutboundApp>,
    pub(crate) component: Arc<ComponentOutbound>,
    /// The number of chained hops that led to this instance.
    pub(crate) depth: u32,
    pub(crate) trap: GuestTrap,
    /// The instance's span: each request is a client span under it.
    pub(crate) trace: Trace,
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
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        // Spin's `spin_outbound_http.send_request` span, open until the
        // response head arrives; its context goes out as `traceparent`
        // once the request is allowed (chained or not).
        let span = spans::outbound(&self.trace, &request);
        let allow_list = match self.component.allow_list(&*self.app) {
            Ok(list) => list,
            Err(e) => {
                eprintln!("[{}] outbound request refused: {e}", self.component.id);
                return Box::new(async { Err(HttpError::HttpRequestDenied) });
            }
        };
        let decision = decide(
            request.uri(),
            |s, h, p| allow_list.allows(s, h, p),
            |id| self.app.is_chain_target(id),
        );
        match decision {
            Decision::Denied(why) => {
                eprintln!("[{}] {why}", self.component.id);
                Box::new(async { Err(HttpError::HttpRequestDenied) })
            }
            Decision::Trap(why) => {
                // The guest never gets an answer: it is ended as it waits.
                self.trap.raise(why);
                Box::new(std::future::pending())
            }
            Decision::Chain(target) => {
                if self.depth >= MAX_CHAIN_DEPTH {
                    eprintln!(
                        "[{}] service chaining deeper than {MAX_CHAIN_DEPTH} hops refused (a loop?)",
                        self.component.id
                    );
                    return Box::new(async { Err(HttpError::LoopDetected) });
                }
                span.inject(request.headers_mut());
                let chained = self
                    .app
                    .clone()
                    .chain(target, request, self.depth + 1, span.clone());
                Box::new(async move {
                    let response = chained.await;
                    span.end();
                    Ok((
                        response,
                        Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                    ))
                })
            }
            Decision::Network if span.is_on() => {
                span.inject(request.headers_mut());
                spans::outbound_to_network(&span, &request);
                let sent = Box::into_pin(self.app.upstream().send(request, options));
                Box::new(async move {
                    let result = sent.await;
                    if let Ok((response, _)) = &result {
                        spans::outbound_answered(&span, response);
                    }
                    span.end();
                    result
                })
            }
            Decision::Network => self.app.upstream().send(request, options),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_app::TestApp;

    /// The app of these tables: `cache` and `processor` run by HTTP
    /// triggers, `lonely` a component no trigger runs.
    const COMPONENTS: [&str; 3] = ["cache", "processor", "lonely"];

    fn decide_for(list: &[&str], uri: &str) -> Decision {
        let list = allowed::AllowList::parse(list.iter().copied())
            .unwrap()
            .expand_service_chaining(COMPONENTS);
        decide(
            &uri.parse().unwrap(),
            |s, h, p| list.allows(s, h, p),
            |id| ["cache", "processor"].contains(&id),
        )
    }

    fn get(uri: &str) -> http::Request<WasiBody> {
        http::Request::get(uri)
            .body(crate::errors::full_body(bytes::Bytes::new()))
            .unwrap()
    }

    #[tokio::test]
    async fn the_one_hook_denies_chains_traps_or_sends_upstream() {
        let app = Arc::new(TestApp::new(&["cache"]));
        let (trap, mut trapped) = GuestTrap::new();
        let mut hooks = OutboundHooks {
            app: app.clone(),
            component: Arc::new(ComponentOutbound::new(
                "caller",
                vec![
                    "http://*.spin.internal".into(),
                    "http://nope.spin.internal".into(),
                    "https://api.example.com".into(),
                ],
            )),
            depth: 0,
            trap,
            trace: Trace::off(),
        };
        let mut send =
            |uri: &str| Pin::from(hooks.send_request(get(uri), None, Box::new(async { Ok(()) })));
        let denied = send("https://evil.example.com/").await;
        assert!(matches!(denied, Err(HttpError::HttpRequestDenied)));
        let chained = send("http://cache.spin.internal/x")
            .await
            .map(|(r, _)| r.status());
        assert_eq!(chained.ok(), Some(http::StatusCode::IM_A_TEAPOT));
        assert_eq!(app.sent(), 0);
        let network = send("https://api.example.com/").await;
        assert!(matches!(network, Err(HttpError::ConnectionRefused)));
        assert_eq!(app.sent(), 1);
        assert!(trapped.try_recv().is_err(), "nothing trapped yet");
        let pending = send("http://nope.spin.internal/");
        let why = trapped.try_recv().expect("the hook raised a trap");
        assert!(why.contains("unknown routing destination 'nope'"), "{why}");
        // The guest never gets an answer for it.
        assert!(futures::FutureExt::now_or_never(pending).is_none());
        assert_eq!(app.sent(), 1);
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
        // Spin expands the wildcard to the app's components: another id is
        // not allowed at all.
        let d = decide_for(&["http://*.spin.internal"], "http://nope.spin.internal/");
        assert!(matches!(d, Decision::Denied(_)), "{d:?}");
    }

    #[test]
    fn an_allowed_internal_host_naming_no_component_traps_the_caller_as_on_spin() {
        let d = decide_for(
            &["http://nope.spin.internal"],
            "http://nope.spin.internal/x",
        );
        assert!(
            matches!(&d, Decision::Trap(why) if why.contains("'nope'")),
            "{d:?}"
        );
        let d = decide_for(&["*://*:*"], "http://nope.spin.internal/x");
        assert!(matches!(d, Decision::Trap(_)), "{d:?}");
    }

    #[test]
    fn a_component_no_http_trigger_runs_is_allowed_by_the_wildcard_but_traps_the_caller() {
        let d = decide_for(&["http://*.spin.internal"], "http://lonely.spin.internal/");
        assert!(matches!(d, Decision::Trap(_)), "{d:?}");
    }

    #[test]
    fn a_host_with_two_labels_before_spin_internal_is_not_chained_but_goes_to_the_network() {
        let d = decide_for(&["http://a.b.spin.internal"], "http://a.b.spin.internal/");
        assert_eq!(d, Decision::Network);
        let d = decide_for(&["http://*.internal"], "http://cache.x.spin.internal/");
        assert_eq!(d, Decision::Network);
    }

    #[test]
    fn a_service_chaining_wildcard_does_not_allow_a_host_with_two_labels() {
        let d = decide_for(&["http://*.spin.internal"], "http://a.cache.spin.internal/");
        assert!(matches!(d, Decision::Denied(_)), "{d:?}");
    }

    #[test]
    fn the_chaining_target_is_read_as_written_as_spin_reads_it() {
        // The allow-list compares lowercased; the target is the host's
        // first label as written, and the rest must be `spin.internal`.
        let d = decide_for(
            &["http://cache.spin.internal"],
            "http://Cache.spin.internal/",
        );
        assert!(
            matches!(&d, Decision::Trap(why) if why.contains("'Cache'")),
            "{d:?}"
        );
        let d = decide_for(
            &["http://cache.spin.internal"],
            "http://cache.SPIN.internal/",
        );
        assert_eq!(d, Decision::Network);
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
    }

    #[tokio::test]
    async fn a_list_with_an_entry_that_does_not_parse_denies_everything_as_on_spin() {
        // A template that resolved to "" fails the whole list on Spin.
        let app = Arc::new(TestApp::new(&["cache"]));
        let (trap, _trapped) = GuestTrap::new();
        let mut hooks = OutboundHooks {
            app: app.clone(),
            component: Arc::new(ComponentOutbound::new(
                "caller",
                vec!["https://api.example.com".into(), "".into()],
            )),
            depth: 0,
            trap,
            trace: Trace::off(),
        };
        let sent = hooks.send_request(
            get("https://api.example.com/"),
            None,
            Box::new(async { Ok(()) }),
        );
        assert!(matches!(
            Pin::from(sent).await,
            Err(HttpError::HttpRequestDenied)
        ));
        assert_eq!(app.sent(), 0);
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
