//! `spin.toml`, version 2, as Spin parses it.
//!
//! The structs mirror Spin's manifest schema (spinframework/spin,
//! `crates/manifest/src/schema/v2.rs`) for the fields an HTTP application
//! uses, with `deny_unknown_fields` as Spin has, so a typo is an error that
//! names the field instead of a silently ignored setting. Fields Spin knows
//! but edge-runner does not implement (SQLite databases, AI models, component
//! dependencies...) are rejected by name in [`Manifest::validate`], before
//! anything listens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// A parsed `spin.toml` and the directory it was read from.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    /// The manifest itself.
    pub manifest: Manifest,
    /// The file it was read from.
    pub path: PathBuf,
    /// The directory relative paths (sources, build workdirs) start from.
    pub dir: PathBuf,
}

/// The top level of `spin.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must be 2.
    pub spin_manifest_version: ManifestVersion,
    /// `[application]`.
    pub application: Application,
    /// `[variables]`: application variables.
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    /// `[[trigger.http]]` and friends: trigger type → triggers.
    #[serde(default)]
    pub trigger: BTreeMap<String, Vec<Trigger>>,
    /// `[component.<id>]`.
    #[serde(default)]
    pub component: BTreeMap<String, Component>,
}

/// `spin_manifest_version`: only version 2 is accepted (Spin accepts the
/// integer 2; version 1 manifests are a different format).
#[derive(Debug, Clone, Copy)]
pub struct ManifestVersion;

impl<'de> Deserialize<'de> for ManifestVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(2) => Ok(ManifestVersion),
            Raw::Str(s) if s == "2" => Ok(ManifestVersion),
            _ => Err(serde::de::Error::custom(
                "unsupported spin_manifest_version: edge-runner reads version 2 manifests (spin_manifest_version = 2)",
            )),
        }
    }
}

/// `[application]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// The application name.
    pub name: String,
    /// The application version.
    #[serde(default)]
    pub version: Option<String>,
    /// A description.
    #[serde(default)]
    pub description: Option<String>,
    /// Authors.
    #[serde(default)]
    pub authors: Vec<String>,
    /// `[application.trigger.http]`: application-wide trigger settings.
    #[serde(default)]
    pub trigger: ApplicationTrigger,
}

/// `[application.trigger]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationTrigger {
    /// `[application.trigger.http]`.
    #[serde(default)]
    pub http: Option<HttpAppTrigger>,
}

/// `[application.trigger.http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAppTrigger {
    /// The base path all routes hang from (`/` by default).
    #[serde(default)]
    pub base: Option<String>,
}

/// An application variable in `[variables]`.
///
/// ```toml
/// [variables]
/// threshold = { default = "100" }
/// admin_token = { default = "", secret = true }
/// api_key = { required = true, secret = true }
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// The value used when no provider has one.
    #[serde(default)]
    pub default: Option<String>,
    /// A required variable has no default: a provider must supply it.
    #[serde(default)]
    pub required: bool,
    /// Secret values are never logged.
    #[serde(default)]
    pub secret: bool,
}

/// One `[[trigger.<type>]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// An optional trigger id.
    #[serde(default)]
    pub id: Option<String>,
    /// The component this trigger runs: an id in `[component]`.
    pub component: Option<ComponentRef>,
    /// HTTP: the route (`"/api/..."`) or `{ private = true }`.
    #[serde(default)]
    pub route: Option<Route>,
    /// HTTP: Spin's executor setting (`{ type = "spin" }` or `"wagi"`).
    #[serde(default)]
    pub executor: Option<toml::Value>,
    /// Other triggers' settings: kept so `validate` can name the trigger.
    #[serde(default)]
    pub components: Option<toml::Value>,
}

/// A trigger's `component`: an id, or an inline component table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ComponentRef {
    /// `component = "router"`.
    Id(String),
    /// `component = { source = ... }`: an inline component (Spin allows it).
    Inline(Box<Component>),
}

/// An HTTP trigger's `route`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Route {
    /// `route = "/..."`.
    Path(String),
    /// `route = { private = true }`: reachable only by service chaining.
    Private(PrivateRoute),
}

/// `{ private = true }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoute {
    /// Must be true.
    pub private: bool,
}

/// `[component.<id>]`.
///
/// ```toml
/// [component.cache]
/// source = "target/wasm32-wasip2/wasm/cache.wasm"
/// key_value_stores = ["default"]
/// allowed_outbound_hosts = ["{{ upstream_origin }}"]
/// [component.cache.variables]
/// ttl = "{{ cache_ttl_seconds }}"
/// [component.cache.build]
/// command = "cargo build --target wasm32-wasip2 --profile wasm -p cache"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// The Wasm file, relative to the manifest's directory, or a URL source.
    pub source: Source,
    /// A description.
    #[serde(default)]
    pub description: Option<String>,
    /// Component variables: name → template over application variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// WASI environment variables.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Files mounted into the component (edge-runner supports none).
    #[serde(default)]
    pub files: Vec<toml::Value>,
    /// Files excluded from `files`.
    #[serde(default)]
    pub exclude_files: Vec<String>,
    /// Hosts the component may call: `scheme://host[:port]`, wildcards, templates.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Spin 1's name for `allowed_outbound_hosts`: rejected with a hint.
    #[serde(default)]
    pub allowed_http_hosts: Option<Vec<String>>,
    /// Key-value store labels the component may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// SQLite databases (not supported by edge-runner).
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    /// AI models (not supported by edge-runner).
    #[serde(default)]
    pub ai_models: Vec<String>,
    /// `[component.<id>.build]`.
    #[serde(default)]
    pub build: Option<Build>,
    /// `[component.<id>.tool]`: settings for external tools, ignored as Spin does.
    #[serde(default)]
    pub tool: Option<toml::Value>,
    /// Component dependencies (not supported by edge-runner).
    #[serde(default)]
    pub dependencies: Option<toml::Value>,
    /// Whether dependencies inherit configuration.
    #[serde(default)]
    pub dependencies_inherit_configuration: Option<bool>,
}

/// A component's `source`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Source {
    /// A local file path.
    Local(String),
    /// `{ url = "...", digest = "..." }` or a registry source.
    Remote(toml::Table),
}

/// `[component.<id>.build]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The build command, run by a shell in `workdir`.
    pub command: BuildCommand,
    /// The directory to run it in, relative to the manifest.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Globs `spin watch` watches; edge-runner uses them for staleness.
    #[serde(default)]
    pub watch: Vec<String>,
    /// Environment variables for the build command.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// One command or several, as Spin accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BuildCommand {
    /// `command = "cargo build ..."`.
    One(String),
    /// `command = ["step 1", "step 2"]`.
    Many(Vec<String>),
}

impl BuildCommand {
    /// The commands in order.
    pub fn commands(&self) -> Vec<&str> {
        match self {
            BuildCommand::One(c) => vec![c.as_str()],
            BuildCommand::Many(cs) => cs.iter().map(String::as_str).collect(),
        }
    }
}

/// An HTTP trigger resolved against its component.
#[derive(Debug, Clone)]
pub struct HttpTrigger {
    /// The component id.
    pub component: String,
    /// The route, or `None` for a private component.
    pub route: Option<String>,
}

impl LoadedManifest {
    /// Reads `path`, or `path/spin.toml` when `path` is a directory.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let path = if path.is_dir() {
            path.join("spin.toml")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let manifest =
            parse(&text).with_context(|| format!("invalid manifest {}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Ok(Self {
            manifest,
            path,
            dir,
        })
    }

    /// A component's Wasm file.
    pub fn source_path(&self, id: &str) -> anyhow::Result<PathBuf> {
        let component = self
            .manifest
            .component
            .get(id)
            .with_context(|| format!("no component `{id}`"))?;
        match &component.source {
            Source::Local(p) => Ok(self.dir.join(p)),
            Source::Remote(_) => bail!(
                "component.{id}.source: remote sources are not supported by edge-runner; build the component and give its local path"
            ),
        }
    }
}

/// Parses and validates manifest text.
pub fn parse(text: &str) -> anyhow::Result<Manifest> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    manifest.validate()?;
    Ok(manifest)
}

impl Manifest {
    /// Checks what serde cannot: references, names, unsupported features.
    /// Each error names the field and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        for name in self.variables.keys() {
            crate::variables::validate_name(name)
                .map_err(|e| anyhow::anyhow!("variables.{name}: {e}"))?;
        }
        for (name, var) in &self.variables {
            if var.required && var.default.is_some() {
                bail!(
                    "variables.{name}: a variable cannot be both `required` and have a `default`; remove one"
                );
            }
        }
        for (kind, triggers) in &self.trigger {
            if kind != "http" {
                bail!(
                    "trigger.{kind}: edge-runner serves HTTP triggers only; remove the `[[trigger.{kind}]]` entries"
                );
            }
            for (i, t) in triggers.iter().enumerate() {
                let at = format!("trigger.http[{i}]");
                match &t.component {
                    None => bail!("{at}.component: missing; name a component id"),
                    Some(ComponentRef::Inline(_)) => bail!(
                        "{at}.component: inline components are not supported by edge-runner; declare it under [component.<id>] and give its id"
                    ),
                    Some(ComponentRef::Id(id)) if !self.component.contains_key(id) => bail!(
                        "{at}.component: no component `{id}` in [component]; add [component.{id}] or fix the id"
                    ),
                    Some(ComponentRef::Id(_)) => {}
                }
                match &t.route {
                    None => bail!(
                        "{at}.route: missing; give a route such as \"/...\" or {{ private = true }}"
                    ),
                    Some(Route::Private(PrivateRoute { private: false })) => bail!(
                        "{at}.route: `private = false` is not a route; use a path such as \"/...\" or `{{ private = true }}`"
                    ),
                    Some(Route::Path(p)) if !p.starts_with('/') => {
                        bail!("{at}.route: \"{p}\" must start with `/`")
                    }
                    _ => {}
                }
                if t.components.is_some() {
                    bail!("{at}.components: not supported for HTTP triggers; use `component`");
                }
                if let Some(exec) = &t.executor {
                    let kind = exec.get("type").and_then(toml::Value::as_str);
                    if kind != Some("spin") {
                        bail!(
                            "{at}.executor: only the default Spin executor is supported by edge-runner; remove `executor`"
                        );
                    }
                }
            }
        }
        for (id, c) in &self.component {
            let at = format!("component.{id}");
            validate_component_id(id).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
            if c.allowed_http_hosts.is_some() {
                bail!(
                    "{at}.allowed_http_hosts: replaced by `allowed_outbound_hosts` in manifest version 2; rename it and add schemes (e.g. \"https://example.com\")"
                );
            }
            if !c.files.is_empty() {
                bail!("{at}.files: file mounts are not supported by edge-runner; remove `files`");
            }
            if !c.sqlite_databases.is_empty() {
                bail!("{at}.sqlite_databases: not supported by edge-runner; remove it");
            }
            if !c.ai_models.is_empty() {
                bail!("{at}.ai_models: not supported by edge-runner; remove it");
            }
            if c.dependencies.is_some() {
                bail!(
                    "{at}.dependencies: component dependencies are not supported by edge-runner; remove it"
                );
            }
            for name in c.variables.keys() {
                crate::variables::validate_name(name)
                    .map_err(|e| anyhow::anyhow!("{at}.variables.{name}: {e}"))?;
            }
            if let Source::Remote(_) = c.source {
                bail!(
                    "{at}.source: remote sources are not supported by edge-runner; give a local path to the .wasm file"
                );
            }
        }
        Ok(())
    }

    /// The HTTP triggers, each resolved to its component id.
    pub fn http_triggers(&self) -> Vec<HttpTrigger> {
        self.trigger
            .get("http")
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let Some(ComponentRef::Id(id)) = &t.component else {
                    return None;
                };
                let route = match &t.route {
                    Some(Route::Path(p)) => Some(p.clone()),
                    _ => None,
                };
                Some(HttpTrigger {
                    component: id.clone(),
                    route,
                })
            })
            .collect()
    }

    /// `[application.trigger.http] base`, `/` by default.
    pub fn base(&self) -> String {
        self.application
            .trigger
            .http
            .as_ref()
            .and_then(|h| h.base.clone())
            .unwrap_or_else(|| "/".to_string())
    }
}

/// Spin's component id rule: kebab-case words of lowercase letters and
/// digits, starting with a letter (`router`, `cache-2`). The id becomes the
/// `<id>.spin.internal` host of service chaining, so it must be a DNS label.
pub fn validate_component_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && id.as_bytes()[0].is_ascii_lowercase();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{id}` is not a valid component id: use lowercase letters, digits and single dashes, starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
threshold = { default = "100" }
[[trigger.http]]
route = "/..."
component = "router"
[[trigger.http]]
route = { private = true }
component = "cache"
[component.router]
source = "router.wasm"
allowed_outbound_hosts = ["http://cache.spin.internal"]
[component.cache]
source = "cache.wasm"
key_value_stores = ["default"]
[component.cache.variables]
threshold = "{{ threshold }}"
"#;

    #[test]
    fn parses_a_minimal_http_application() {
        let m = parse(MINIMAL).unwrap();
        let triggers = m.http_triggers();
        assert_eq!(triggers.len(), 2);
        assert_eq!(triggers[0].route.as_deref(), Some("/..."));
        assert_eq!(triggers[1].route, None);
        assert_eq!(m.component["cache"].key_value_stores, vec!["default"]);
        assert_eq!(m.base(), "/");
    }

    fn error_of(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn an_unknown_component_field_is_named_with_its_table() {
        let e = error_of(&MINIMAL.replace("key_value_stores", "key_value_storez"));
        assert!(e.contains("key_value_storez"), "{e}");
        assert!(e.contains("component.cache") || e.contains("line"), "{e}");
    }

    #[test]
    fn a_trigger_naming_a_missing_component_is_an_error() {
        let e = error_of(&MINIMAL.replace("component = \"cache\"", "component = \"cahce\""));
        assert!(e.contains("trigger.http[1].component"), "{e}");
        assert!(e.contains("cahce"), "{e}");
    }

    #[test]
    fn manifest_version_1_is_rejected() {
        let e =
            error_of(&MINIMAL.replace("spin_manifest_version = 2", "spin_manifest_version = 1"));
        assert!(e.contains("spin_manifest_version"), "{e}");
    }

    #[test]
    fn a_bad_variable_name_is_an_error() {
        let e = error_of(&MINIMAL.replace("threshold = { default", "Threshold = { default"));
        assert!(e.contains("variables.Threshold"), "{e}");
    }

    #[test]
    fn allowed_http_hosts_gets_a_hint() {
        let e = error_of(&MINIMAL.replace("allowed_outbound_hosts", "allowed_http_hosts"));
        assert!(e.contains("allowed_outbound_hosts"), "{e}");
    }

    #[test]
    fn a_route_must_start_with_a_slash() {
        let e = error_of(&MINIMAL.replace("route = \"/...\"", "route = \"api\""));
        assert!(e.contains("trigger.http[0].route"), "{e}");
    }

    #[test]
    fn component_ids_follow_spin_rules() {
        assert!(validate_component_id("router").is_ok());
        assert!(validate_component_id("cache-2").is_ok());
        assert!(validate_component_id("Cache").is_err());
        assert!(validate_component_id("cache_2").is_err());
        assert!(validate_component_id("-cache").is_err());
        assert!(validate_component_id("2cache").is_err());
        assert!(validate_component_id("a--b").is_err());
    }
}
