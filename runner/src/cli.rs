//! The command line, shaped like Spin's: `up` and `build`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::app::{App, Limits, LoadOptions};
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
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub from: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Runtime configuration (key-value stores), Spin's format.
    #[arg(long = "runtime-config-file")]
    pub runtime_config_file: Option<PathBuf>,
    /// State directory (key-value SQLite file, logs); default `.spin` next
    /// to the manifest.
    #[arg(long = "state-dir")]
    pub state_dir: Option<PathBuf>,
    /// Run the components' build commands first (like `spin up --build`).
    #[arg(long)]
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
    // The load step (Spin's loader checks, then what edge-runner does not
    // implement) before building; the sources are checked once built.
    let manifest = LoadedManifest::load(&args.from)?;
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
    if let Some(dir) = &log_dir {
        // Spin's `StdioLoggingExecutorHooks::configure_app`.
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create log dir \"{}\"", dir.display()))?;
        if args.truncate_logs {
            crate::logs::truncate_log_files(dir);
        }
        eprintln!("Logging component stdio to \"{}/\"", dir.display());
    }
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(crate::engine::default_cache_dir);
    let app = App::load(
        &manifest,
        LoadOptions {
            cache_dir,
            log_dir: log_dir.clone(),
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

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
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
    println!("Serving http://{addr}");
    println!("Available Routes:");
    let describe = |id: &str| {
        manifest
            .manifest
            .component
            .get(id)
            .and_then(|c| c.description.clone())
    };
    for line in router.available_routes(&format!("http://{addr}"), describe) {
        println!("{line}");
    }
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
    let served = server.serve(listener, shutdown_signal()).await;
    if let Some(telemetry) = telemetry {
        // What is still batched goes out (bounded: a dead collector does
        // not hold the exit up for long).
        let _ =
            tokio::task::spawn_blocking(move || telemetry.shutdown(Duration::from_secs(3))).await;
    }
    served
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
