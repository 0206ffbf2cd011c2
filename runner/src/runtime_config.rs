//! The runtime configuration file (Spin's `runtime-config.toml`, given with
//! `--runtime-config-file`): which backend serves each key-value store label
//! and where each SQLite database lives.
//!
//! edge-runner reads the subset of Spin's format it implements and rejects the
//! rest loudly, before listening, so a file written for Spin never half-works:
//!
//! ```toml
//! # Where the default SQLite store lives when `--state-dir` is not given
//! # (Spin's rule; "" means no state directory: the default store is in memory).
//! state_dir = ".spin"
//!
//! # SQLite, as Spin's `type = "spin"`: `path` is relative to this file's
//! # directory; without `path` the store is in memory (as in Spin).
//! [key_value_store.default]
//! type = "spin"
//! path = ".spin/sqlite_key_value.db"
//!
//! # Redis, shared by every replica.
//! [key_value_store.shared]
//! type = "redis"
//! url = "redis://redis:6379"
//!
//! # A SQLite database for `sqlite_databases = ["analytics"]`, as Spin's
//! # `type = "spin"`: `path` is relative to the WORKING directory (Spin's
//! # rule for SQLite, unlike key-value); without `path` it is in memory.
//! [sqlite_database.analytics]
//! type = "spin"
//! path = "data/analytics.db"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The top-level tables and keys Spin understands that edge-runner does not
/// implement. Naming them gives a better error than "unknown key".
const SPIN_ONLY_KEYS: &[&str] = &[
    "variables_provider",
    "config_provider",
    "llm_compute",
    "client_tls",
    "blob_store",
    "outbound_http",
];

/// Key-value store types Spin ships that edge-runner does not.
const SPIN_ONLY_STORE_TYPES: &[&str] = &["azure_cosmos", "aws_dynamo"];

/// SQLite database types Spin ships that edge-runner does not.
const SPIN_ONLY_DATABASE_TYPES: &[&str] = &["libsql"];

/// What the runner reads, for the messages.
const READS: &str = "`[key_value_store.<label>]`, `[sqlite_database.<label>]`, `state_dir`, `log_dir` and `max_instance_memory`";

/// A parsed runtime configuration. `Default` is what Spin uses without a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `[key_value_store.<label>]` tables, by label.
    pub key_value_stores: BTreeMap<String, KeyValueStoreConfig>,
    /// `[sqlite_database.<label>]` tables, by label.
    pub sqlite_databases: BTreeMap<String, SqliteDatabaseConfig>,
    /// The top-level `state_dir` key, if present.
    pub state_dir: Option<StateDir>,
    /// The top-level `max_instance_memory` key (bytes), if an integer.
    pub max_instance_memory: Option<usize>,
    /// The top-level `log_dir` key, if a string (`""` is [`StateDir::Unset`]).
    pub log_dir: Option<StateDir>,
}

/// One `[key_value_store.<label>]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueStoreConfig {
    /// `type = "spin"`: embedded SQLite.
    ///
    /// ```toml
    /// [key_value_store.default]
    /// type = "spin"
    /// path = "data/kv.db"   # optional; omitted = in memory
    /// ```
    Spin {
        /// The database file, already resolved against the runtime config
        /// file's directory; `None` keeps the store in memory (Spin's rule).
        path: Option<PathBuf>,
    },
    /// `type = "redis"`: a Redis server, shared by every replica.
    ///
    /// ```toml
    /// [key_value_store.default]
    /// type = "redis"
    /// url = "redis://redis:6379/0"
    /// ```
    Redis {
        /// The server's URL (`redis://[user:password@]host[:port][/db]`).
        url: String,
    },
}

/// One `[sqlite_database.<label>]` table: Spin's `type = "spin"` (its
/// `InProcDatabase`, the only type edge-runner has).
///
/// ```toml
/// [sqlite_database.analytics]
/// type = "spin"
/// path = "data/analytics.db"   # optional; omitted = in memory
/// allow_attach_file = false    # optional; Spin's default
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteDatabaseConfig {
    /// The database file as written; Spin resolves a relative path against
    /// the working directory (`crates/runtime-config`
    /// `sqlite_config_resolver`), not the runtime config's directory.
    /// `None` keeps the database in memory.
    pub path: Option<PathBuf>,
    /// Whether `ATTACH` of an existing file is allowed (Spin's
    /// `allow_attach_file`, default false).
    pub allow_attach_file: bool,
}

/// The top-level `state_dir` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateDir {
    /// `state_dir = ""`: no state directory; the default store is in memory.
    Unset,
    /// `state_dir = "<path>"`, relative to the working directory as in Spin.
    Path(PathBuf),
}

/// Why a runtime configuration was rejected. Each message names the table or
/// key at fault and what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeConfigError {
    /// The file could not be read.
    #[error("cannot read the runtime config file {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not TOML.
    #[error("the runtime config is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// A top-level key Spin knows but edge-runner does not implement.
    #[error(
        "`{key}` in the runtime config is a Spin setting edge-runner does not support; \
         remove it (edge-runner reads only {READS})"
    )]
    Unsupported {
        /// The top-level key.
        key: String,
    },
    /// `max_instance_memory` is a negative integer (Spin's
    /// `try_into` error).
    #[error("max_instance_memory: {0}")]
    InvalidMaxInstanceMemory(String),
    /// A top-level key nobody knows.
    #[error(
        "unknown key `{key}` in the runtime config; edge-runner reads only \
         {READS}: remove it or fix its spelling"
    )]
    UnknownTopLevelKey {
        /// The top-level key.
        key: String,
    },
    /// A key holds a value of the wrong TOML type.
    #[error("`{key}` in the runtime config must be {expected}")]
    WrongType {
        /// The dotted key, e.g. `key_value_store.default.path`.
        key: String,
        /// What it must be, e.g. "a string".
        expected: &'static str,
    },
    /// A store table has no `type`.
    #[error(
        "`[key_value_store.{label}]` has no `type`; add `type = \"spin\"` (SQLite) \
         or `type = \"redis\"` with a `url`"
    )]
    MissingType {
        /// The store label.
        label: String,
    },
    /// A store type edge-runner does not implement.
    #[error(
        "`[key_value_store.{label}]` has type {store_type:?}, which edge-runner does not \
         support{spin_only}; use `type = \"spin\"` (SQLite) or `type = \"redis\"`",
        spin_only = if SPIN_ONLY_STORE_TYPES.contains(&store_type.as_str()) {
            " (Spin has it, edge-runner does not)"
        } else {
            ""
        }
    )]
    UnknownType {
        /// The store label.
        label: String,
        /// The `type` value.
        store_type: String,
    },
    /// A key a store table of this type does not take.
    #[error(
        "`[key_value_store.{label}]` has unknown key `{key}` for type {store_type:?}; \
         its keys are {allowed}: remove it or fix its spelling"
    )]
    UnknownKey {
        /// The store label.
        label: String,
        /// The store type.
        store_type: &'static str,
        /// The offending key.
        key: String,
        /// The keys this type takes, for the message.
        allowed: &'static str,
    },
    /// A Redis store without a `url`.
    #[error(
        "`[key_value_store.{label}]` has type \"redis\" but no `url`; add e.g. `url = \"redis://localhost:6379\"`"
    )]
    MissingUrl {
        /// The store label.
        label: String,
    },
    /// A SQLite database table has no `type`.
    #[error("`[sqlite_database.{label}]` has no `type`; add `type = \"spin\"`")]
    MissingDatabaseType {
        /// The database label.
        label: String,
    },
    /// A SQLite database type edge-runner does not implement.
    #[error(
        "`[sqlite_database.{label}]` has type {database_type:?}, which edge-runner does not \
         support{spin_only}; use `type = \"spin\"` (a local SQLite file)",
        spin_only = if SPIN_ONLY_DATABASE_TYPES.contains(&database_type.as_str()) {
            " (Spin has it, edge-runner does not)"
        } else {
            " (Spin refuses it too: \"Unknown database kind\")"
        }
    )]
    UnknownDatabaseType {
        /// The database label.
        label: String,
        /// The `type` value.
        database_type: String,
    },
    /// A key a `type = "spin"` database table does not take (Spin's
    /// `deny_unknown_fields`).
    #[error(
        "`[sqlite_database.{label}]` has unknown key `{key}`; its keys are `type`, `path` \
         and `allow_attach_file`: remove it or fix its spelling"
    )]
    UnknownDatabaseKey {
        /// The database label.
        label: String,
        /// The offending key.
        key: String,
    },
    /// A Redis URL the client cannot use.
    #[error(
        "`[key_value_store.{label}]` has an invalid Redis url {url:?}: {reason}; \
         write it as `redis://[user:password@]host[:port][/db]`"
    )]
    InvalidRedisUrl {
        /// The store label.
        label: String,
        /// The URL, with any password masked.
        url: String,
        /// The client's complaint.
        reason: String,
    },
}

/// Reads and parses the runtime config file at `path`; relative store paths
/// are resolved against its directory, as Spin does.
pub fn load(path: &Path) -> Result<RuntimeConfig, RuntimeConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| RuntimeConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path.parent())
}

/// Parses runtime config text. `base_dir` is the directory relative
/// `[key_value_store.*] path`s are resolved against (the file's directory);
/// `None` leaves them as written. `[sqlite_database.*] path`s are kept as
/// written (Spin resolves them against the working directory).
pub fn parse(text: &str, base_dir: Option<&Path>) -> Result<RuntimeConfig, RuntimeConfigError> {
    let table: toml::Table = toml::from_str(text)?;
    let mut config = RuntimeConfig::default();
    for (key, value) in &table {
        match key.as_str() {
            "key_value_store" => {
                let stores = value.as_table().ok_or(RuntimeConfigError::WrongType {
                    key: key.clone(),
                    expected: "a table of `[key_value_store.<label>]` tables",
                })?;
                for (label, store) in stores {
                    let store = parse_store(label, store, base_dir)?;
                    config.key_value_stores.insert(label.clone(), store);
                }
            }
            "sqlite_database" => {
                let databases = value.as_table().ok_or(RuntimeConfigError::WrongType {
                    key: key.clone(),
                    expected: "a table of `[sqlite_database.<label>]` tables",
                })?;
                for (label, database) in databases {
                    let database = parse_database(label, database)?;
                    config.sqlite_databases.insert(label.clone(), database);
                }
            }
            "state_dir" => {
                let dir = value.as_str().ok_or(RuntimeConfigError::WrongType {
                    key: key.clone(),
                    expected: "a string",
                })?;
                config.state_dir = Some(match dir {
                    "" => StateDir::Unset,
                    dir => StateDir::Path(PathBuf::from(dir)),
                });
            }
            "log_dir" => {
                // As Spin's `RuntimeConfigSourceFinalizer::log_dir`: a string
                // is the directory (`""`: no log files); any other value is
                // ignored.
                config.log_dir = value.as_str().map(|dir| match dir {
                    "" => StateDir::Unset,
                    dir => StateDir::Path(PathBuf::from(dir)),
                });
            }
            "max_instance_memory" => {
                // As Spin's `RuntimeConfigSourceFinalizer::max_instance_memory`:
                // an integer is the limit (a negative one is an error); any
                // other value is ignored.
                if let Some(bytes) = value.as_integer() {
                    config.max_instance_memory = Some(usize::try_from(bytes).map_err(|e| {
                        RuntimeConfigError::InvalidMaxInstanceMemory(e.to_string())
                    })?);
                }
            }
            key if SPIN_ONLY_KEYS.contains(&key) => {
                return Err(RuntimeConfigError::Unsupported {
                    key: key.to_owned(),
                });
            }
            key => {
                return Err(RuntimeConfigError::UnknownTopLevelKey {
                    key: key.to_owned(),
                });
            }
        }
    }
    Ok(config)
}

fn parse_store(
    label: &str,
    value: &toml::Value,
    base_dir: Option<&Path>,
) -> Result<KeyValueStoreConfig, RuntimeConfigError> {
    let table = value
        .as_table()
        .ok_or_else(|| RuntimeConfigError::WrongType {
            key: format!("key_value_store.{label}"),
            expected: "a table with a `type` key",
        })?;
    let string = |key: &str| -> Result<Option<&str>, RuntimeConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_str()
                .map(Some)
                .ok_or_else(|| RuntimeConfigError::WrongType {
                    key: format!("key_value_store.{label}.{key}"),
                    expected: "a string",
                }),
        }
    };
    let store_type = string("type")?.ok_or_else(|| RuntimeConfigError::MissingType {
        label: label.to_owned(),
    })?;
    let (store_type, allowed): (&'static str, &'static [&'static str]) = match store_type {
        "spin" => ("spin", &["type", "path"]),
        "redis" => ("redis", &["type", "url"]),
        other => {
            return Err(RuntimeConfigError::UnknownType {
                label: label.to_owned(),
                store_type: other.to_owned(),
            });
        }
    };
    if let Some(key) = table.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(RuntimeConfigError::UnknownKey {
            label: label.to_owned(),
            store_type,
            key: key.clone(),
            allowed: if store_type == "spin" {
                "`type` and `path`"
            } else {
                "`type` and `url`"
            },
        });
    }
    match store_type {
        "spin" => {
            // Spin resolves a relative `path` against the runtime config
            // file's directory (crates/key-value-spin `resolve_relative_path`).
            let path = string("path")?.map(|path| match base_dir {
                Some(base) if Path::new(path).is_relative() => base.join(path),
                _ => PathBuf::from(path),
            });
            Ok(KeyValueStoreConfig::Spin { path })
        }
        _ => {
            let url = string("url")?.ok_or_else(|| RuntimeConfigError::MissingUrl {
                label: label.to_owned(),
            })?;
            if let Err(err) = ::redis::Client::open(url) {
                return Err(RuntimeConfigError::InvalidRedisUrl {
                    label: label.to_owned(),
                    url: redact_url(url),
                    reason: err.to_string(),
                });
            }
            Ok(KeyValueStoreConfig::Redis {
                url: url.to_owned(),
            })
        }
    }
}

/// One `[sqlite_database.<label>]` table, as Spin's `RuntimeConfigResolver`
/// (crates/sqlite) reads it: a `type`, then `type = "spin"`'s fields.
fn parse_database(
    label: &str,
    value: &toml::Value,
) -> Result<SqliteDatabaseConfig, RuntimeConfigError> {
    let table = value
        .as_table()
        .ok_or_else(|| RuntimeConfigError::WrongType {
            key: format!("sqlite_database.{label}"),
            expected: "a table with a `type` key",
        })?;
    let wrong = |key: &str, expected| RuntimeConfigError::WrongType {
        key: format!("sqlite_database.{label}.{key}"),
        expected,
    };
    let database_type = match table.get("type") {
        None => {
            return Err(RuntimeConfigError::MissingDatabaseType {
                label: label.to_owned(),
            });
        }
        Some(value) => value.as_str().ok_or_else(|| wrong("type", "a string"))?,
    };
    if database_type != "spin" {
        return Err(RuntimeConfigError::UnknownDatabaseType {
            label: label.to_owned(),
            database_type: database_type.to_owned(),
        });
    }
    if let Some(key) = table
        .keys()
        .find(|key| !["type", "path", "allow_attach_file"].contains(&key.as_str()))
    {
        return Err(RuntimeConfigError::UnknownDatabaseKey {
            label: label.to_owned(),
            key: key.clone(),
        });
    }
    let path = match table.get("path") {
        None => None,
        Some(value) => Some(PathBuf::from(
            value.as_str().ok_or_else(|| wrong("path", "a string"))?,
        )),
    };
    let allow_attach_file = match table.get("allow_attach_file") {
        None => false,
        Some(value) => value
            .as_bool()
            .ok_or_else(|| wrong("allow_attach_file", "true or false"))?,
    };
    Ok(SqliteDatabaseConfig {
        path,
        allow_attach_file,
    })
}

/// `url` with any password masked, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

impl RuntimeConfig {
    /// The state directory, by Spin's rule: `--state-dir` when given, else
    /// this file's `state_dir`, else `<app-dir>/.spin`. `None` means no state
    /// directory, so the default store is in memory. Relative paths are made
    /// absolute against the working directory, as Spin does.
    pub fn resolve_state_dir(
        &self,
        cli_state_dir: Option<&Path>,
        app_dir: &Path,
    ) -> std::io::Result<Option<PathBuf>> {
        user_provided_path(
            cli_state_dir,
            self.state_dir.as_ref(),
            Some(app_dir.join(".spin")),
        )
    }

    /// Where component output is written, with Spin's precedence
    /// (`RuntimeConfigSourceFinalizer::log_dir`): `-L/--log-dir` (`""`:
    /// nowhere), else this file's `log_dir`, else `<state dir>/logs`, else
    /// nowhere.
    pub fn resolve_log_dir(
        &self,
        cli_log_dir: Option<&Path>,
        state_dir: Option<&Path>,
    ) -> std::io::Result<Option<PathBuf>> {
        user_provided_path(
            cli_log_dir,
            self.log_dir.as_ref(),
            state_dir.map(|d| d.join("logs")),
        )
    }
}

/// Spin's `UserProvidedPath` precedence, for `state_dir` and `log_dir`: the
/// flag (`""`: none), else the runtime config's key (`""`: none), else
/// `default`; made absolute against the working directory.
fn user_provided_path(
    flag: Option<&Path>,
    from_file: Option<&StateDir>,
    default: Option<PathBuf>,
) -> std::io::Result<Option<PathBuf>> {
    let dir = match (flag, from_file) {
        (Some(dir), _) if dir.as_os_str().is_empty() => None,
        (Some(dir), _) => Some(dir.to_owned()),
        (None, Some(StateDir::Unset)) => None,
        (None, Some(StateDir::Path(dir))) => Some(dir.clone()),
        (None, None) => default,
    };
    dir.map(std::path::absolute).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> RuntimeConfig {
        parse(text, Some(Path::new("/etc/app"))).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(text, Some(Path::new("/etc/app")))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_file_configures_nothing() {
        assert_eq!(parse_ok(""), RuntimeConfig::default());
    }

    #[test]
    fn spin_store_path_is_relative_to_the_config_file() {
        let config = parse_ok(
            r#"
            [key_value_store.default]
            type = "spin"
            path = "data/kv.db"
            [key_value_store.abs]
            type = "spin"
            path = "/var/kv.db"
            [key_value_store.mem]
            type = "spin"
            "#,
        );
        assert_eq!(
            config.key_value_stores["default"],
            KeyValueStoreConfig::Spin {
                path: Some(PathBuf::from("/etc/app/data/kv.db"))
            }
        );
        assert_eq!(
            config.key_value_stores["abs"],
            KeyValueStoreConfig::Spin {
                path: Some(PathBuf::from("/var/kv.db"))
            }
        );
        assert_eq!(
            config.key_value_stores["mem"],
            KeyValueStoreConfig::Spin { path: None }
        );
    }

    #[test]
    fn redis_store_takes_a_url() {
        let config = parse_ok(
            r#"
            [key_value_store.default]
            type = "redis"
            url = "redis://redis:6379/2"
            "#,
        );
        assert_eq!(
            config.key_value_stores["default"],
            KeyValueStoreConfig::Redis {
                url: "redis://redis:6379/2".into()
            }
        );
    }

    #[test]
    fn load_resolves_paths_against_the_file_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runtime-config.toml");
        std::fs::write(
            &file,
            "[key_value_store.x]\ntype = \"spin\"\npath = \"kv.db\"\n",
        )
        .unwrap();
        let config = load(&file).unwrap();
        assert_eq!(
            config.key_value_stores["x"],
            KeyValueStoreConfig::Spin {
                path: Some(dir.path().join("kv.db"))
            }
        );
    }

    #[test]
    fn load_of_a_missing_file_names_it() {
        let err = load(Path::new("/nonexistent/rc.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/rc.toml"), "{err}");
    }

    #[test]
    fn unknown_store_type_is_named_with_the_fix() {
        let err = parse_err("[key_value_store.cache]\ntype = \"memcached\"\n");
        assert!(err.contains("[key_value_store.cache]"), "{err}");
        assert!(err.contains("\"memcached\""), "{err}");
        assert!(err.contains("type = \"spin\""), "{err}");
    }

    #[test]
    fn spin_only_store_type_says_so() {
        let err = parse_err("[key_value_store.x]\ntype = \"azure_cosmos\"\n");
        assert!(err.contains("Spin has it"), "{err}");
    }

    #[test]
    fn missing_type_is_an_error() {
        let err = parse_err("[key_value_store.x]\npath = \"a.db\"\n");
        assert!(err.contains("[key_value_store.x]` has no `type`"), "{err}");
    }

    #[test]
    fn unknown_key_in_a_store_table_is_named() {
        let err =
            parse_err("[key_value_store.x]\ntype = \"redis\"\nurl = \"redis://h\"\nuri = \"x\"\n");
        assert!(err.contains("unknown key `uri`"), "{err}");
        assert!(err.contains("`type` and `url`"), "{err}");
        let err = parse_err("[key_value_store.x]\ntype = \"spin\"\nurl = \"redis://h\"\n");
        assert!(err.contains("unknown key `url` for type \"spin\""), "{err}");
    }

    #[test]
    fn redis_without_url_is_an_error() {
        let err = parse_err("[key_value_store.x]\ntype = \"redis\"\n");
        assert!(err.contains("no `url`"), "{err}");
    }

    #[test]
    fn invalid_redis_url_is_rejected_with_the_password_masked() {
        let err = parse_err(
            "[key_value_store.x]\ntype = \"redis\"\nurl = \"http://user:s3cret@host/\"\n",
        );
        assert!(err.contains("invalid Redis url"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn wrong_value_types_name_the_key() {
        let err = parse_err("[key_value_store.x]\ntype = \"spin\"\npath = 3\n");
        assert!(
            err.contains("`key_value_store.x.path` in the runtime config must be a string"),
            "{err}"
        );
        let err = parse_err("key_value_store = 1\n");
        assert!(err.contains("`key_value_store`"), "{err}");
        let err = parse_err("[key_value_store]\nx = 1\n");
        assert!(err.contains("`key_value_store.x`"), "{err}");
    }

    #[test]
    fn spin_tables_edge_runner_lacks_are_not_supported() {
        for text in [
            "[[variables_provider]]\ntype = \"vault\"\n",
            "[llm_compute]\ntype = \"remote_http\"\n",
        ] {
            let err = parse_err(text);
            assert!(
                err.contains("edge-runner does not support"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn log_dir_follows_spins_precedence() {
        let state = Some(Path::new("/srv/app/.spin"));
        let none = parse_ok("");
        assert_eq!(
            none.resolve_log_dir(None, state).unwrap(),
            Some(PathBuf::from("/srv/app/.spin/logs"))
        );
        assert_eq!(none.resolve_log_dir(None, None).unwrap(), None);
        let from_file = parse_ok("log_dir = \"/var/log/app\"\n");
        assert_eq!(
            from_file.resolve_log_dir(None, state).unwrap(),
            Some(PathBuf::from("/var/log/app"))
        );
        assert_eq!(
            from_file
                .resolve_log_dir(Some(Path::new("/cli")), state)
                .unwrap(),
            Some(PathBuf::from("/cli"))
        );
        assert_eq!(
            from_file
                .resolve_log_dir(Some(Path::new("")), state)
                .unwrap(),
            None
        );
        let unset = parse_ok("log_dir = \"\"\n");
        assert_eq!(unset.resolve_log_dir(None, state).unwrap(), None);
        // Spin ignores a value that is not a string.
        let ignored = parse_ok("log_dir = 1\n");
        assert_eq!(
            ignored.resolve_log_dir(None, state).unwrap(),
            Some(PathBuf::from("/srv/app/.spin/logs"))
        );
    }

    #[test]
    fn max_instance_memory_is_read_as_spin_reads_it() {
        assert_eq!(
            parse_ok("max_instance_memory = 1048576\n").max_instance_memory,
            Some(1 << 20)
        );
        // Not an integer: ignored, as Spin's `as_integer` lookup ignores it.
        assert_eq!(
            parse_ok("max_instance_memory = \"1M\"\n").max_instance_memory,
            None
        );
        assert!(parse_err("max_instance_memory = -1\n").starts_with("max_instance_memory: "));
    }

    #[test]
    fn sqlite_database_path_is_kept_as_written_for_the_working_directory() {
        let config = parse_ok(
            r#"
            [sqlite_database.analytics]
            type = "spin"
            path = "data/analytics.db"
            [sqlite_database.mem]
            type = "spin"
            allow_attach_file = true
            "#,
        );
        assert_eq!(
            config.sqlite_databases["analytics"],
            SqliteDatabaseConfig {
                path: Some(PathBuf::from("data/analytics.db")),
                allow_attach_file: false,
            }
        );
        assert_eq!(
            config.sqlite_databases["mem"],
            SqliteDatabaseConfig {
                path: None,
                allow_attach_file: true,
            }
        );
    }

    #[test]
    fn sqlite_database_types_other_than_spin_are_refused() {
        let err = parse_err(
            "[sqlite_database.x]\ntype = \"libsql\"\nurl = \"https://h\"\ntoken = \"t\"\n",
        );
        assert!(err.contains("[sqlite_database.x]"), "{err}");
        assert!(err.contains("Spin has it"), "{err}");
        let err = parse_err("[sqlite_database.x]\ntype = \"postgres\"\n");
        assert!(err.contains("Unknown database kind"), "{err}");
        let err = parse_err("[sqlite_database.x]\npath = \"a.db\"\n");
        assert!(err.contains("has no `type`"), "{err}");
    }

    #[test]
    fn sqlite_database_tables_refuse_unknown_keys_and_wrong_types() {
        let err = parse_err("[sqlite_database.x]\ntype = \"spin\"\nurl = \"u\"\n");
        assert!(err.contains("unknown key `url`"), "{err}");
        let err = parse_err("[sqlite_database.x]\ntype = \"spin\"\nallow_attach_file = \"yes\"\n");
        assert!(
            err.contains(
                "`sqlite_database.x.allow_attach_file` in the runtime config must be true or false"
            ),
            "{err}"
        );
        let err = parse_err("sqlite_database = 1\n");
        assert!(err.contains("`sqlite_database`"), "{err}");
    }

    #[test]
    fn unknown_top_level_key_is_an_error() {
        let err = parse_err("key_value_stores = 1\n");
        assert!(err.contains("unknown key `key_value_stores`"), "{err}");
    }

    #[test]
    fn invalid_toml_is_an_error() {
        assert!(parse_err("[key_value_store").contains("not valid TOML"));
    }

    #[test]
    fn state_dir_follows_spins_precedence() {
        let app = Path::new("/srv/app");
        let none = RuntimeConfig::default();
        assert_eq!(
            none.resolve_state_dir(None, app).unwrap(),
            Some(PathBuf::from("/srv/app/.spin"))
        );
        let from_file = parse_ok("state_dir = \"/data\"\n");
        assert_eq!(
            from_file.resolve_state_dir(None, app).unwrap(),
            Some(PathBuf::from("/data"))
        );
        assert_eq!(
            from_file
                .resolve_state_dir(Some(Path::new("/cli")), app)
                .unwrap(),
            Some(PathBuf::from("/cli"))
        );
        let unset = parse_ok("state_dir = \"\"\n");
        assert_eq!(unset.resolve_state_dir(None, app).unwrap(), None);
    }

    #[test]
    fn redact_url_masks_only_the_password() {
        assert_eq!(redact_url("redis://h:6379/0"), "redis://h:6379/0");
        assert_eq!(redact_url("redis://:pw@h:6379"), "redis://:***@h:6379");
        assert_eq!(redact_url("redis://u:pw@h/1"), "redis://u:***@h/1");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
