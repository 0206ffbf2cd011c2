//! The command line, shaped like Spin's: `up` and `build`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::app::{App, Limits, LoadOptions};
use crate::logs::FollowComponents;
use crate::manifest::LoadedManifest;
use crate::reuse::{self, Range, ReuseConfig};
use crate::server::{Server, ServerLimits};

/// A Spin-compatible runner: serves a spin.toml HTTP application on wasmtime.
#[derive(Debug, Parser)]
#[command(name = "edge-runner", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of `up`'s flags does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Start the application (like `spin up`).
    Up(UpArgs),
    /// Build the components (like `spin build`).
    Build(BuildArgs),
}

/// `edge-runner up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The application manifest, or a directory holding spin.toml.
    #[arg(
        short = 'f',
        long = "from",
        value_name = "APPLICATION",
        default_value = "spin.toml",
        conflicts_with_all = ["APP_MANIFEST_FILE", "REGISTRY_REFERENCE"]
    )]
    pub from: PathBuf,
    /// Spin's `--from-file` (alias `--file`): as `--from`, a manifest file or
    /// a directory holding spin.toml.
    #[arg(
        id = "APP_MANIFEST_FILE",
        long = "from-file",
        alias = "file",
        hide = true,
        conflicts_with = "REGISTRY_REFERENCE"
    )]
    pub from_file: Option<PathBuf>,
    /// Spin's `--from-registry`: refused (edge-runner runs local apps only).
    #[arg(id = "REGISTRY_REFERENCE", long = "from-registry", hide = true)]
    pub from_registry: Option<String>,
    /// The address to listen on: an IP and port, or a name and port
    /// (`localhost:3000`, resolved preferring 127.0.0.1, as Spin).
    #[arg(
        long,
        value_name = "ADDRESS",
        env = "SPIN_HTTP_LISTEN_ADDR",
        default_value = "127.0.0.1:3000",
        value_parser = parse_listen_addr
    )]
    pub listen: SocketAddr,
    /// Spin's `--find-free-port`: if the port is taken, try the next ones
    /// (up to 10).
    #[arg(long = "find-free-port")]
    pub find_free_port: bool,
    /// Spin's `--format`: how the startup route listing is printed.
    #[arg(value_enum, long = "format", default_value_t = OutputFormat::Plain)]
    pub format: OutputFormat,
    /// Spin's `--tls-cert`: serve HTTPS with this PEM certificate (chain);
    /// plain HTTP when not set.
    #[arg(long = "tls-cert", env = "SPIN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Spin's `--tls-key`: the certificate's private key, PEM (PKCS#8).
    #[arg(long = "tls-key", env = "SPIN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Runtime configuration (key-value stores), Spin's format.
    #[arg(long = "runtime-config-file", env = "RUNTIME_CONFIG_FILE")]
    pub runtime_config_file: Option<PathBuf>,
    /// Spin's `-c/--component-id`: run only these components (and their
    /// triggers); repeatable. Default: all.
    #[arg(short = 'c', long = "component-id")]
    pub components: Vec<String>,
    /// Spin's `--follow`: print only these components' output on the
    /// console (the log files get everyone's); repeatable.
    #[arg(id = "FOLLOW_ID", long = "follow")]
    pub follow: Vec<String>,
    /// Spin's `-q/--quiet`: no component output on the console (it still
    /// goes to the log files).
    #[arg(
        short = 'q',
        long = "quiet",
        aliases = ["sh", "shush"],
        conflicts_with = "FOLLOW_ID"
    )]
    pub quiet: bool,
    /// Spin's `--disable-pooling`: allocate instances on demand instead of
    /// from wasmtime's pooling allocator.
    #[arg(long = "disable-pooling")]
    pub disable_pooling: bool,
    /// Spin's `--disable-cache`: do not read or write the compiled-component
    /// cache (`--cache-dir`).
    #[arg(
        long = "disable-cache",
        env = "DISABLE_WASMTIME_CACHE",
        conflicts_with = "WASMTIME_CACHE_FILE"
    )]
    pub disable_cache: bool,
    /// Spin's `--cache`: refused (no wasmtime cache configuration file;
    /// the compile cache is `--cache-dir`).
    #[arg(
        id = "WASMTIME_CACHE_FILE",
        long = "cache",
        env = "WASMTIME_CACHE_FILE"
    )]
    pub cache: Option<PathBuf>,
    /// Spin's `--debug-info`: refused.
    #[arg(long = "debug-info")]
    pub debug_info: bool,
    /// Spin's `--profile`: refused (edge-runner's manifest loader has no
    /// build profiles).
    #[arg(long)]
    pub profile: Option<String>,
    /// Spin's `-k/--insecure` (registry certificates): edge-runner loads
    /// local apps only, for which Spin ignores it too.
    #[arg(short = 'k', long = "insecure")]
    pub insecure: bool,
    /// Spin's `--temp`: refused.
    #[arg(long = "temp", alias = "tmp")]
    pub temp: Option<PathBuf>,
    /// Spin's `--direct-mounts`: accepted; edge-runner refuses `files`
    /// mounts, so no app it serves has any to mount.
    #[arg(long = "direct-mounts")]
    pub direct_mounts: bool,
    /// Spin's `--allow-transient-write`: accepted; edge-runner refuses
    /// `files` mounts, so there is nothing to make writable.
    #[arg(long = "allow-transient-write")]
    pub allow_transient_write: bool,
    /// Spin's `--experimental-wasi-otel`: refused.
    #[arg(long = "experimental-wasi-otel")]
    pub experimental_wasi_otel: bool,
    /// Spin's `--experimental-wasm-feature` (Spin's canary builds): refused.
    #[arg(long = "experimental-wasm-feature", value_enum)]
    pub experimental_wasm_feature: Vec<ExperimentalWasmFeature>,
    /// State directory (key-value SQLite file, logs); default `.spin` next
    /// to the manifest.
    #[arg(long = "state-dir")]
    pub state_dir: Option<PathBuf>,
    /// Run the components' build commands first (like `spin up --build`;
    /// also `SPIN_ALWAYS_BUILD`).
    #[arg(long, env = "SPIN_ALWAYS_BUILD")]
    pub build: bool,
    /// WASI environment variable for every component, `KEY=VALUE`.
    #[arg(short = 'e', long = "env", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,
    /// Application variable: `KEY=VALUE`, `KEY=@file`, or `@file.json`/`@file.toml` (as Spin 3's `--variable`).
    #[arg(long = "variable")]
    pub variables: Vec<crate::variables::VariableFlag>,
    /// Compiled-component cache (default: $EDGE_RUNNER_CACHE_DIR or ~/.cache/edge-runner).
    #[arg(long = "cache-dir")]
    pub cache_dir: Option<PathBuf>,
    /// Spin's `--request-timeout`: a request's time budget, in whole seconds
    /// (`N` or `Ns`), or a range `A..B` picked per instance. A WASI 0.3
    /// request past it gets Spin's empty 500 and its instance ends; on WASI
    /// 0.2, which Spin 4 gives no deadline, the runner answers an empty 504
    /// (at least 1 s). None by default, as on Spin.
    #[arg(long = "request-timeout", value_parser = crate::reuse::parse_duration_range)]
    pub request_timeout: Option<Range<Duration>>,
    /// Spin's `--max-instance-reuse-count`: requests one WASI 0.3 instance
    /// serves (a value or a range picked per instance; default 128). A WASI
    /// 0.2 instance always serves one.
    #[arg(long, value_parser = crate::reuse::parse_usize_range)]
    pub max_instance_reuse_count: Option<Range<usize>>,
    /// Spin's `--max-instance-concurrent-reuse-count`: requests one WASI 0.3
    /// instance serves at once (a value or a range; default 16).
    #[arg(long, value_parser = crate::reuse::parse_usize_range)]
    pub max_instance_concurrent_reuse_count: Option<Range<usize>>,
    /// Spin's `--idle-instance-timeout`: how long an idle WASI 0.3 instance
    /// waits for its next request (whole seconds or a range; default 1s).
    #[arg(long, default_value = "1s", value_parser = crate::reuse::parse_duration_range)]
    pub idle_instance_timeout: Range<Duration>,
    /// Spin's `--http1-max-buf-size`: the HTTP/1 read buffer in bytes, which
    /// bounds a request head (default: hyper's, about 408 KiB, as Spin).
    #[arg(long = "http1-max-buf-size", env = "SPIN_HTTP1_MAX_BUF_SIZE")]
    pub http1_max_buf_size: Option<usize>,
    /// Spin's `-L/--log-dir`: where component stdout/stderr files go (`""`:
    /// none); default the runtime config's `log_dir`, else `<state dir>/logs`.
    #[arg(short = 'L', long = "log-dir", env = "SPIN_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    /// Spin's `--truncate-logs`: empty the component log files before starting.
    #[arg(long = "truncate-logs")]
    pub truncate_logs: bool,
    /// Spin's `--key-value`: sets `key=value` in the default key-value store
    /// before serving (an existing value is overwritten); repeatable.
    #[arg(long = "key-value", value_parser = parse_kv)]
    pub key_values: Vec<(String, String)>,
    /// Spin's `--sqlite`: a statement (such as a migration) run against the
    /// default database before serving, or `@file` / `@file:label` to run
    /// a file's statements against `default` / `label`; repeatable.
    #[arg(long = "sqlite")]
    pub sqlite_statements: Vec<String>,
    /// Spin's `--max-instance-memory`: the most linear memory one instance
    /// may allocate, in bytes (else the runtime config's
    /// `max_instance_memory`; no limit by default, as on Spin).
    #[arg(long = "max-instance-memory", env = "SPIN_MAX_INSTANCE_MEMORY")]
    pub max_instance_memory: Option<usize>,
}

/// `edge-runner build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The application manifest, or a directory holding spin.toml.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub from: PathBuf,
    /// Build only these components.
    #[arg(short = 'c', long = "component-id")]
    pub components: Vec<String>,
}

/// Spin's `--format` (crates/trigger-http/src/lib.rs `OutputFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable plain text output (the default).
    Plain,
    /// Machine-readable JSON output.
    Json,
}

/// Spin's `--experimental-wasm-feature` values (crates/trigger/src/cli.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExperimentalWasmFeature {
    /// Wasm GC.
    Gc,
    /// Reference types.
    ReferenceTypes,
    /// Exception handling.
    Exceptions,
    /// Typed function references.
    FunctionReferences,
}

/// Spin's `parse_listen_addr` (crates/trigger-http/src/lib.rs): the address
/// resolved as the OS resolves `host:port`; 127.0.0.1 is preferred when it
/// is among the results (so `localhost:3000` is IPv4), else the first.
pub fn parse_listen_addr(addr: &str) -> anyhow::Result<SocketAddr> {
    use std::net::{Ipv4Addr, ToSocketAddrs};
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if let Some(found) = addrs
        .iter()
        .find(|a| a.is_ipv4() && a.ip() == Ipv4Addr::LOCALHOST)
    {
        return Ok(*found);
    }
    addrs.into_iter().next().context("couldn't resolve address")
}

/// The `spin up` flags edge-runner accepts but cannot honour: each is
/// refused at startup, by name, before anything is loaded.
fn refuse_unimplemented(args: &UpArgs) -> anyhow::Result<()> {
    let refused = [
        (
            args.from_registry.is_some(),
            "--from-registry",
            "it runs local applications only; give a spin.toml with --from",
        ),
        (
            args.profile.is_some(),
            "--profile",
            "its manifest loader has no build profiles",
        ),
        (
            args.temp.is_some(),
            "--temp",
            "it writes no lock file or asset copies to a working directory",
        ),
        (
            args.cache.is_some(),
            "--cache",
            "it reads no wasmtime cache configuration file; its compile cache is --cache-dir (off with --disable-cache)",
        ),
        (
            args.debug_info,
            "--debug-info",
            "it compiles guests without DWARF debug info",
        ),
        (
            args.experimental_wasi_otel,
            "--experimental-wasi-otel",
            "it has no wasi:otel host interface",
        ),
        (
            !args.experimental_wasm_feature.is_empty(),
            "--experimental-wasm-feature",
            "it enables no experimental Wasm features",
        ),
    ];
    for (given, flag, why) in refused {
        if given {
            bail!("{flag}: edge-runner does not implement this `spin up` option: {why}");
        }
    }
    Ok(())
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Spin's `parse_kv` (crates/common/src/arg_parser.rs): split at the first
/// `=`, an empty key allowed.
fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| "Key/Values must be of the form `key=value`".to_string())
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(args) => {
            let manifest = LoadedManifest::load(&args.from)?;
            crate::loader::check(&manifest)?;
            let only = (!args.components.is_empty()).then_some(args.components.as_slice());
            crate::builder::build(&manifest, only)
        }
        Command::Up(args) => up(args).await,
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    refuse_unimplemented(&args)?;
    // The load step (Spin's loader checks, then what edge-runner does not
    // implement) before building; the sources are checked once built.
    let from = args.from_file.as_ref().unwrap_or(&args.from);
    let mut manifest = LoadedManifest::load(from)?;
    crate::loader::check(&manifest)?;
    crate::loader::check_supported(&manifest.manifest)?;
    if args.build {
        crate::builder::build(&manifest, None)?;
    } else {
        let stale = crate::builder::stale_components(&manifest);
        if !stale.is_empty() {
            eprintln!(
                "Components missing or out of date: {}; building them first (the first build compiles dependencies and takes a few minutes)...",
                stale.join(", ")
            );
            crate::builder::build(&manifest, Some(&stale))?;
        }
    }

    crate::loader::check_sources(&manifest)?;
    // Spin's selective deployment: after the whole app is built and loaded.
    if !args.components.is_empty() {
        manifest.manifest =
            crate::selective::retain_components(manifest.manifest, &args.components)?;
    }
    if manifest.manifest.trigger.values().all(Vec::is_empty) {
        bail!("No triggers in app");
    }
    let follow = FollowComponents::from_flags(args.quiet, &args.follow);

    let runtime_config = match &args.runtime_config_file {
        Some(path) => crate::runtime_config::load(path)?,
        None => Default::default(),
    };
    let state_dir = runtime_config
        .resolve_state_dir(args.state_dir.as_deref(), &manifest.dir)
        .context("cannot resolve the state directory")?;
    if let Some(dir) = &state_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create state dir {}", dir.display()))?;
    }
    let stores = Arc::new(crate::key_value::Stores::from_config(
        &runtime_config,
        state_dir.as_deref(),
    )?);
    for (id, component) in &manifest.manifest.component {
        stores.check_component(id, component.key_value_stores.iter().map(String::as_str))?;
    }
    let databases = Arc::new(crate::sqlite::Databases::from_config(
        &runtime_config,
        state_dir.as_deref(),
    )?);
    databases.check_components(crate::sqlite::components_of(&manifest.manifest))?;
    // Spin's app hooks, in Spin's order: `--sqlite` statements, then the
    // `--key-value` pairs.
    crate::sqlite::statements::run(&databases, &args.sqlite_statements).await?;
    if !args.key_values.is_empty() {
        let store = stores
            .get(crate::key_value::DEFAULT_LABEL)
            .context("the default key-value store is always defined")?;
        for (key, value) in &args.key_values {
            store
                .set(key, value.as_bytes())
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))
                .context("failed to set key-value pair")?;
        }
    }

    let variables = resolver_for(&manifest.manifest, &args.variables)?;
    // OpenTelemetry as Spin reads it from the environment; nothing is
    // built (and requests pay nothing) when no endpoint is set.
    let telemetry = crate::telemetry::Telemetry::from_env(env!("CARGO_PKG_VERSION"))
        .context("cannot set up OpenTelemetry from the OTEL_* environment variables")?;
    if let Some(telemetry) = &telemetry {
        eprintln!("{}", telemetry.describe());
    }

    let log_dir = runtime_config
        .resolve_log_dir(args.log_dir.as_deref(), state_dir.as_deref())
        .context("cannot resolve the log directory")?;
    // Spin's `StdioLoggingExecutorHooks::configure_app`.
    follow.validate(manifest.manifest.component.keys().map(String::as_str))?;
    if let Some(dir) = &log_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create log dir \"{}\"", dir.display()))?;
        if args.truncate_logs {
            crate::logs::truncate_log_files(dir);
        }
        eprintln!("Logging component stdio to \"{}/\"", dir.display());
    }
    let cache_dir = (!args.disable_cache).then(|| {
        args.cache_dir
            .clone()
            .unwrap_or_else(crate::engine::default_cache_dir)
    });
    let app = App::load(
        &manifest,
        LoadOptions {
            cache_dir,
            pooling: !args.disable_pooling,
            log_dir: log_dir.clone(),
            follow,
            env: args.env.clone(),
            variables: Arc::new(variables),
            stores: stores.clone(),
            databases: databases.clone(),
            upstream: Arc::new(crate::outbound::Network),
            limits: Limits {
                request_timeout: None,
                reuse: ReuseConfig {
                    max_instance_reuse_count: args
                        .max_instance_reuse_count
                        .unwrap_or(Range::Value(reuse::DEFAULT_MAX_INSTANCE_REUSE_COUNT)),
                    max_instance_concurrent_reuse_count: args
                        .max_instance_concurrent_reuse_count
                        .unwrap_or(Range::Value(
                            reuse::DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT,
                        )),
                    request_timeout: args.request_timeout,
                    idle_instance_timeout: args.idle_instance_timeout,
                },
                max_instance_memory: args
                    .max_instance_memory
                    .or(runtime_config.max_instance_memory),
            },
            telemetry: telemetry.clone(),
        },
    )?;
    let router = build_router(&manifest.manifest)?;
    if router.routes().next().is_none() {
        bail!("no public HTTP routes: add a [[trigger.http]] with a route such as \"/...\"");
    }

    let listener = bind(args.listen, args.find_free_port).await?;
    let addr = listener.local_addr()?;
    for (label, summary) in stores.summaries() {
        if label == "default" {
            // Spin's line (`crates/trigger/src/cli/summary.rs`).
            eprintln!("Storing default key-value data to {summary}.");
        } else {
            eprintln!("Key-value store {label:?}: {summary}");
        }
    }
    if let Some(banner) = databases.default_banner(
        manifest
            .manifest
            .component
            .values()
            .map(|c| c.sqlite_databases.as_slice()),
    ) {
        eprintln!("{banner}");
    }
    let describe = |id: &str| {
        manifest
            .manifest
            .component
            .get(id)
            .and_then(|c| c.description.clone())
    };
    // Spin's `into_tls_config`: clap makes each flag require the other.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert_path), Some(key_path)) => Some(crate::tls::TlsConfig {
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
        }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base_url = format!("{scheme}://{addr}");
    match args.format {
        OutputFormat::Plain => {
            println!("Serving {base_url}");
            println!("Available Routes:");
            for line in router.available_routes(&base_url, describe) {
                println!("{line}");
            }
        }
        OutputFormat::Json => println!("{}", routes_json(&router, &base_url, describe)),
    }
    // As Spin's `serve_https`: the files are read once the routes are
    // printed, and a fault in them ends `up` there.
    let acceptor = tls
        .as_ref()
        .map(crate::tls::TlsConfig::acceptor)
        .transpose()?;
    eprintln!("Ready in {} ms", started.elapsed().as_millis());

    let info = crate::server::AppInfo {
        name: manifest.manifest.application.name.clone(),
        version: manifest.manifest.application.version.clone(),
    };
    let limits = ServerLimits {
        http1_max_buf_size: args.http1_max_buf_size,
        ..ServerLimits::default()
    };
    let server = Server::new(app, router, limits, info);
    let served = server.serve(listener, acceptor, shutdown_signal()).await;
    if let Some(telemetry) = telemetry {
        // What is still batched goes out (bounded: a dead collector does
        // not hold the exit up for long).
        let _ =
            tokio::task::spawn_blocking(move || telemetry.shutdown(Duration::from_secs(3))).await;
    }
    served
}

/// Spin's `MAX_RETRIES` for `--find-free-port` (crates/trigger-http/src/server.rs).
const FIND_FREE_PORT_RETRIES: u16 = 10;

/// Binds the listener as Spin's `HttpServer::serve`: the address as given,
/// or with `--find-free-port` the first free port of the ten from it.
async fn bind(addr: SocketAddr, find_free_port: bool) -> anyhow::Result<tokio::net::TcpListener> {
    use std::io::ErrorKind;
    if !find_free_port {
        return tokio::net::TcpListener::bind(addr).await.map_err(|err| {
            if err.kind() == ErrorKind::AddrInUse {
                anyhow::anyhow!(
                    "{addr} is already in use. To have Spin search for a free port, use the --find-free-port option."
                )
            } else {
                anyhow::anyhow!("Unable to listen on {addr}: {err:?}")
            }
        });
    }
    let mut candidate = addr;
    for _ in 1..=FIND_FREE_PORT_RETRIES {
        if candidate.port() == u16::MAX {
            bail!(
                "Couldn't find a free port as we've reached the maximum port number. Consider retrying with a lower base port."
            );
        }
        match tokio::net::TcpListener::bind(candidate).await {
            Ok(listener) => return Ok(listener),
            Err(err) if err.kind() == ErrorKind::AddrInUse => {
                candidate.set_port(candidate.port() + 1);
            }
            Err(err) => bail!("Unable to listen on {candidate}: {err:?}"),
        }
    }
    bail!(
        "Couldn't find a free port in the range {}-{}. Consider retrying with a different base port.",
        addr.port(),
        addr.port() + FIND_FREE_PORT_RETRIES
    )
}

/// Spin's `--format json` route listing (crates/trigger-http/src/server.rs
/// `print_startup_msgs`): the base URL and, per route, the component, the
/// route (`/` for the root), whether it is a wildcard, and the component's
/// description when it has one.
pub fn routes_json(
    router: &crate::routing::Router,
    base_url: &str,
    describe: impl Fn(&str) -> Option<String>,
) -> String {
    #[derive(serde::Serialize)]
    struct RoutesOutput<'a> {
        base_url: &'a str,
        routes: Vec<RouteEntry<'a>>,
    }
    #[derive(serde::Serialize)]
    struct RouteEntry<'a> {
        id: &'a str,
        route: &'a str,
        wildcard: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    }
    let routes = router
        .routes()
        .map(|r| RouteEntry {
            id: r.component_id,
            route: if r.path.is_empty() { "/" } else { r.path },
            wildcard: r.wildcard,
            description: describe(r.component_id),
        })
        .collect();
    serde_json::to_string_pretty(&RoutesOutput { base_url, routes })
        .expect("the route listing serializes")
}

/// The variable resolver for a manifest: its declarations, its components'
/// templates, and Spin's providers (`--variable` flags, then SPIN_VARIABLE_*).
pub fn resolver_for(
    manifest: &crate::manifest::Manifest,
    flags: &[crate::variables::VariableFlag],
) -> anyhow::Result<crate::variables::Resolver> {
    use crate::variables::{
        EnvProvider, Resolver, StaticProvider, VariableDecl, spin_up_providers,
    };
    let decls = manifest.variables.iter().map(|(name, v)| {
        (
            name.clone(),
            VariableDecl {
                default: v.default.clone(),
                required: v.required,
                secret: v.secret,
            },
        )
    });
    let components = manifest
        .component
        .iter()
        .map(|(id, c)| (id.clone(), c.variables.clone()));
    let providers = spin_up_providers(
        StaticProvider::from_flags(flags)?,
        EnvProvider::from_process_env(),
    );
    Ok(Resolver::new(decls, components, providers)?)
}

/// The HTTP router for the manifest's triggers; duplicate routes are
/// reported and the later one wins, as Spin does.
pub fn build_router(
    manifest: &crate::manifest::Manifest,
) -> anyhow::Result<crate::routing::Router> {
    use crate::routing::RouteConfig;
    let triggers = manifest.http_triggers();
    let configs: Vec<(String, RouteConfig)> = triggers
        .into_iter()
        .map(|t| {
            let config = match t.route {
                Some(route) => RouteConfig::Route(route),
                None => RouteConfig::Private { private: true },
            };
            (t.component, config)
        })
        .collect();
    let (router, duplicates) = crate::routing::Router::build(
        &manifest.base(),
        configs.iter().map(|(id, c)| (id.as_str(), c)),
    )?;
    if !duplicates.is_empty() {
        eprintln!("The following component routes are duplicates and will never be used:");
        for d in &duplicates {
            eprintln!("{d}");
        }
    }
    Ok(router)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(args: &[&str]) -> Result<UpArgs, clap::Error> {
        let argv = ["edge-runner", "up"].iter().chain(args).copied();
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Up(up) => up,
            Command::Build(_) => unreachable!("parsed `up`"),
        })
    }

    #[test]
    fn listen_names_resolve_preferring_ipv4_loopback_as_spin() {
        let addr = parse_listen_addr("localhost:12345").unwrap();
        assert_eq!(addr, "127.0.0.1:12345".parse().unwrap());
        assert_eq!(
            parse_listen_addr("0.0.0.0:80").unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("[::1]:3000").unwrap(),
            "[::1]:3000".parse().unwrap()
        );
        // No port, and a name that does not resolve: the resolver's errors.
        assert!(parse_listen_addr("localhost").is_err());
        assert!(parse_listen_addr("no-such-host.invalid:3000").is_err());
        let parsed = up(&["--listen", "localhost:4567"]).unwrap();
        assert_eq!(parsed.listen, "127.0.0.1:4567".parse().unwrap());
        let err = up(&["--listen", "localhost"]).unwrap_err().to_string();
        assert!(
            err.contains("invalid value 'localhost' for '--listen <ADDRESS>'"),
            "{err}"
        );
    }

    #[test]
    fn quiet_and_follow_are_spins_and_conflict_as_on_spin() {
        let parsed = up(&["--follow", "a", "--follow", "b"]).unwrap();
        assert_eq!(parsed.follow, ["a", "b"]);
        assert_eq!(
            FollowComponents::from_flags(parsed.quiet, &parsed.follow),
            FollowComponents::Named(["a".to_string(), "b".to_string()].into())
        );
        for quiet in ["-q", "--quiet", "--sh", "--shush"] {
            let parsed = up(&[quiet]).unwrap();
            assert_eq!(
                FollowComponents::from_flags(parsed.quiet, &parsed.follow),
                FollowComponents::None
            );
        }
        let parsed = up(&[]).unwrap();
        assert_eq!(
            FollowComponents::from_flags(parsed.quiet, &parsed.follow),
            FollowComponents::All
        );
        let err = up(&["-q", "--follow", "a"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn follow_ids_are_checked_against_the_app_in_spins_words() {
        let follow = FollowComponents::from_flags(false, &["probe".into(), "nope".into()]);
        let err = follow.validate(["probe", "inner"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "The following component(s) specified in --follow do not exist in the application:\n  - nope\nThe following components exist:\n  - inner\n  - probe"
        );
        assert!(follow.validate(["probe", "nope"]).is_ok());
        assert!(FollowComponents::All.validate(["x"]).is_ok());
    }

    #[test]
    fn from_file_is_from_forced_to_a_path_and_conflicts_with_from() {
        let parsed = up(&["--from-file", "app/spin.toml"]).unwrap();
        assert_eq!(parsed.from_file, Some(PathBuf::from("app/spin.toml")));
        let parsed = up(&["--file", "app"]).unwrap();
        assert_eq!(parsed.from_file, Some(PathBuf::from("app")));
        for args in [
            ["-f", "a", "--from-file", "b"],
            ["-f", "a", "--from-registry", "ghcr.io/x/y:1"],
            ["--from-file", "a", "--from-registry", "ghcr.io/x/y:1"],
        ] {
            let err = up(&args).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{args:?}"
            );
        }
    }

    #[test]
    fn format_takes_plain_or_json() {
        assert_eq!(up(&[]).unwrap().format, OutputFormat::Plain);
        assert_eq!(
            up(&["--format", "json"]).unwrap().format,
            OutputFormat::Json
        );
        let err = up(&["--format", "yaml"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn tls_cert_and_key_require_each_other_as_on_spin() {
        let err = up(&["--tls-cert", "c.pem"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let err = up(&["--tls-key", "k.pem"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn disable_cache_conflicts_with_cache_as_on_spin() {
        let err = up(&["--disable-cache", "--cache", "c.toml"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn every_unimplemented_spin_flag_is_refused_by_name() {
        let cases: &[(&[&str], &str)] = &[
            (&["--from-registry", "ghcr.io/x/y:1"], "--from-registry"),
            (&["--profile", "debug"], "--profile"),
            (&["--temp", "/tmp/x"], "--temp"),
            (&["--tmp", "/tmp/x"], "--temp"),
            (&["--cache", "cache.toml"], "--cache"),
            (&["--debug-info"], "--debug-info"),
            (&["--experimental-wasi-otel"], "--experimental-wasi-otel"),
            (
                &["--experimental-wasm-feature", "gc"],
                "--experimental-wasm-feature",
            ),
        ];
        for (args, flag) in cases {
            let parsed = up(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let err = refuse_unimplemented(&parsed).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!(
                    "{flag}: edge-runner does not implement this `spin up` option: "
                )),
                "{args:?}: {err}"
            );
        }
        // Accepted: implemented, or no-ops for every app edge-runner loads.
        for args in [
            &["-k"][..],
            &["--insecure"],
            &["--direct-mounts"],
            &["--allow-transient-write"],
            &["--tls-cert", "c.pem", "--tls-key", "k.pem"],
            &[
                "--disable-pooling",
                "--disable-cache",
                "-c",
                "a",
                "--find-free-port",
            ],
        ] {
            let parsed = up(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(refuse_unimplemented(&parsed).is_ok(), "{args:?}");
        }
    }

    #[test]
    fn the_json_route_listing_has_spins_fields() {
        let manifest = crate::manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "json"
[[trigger.http]]
route = "/..."
component = "root"
[[trigger.http]]
route = "/api/users/:id"
component = "users"
[[trigger.http]]
route = { private = true }
component = "hidden"
[component.root]
source = "root.wasm"
[component.users]
source = "users.wasm"
description = "The users"
[component.hidden]
source = "hidden.wasm"
"#,
        )
        .unwrap();
        let router = build_router(&manifest).unwrap();
        let describe = |id: &str| {
            manifest
                .component
                .get(id)
                .and_then(|c| c.description.clone())
        };
        let json: serde_json::Value =
            serde_json::from_str(&routes_json(&router, "http://127.0.0.1:3000", describe)).unwrap();
        let mut routes = json["routes"].as_array().unwrap().clone();
        routes.sort_by_key(|r| r["id"].as_str().unwrap().to_string());
        assert_eq!(json["base_url"], "http://127.0.0.1:3000");
        assert_eq!(
            serde_json::Value::Array(routes),
            serde_json::json!([
                { "id": "root", "route": "/", "wildcard": true },
                { "id": "users", "route": "/api/users/:id", "wildcard": false, "description": "The users" },
            ])
        );
    }
}
