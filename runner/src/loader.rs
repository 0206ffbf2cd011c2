//! The load step between parsing spin.toml and serving it: every check Spin
//! makes before `spin up` listens, in one place, as Spin's `crates/loader`
//! (spinframework/spin v4.0.2, `local.rs`) plus the checks Spin's HTTP
//! trigger and variables make at startup. Then, apart, what edge-runner does
//! not implement ([`check_supported`]).
//!
//! Spin's order and words are kept where they matter to a user: a component
//! fails as "Failed to load component `x`", then the field ("`allowed_outbound_hosts`
//! is malformed"), then the fault. The checks:
//! - variables: each is `required` or has a `default`, not both, not neither;
//! - per component: `allowed_outbound_hosts` entries are valid hosts; an
//!   entry with `{{ variable }}` templates is checked with the variables'
//!   **default** values (a template naming a variable without a default is
//!   skipped, exactly as Spin skips it; provider values play no part at
//!   load); component variable templates name declared variables; a URL
//!   source's digest is `sha256:...`; a local source exists ([`check_sources`],
//!   after building);
//! - HTTP triggers: Spin's trigger settings (`route`, `component` or
//!   `static_response`, `executor`), no other field.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::manifest::{Component, ComponentSpec, LoadedManifest, Manifest, Route, Source};
use crate::variables::template::Template;

/// Reads spin.toml and applies Spin's load-time checks, sources included:
/// what `spin up` does before it listens. Errors read as Spin's.
pub fn load(path: &Path) -> anyhow::Result<LoadedManifest> {
    let loaded = LoadedManifest::load(path)?;
    check(&loaded)?;
    check_sources(&loaded)?;
    Ok(loaded)
}

/// Spin's load-time checks but the existence of local sources (which may
/// not be built yet): see the module documentation.
pub fn check(loaded: &LoadedManifest) -> anyhow::Result<()> {
    check_manifest(&loaded.manifest)
        .with_context(|| format!("Failed to load Spin app from {:?}", loaded.path.display()))
}

fn check_manifest(m: &Manifest) -> anyhow::Result<()> {
    for (name, v) in &m.variables {
        if v.required == v.default.is_some() {
            bail!("variables.{name}: must be `required` OR have a `default`");
        }
    }
    for (id, c) in &m.component {
        check_component(m, c).with_context(|| format!("Failed to load component `{id}`"))?;
    }
    if let Some(http) = m.application.trigger.get("http") {
        check_http_app_settings(http).context("application.trigger.http")?;
    }
    for (kind, triggers) in &m.trigger {
        for (i, t) in triggers.iter().enumerate() {
            let at = format!("trigger.{kind}[{i}]");
            if let Some(ComponentSpec::Inline(c)) = &t.component {
                check_component(m, c).with_context(|| format!("{at}.component"))?;
            }
            if kind == "http" {
                check_http_trigger(m, t).with_context(|| format!("{at}: invalid HTTP trigger"))?;
            }
        }
    }
    Ok(())
}

fn check_component(m: &Manifest, c: &Component) -> anyhow::Result<()> {
    validate_allowed_hosts(m, &c.allowed_outbound_hosts)
        .context("`allowed_outbound_hosts` is malformed")?;
    for (key, template) in &c.variables {
        let t = Template::parse(template).map_err(|e| anyhow::anyhow!("variables.{key}: {e}"))?;
        if let Some(var) = t.variables().find(|v| !m.variables.contains_key(*v)) {
            bail!(
                "variables.{key}: invalid template {template:?}: unknown variable {var:?}; declare it under [variables]"
            );
        }
    }
    if let Source::Remote { url, digest } = &c.source
        && !digest.starts_with("sha256:")
    {
        bail!(
            "Failed to load Wasm source {url:?} with digest {digest:?}: invalid `digest` {digest:?}; must start with 'sha256:'"
        );
    }
    Ok(())
}

/// Spin's `AllowedHostsConfig::validate`: literal entries must parse; a
/// templated entry is rendered with the application variables' defaults and
/// must then parse, unless one of its variables has no default (or is not
/// declared), in which case Spin skips it.
fn validate_allowed_hosts(m: &Manifest, hosts: &[String]) -> anyhow::Result<()> {
    if hosts.len() == 1 && hosts[0] == "insecure:allow-all" {
        bail!(
            "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic'"
        );
    }
    for host in hosts {
        let template = Template::parse(host).map_err(|e| anyhow::anyhow!("{host:?}: {e}"))?;
        if template.is_literal() {
            parse_allowed_host(host)?;
            continue;
        }
        // A variable without a default (or not declared) cannot be
        // resolved at load: Spin skips the entry.
        let default = |var: &str| {
            let value = m.variables.get(var).and_then(|v| v.default.clone());
            value.ok_or(())
        };
        let Ok(rendered) = template.render(default) else {
            continue;
        };
        parse_allowed_host(&rendered).with_context(|| {
            format!(
                "using default variable value(s) with template {:?} results in invalid config {rendered:?}",
                template.to_string()
            )
        })?;
    }
    Ok(())
}

/// Whether `url` is an `allowed_outbound_hosts` entry Spin accepts (its
/// `AllowedHostConfig::parse`, which the runner's one parser in
/// `outbound::allowed` follows): `scheme://host[:port]`, the scheme
/// alphabetic or `*`, the host `*`, `*.domain`, `self`, an IP network, or a
/// name valid for a URL (so "invalid host" is refused, as an invalid
/// international domain name); the port a number, a range `a..b`, `*`, or
/// omitted for a scheme with a well-known port. The messages are Spin's.
pub fn parse_allowed_host(url: &str) -> anyhow::Result<()> {
    crate::outbound::allowed::AllowedHost::parse(url).map(|_| ())
}

/// Spin's HTTP trigger settings (`spin_http::config::HttpTriggerConfig`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpTriggerConfig {
    #[serde(default)]
    static_response: Option<toml::Value>,
    route: Route,
    #[serde(default)]
    executor: Option<Executor>,
}

/// `executor = { type = "http" }` (alias `spin`) or `{ type = "wagi", ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", tag = "type")]
enum Executor {
    #[serde(alias = "spin")]
    Http,
    Wagi(#[allow(dead_code)] WagiConfig),
}

/// Read by serde only: that the fields are known is what is checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct WagiConfig {
    #[serde(default)]
    entrypoint: Option<String>,
    #[serde(default)]
    argv: Option<String>,
}

fn http_config(t: &crate::manifest::Trigger) -> anyhow::Result<HttpTriggerConfig> {
    if !t.components.is_empty() {
        bail!("unknown field `components`: an HTTP trigger runs one `component`");
    }
    HttpTriggerConfig::deserialize(toml::Value::Table(t.config.clone()))
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))
}

/// `[application.trigger.http]`: only `base`, and only `/` (Spin's HTTP
/// trigger `validate_app`: the base is deprecated; routes carry the prefix).
fn check_http_app_settings(settings: &toml::Table) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TriggerMetadata {
        #[serde(default)]
        base: Option<String>,
    }
    let meta = TriggerMetadata::deserialize(toml::Value::Table(settings.clone()))
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
    if let Some(base) = meta.base
        && base != "/"
    {
        bail!(
            "This application is using the deprecated trigger 'base' field. The base must be prepended to each [[trigger.http]]'s 'route'."
        );
    }
    Ok(())
}

fn check_http_trigger(m: &Manifest, t: &crate::manifest::Trigger) -> anyhow::Result<()> {
    let config = http_config(t)?;
    match (&t.component, &config.static_response) {
        (None, None) => bail!("triggers must specify either `component` or `static_response`"),
        (Some(_), Some(_)) => {
            bail!("triggers must specify either `component` or `static_response`, not both")
        }
        _ => {}
    }
    if let Some(ComponentSpec::Reference(id)) = &t.component
        && !m.component.contains_key(id)
    {
        bail!("component: no component `{id}` in [component]; add [component.{id}] or fix the id");
    }
    if let Route::Private(p) = &config.route
        && !p.private
    {
        bail!(
            "route must be a string pattern or '{{ private = true }}': it has {{ private = false }}"
        );
    }
    Ok(())
}

/// Local sources must exist, as Spin's loader resolves them (run after the
/// build step, so `up` can build missing components first).
pub fn check_sources(loaded: &LoadedManifest) -> anyhow::Result<()> {
    for (id, c) in &loaded.manifest.component {
        if let Source::Local(p) = &c.source {
            let path = loaded.dir.join(p);
            path.canonicalize()
                .with_context(|| format!("Couldn't resolve `{}`", path.display()))
                .with_context(|| format!("Failed to load Wasm source {p:?}"))
                .with_context(|| format!("Failed to load component `{id}`"))
                .with_context(|| {
                    format!("Failed to load Spin app from {:?}", loaded.path.display())
                })?;
        }
    }
    Ok(())
}

/// What edge-runner does not implement, refused by name with the fix,
/// before anything listens. (Spin accepts all of these.)
pub fn check_supported(m: &Manifest) -> anyhow::Result<()> {
    for (kind, triggers) in &m.trigger {
        if kind != "http" {
            bail!(
                "trigger.{kind}: edge-runner serves HTTP triggers only; remove the `[[trigger.{kind}]]` entries"
            );
        }
        for (i, t) in triggers.iter().enumerate() {
            let at = format!("trigger.http[{i}]");
            let config = http_config(t).with_context(|| at.clone())?;
            if matches!(t.component, Some(ComponentSpec::Inline(_))) {
                bail!(
                    "{at}.component: inline components are not supported by edge-runner; declare it under [component.<id>] and give its id"
                );
            }
            if config.static_response.is_some() {
                bail!(
                    "{at}.static_response: not supported by edge-runner; serve it from a component"
                );
            }
            if matches!(config.executor, Some(Executor::Wagi(_))) {
                bail!(
                    "{at}.executor: the WAGI executor is not supported by edge-runner; remove `executor` (or use `{{ type = \"http\" }}`)"
                );
            }
        }
    }
    for (id, c) in &m.component {
        let at = format!("component.{id}");
        if !c.allowed_http_hosts.is_empty() {
            bail!(
                "{at}.allowed_http_hosts: deprecated, and not read by edge-runner; rename it `allowed_outbound_hosts` and add schemes (e.g. \"https://example.com\")"
            );
        }
        if !c.files.is_empty() {
            bail!("{at}.files: file mounts are not supported by edge-runner; remove `files`");
        }
        if !c.ai_models.is_empty() {
            bail!("{at}.ai_models: not supported by edge-runner; remove it");
        }
        if c.dependencies.as_ref().is_some_and(|d| !d.is_empty()) {
            bail!(
                "{at}.dependencies: component dependencies are not supported by edge-runner; remove it"
            );
        }
        if !matches!(c.source, Source::Local(_)) {
            bail!(
                "{at}.source: remote and registry sources are not supported by edge-runner; give a local path to the .wasm file"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
