//! `spin.toml` as Spin parses it (versions detected, version 2 read).
//!
//! The structs mirror Spin's manifest schema (spinframework/spin v4.0.2,
//! `crates/manifest/src/schema/{v2,common}.rs`) field for field, with
//! `deny_unknown_fields` where Spin has it, and ids checked while parsing
//! as Spin's `spin_serde` ids are: component ids and references are
//! kebab-case, variable names lower snake_case, key-value labels either. So
//! a typo or a bad id is a TOML error with its line, as on Spin. Everything
//! Spin checks after parsing (allowed hosts, variable defaults, sources,
//! trigger settings) is [`crate::loader`]'s; what edge-runner does not
//! implement is refused there too, by name, before anything listens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Deserializer};

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

/// The top level of `spin.toml`, version 2.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always the integer 2 (checked before parsing, see [`parse`]).
    pub spin_manifest_version: toml::Value,
    /// `[application]`.
    pub application: Application,
    /// `[variables]`: application variables, by lower snake_case name.
    #[serde(default, deserialize_with = "lower_snake_keys")]
    pub variables: BTreeMap<String, Variable>,
    /// `[[trigger.http]]` and friends: trigger type → triggers. Required, as
    /// in Spin.
    pub trigger: BTreeMap<String, Vec<Trigger>>,
    /// `[component.<id>]`, by kebab-case id.
    #[serde(default, deserialize_with = "kebab_keys")]
    pub component: BTreeMap<String, Component>,
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
    /// Deployment target environments (checked by `spin build`, not at load).
    #[serde(default)]
    pub targets: Vec<toml::Value>,
    /// `[application.trigger.<type>]`: application-wide trigger settings,
    /// e.g. `[application.trigger.http] base = "/"`.
    #[serde(default)]
    pub trigger: BTreeMap<String, toml::Table>,
    /// `[application.tool.<name>]`: settings for external tools.
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Table>,
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
    /// What the variable is for.
    #[serde(default)]
    pub description: Option<String>,
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

/// One `[[trigger.<type>]]` entry: `id`, `component` or `components`, and
/// the trigger type's own settings (`route`, `executor`... for HTTP), kept
/// as a table as Spin does; [`crate::loader`] reads the HTTP ones.
#[derive(Debug, Clone, Deserialize)]
pub struct Trigger {
    /// An optional trigger id.
    #[serde(default)]
    pub id: Option<String>,
    /// The component this trigger runs.
    #[serde(default)]
    pub component: Option<ComponentSpec>,
    /// Named components (triggers other than HTTP).
    #[serde(default)]
    pub components: BTreeMap<String, OneOrMany>,
    /// Everything else: the trigger type's settings.
    #[serde(flatten)]
    pub config: toml::Table,
}

/// A trigger's `component`: a kebab-case id, or an inline component table.
#[derive(Debug, Clone)]
pub enum ComponentSpec {
    /// `component = "router"`.
    Reference(String),
    /// `component = { source = ... }`.
    Inline(Box<Component>),
}

impl<'de> Deserialize<'de> for ComponentSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // As Spin: a string is an id, anything else a component table.
        let value = toml::Value::deserialize(d)?;
        match value {
            toml::Value::String(id) => kebab_id(&id)
                .map(|()| Self::Reference(id))
                .map_err(serde::de::Error::custom),
            other => Component::deserialize(other)
                .map(|c| Self::Inline(Box::new(c)))
                .map_err(serde::de::Error::custom),
        }
    }
}

/// One component spec or a list of them (`components.<name>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A list.
    Many(Vec<ComponentSpec>),
    /// A single one.
    One(ComponentSpec),
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
    /// The Wasm file, relative to the manifest's directory, a URL source or
    /// a registry package.
    pub source: Source,
    /// A description.
    #[serde(default)]
    pub description: Option<String>,
    /// Component variables: lower snake_case name → template over
    /// application variables.
    #[serde(default, deserialize_with = "lower_snake_keys")]
    pub variables: BTreeMap<String, String>,
    /// WASI environment variables.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Files mounted into the component.
    #[serde(default)]
    pub files: Vec<FilesMount>,
    /// Files excluded from `files`.
    #[serde(default)]
    pub exclude_files: Vec<String>,
    /// Hosts the component may call: `scheme://host[:port]`, wildcards, templates.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Spin 1's name for `allowed_outbound_hosts` (deprecated).
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    /// Key-value store labels the component may open (kebab-case or snake_case).
    #[serde(default, deserialize_with = "labels")]
    pub key_value_stores: Vec<String>,
    /// SQLite database labels (kebab-case or snake_case).
    #[serde(default, deserialize_with = "labels")]
    pub sqlite_databases: Vec<String>,
    /// AI models.
    #[serde(default)]
    pub ai_models: Vec<String>,
    /// Deployment target environments.
    #[serde(default)]
    pub targets: Option<Vec<toml::Value>>,
    /// `[component.<id>.build]`.
    #[serde(default)]
    pub build: Option<Build>,
    /// `[component.<id>.tool.<name>]`: settings for external tools.
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Table>,
    /// Whether dependencies inherit configuration.
    #[serde(default)]
    pub dependencies_inherit_configuration: Option<bool>,
    /// Component dependencies.
    #[serde(default)]
    pub dependencies: Option<toml::Table>,
    /// `[component.<id>.profile.<name>]`: build profile overrides.
    #[serde(default)]
    pub profile: BTreeMap<String, toml::Table>,
}

/// A component's `source`, as Spin's `ComponentSource`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Source {
    /// A local file path.
    Local(String),
    /// `{ url = "...", digest = "sha256:..." }`.
    Remote {
        /// Where to download it.
        url: String,
        /// Its expected digest.
        digest: String,
    },
    /// `{ registry = "...", package = "...", version = "..." }`.
    Registry {
        /// The registry (the default one when absent).
        #[serde(default)]
        registry: Option<String>,
        /// The package name.
        package: String,
        /// Its version.
        version: String,
    },
}

/// One `files` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum FilesMount {
    /// A glob or path.
    Pattern(String),
    /// `{ source = "dir", destination = "/" }`.
    Placement {
        /// The host path.
        source: String,
        /// The guest path.
        destination: String,
    },
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
    /// Reads and parses `path`, or `path/spin.toml` when `path` is a
    /// directory. Errors read as Spin's: "Failed to read Spin app manifest
    /// from ...", then the cause.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let path = if path.is_dir() {
            path.join("spin.toml")
        } else {
            path.to_path_buf()
        };
        let manifest = std::fs::read_to_string(&path)
            .map_err(anyhow::Error::from)
            .and_then(|text| parse(&text))
            .with_context(|| {
                format!("Failed to read Spin app manifest from {:?}", path.display())
            })?;
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
            _ => bail!(
                "component.{id}.source: remote sources are not supported by edge-runner; build the component and give its local path"
            ),
        }
    }
}

/// Parses manifest text as Spin does: the version first
/// (`spin_manifest_version = 2`; `spin_version = "1"` is the old format),
/// then the version 2 schema.
pub fn parse(text: &str) -> anyhow::Result<Manifest> {
    #[derive(Deserialize)]
    struct VersionProbe {
        #[serde(alias = "spin_version")]
        spin_manifest_version: toml::Value,
    }
    let probe: VersionProbe = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    match &probe.spin_manifest_version {
        toml::Value::Integer(2) => {}
        toml::Value::String(v) if v == "1" => bail!(
            "manifest version 1 (`spin_version = \"1\"`) is not supported by edge-runner: it reads version 2 manifests (`spin_manifest_version = 2`); `spin` 2 and later convert version 1 on load, see https://spinframework.dev/v3/manifest-reference"
        ),
        other => bail!("invalid manifest version: {:?}", display_value(other)),
    }
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A TOML value as Spin's error prints it: strings without their quotes.
fn display_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Manifest {
    /// The HTTP triggers with a component reference, each resolved to its
    /// component id (the loader has checked their settings).
    pub fn http_triggers(&self) -> Vec<HttpTrigger> {
        self.trigger
            .get("http")
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let Some(ComponentSpec::Reference(id)) = &t.component else {
                    return None;
                };
                let route = match t.config.get("route") {
                    Some(toml::Value::String(p)) => Some(p.clone()),
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
            .get("http")
            .and_then(|h| h.get("base"))
            .and_then(toml::Value::as_str)
            .unwrap_or("/")
            .to_string()
    }
}

/// Spin's id rule (`spin_serde::Id`): words separated by `delim`, each
/// starting with an ASCII letter, then letters and digits, each word all
/// lowercase or all UPPERCASE (`lower`: lowercase only). The messages are
/// Spin's.
fn check_id(id: &str, delim: char, lower: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty".into());
    }
    let wrong = if delim == '-' { '_' } else { '-' };
    if id.contains(wrong) {
        return Err(format!(
            "words must be separated with {delim:?}, not {wrong:?}"
        ));
    }
    for word in id.split(delim) {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("{delim:?}-separated words must not be empty"));
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!(
                "{delim:?}-separated words must start with an ASCII letter; got {first:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        for ch in chars {
            if ch.is_ascii_digit() {
                continue;
            }
            if !ch.is_ascii_alphanumeric() {
                return Err(format!(
                    "{delim:?}-separated words may only contain alphanumeric ASCII; got {ch:?}"
                ));
            }
            if ch.is_ascii_uppercase() != upper {
                return Err(format!(
                    "{delim:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"
                ));
            }
        }
        if lower && upper {
            return Err(format!(
                "Lower-case identifiers must be all lowercase; got {id:?}"
            ));
        }
    }
    Ok(())
}

/// A component id or reference (`router`, `cache-api`): Spin's `KebabId`.
/// The id becomes the `<id>.spin.internal` host of service chaining.
pub fn kebab_id(id: &str) -> Result<(), String> {
    check_id(id, '-', false)
}

/// A variable name (`upstream_origin`): Spin's `LowerSnakeId`.
pub fn lower_snake_id(id: &str) -> Result<(), String> {
    check_id(id, '_', true)
}

/// A map key checked while parsing, so the error carries the key's line:
/// `KEBAB` for component ids, `LOWER_SNAKE` for variable names.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct CheckedKey<const KIND: u8>(String);

const KEBAB: u8 = 0;
const LOWER_SNAKE: u8 = 1;

impl<'de, const KIND: u8> Deserialize<'de> for CheckedKey<KIND> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let checked = if KIND == KEBAB {
            kebab_id(&s)
        } else {
            lower_snake_id(&s)
        };
        checked.map_err(serde::de::Error::custom)?;
        Ok(Self(s))
    }
}

fn checked_keys<'de, const KIND: u8, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    let map = BTreeMap::<CheckedKey<KIND>, V>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k.0, v)).collect())
}

fn kebab_keys<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
) -> Result<BTreeMap<String, V>, D::Error> {
    checked_keys::<KEBAB, D, V>(d)
}

fn lower_snake_keys<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
) -> Result<BTreeMap<String, V>, D::Error> {
    checked_keys::<LOWER_SNAKE, D, V>(d)
}

/// Key-value and SQLite labels: kebab-case or snake_case, as Spin's
/// `kebab_or_snake_case`.
fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let labels = Vec::<String>::deserialize(d)?;
    for label in &labels {
        if kebab_id(label).is_err() && check_id(label, '_', false).is_err() {
            return Err(serde::de::Error::custom(format!(
                "{label:?}: expected kebab-case or snake_case"
            )));
        }
    }
    Ok(labels)
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
    fn an_unknown_component_field_is_named_with_its_line() {
        let e = error_of(&MINIMAL.replace("key_value_stores", "key_value_storez"));
        assert!(e.contains("key_value_storez"), "{e}");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn manifest_version_1_is_refused_as_unsupported_and_others_as_invalid() {
        let v1 = MINIMAL.replace("spin_manifest_version = 2", "spin_version = \"1\"");
        assert!(error_of(&v1).contains("version 1"), "{}", error_of(&v1));
        for bad in ["\"2\"", "3", "\"0\""] {
            let text = MINIMAL.replace("= 2", &format!("= {bad}"));
            let e = error_of(&text);
            assert!(e.contains("invalid manifest version"), "{bad}: {e}");
        }
        let e = error_of("[application]\nname = \"t\"\n");
        assert!(e.contains("missing field `spin_manifest_version`"), "{e}");
    }

    #[test]
    fn a_bad_variable_name_is_an_error_at_its_line() {
        let e = error_of(&MINIMAL.replace("threshold = { default", "Threshold = { default"));
        assert!(e.contains("must be all lowercase or all UPPERCASE"), "{e}");
        assert!(e.contains("line 6"), "{e}");
    }

    #[test]
    fn component_ids_follow_spin_rules() {
        assert!(kebab_id("router").is_ok());
        assert!(kebab_id("cache-api").is_ok());
        assert!(kebab_id("HTTP-api").is_ok());
        assert!(
            kebab_id("Cache")
                .unwrap_err()
                .contains("all lowercase or all UPPERCASE")
        );
        assert!(kebab_id("cache_2").unwrap_err().contains("not '_'"));
        assert!(
            kebab_id("-cache")
                .unwrap_err()
                .contains("must not be empty")
        );
        assert!(
            kebab_id("cache-2")
                .unwrap_err()
                .contains("start with an ASCII letter")
        );
        assert!(kebab_id("a--b").is_err());
        assert!(lower_snake_id("upstream_origin").is_ok());
        assert!(lower_snake_id("var_2").is_err());
    }

    #[test]
    fn a_bad_component_reference_in_a_trigger_is_an_error() {
        let e = error_of(&MINIMAL.replace("component = \"cache\"", "component = \"1-cache\""));
        assert!(
            e.contains("must start with an ASCII letter; got '1'"),
            "{e}"
        );
    }

    #[test]
    fn a_build_environment_is_not_a_spin_field() {
        let text = format!(
            "{MINIMAL}[component.cache.build]\ncommand = \"true\"\nenvironment = {{ A = \"b\" }}\n"
        );
        assert!(error_of(&text).contains("environment"));
    }

    #[test]
    fn a_label_must_be_kebab_or_snake_case() {
        let e = error_of(&MINIMAL.replace("[\"default\"]", "[\"my store\"]"));
        assert!(e.contains("expected kebab-case or snake_case"), "{e}");
    }
}
