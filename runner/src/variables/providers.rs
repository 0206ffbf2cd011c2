//! Where application variable values come from, besides their defaults.
//!
//! `spin up` asks its providers in order and takes the first value
//! (spinframework/spin `crates/runtime-factors/src/build.rs` puts the
//! `--variable` values first, "with highest precedence";
//! `crates/runtime-config/src/variables.rs` puts the environment provider
//! after any runtime-config providers). So: `--variable`, then
//! `SPIN_VARIABLE_<NAME>`, then the manifest default. See [`spin_up_providers`].

use std::{collections::HashMap, ffi::OsString, fmt, path::PathBuf, str::FromStr};

use anyhow::Context as _;

/// A source of variable values.
pub trait Provider: Send + Sync + fmt::Debug {
    /// The value of the application variable `name` (a valid name), `Ok(None)`
    /// if this provider has none, or an error message if it failed.
    fn get(&self, name: &str) -> Result<Option<String>, String>;
}

/// The providers of `spin up`, in Spin's order: the `--variable` values,
/// then the environment.
pub fn spin_up_providers(flags: StaticProvider, env: EnvProvider) -> Vec<Box<dyn Provider>> {
    vec![Box::new(flags), Box::new(env)]
}

/// Fixed values: what `--variable` gives (Spin's `StaticVariablesProvider`).
#[derive(Clone, Default)]
pub struct StaticProvider {
    values: HashMap<String, String>,
}

impl StaticProvider {
    /// Values by name; a later pair for the same name wins. Names that no
    /// application variable has are never asked for, so they are ignored.
    pub fn new(values: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            values: values.into_iter().collect(),
        }
    }
}

impl Provider for StaticProvider {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.values.get(name).cloned())
    }
}

impl fmt::Debug for StaticProvider {
    /// Names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.values.keys().collect();
        names.sort();
        f.debug_struct("StaticProvider")
            .field("names", &names)
            .finish()
    }
}

/// The prefix of the environment variables the [`EnvProvider`] reads.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// Values from `SPIN_VARIABLE_<NAME in upper case>` (Spin's
/// `EnvVariablesProvider` with its default prefix).
///
/// It reads an environment given to it, so tests need not touch the process
/// environment: `EnvProvider::new(std::env::vars_os())` in the runner.
/// Unlike Spin, it does not also read a `.env` file.
#[derive(Clone, Default)]
pub struct EnvProvider {
    vars: HashMap<String, OsString>,
}

impl EnvProvider {
    /// Keeps the `SPIN_VARIABLE_*` entries of an environment.
    pub fn new<K, V>(env: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let vars = env
            .into_iter()
            .filter_map(|(key, value)| {
                let key = key.into().into_string().ok()?;
                key.starts_with(ENV_PREFIX).then(|| (key, value.into()))
            })
            .collect();
        Self { vars }
    }

    /// The provider over this process's environment.
    pub fn from_process_env() -> Self {
        Self::new(std::env::vars_os())
    }
}

impl Provider for EnvProvider {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        let key = format!("{ENV_PREFIX}{}", name.to_ascii_uppercase());
        match self.vars.get(&key) {
            None => Ok(None),
            Some(value) => value
                .clone()
                .into_string()
                .map(Some)
                .map_err(|_| format!("failed to resolve env var {key}")),
        }
    }
}

impl fmt::Debug for EnvProvider {
    /// Names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("EnvProvider").field("vars", &names).finish()
    }
}

/// One `--variable` flag, as Spin's `VariableSource` reads it:
///
/// - `key=value`: the value;
/// - `key=@file`: the content of a text file;
/// - `@file.json` / `@file.toml`: a table of string values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VariableFlag {
    /// `key=value`.
    Literal(String, String),
    /// `key=@path`.
    FileContent(String, PathBuf),
    /// `@path.json`.
    JsonFile(PathBuf),
    /// `@path.toml`.
    TomlFile(PathBuf),
}

impl FromStr for VariableFlag {
    type Err = String;

    /// Parses the flag's text (usable as a clap `value_parser`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix('@') {
            let path = PathBuf::from(path);
            match path.extension().and_then(|ext| ext.to_str()) {
                Some("json") => Ok(Self::JsonFile(path)),
                Some("toml") => Ok(Self::TomlFile(path)),
                _ => Err("variable files must end in .json or .toml".to_string()),
            }
        } else if let Some((key, value)) = s.split_once('=') {
            match value.strip_prefix('@') {
                Some(path) => Ok(Self::FileContent(key.to_string(), PathBuf::from(path))),
                None => Ok(Self::Literal(key.to_string(), value.to_string())),
            }
        } else {
            Err("variables must be in the form 'key=value' or '@file'".to_string())
        }
    }
}

impl VariableFlag {
    /// The values this flag sets, reading its file if it names one.
    pub fn values(&self) -> anyhow::Result<Vec<(String, String)>> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path).with_context(|| format!("Failed to read {path:?}."))
        };
        Ok(match self {
            Self::Literal(key, value) => vec![(key.clone(), value.clone())],
            Self::FileContent(key, path) => vec![(key.clone(), read(path)?)],
            Self::JsonFile(path) => {
                let table: HashMap<String, String> = serde_json::from_str(&read(path)?)
                    .with_context(|| format!("Failed to parse JSON from {path:?}."))?;
                table.into_iter().collect()
            }
            Self::TomlFile(path) => {
                let table: HashMap<String, String> = toml::from_str(&read(path)?)
                    .with_context(|| format!("Failed to parse TOML from {path:?}."))?;
                table.into_iter().collect()
            }
        })
    }
}

impl StaticProvider {
    /// The provider for a list of `--variable` flags; for a name set more
    /// than once, the last flag wins (as in Spin).
    pub fn from_flags(flags: &[VariableFlag]) -> anyhow::Result<Self> {
        let mut values = Vec::new();
        for flag in flags {
            values.extend(flag.values()?);
        }
        Ok(Self::new(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_provider_reads_the_upper_cased_prefixed_name() {
        // Spin: provider_get, provider_get_missing.
        let env = EnvProvider::new([
            ("SPIN_VARIABLE_API_TOKEN", "t0k3n"),
            ("api_token", "not this"),
            ("SPIN_VARIABLE_api_url", "not this either"),
        ]);
        assert_eq!(env.get("api_token"), Ok(Some("t0k3n".to_string())));
        assert_eq!(env.get("api_url"), Ok(None));
        assert_eq!(env.get("definitely_not_set"), Ok(None));
    }

    #[cfg(unix)]
    #[test]
    fn env_provider_fails_on_values_that_are_not_unicode() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![0xff, 0xfe]);
        let env = EnvProvider::new([(OsString::from("SPIN_VARIABLE_X"), bad)]);
        assert_eq!(
            env.get("x"),
            Err("failed to resolve env var SPIN_VARIABLE_X".to_string())
        );
    }

    #[test]
    fn providers_never_show_values_in_debug_output() {
        let env = EnvProvider::new([("SPIN_VARIABLE_SECRET", "hunter2")]);
        let flags = StaticProvider::new([("secret".to_string(), "hunter2".to_string())]);
        let shown = format!("{env:?} {flags:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("SPIN_VARIABLE_SECRET") && shown.contains("secret"),
            "{shown}"
        );
    }

    #[test]
    fn variable_flags_parse_as_spin_reads_them() {
        // Spin: source_from_str, source_from_str_errors.
        let cases = [
            ("k=v", Ok(VariableFlag::Literal("k".into(), "v".into()))),
            ("k=a=b", Ok(VariableFlag::Literal("k".into(), "a=b".into()))),
            ("k=", Ok(VariableFlag::Literal("k".into(), "".into()))),
            (
                "k=@v.txt",
                Ok(VariableFlag::FileContent("k".into(), "v.txt".into())),
            ),
            ("@file.json", Ok(VariableFlag::JsonFile("file.json".into()))),
            ("@file.toml", Ok(VariableFlag::TomlFile("file.toml".into()))),
            (
                "nope",
                Err("variables must be in the form 'key=value' or '@file'"),
            ),
            ("@whatami", Err("variable files must end in .json or .toml")),
            (
                "@wrong.kind",
                Err("variable files must end in .json or .toml"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                text.parse::<VariableFlag>(),
                expected.map_err(String::from),
                "{text}"
            );
        }
    }

    #[test]
    fn variable_flags_read_files_and_the_last_one_wins() {
        // Spin: file_content_get_variables, json_get_variables, toml.
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("token.txt");
        let json = dir.path().join("vars.json");
        let toml = dir.path().join("vars.toml");
        std::fs::write(&text, "sausage time!").unwrap();
        std::fs::write(&json, r#"{"a": "from json", "b": "json b"}"#).unwrap();
        std::fs::write(&toml, "a = \"from toml\"\n").unwrap();
        let flags = [
            VariableFlag::JsonFile(json.clone()),
            VariableFlag::TomlFile(toml),
            VariableFlag::FileContent("token".into(), text),
            VariableFlag::Literal("b".into(), "literal b".into()),
        ];
        let provider = StaticProvider::from_flags(&flags).unwrap();
        assert_eq!(provider.get("a"), Ok(Some("from toml".into())));
        assert_eq!(provider.get("b"), Ok(Some("literal b".into())));
        assert_eq!(provider.get("token"), Ok(Some("sausage time!".into())));

        std::fs::write(&json, r#"{"a": 1}"#).unwrap();
        let err = VariableFlag::JsonFile(json).values().unwrap_err();
        assert!(err.to_string().starts_with("Failed to parse JSON"), "{err}");
        let missing = VariableFlag::FileContent("k".into(), dir.path().join("nope"));
        assert!(
            missing
                .values()
                .unwrap_err()
                .to_string()
                .starts_with("Failed to read")
        );
    }
}
