//! The wasmtime engine: configuration, and components compiled once and
//! cached on disk.
//!
//! The pooling allocator is tuned as measured with `wasmtime serve` 48 on a
//! spin-sdk component (~7,000 rps with defaults, ~21,000 tuned): with the
//! defaults, resetting each instance's memory unmapped pages and the kernel's
//! TLB shootdowns dominated the profile; keeping a few MiB resident and
//! batching decommits removes that. One fresh instance per request is Spin's
//! isolation model and is kept; only the cost around it is cut.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// wasmtime 48 has an error type of its own; this turns it into anyhow's
/// so host code composes errors with `.context()` as usual.
pub trait WasmtimeResultExt<T> {
    /// The result with an [`anyhow::Error`].
    fn anyhow(self) -> anyhow::Result<T>;
}

impl<T> WasmtimeResultExt<T> for Result<T, wasmtime::Error> {
    fn anyhow(self) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::Error::from_boxed(e.into_boxed_dyn_error()))
    }
}

/// How often the epoch advances: the granularity of the per-request deadline
/// and of the yields that keep a busy guest from starving others.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Builds the engine: async support, epoch interruption, pooling allocator
/// (falling back to on-demand allocation when the pool cannot be reserved,
/// e.g. under a tight virtual-memory limit).
///
/// `concurrency` turns on the component model's async ABI and wasmtime's
/// concurrent execution, which WASI 0.3 components need (Spin 4 always has
/// them on). Only then: with it on, every store carries the concurrent
/// runtime's state and every call goes through it, measured at +30 % CPU per
/// request on the app's WASI 0.2 hit path (bench/README.md). So an app of
/// WASI 0.2 components gets an engine without it; see [`needs_concurrency`].
pub fn new_engine(concurrency: bool) -> anyhow::Result<Engine> {
    let mut config = base_config(concurrency);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config()));
    match Engine::new(&config) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            eprintln!(
                "warning: the pooling allocator is unavailable ({e:?}); using on-demand instance allocation"
            );
            Engine::new(&base_config(concurrency)).anyhow()
        }
    }
}

/// Spin's `--disable-pooling`: the same engine with on-demand instance
/// allocation (no pool reserved up front).
pub fn new_engine_on_demand(concurrency: bool) -> anyhow::Result<Engine> {
    Engine::new(&base_config(concurrency)).anyhow()
}

fn base_config(concurrency: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // WASI 0.3 components (spin-sdk 6 and 7), as Spin 4 enables.
    config.wasm_component_model_async(concurrency);
    config.concurrency_support(concurrency);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config
}

fn pooling_config() -> PoolingAllocationConfig {
    // Spin's pool (crates/core/src/lib.rs, `Config::default`): what one
    // instance and the whole runner may hold is Spin's, so a component Spin
    // instantiates (a composition of many modules, a memory of gigabytes)
    // instantiates here too. Spin's `SPIN_WASMTIME_*` variables are not read.
    const MB: usize = 1 << 20;
    let max_instances = 1_000;
    let mut pool = PoolingAllocationConfig::default();
    // Concurrency ceiling: each in-flight request (and each chained call)
    // holds one component instance.
    pool.total_component_instances(max_instances);
    pool.total_memories(max_instances);
    pool.total_tables(2 * max_instances);
    pool.total_stacks(max_instances);
    pool.total_core_instances(4 * max_instances);
    pool.table_elements(100_000);
    pool.max_component_instance_size(10 * MB);
    pool.max_core_instance_size(10 * MB);
    pool.max_core_instances_per_component(200);
    pool.max_tables_per_component(64);
    pool.max_memories_per_component(32);
    pool.max_tables_per_module(2);
    pool.max_memories_per_module(2);
    // The store's limiter applies `--max-instance-memory` when it is set.
    pool.max_memory_size(4 << 30);
    // The measured tuning: keep memory/table pages resident between
    // instances (reset in place, no unmapping, so no TLB shootdowns).
    pool.linear_memory_keep_resident(4 << 20);
    pool.table_keep_resident(64 << 10);
    // Only memory an instance grew past keep-resident is decommitted, and
    // only then does batching apply. A batch keeps that many grown memories
    // resident until it fills: with 64 (the `wasmtime serve` tuning), 10 MB
    // batch requests left ~22 MB each, 800+ MB in all. The app's instances
    // stay under 4 MiB, so decommitting at once costs the hot path nothing
    // and bounds memory after an unusually large request.
    pool.decommit_batch_size(1);
    // With keep-resident set, wasmtime memsets the low part of each used
    // memory on reuse, touched or not: measured here at 26 % of the
    // runner's CPU on the processor alone. Linux's PAGEMAP_SCAN (6.7+) lets
    // it reset only the pages the instance dirtied; `Auto` falls back to
    // memset on older kernels.
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

/// Where compiled components are cached: `$EDGE_RUNNER_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/edge-runner`, else `~/.cache/edge-runner`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDGE_RUNNER_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("edge-runner");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache/edge-runner"),
        None => std::env::temp_dir().join("edge-runner-cache"),
    }
}

/// Whether a component needs the engine's concurrency support: it uses the
/// component model's async features (a WASI 0.3 handler, an async import),
/// or imports or exports a WASI 0.3 or Spin 3.x interface (those are linked
/// only on such an engine). A core module never does: it becomes a WASI 0.2
/// component with the preview 1 adapter.
///
/// The first test validates the component with every feature but the async
/// ones, so a component that is invalid for another reason also says yes;
/// compiling it then reports what is wrong.
pub fn needs_concurrency(bytes: &[u8]) -> bool {
    use wasmparser::{Parser, Payload, Validator, WasmFeatures};
    if !Parser::is_component(bytes) {
        return false;
    }
    let async_features = WasmFeatures::CM_ASYNC
        | WasmFeatures::CM_ASYNC_STACKFUL
        | WasmFeatures::CM_MORE_ASYNC_BUILTINS
        | WasmFeatures::CM_THREADING
        | WasmFeatures::CM_ERROR_CONTEXT;
    if Validator::new_with_features(WasmFeatures::all() - async_features)
        .validate_all(bytes)
        .is_err()
    {
        return true;
    }
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::ModuleSection { .. } | Payload::ComponentSection { .. }) => depth += 1,
            Ok(Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(Payload::ComponentImportSection(imports)) if depth == 0 => {
                for import in imports.into_iter().flatten() {
                    if is_wasi_0_3_or_spin_3(import.name.name) {
                        return true;
                    }
                }
            }
            Ok(Payload::ComponentExportSection(exports)) if depth == 0 => {
                for export in exports.into_iter().flatten() {
                    if is_wasi_0_3_or_spin_3(export.name.name) {
                        return true;
                    }
                }
            }
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    false
}

/// `wasi:<pkg>/<iface>@0.3.*` or `spin:<pkg>/<iface>@3.*`.
fn is_wasi_0_3_or_spin_3(name: &str) -> bool {
    let Some((package, version)) = name.rsplit_once('@') else {
        return false;
    };
    (package.starts_with("wasi:") && version.starts_with("0.3."))
        || (package.starts_with("spin:") && version.starts_with("3."))
}

/// What the runner does to a source before compiling it (a module made a
/// component, the WASI 0.3 candidate's names made final), in the cache key:
/// change it whenever that changes, so no artifact of the old way is used.
const PREPARATION: &[u8] = b"componentize; p3 release candidate renamed (2)";

/// Loads a component, from the compile cache when this exact file was
/// compiled before by this wasmtime with this configuration.
///
/// The cache key hashes the Wasm bytes and the engine's compatibility hash
/// (wasmtime version, target, settings), so a stale artifact is never used.
/// Artifacts are written to a temporary file and renamed into place, so
/// concurrent runners never read half a file.
pub fn load_component(
    engine: &Engine,
    wasm_path: &Path,
    bytes: &[u8],
    cache_dir: Option<&Path>,
) -> anyhow::Result<Component> {
    let Some(cache_dir) = cache_dir else {
        return compile(engine, wasm_path, bytes);
    };
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    hasher.update(PREPARATION);
    std::hash::Hash::hash(
        &engine.precompile_compatibility_hash(),
        &mut HashWriter(&mut hasher),
    );
    let key = hex(&hasher.finalize());
    let cached = cache_dir.join(format!("{key}.cwasm"));
    if cached.exists() {
        // SAFETY: the file was produced by `Component::serialize` of an
        // engine with the same compatibility hash (it is in the file name),
        // and is only ever written whole (temp file + rename).
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(e) => eprintln!(
                "warning: ignoring unusable compiled cache {} ({e:?}); recompiling",
                cached.display()
            ),
        }
    }
    // The cache keeps the compiled result under the source's own hash.
    let component = compile(engine, wasm_path, bytes)?;
    if let Err(e) = store_artifact(&component, cache_dir, &cached) {
        eprintln!(
            "warning: cannot write compile cache {} ({e:#}); continuing without it",
            cached.display()
        );
    }
    Ok(component)
}

/// Compiles a source: a core module becomes a component first, as Spin's
/// loader does.
fn compile(engine: &Engine, wasm_path: &Path, bytes: &[u8]) -> anyhow::Result<Component> {
    let bytes = crate::componentize::componentize_if_necessary(bytes).with_context(|| {
        format!(
            "cannot turn the module {} into a component",
            wasm_path.display()
        )
    })?;
    // spin-sdk 6's WASI 0.3 release candidate, under its final names.
    let renamed = crate::p3_rc::rename_if_necessary(&bytes)
        .with_context(|| format!("component {}", wasm_path.display()))?;
    let bytes = renamed.as_deref().unwrap_or(&bytes);
    Component::new(engine, bytes)
        .anyhow()
        .with_context(|| format!("cannot compile component {}", wasm_path.display()))
}

fn store_artifact(component: &Component, dir: &Path, dest: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let artifact = component.serialize().anyhow()?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("component"),
        std::process::id()
    ));
    std::fs::write(&tmp, artifact)?;
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashWriter<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the thread that advances the engine's epoch every [`EPOCH_TICK`].
/// It holds only a weak handle, so it ends when the engine is dropped.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `component_importing`'s component with its one function made an
    /// `async func` (function type 0x43): the component model's async ABI.
    fn component_importing_an_async_func(name: &str) -> Vec<u8> {
        let mut bytes = edge_testkit::component_importing(name);
        let func_type = [0x01, 0x40, 0x00, 0x01, 0x00];
        let at = bytes
            .windows(func_type.len())
            .position(|w| w == func_type)
            .expect("the func type");
        bytes[at + 1] = 0x43;
        bytes
    }

    #[test]
    fn a_wasi_0_2_component_needs_no_concurrency_support() {
        for name in [
            "wasi:cli/environment@0.2.3",
            "wasi:http/types@0.2.0",
            "fermyon:spin/key-value@2.0.0",
            "fermyon:spin/sqlite@2.0.0",
        ] {
            assert!(
                !needs_concurrency(&edge_testkit::component_importing(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn a_core_module_needs_no_concurrency_support() {
        assert!(!needs_concurrency(b"\0asm\x01\0\0\0"));
    }

    #[test]
    fn wasi_0_3_and_spin_3_interfaces_need_concurrency_support() {
        for name in [
            "wasi:http/types@0.3.0",
            "wasi:http/handler@0.3.0-rc-2026-03-15",
            "wasi:clocks/monotonic-clock@0.3.0",
            "spin:key-value/key-value@3.0.0",
            "spin:variables/variables@3.0.0",
        ] {
            assert!(
                needs_concurrency(&edge_testkit::component_importing(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn a_component_using_the_async_abi_needs_concurrency_support_whatever_it_imports() {
        let bytes = component_importing_an_async_func("example:lib/work@1.0.0");
        assert!(needs_concurrency(&bytes));
        // And an engine with concurrency support compiles it, one without
        // does not: the test above is what decides which engine it gets.
        assert!(Component::new(&new_engine(true).unwrap(), &bytes).is_ok());
        assert!(Component::new(&new_engine(false).unwrap(), &bytes).is_err());
    }

    #[test]
    fn an_engine_without_concurrency_support_compiles_a_wasi_0_2_component() {
        let bytes = edge_testkit::component_importing("wasi:http/types@0.2.0");
        assert!(Component::new(&new_engine(false).unwrap(), &bytes).is_ok());
    }
}
