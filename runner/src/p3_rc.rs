//! Components built for the WASI 0.3 release candidate that spin-sdk 6
//! targets, `wasi:*@0.3.0-rc-2026-03-15`, served on wasmtime 48's final
//! `wasi:*@0.3.0`.
//!
//! Spin 4.0.2 serves that release candidate: it is what its wasmtime 44
//! implements (crates/wasi and crates/wasi-http, `src/p3/wit/deps`).
//! wasmtime 48 implements the final 0.3.0 only. The two sets of WIT files
//! were compared (wasmtime v44.0.0's against 48.0.8's, with the version
//! strings replaced): http, clocks, random and filesystem are identical;
//! cli differs only in `exit-with-code` being `@unstable` in the candidate
//! and `@since(version = 0.3.0)` after; sockets only in a documentation
//! link. Same interfaces, same functions, same types: so the runner gives
//! such a component's imports and exports their final names before
//! compiling it, and wasmtime's own type check at link time still guards
//! the result. Core-level names (the lowered functions' module names) are
//! left as they are: only component-level names are matched by the linker.
//!
//! Only this candidate is renamed; any other `-rc-` version is compiled as
//! it is, and refused at link time naming the missing import.

use anyhow::Context;
use wasm_encoder::reencode::{Error, Reencode, ReencodeComponent, component_utils};

/// The release candidate spin-sdk 6.0.0 (wasip3 0.6.0) builds against.
const CANDIDATE: &str = "-rc-2026-03-15";

/// `bytes` with every `wasi:…@0.3.0-rc-2026-03-15` component-level name
/// renamed `wasi:…@0.3.0`, or `None` when there is no such name (the
/// component is compiled as it is).
pub fn rename_if_necessary(bytes: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    if !mentions_candidate(bytes) {
        return Ok(None);
    }
    let mut component = wasm_encoder::Component::new();
    Renamer
        .parse_component(&mut component, wasmparser::Parser::new(0), bytes)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot re-encode the component with WASI 0.3.0 names")?;
    Ok(Some(component.finish()))
}

/// A cheap first look: the candidate's version string occurs in the bytes.
fn mentions_candidate(bytes: &[u8]) -> bool {
    let needle = format!("@0.3.0{CANDIDATE}");
    bytes
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The final name of `name`: `wasi:<pkg>/<iface>@0.3.0` for the candidate's
/// `wasi:<pkg>/<iface>@0.3.0-rc-2026-03-15`; other names as they are. The
/// final name is a prefix of the candidate's, so it borrows from it.
fn final_name(name: &str) -> &str {
    match name.strip_suffix(CANDIDATE) {
        Some(stem) if name.starts_with("wasi:") && stem.ends_with("@0.3.0") => stem,
        _ => name,
    }
}

/// A reencoder that copies the component as it is but for its names.
struct Renamer;

impl Reencode for Renamer {
    type Error = std::convert::Infallible;
}

impl ReencodeComponent for Renamer {
    fn parse_component_import_section(
        &mut self,
        imports: &mut wasm_encoder::ComponentImportSection,
        section: wasmparser::ComponentImportSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        for import in section {
            let import = import?;
            let ty = self.component_type_ref(import.ty)?;
            imports.import(final_name(import.name.name), ty);
        }
        Ok(())
    }

    fn parse_component_export(
        &mut self,
        exports: &mut wasm_encoder::ComponentExportSection,
        export: wasmparser::ComponentExport<'_>,
    ) -> Result<(), Error<Self::Error>> {
        let ty = export.ty.map(|t| self.component_type_ref(t)).transpose()?;
        exports.export(
            final_name(export.name.name),
            export.kind.into(),
            self.component_external_index(export.kind, export.index),
            ty,
        );
        Ok(())
    }

    fn parse_component_instance(
        &mut self,
        instances: &mut wasm_encoder::ComponentInstanceSection,
        instance: wasmparser::ComponentInstance<'_>,
    ) -> Result<(), Error<Self::Error>> {
        match instance {
            wasmparser::ComponentInstance::Instantiate {
                component_index,
                args,
            } => {
                let component = self.component_index(component_index);
                let args: Vec<_> = args
                    .iter()
                    .map(|arg| {
                        (
                            final_name(arg.name),
                            arg.kind.into(),
                            self.component_external_index(arg.kind, arg.index),
                        )
                    })
                    .collect();
                instances.instantiate(component, args);
            }
            wasmparser::ComponentInstance::FromExports(exports) => {
                let exports: Vec<_> = exports
                    .iter()
                    .map(|export| {
                        (
                            final_name(export.name.name),
                            export.kind.into(),
                            self.component_external_index(export.kind, export.index),
                        )
                    })
                    .collect();
                instances.export_items(exports);
            }
        }
        Ok(())
    }

    fn component_alias<'a>(
        &mut self,
        alias: wasmparser::ComponentAlias<'a>,
    ) -> Result<wasm_encoder::Alias<'a>, Error<Self::Error>> {
        match alias {
            wasmparser::ComponentAlias::InstanceExport {
                kind,
                instance_index,
                name,
            } => Ok(wasm_encoder::Alias::InstanceExport {
                instance: self.component_instance_index(instance_index),
                kind: kind.into(),
                name: final_name(name),
            }),
            other => component_utils::component_alias(self, other),
        }
    }

    fn parse_component_instance_type_declaration(
        &mut self,
        instance: &mut wasm_encoder::InstanceType,
        decl: wasmparser::InstanceTypeDeclaration<'_>,
    ) -> Result<(), Error<Self::Error>> {
        match decl {
            wasmparser::InstanceTypeDeclaration::Export { name, ty } => {
                let ty = self.component_type_ref(ty)?;
                instance.export(final_name(name.name), ty);
                Ok(())
            }
            other => {
                component_utils::parse_component_instance_type_declaration(self, instance, other)
            }
        }
    }

    fn parse_component_type_declaration(
        &mut self,
        component: &mut wasm_encoder::ComponentType,
        decl: wasmparser::ComponentTypeDeclaration<'_>,
    ) -> Result<(), Error<Self::Error>> {
        match decl {
            wasmparser::ComponentTypeDeclaration::Export { name, ty } => {
                let ty = self.component_type_ref(ty)?;
                component.export(final_name(name.name), ty);
                Ok(())
            }
            wasmparser::ComponentTypeDeclaration::Import(import) => {
                let ty = self.component_type_ref(import.ty)?;
                component.import(final_name(import.name.name), ty);
                Ok(())
            }
            other => component_utils::parse_component_type_declaration(self, component, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candidates_wasi_names_get_their_final_version() {
        assert_eq!(
            final_name("wasi:http/types@0.3.0-rc-2026-03-15"),
            "wasi:http/types@0.3.0"
        );
        assert_eq!(
            final_name("wasi:cli/environment@0.3.0-rc-2026-03-15"),
            "wasi:cli/environment@0.3.0"
        );
    }

    #[test]
    fn other_names_are_left_as_they_are() {
        for name in [
            "wasi:http/types@0.3.0",
            "wasi:http/types@0.2.6",
            "wasi:http/types@0.3.0-rc-2025-09-16",
            "spin:key-value/key-value@3.0.0",
            "example:lib/x@0.3.0-rc-2026-03-15",
            "handle",
        ] {
            assert_eq!(final_name(name), name);
        }
    }

    #[test]
    fn a_component_importing_the_candidate_is_renamed_and_nothing_else_changes() {
        let before = edge_testkit::component_importing("wasi:http/types@0.3.0-rc-2026-03-15");
        let after = rename_if_necessary(&before).unwrap().expect("renamed");
        assert_eq!(
            after,
            edge_testkit::component_importing("wasi:http/types@0.3.0"),
            "the same component with the final name"
        );
    }

    #[test]
    fn a_component_without_the_candidate_is_compiled_as_it_is() {
        for name in ["wasi:http/types@0.3.0", "wasi:http/types@0.2.0"] {
            let bytes = edge_testkit::component_importing(name);
            assert!(rename_if_necessary(&bytes).unwrap().is_none(), "{name}");
        }
    }
}
