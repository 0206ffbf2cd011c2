//! The loaded application: every component compiled and pre-instantiated
//! once, and the per-request path: a fresh instance, the guest's
//! `wasi:http/incoming-handler`, a deadline, and a 500 (never a crash)
//! when the guest traps.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::BodyExt;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpView};

use crate::engine::WasmtimeResultExt;
pub use crate::errors::GuestFailure;
use crate::errors::empty_response;
use crate::key_value::Stores;
use crate::key_value::host::KeyValueCtx;
use crate::logs::{AppLog, ComponentLog, Console, InstanceOutput};
use crate::manifest::LoadedManifest;
use crate::outbound::{
    ChainFuture, ComponentOutbound, GuestTrap, OutboundApp, OutboundHooks, Upstream,
};
use crate::p3::P3Handler;
use crate::reuse::ReuseConfig;
use crate::sockets::{SocketPolicy, SpinSockets};
use crate::state::{HostState, InstanceLimits, Usage};
use crate::telemetry::{Telemetry, Trace, spans};
use crate::variables::Resolver;
use crate::variables::host::VariablesCtx;

/// Settings that shape every request. `Default` is Spin's: no deadline,
/// no memory cap, Spin 4's reuse.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// A request's whole time budget in the guest (an empty 504 past it),
    /// or none. Spin 4 enforces no deadline on WASI 0.2 components (its
    /// `--request-timeout` "only affects WASIp3 components" and has no
    /// default), so none is the default; `up --request-timeout` opts in.
    pub request_timeout: Option<Duration>,
    /// Largest linear memory an instance may grow to, in bytes: Spin's
    /// `--max-instance-memory` (or `SPIN_MAX_INSTANCE_MEMORY`, or the
    /// runtime config's `max_instance_memory`). None by default, as on Spin:
    /// only wasm's own 4 GiB bounds it.
    pub max_instance_memory: Option<usize>,
    /// Spin 4's instance reuse for WASI 0.3 components (its four flags);
    /// a WASI 0.2 instance always serves one request.
    pub reuse: ReuseConfig,
}

/// One component, ready to instantiate.
pub struct ComponentRuntime {
    /// The component id from spin.toml.
    pub id: String,
    handler: Handler,
    /// Its `allowed_outbound_hosts`, for the outbound hook.
    outbound: Arc<ComponentOutbound>,
    key_value_stores: Arc<HashSet<String>>,
    sqlite_databases: crate::sqlite::Allowed,
    environment: Vec<(String, String)>,
    stdout: Arc<ComponentLog>,
    stderr: Arc<ComponentLog>,
}

/// How a component is called, by what it exports (Spin's `HandlerType`).
enum Handler {
    /// `wasi:http/incoming-handler@0.2.*`: a fresh instance per request.
    Wasi0_2(ProxyPre<HostState>),
    /// `wasi:http/handler@0.3.0`: instances reused as Spin 4 does.
    Wasi0_3(P3Handler),
}

/// The whole application, shared by every request.
pub struct App {
    pub(crate) engine: Engine,
    pub(crate) components: HashMap<String, Arc<ComponentRuntime>>,
    /// The components an HTTP trigger runs: what service chaining reaches.
    pub(crate) chain_targets: HashSet<String>,
    pub(crate) variables: Arc<Resolver>,
    pub(crate) stores: Arc<Stores>,
    pub(crate) databases: Arc<crate::sqlite::Databases>,
    pub(crate) upstream: Arc<dyn Upstream>,
    pub(crate) limits: Limits,
    /// OpenTelemetry, when exported.
    pub(crate) telemetry: Option<Arc<Telemetry>>,
    /// `[application] name` (the `app_id` of Spin's request metric).
    pub(crate) name: String,
}

/// What [`App::load`] needs besides the manifest.
pub struct LoadOptions {
    /// Compiled-component cache directory; `None` (`--disable-cache`):
    /// compile every time, write nothing.
    pub cache_dir: Option<PathBuf>,
    /// `false` (`--disable-pooling`): instances allocated on demand.
    pub pooling: bool,
    /// Where component logs go (`<state-dir>/logs`), or nowhere.
    pub log_dir: Option<PathBuf>,
    /// Whose output reaches the console (`--quiet`, `--follow`).
    pub follow: crate::logs::FollowComponents,
    /// `-e KEY=VALUE`: WASI environment for every component.
    pub env: Vec<(String, String)>,
    /// Variable resolution (defaults, `--variable`, SPIN_VARIABLE_*).
    pub variables: Arc<Resolver>,
    /// Key-value stores from the runtime config.
    pub stores: Arc<Stores>,
    /// SQLite databases from the runtime config and the state dir.
    pub databases: Arc<crate::sqlite::Databases>,
    /// Where allowed network requests go.
    pub upstream: Arc<dyn Upstream>,
    /// Per-request limits.
    pub limits: Limits,
    /// OpenTelemetry, when exported ([`Telemetry::from_env`]).
    pub telemetry: Option<Arc<Telemetry>>,
}

impl App {
    /// Compiles (or loads from cache) and pre-instantiates every component.
    pub fn load(manifest: &LoadedManifest, opts: LoadOptions) -> anyhow::Result<Arc<Self>> {
        let mut sources = Vec::new();
        for id in manifest.manifest.component.keys() {
            let path = manifest.source_path(id)?;
            let bytes = std::fs::read(&path)
                .with_context(|| format!("component `{id}`: cannot read {}", path.display()))?;
            sources.push((path, bytes));
        }
        let concurrency = sources
            .iter()
            .any(|(_, bytes)| crate::engine::needs_concurrency(bytes));
        let engine = if opts.pooling {
            crate::engine::new_engine(concurrency)?
        } else {
            crate::engine::new_engine_on_demand(concurrency)?
        };
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).anyhow()?;
        crate::sockets::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).anyhow()?;
        crate::key_value::host::add_to_linker(&mut linker, |s: &mut HostState| &mut s.key_value)?;
        crate::variables::host::add_to_linker(&mut linker, |s: &mut HostState| &mut s.variables)?;
        crate::sqlite::add_to_linker(&mut linker, |s: &mut HostState| &mut s.sqlite)?;
        crate::outbound_redis::add_to_linker(&mut linker, |s: &mut HostState| &mut s.redis)?;
        crate::mqtt::add_to_linker(&mut linker, |s: &mut HostState| &mut s.mqtt)?;
        if concurrency {
            // WASI 0.3 and Spin's 3.0.0 interfaces (spin-sdk 6 and 7
            // components import these beside some WASI 0.2 ones); their
            // async host functions need the engine's concurrency support.
            wasmtime_wasi::p3::add_to_linker(&mut linker).anyhow()?;
            wasmtime_wasi_http::p3::add_to_linker(&mut linker).anyhow()?;
            crate::key_value::host_v3::add_to_linker(&mut linker, |s: &mut HostState| {
                &mut s.key_value
            })?;
            crate::variables::host_v3::add_to_linker(&mut linker, |s: &mut HostState| {
                &mut s.variables
            })?;
        }

        let mut components = HashMap::new();
        for ((id, c), (path, bytes)) in manifest.manifest.component.iter().zip(&sources) {
            let component =
                crate::engine::load_component(&engine, path, bytes, opts.cache_dir.as_deref())
                    .with_context(|| format!("component `{id}`"))?;
            let pre = crate::imports::instantiate_pre(&linker, &component, id, path)?;
            let handler = handler_for(id, pre, opts.limits.reuse)?;
            let mut environment: Vec<(String, String)> = c
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            environment.extend(opts.env.iter().cloned());
            let log_dir = opts.log_dir.as_deref();
            components.insert(
                id.clone(),
                Arc::new(ComponentRuntime {
                    id: id.clone(),
                    handler,
                    outbound: Arc::new(ComponentOutbound::new(
                        id.clone(),
                        c.allowed_outbound_hosts.clone(),
                    )),
                    key_value_stores: Arc::new(c.key_value_stores.iter().cloned().collect()),
                    sqlite_databases: Arc::new(c.sqlite_databases.iter().cloned().collect()),
                    environment,
                    stdout: Arc::new(ComponentLog::new(
                        id,
                        Console::Stdout,
                        log_dir,
                        &opts.follow,
                    )?),
                    stderr: Arc::new(ComponentLog::new(
                        id,
                        Console::Stderr,
                        log_dir,
                        &opts.follow,
                    )?),
                }),
            );
        }
        // Spin chains to what its HTTP trigger routes to (private routes
        // included): a component no HTTP trigger runs is not a target.
        let chain_targets = manifest
            .manifest
            .http_triggers()
            .into_iter()
            .map(|t| t.component)
            .collect();
        crate::engine::start_epoch_ticker(&engine);
        Ok(Arc::new(Self {
            engine,
            components,
            chain_targets,
            variables: opts.variables,
            stores: opts.stores,
            databases: opts.databases,
            upstream: opts.upstream,
            limits: opts.limits,
            telemetry: opts.telemetry,
            name: manifest.manifest.application.name.clone(),
        }))
    }

    /// A fresh store for `component`, and the receiver of a trap the
    /// outbound hook may raise ([`GuestTrap`]).
    pub(crate) fn new_store(
        self: &Arc<Self>,
        component: &Arc<ComponentRuntime>,
        depth: u32,
        span: &Trace,
        deadline: Option<Instant>,
    ) -> (Store<HostState>, tokio::sync::oneshot::Receiver<String>) {
        let app_log = self
            .telemetry
            .as_ref()
            .filter(|t| t.wants_app_logs())
            .map(|t| AppLog::new(t.clone(), &component.id, span.clone()));
        let wasi = WasiCtxBuilder::new()
            .envs(&component.environment)
            .stdout(InstanceOutput::new(
                component.stdout.clone(),
                app_log.clone(),
            ))
            .stderr(InstanceOutput::new(component.stderr.clone(), app_log))
            .spin_sockets(SocketPolicy::new(self.clone(), component.outbound.clone()))
            .build();
        let (trap, trapped) = GuestTrap::new();
        let mut key_value =
            KeyValueCtx::new(self.stores.clone(), component.key_value_stores.clone());
        key_value.trace = span.clone();
        let mut variables = VariablesCtx::new(component.id.clone(), self.variables.clone());
        variables.trace = span.clone();
        let permit = crate::permit::Permit::new(self.clone(), component.outbound.clone());
        let mut sqlite = crate::sqlite::SqliteCtx::new(
            self.databases.clone(),
            component.sqlite_databases.clone(),
        );
        sqlite.trace = span.clone();
        let mut redis = crate::outbound_redis::RedisCtx::new(permit.clone());
        redis.trace = span.clone();
        let mut mqtt = crate::mqtt::MqttCtx::new(permit);
        mqtt.trace = span.clone();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                app: self.clone(),
                component: component.outbound.clone(),
                depth,
                trap,
                trace: span.clone(),
            },
            key_value,
            variables,
            sqlite,
            redis,
            mqtt,
            limits: InstanceLimits::new(
                // Spin's `StoreLimitsAsync`: a memory cap only if one is
                // set, no table or instance count of its own (the pool's
                // per-component limits apply, as on Spin).
                match self.limits.max_instance_memory {
                    Some(bytes) => StoreLimitsBuilder::new().memory_size(bytes).build(),
                    None => StoreLimitsBuilder::new().build(),
                },
            ),
            usage: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        if let Some(telemetry) = self.telemetry.as_ref().filter(|t| t.metrics().is_some()) {
            // Spin's per-instance metrics, recorded when the store is
            // dropped; the call hook times guest code.
            store.data_mut().usage = Some(Usage::new(telemetry.clone(), component.id.clone()));
            store.call_hook(|mut cx, hook| {
                if let Some(usage) = cx.data_mut().usage.as_mut() {
                    usage.hook(hook);
                }
                Ok(())
            });
        }
        // A guest gets the CPU back every tick (so a busy loop cannot starve
        // other requests on this thread) until its deadline, if any, then traps.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                Err(wasmtime::Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        (store, trapped)
    }

    /// Runs one request through a fresh instance of `component`.
    ///
    /// The guest runs in its own task: it may keep streaming the body after
    /// it has sent the response head. A trap before the head is sent gives a
    /// 500, a guest past its deadline a 504; either way only this request
    /// fails.
    pub async fn handle<B>(
        self: &Arc<Self>,
        component: &Arc<ComponentRuntime>,
        request: http::Request<B>,
        depth: u32,
        trace: &Trace,
    ) -> Result<http::Response<WasiBody>, GuestFailure>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        if let Some(metrics) = self.telemetry.as_ref().and_then(|t| t.metrics()) {
            metrics.request(&self.name, &component.id);
        }
        // Spin's `execute_wasm_component <id>` span: open until the
        // response head is out (or the request fails).
        // It ends when the instance does (its store holds it), as Spin's
        // ends with the guest's task: after the server span if the guest
        // streams its body.
        let span = spans::component(trace, &component.id);
        // The executor's module is the `target` of Spin's error event.
        let (result, executor) = match &component.handler {
            Handler::Wasi0_2(pre) => (
                self.run(component, pre, request, depth, &span).await,
                "spin_trigger_http::wasi",
            ),
            Handler::Wasi0_3(handler) => {
                let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
                let instances = Arc::new(ComponentInstances {
                    app: self.clone(),
                    component: component.clone(),
                });
                (
                    handler.handle(instances, request, depth, &span).await,
                    "spin_trigger_http::wasip3",
                )
            }
        };
        if let Err(failure) = &result {
            spans::component_failed(&span, executor, &failure.to_string());
        }
        result
    }

    async fn run<B>(
        self: &Arc<Self>,
        component: &Arc<ComponentRuntime>,
        pre: &ProxyPre<HostState>,
        request: http::Request<B>,
        depth: u32,
        span: &Trace,
    ) -> Result<http::Response<WasiBody>, GuestFailure>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        // The runner's own deadline, or one picked from Spin's
        // `--request-timeout` (which Spin applies to WASI 0.3 only).
        let timeout = self.limits.request_timeout.or_else(|| {
            let picked = self.limits.reuse.request_timeout?.pick()?;
            Some(picked.max(Duration::from_secs(1)))
        });
        let deadline = timeout.map(|t| Instant::now() + t);
        let (mut store, trapped) = self.new_store(component, depth, span, deadline);
        let (tx, rx) = tokio::sync::oneshot::channel();
        // `Scheme::Http` whatever the listener's, as Spin's `wasi.rs`
        // passes it: over HTTPS too, a WASI 0.2 guest's
        // `incoming-request.scheme` is http (its `spin-full-url` says https).
        let setup = (|| {
            let req = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, request)
                .anyhow()?;
            let out = store.data_mut().http().new_response_outparam(tx).anyhow()?;
            anyhow::Ok((req, out))
        })();
        let (req, out) = setup.map_err(|e| GuestFailure::Host(format!("{e:#}")))?;
        let pre = pre.clone();
        let id = component.id.clone();
        let instantiated = store.data().usage.is_some();
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            if instantiated {
                let grown = store.data().limits.memory_consumed();
                if let Some(usage) = store.data_mut().usage.as_mut() {
                    usage.memory_on_init = grown;
                }
            }
            let call = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out);
            // A trap the outbound hook raises ends the guest where it waits,
            // as the trap Spin's host raises in it would.
            let result = tokio::select! {
                result = call => result,
                Ok(why) = trapped => Err(wasmtime::Error::msg(why)),
            };
            // The answer is out: let its caller send it before this task
            // tears the instance down (on a worker's single thread, the
            // caller runs only once this task yields or ends).
            tokio::task::yield_now().await;
            drop(store);
            result
        });
        let answer = match timeout {
            Some(timeout) => tokio::time::timeout(timeout, rx).await,
            None => Ok(rx.await),
        };
        match answer {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(code))) => Err(GuestFailure::Guest(format!(
                "component `{id}` answered with an error: {code:?}"
            ))),
            Ok(Err(_)) => {
                // The guest returned (or trapped) without setting a response.
                match task.await {
                    Ok(Ok(())) => Err(GuestFailure::Guest(format!(
                        "component `{id}` returned without sending a response"
                    ))),
                    Ok(Err(e)) if is_interrupt(&e) => Err(GuestFailure::Timeout),
                    Ok(Err(e)) => Err(GuestFailure::Trap(format!(
                        "component `{id}` trapped: {e:?}"
                    ))),
                    Err(e) => Err(GuestFailure::Host(format!(
                        "component `{id}` task failed: {e}"
                    ))),
                }
            }
            Err(_) => {
                task.abort();
                Err(GuestFailure::Timeout)
            }
        }
    }

    /// A chained call (`http://<id>.spin.internal/...`): the same path as a
    /// public request, into the target; failures become the response the
    /// caller sees, as an HTTP answer from the target would.
    async fn handle_chained(
        self: &Arc<Self>,
        target: &str,
        request: http::Request<WasiBody>,
        depth: u32,
        trace: Trace,
    ) -> http::Response<WasiBody> {
        let Some(component) = self.components.get(target).cloned() else {
            return empty_response(http::StatusCode::INTERNAL_SERVER_ERROR);
        };
        let request = match crate::routing::chained_request(request, target) {
            Ok(request) => request,
            Err(e) => {
                eprintln!("error: [{target}] chained request: {e}");
                return empty_response(http::StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        match self.handle(&component, request, depth, &trace).await {
            Ok(response) => response,
            Err(failure) => {
                // Spin's error event lands on the caller's client span.
                trace.fail(|| failure.to_string());
                failure.into_response()
            }
        }
    }
}

impl OutboundApp for App {
    fn resolve_template(&self, entry: &str) -> Result<String, String> {
        self.variables
            .resolve_template(entry)
            .map_err(|e| e.to_string())
    }

    fn component_ids(&self) -> Vec<&str> {
        self.components.keys().map(String::as_str).collect()
    }

    fn is_chain_target(&self, id: &str) -> bool {
        self.chain_targets.contains(id)
    }

    fn chain(
        self: Arc<Self>,
        target: String,
        request: http::Request<WasiBody>,
        depth: u32,
        trace: Trace,
    ) -> ChainFuture {
        Box::pin(async move { self.handle_chained(&target, request, depth, trace).await })
    }

    fn upstream(&self) -> &dyn Upstream {
        &*self.upstream
    }
}

/// The stores a WASI 0.3 component's workers start their instances in.
struct ComponentInstances {
    app: Arc<App>,
    component: Arc<ComponentRuntime>,
}

impl crate::p3::Instances for ComponentInstances {
    fn component_id(&self) -> &str {
        &self.component.id
    }

    fn new_store(&self) -> (Store<HostState>, tokio::sync::oneshot::Receiver<String>) {
        self.app.new_store(&self.component, 0, &Trace::off(), None)
    }
}

/// The executor a component needs, by its exports, as Spin's
/// `HandlerType::from_instance_pre`: exactly one HTTP handler.
fn handler_for(
    id: &str,
    pre: wasmtime::component::InstancePre<HostState>,
    reuse: ReuseConfig,
) -> anyhow::Result<Handler> {
    let mut candidates = Vec::new();
    if let Ok(p2) = ProxyPre::new(pre.clone()) {
        candidates.push(Handler::Wasi0_2(p2));
    }
    if let Ok(p3) = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre) {
        candidates.push(Handler::Wasi0_3(P3Handler::new(p3, reuse)));
    }
    match candidates.len() {
        0 => anyhow::bail!(
            "component `{id}` exports neither `wasi:http/incoming-handler@0.2.*` nor \
             `wasi:http/handler@0.3.0`: is it an HTTP component?"
        ),
        1 => Ok(candidates.pop().unwrap()),
        _ => anyhow::bail!(
            "component `{id}` exports multiple different handlers but it's expected to export only one"
        ),
    }
}

fn is_interrupt(e: &wasmtime::Error) -> bool {
    matches!(
        e.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    )
}

/// Collects a body into bytes (for tests and small internal answers).
pub async fn collect_body(body: WasiBody) -> anyhow::Result<Bytes> {
    Ok(body
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .to_bytes())
}
