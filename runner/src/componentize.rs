//! Wasm modules as component sources, as Spin's loader takes them
//! (spinframework/spin v4.0.2, `crates/componentize/src/lib.rs`
//! `componentize_if_necessary`): a component is used as it is; a core
//! module built with wit-bindgen 0.5 or later (spin-sdk 2 and later, for
//! wasm32-wasip1 or wasm32-unknown-unknown) is encoded into a component,
//! its `wasi_snapshot_preview1` imports served by the preview 1 adapter
//! (wasmtime's reactor adapter, from crates.io; Spin builds the same
//! upstream adapter).
//!
//! What Spin adapts with adapters of its own (modules from wit-bindgen 0.2,
//! i.e. spin-sdk 1, and WASI preview 1 command modules, which Spin runs
//! with the WAGI executor) is refused, saying so.

use std::borrow::Cow;

use anyhow::{Context, anyhow, bail};
use wasmparser::{Encoding, Parser, Payload};

/// `bytes` as a component: borrowed when it is one, encoded when it is a
/// core module.
pub fn componentize_if_necessary(bytes: &[u8]) -> anyhow::Result<Cow<'_, [u8]>> {
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::Version { encoding, .. } = payload.context("unable to parse binary")? {
            return match encoding {
                Encoding::Component => Ok(Cow::Borrowed(bytes)),
                Encoding::Module => componentize(bytes).map(Cow::Owned),
            };
        }
    }
    Err(anyhow!("unable to determine wasm binary encoding"))
}

/// What Spin's `WitBindgenVersion::detect` reads from the module's
/// `producers` section.
#[derive(Debug, PartialEq, Eq)]
enum Bindgen {
    /// wit-bindgen 0.5 or later (0.x.y).
    Modern,
    /// No wit-bindgen recorded, or an old one.
    OldOrNone,
    /// A version Spin cannot adapt.
    Other(String),
}

/// Spin's `ModuleInfo`: the producers recorded in the last
/// `component-type*` section wit-bindgen wrote (not the module's own
/// `producers` section, which a stripped build drops).
fn detect(module: &[u8]) -> anyhow::Result<Bindgen> {
    let mut producers = None;
    for payload in Parser::new(0).parse_all(module) {
        if let Payload::CustomSection(section) = payload?
            && section.name().starts_with("component-type")
        {
            match decode_bindgen_section(section.name(), section.data()) {
                Ok(bindgen) => producers = bindgen.producers,
                Err(e) => eprintln!(
                    "warning: cannot read the bindgen section {:?}: {e}",
                    section.name()
                ),
            }
        }
    }
    let Some(producers) = producers else {
        return Ok(Bindgen::OldOrNone);
    };
    let Some(processed_by) = producers.get("processed-by") else {
        return Ok(Bindgen::OldOrNone);
    };
    let Some(version) = processed_by
        .iter()
        .find_map(|(name, version)| name.starts_with("wit-bindgen").then_some(version.as_str()))
    else {
        return Ok(Bindgen::OldOrNone);
    };
    Ok(classify(version))
}

/// A module holding only that custom section, decoded by wit-component
/// (as Spin's `decode_bindgen_custom_section` does).
fn decode_bindgen_section(
    name: &str,
    data: &[u8],
) -> anyhow::Result<wit_component::metadata::Bindgen> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut content = Vec::new();
    leb(name.len(), &mut content);
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(data);
    let mut module = b"\0asm\x01\0\0\0\0".to_vec();
    leb(content.len(), &mut module);
    module.extend_from_slice(&content);
    let (_, bindgen) = wit_component::metadata::decode(&module)?;
    Ok(bindgen)
}

/// Spin's rule: `0.x` with x ≥ 5, with at most a patch part after it.
fn classify(version: &str) -> Bindgen {
    let other = || Bindgen::Other(version.to_string());
    let mut parts = version.split('.');
    let (Some(major), Some(minor)) = (
        parts.next().and_then(|p| p.parse::<u8>().ok()),
        parts.next().and_then(|p| p.parse::<u8>().ok()),
    ) else {
        return other();
    };
    if (major == 0 && minor < 5) || major >= 1 {
        return other();
    }
    if parts.next().is_none() || parts.next().is_none() {
        Bindgen::Modern
    } else {
        other()
    }
}

fn componentize(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    match detect(module)? {
        Bindgen::Modern => wit_component::ComponentEncoder::default()
            .validate(true)
            .module(module)?
            .adapter(
                "wasi_snapshot_preview1",
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )?
            .encode(),
        Bindgen::Other(version) => {
            bail!("cannot adapt modules created with wit-bindgen version {version}")
        }
        Bindgen::OldOrNone => bail!(
            "this is a core Wasm module without wit-bindgen 0.5+ metadata (built with spin-sdk 1 / wit-bindgen 0.2, or a WASI preview 1 command for the WAGI executor); Spin adapts those with adapters of its own, which edge-runner does not have: rebuild it with a current spin-sdk (for wasm32-wasip2), or run it on Spin"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_bindgen_versions_are_classified_as_spin_classifies_them() {
        for modern in ["0.5", "0.5.1", "0.16.0", "0.51.0"] {
            assert_eq!(classify(modern), Bindgen::Modern, "{modern}");
        }
        for other in ["0.4.0", "0.2.0", "1.0.0", "0.5.1.2", "x", "0"] {
            assert_eq!(classify(other), Bindgen::Other(other.into()), "{other}");
        }
    }

    #[test]
    fn a_component_is_used_as_it_is() {
        // The smallest component: the preamble of the component encoding.
        let component = b"\0asm\x0d\x00\x01\x00";
        assert!(matches!(
            componentize_if_necessary(component).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_module_without_wit_bindgen_metadata_is_refused_saying_why() {
        let module = b"\0asm\x01\x00\x00\x00";
        let err = componentize_if_necessary(module).unwrap_err().to_string();
        assert!(err.contains("wit-bindgen 0.5+"), "{err}");
        assert!(err.contains("wasm32-wasip2"), "{err}");
    }

    #[test]
    fn garbage_is_not_wasm() {
        assert!(componentize_if_necessary(b"not wasm").is_err());
    }
}
