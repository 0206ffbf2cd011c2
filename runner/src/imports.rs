//! What a component imports against what the runner's linker provides: a
//! component that imports an interface the runner does not implement (Spin's
//! `fermyon:spin/postgres@2.0.0`, `spin:sqlite/sqlite@3.1.0`, `wasi:keyvalue`,
//! ...) is refused at load with the import and the component named, never
//! with wasmtime's raw linker error.
//!
//! The linker itself is the authority on what it provides: the component is
//! pre-instantiated, and only if that fails is the failure explained, by
//! finding which of the component's imports it names. So nothing here can
//! refuse a component that links (the list in [`provides`] only words the
//! refusal).

use std::path::Path;

use wasmtime::component::{Component, InstancePre, Linker};

use crate::engine::WasmtimeResultExt;

/// The Spin interfaces the runner implements, for the refusal's hint.
const SPIN_PROVIDED: &str = "fermyon:spin/key-value@2.0.0, fermyon:spin/variables@2.0.0, \
     fermyon:spin/sqlite@2.0.0, fermyon:spin/redis@2.0.0 and fermyon:spin/mqtt@2.0.0";

/// Pre-instantiates component `id` (from `path`), or refuses it naming the
/// import the runner does not provide.
pub fn instantiate_pre<T>(
    linker: &Linker<T>,
    component: &Component,
    id: &str,
    path: &Path,
) -> anyhow::Result<InstancePre<T>> {
    linker.instantiate_pre(component).anyhow().map_err(|e| {
        let imports: Vec<String> = component
            .component_type()
            .imports(linker.engine())
            .map(|(name, _)| name.to_string())
            .collect();
        refusal(id, path, &imports, e)
    })
}

/// Explains a failed pre-instantiation: wasmtime's error names the first
/// import it could not satisfy (``component imports instance `x`, but...``).
fn refusal(id: &str, path: &Path, imports: &[String], e: anyhow::Error) -> anyhow::Error {
    let top = e.to_string();
    let Some(name) = imports
        .iter()
        .find(|name| top.contains(&format!("`{name}`")))
    else {
        return anyhow::anyhow!(
            "component `{id}` ({}) cannot be linked by edge-runner: {e:#}",
            path.display()
        );
    };
    if provides(name) {
        // A name the runner provides, but not as the component expects
        // (another version of the interface, say): wasmtime's detail.
        let detail: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
        return anyhow::anyhow!(
            "component `{id}` ({}) imports `{name}`, which edge-runner provides, but not as the component expects: {}",
            path.display(),
            detail.join(": ")
        );
    }
    let hint = if name.starts_with("fermyon:spin/") || name.starts_with("spin:") {
        format!(
            ": it is a Spin interface edge-runner does not implement (of Spin's, it implements {SPIN_PROVIDED} only); run the app on Spin, or remove what uses it from the component"
        )
    } else if name.starts_with("wasi:") {
        " (of WASI, edge-runner implements the 0.2 interfaces of wasi:cli, clocks, filesystem, io, random, sockets, and wasi:http's types and outgoing-handler only)"
            .to_string()
    } else {
        String::new()
    };
    anyhow::anyhow!(
        "component `{id}` ({}) imports `{name}`, which edge-runner does not support{hint}",
        path.display()
    )
}

/// Whether the runner's linker has an interface of that name (for the
/// wording only: the linker decides what links). It has wasmtime-wasi's
/// and wasmtime-wasi-http's 0.2 interfaces, and five of Spin's.
fn provides(name: &str) -> bool {
    let Some((interface, version)) = name.split_once('@') else {
        return false;
    };
    let wasi = ["cli", "clocks", "filesystem", "io", "random", "sockets"];
    match interface.split_once('/') {
        Some(("fermyon:spin", "key-value" | "variables" | "sqlite" | "redis" | "mqtt")) => {
            version == "2.0.0"
        }
        Some(("wasi:http", "types" | "outgoing-handler")) => version.starts_with("0.2."),
        Some((package, _)) => {
            version.starts_with("0.2.")
                && package
                    .strip_prefix("wasi:")
                    .is_some_and(|p| wasi.contains(&p))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str) -> String {
        let engine = crate::engine::new_engine(true).unwrap();
        let mut linker: Linker<crate::state::HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        let component = Component::new(&engine, edge_testkit::component_importing(name)).unwrap();
        match instantiate_pre(&linker, &component, "db", Path::new("db.wasm")) {
            Ok(_) => panic!("{name} linked"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn an_unsupported_spin_interface_is_refused_naming_it_and_the_component() {
        for name in [
            "fermyon:spin/postgres@2.0.0",
            "fermyon:spin/mysql@2.0.0",
            "fermyon:spin/llm@2.0.0",
            "spin:sqlite/sqlite@3.0.0",
            "spin:postgres/postgres@3.0.0",
        ] {
            let e = refused(name);
            assert!(e.contains("component `db` (db.wasm)"), "{e}");
            assert!(
                e.contains(&format!(
                    "imports `{name}`, which edge-runner does not support"
                )),
                "{e}"
            );
            assert!(
                e.contains("a Spin interface edge-runner does not implement"),
                "{e}"
            );
            assert!(!e.contains("matching implementation"), "{e}");
        }
    }

    #[test]
    fn an_unsupported_wasi_or_unknown_interface_is_refused_too() {
        let e = refused("wasi:keyvalue/store@0.2.0-draft2");
        assert!(e.contains("imports `wasi:keyvalue/store@0.2.0-draft2`, which edge-runner does not support (of WASI"), "{e}");
        let e = refused("acme:thing/api");
        assert!(
            e.ends_with("imports `acme:thing/api`, which edge-runner does not support"),
            "{e}"
        );
    }

    #[test]
    fn a_provided_interface_with_other_types_is_named_as_such() {
        // `wasi:cli/environment` is provided, without a function `run`.
        let e = refused("wasi:cli/environment@0.2.0");
        assert!(
            e.contains("imports `wasi:cli/environment@0.2.0`, which edge-runner provides, but not as the component expects: "),
            "{e}"
        );
    }
}
