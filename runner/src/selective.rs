//! Spin's selective deployment, `spin up -c/--component-id`: only the named
//! components and the triggers that run them are kept (crates/app/src/lib.rs
//! `App::retain_components`), after Spin's checks, in Spin's words: every
//! named component exists, and no kept component chains to one left out
//! (crates/factor-outbound-networking/src/allowed_hosts.rs
//! `validate_service_chaining_for_components`).

use anyhow::{Context, bail};

use crate::manifest::{ComponentSpec, Manifest};
use crate::routing::service_chaining_target;

/// The manifest with only `retained` components and their triggers.
pub fn retain_components(mut manifest: Manifest, retained: &[String]) -> anyhow::Result<Manifest> {
    check(&manifest, retained)
        .context("failed to resolve application with only components selected with --component")?;
    let keep = |t: &crate::manifest::Trigger| matches!(&t.component, Some(ComponentSpec::Reference(id)) if retained.contains(id));
    // As Spin: a component is kept only if a kept trigger runs it.
    let kept: std::collections::BTreeSet<String> = manifest
        .trigger
        .values()
        .flatten()
        .filter(|t| keep(t))
        .filter_map(|t| match &t.component {
            Some(ComponentSpec::Reference(id)) => Some(id.clone()),
            _ => None,
        })
        .collect();
    for triggers in manifest.trigger.values_mut() {
        triggers.retain(|t| keep(t));
    }
    manifest.trigger.retain(|_, triggers| !triggers.is_empty());
    manifest.component.retain(|id, _| kept.contains(id));
    Ok(manifest)
}

fn check(manifest: &Manifest, retained: &[String]) -> anyhow::Result<()> {
    for id in retained {
        if !manifest.component.contains_key(id) {
            bail!("Specified component \"{id}\" not found in application");
        }
    }
    for trigger in manifest.trigger.values().flatten() {
        let Some(ComponentSpec::Reference(id)) = &trigger.component else {
            continue;
        };
        if !retained.contains(id) {
            continue;
        }
        let Some(component) = manifest.component.get(id) else {
            continue;
        };
        for host in &component.allowed_outbound_hosts {
            // Templated entries are not resolved yet: one that does not
            // parse as a URI is skipped, as Spin skips it.
            let Ok(uri) = host.parse::<http::Uri>() else {
                continue;
            };
            let Some(target) = uri
                .authority()
                .and_then(|a| service_chaining_target(a.host().trim()))
            else {
                continue;
            };
            if retained.iter().any(|r| r == target) {
                continue;
            }
            if target == "*" {
                bail!(
                    "Selected component '{id}' cannot use wildcard service chaining: allowed_outbound_hosts = [\"http://*.spin.internal\"]"
                );
            }
            bail!(
                "Selected component '{id}' cannot use service chaining to unselected component: allowed_outbound_hosts = [\"http://{target}.spin.internal\"]"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "selective"

[[trigger.http]]
route = "/front/..."
component = "front"

[[trigger.http]]
route = "/back/..."
component = "back"

[[trigger.http]]
route = "/wild/..."
component = "wild"

[[trigger.http]]
route = "/templated/..."
component = "templated"

[component.front]
source = "front.wasm"
allowed_outbound_hosts = ["http://back.spin.internal", "https://example.com"]

[component.back]
source = "back.wasm"

[component.wild]
source = "wild.wasm"
allowed_outbound_hosts = ["http://*.spin.internal"]

[component.templated]
source = "templated.wasm"
allowed_outbound_hosts = ["{{ origin }}"]

[component.untriggered]
source = "untriggered.wasm"
"#;

    fn app() -> Manifest {
        crate::manifest::parse(APP).unwrap()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn err(v: &[&str]) -> String {
        format!("{:#}", retain_components(app(), &ids(v)).unwrap_err())
    }

    #[test]
    fn keeps_the_named_components_and_their_triggers_only() {
        let m = retain_components(app(), &ids(&["back", "templated"])).unwrap();
        assert_eq!(
            m.component.keys().collect::<Vec<_>>(),
            ["back", "templated"]
        );
        let routes: Vec<_> = m.http_triggers().into_iter().map(|t| t.component).collect();
        assert_eq!(routes, ["back", "templated"]);
    }

    #[test]
    fn a_chain_to_a_kept_component_is_allowed() {
        let m = retain_components(app(), &ids(&["front", "back"])).unwrap();
        assert_eq!(m.component.len(), 2);
    }

    #[test]
    fn a_component_no_trigger_runs_is_dropped_as_spin_drops_it() {
        let m = retain_components(app(), &ids(&["back", "untriggered"])).unwrap();
        assert_eq!(m.component.keys().collect::<Vec<_>>(), ["back"]);
    }

    #[test]
    fn refuses_what_spin_refuses_in_spins_words() {
        let context =
            "failed to resolve application with only components selected with --component: ";
        assert_eq!(
            err(&["back", "nope"]),
            format!("{context}Specified component \"nope\" not found in application")
        );
        assert_eq!(
            err(&["front"]),
            format!(
                "{context}Selected component 'front' cannot use service chaining to unselected component: allowed_outbound_hosts = [\"http://back.spin.internal\"]"
            )
        );
        assert_eq!(
            err(&["wild"]),
            format!(
                "{context}Selected component 'wild' cannot use wildcard service chaining: allowed_outbound_hosts = [\"http://*.spin.internal\"]"
            )
        );
    }
}
