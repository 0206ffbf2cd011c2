//! The application's stores by label, built once at startup from the runtime
//! config and the state directory, shared by every instance.

use super::Store;
use super::redis::{RedisOptions, RedisStore};
use super::sqlite::{SqliteLocation, SqlitePool, SqliteStore};
use crate::runtime_config::{KeyValueStoreConfig, RuntimeConfig};
use anyhow::Context as _;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The label every Spin application may use without a runtime config.
pub const DEFAULT_LABEL: &str = "default";

/// The default store's file name in the state directory (Spin's name).
pub const DEFAULT_SQLITE_FILE: &str = "sqlite_key_value.db";

/// Every configured store, by label.
pub struct Stores {
    stores: BTreeMap<String, Arc<dyn Store>>,
}

/// A component lists a store label nothing configures (Spin refuses to start).
#[derive(Debug, thiserror::Error)]
#[error(
    "component {component:?} lists key_value_stores label {label:?}, which is not configured; \
     add `[key_value_store.{label}]` to the runtime config or remove the label"
)]
pub struct UnknownStoreLabel {
    /// The component id.
    pub component: String,
    /// The label.
    pub label: String,
}

impl Stores {
    /// The stores for `config`, with Spin's default: `"default"` is SQLite at
    /// `<state_dir>/sqlite_key_value.db` (in memory when `state_dir` is
    /// `None`) unless `[key_value_store.default]` says otherwise.
    ///
    /// Creates the databases' directories (as Spin does) but connects to
    /// nothing: files open on first use and Redis connects on first call, so
    /// the runner starts while Redis is down.
    ///
    /// ```no_run
    /// # fn main() -> anyhow::Result<()> {
    /// use edge_runner::{key_value::Stores, runtime_config};
    /// use std::path::Path;
    /// let config = runtime_config::load(Path::new("runtime-config.toml"))?;
    /// let state_dir = config.resolve_state_dir(None, Path::new("."))?;
    /// let stores = Stores::from_config(&config, state_dir.as_deref())?;
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: &RuntimeConfig, state_dir: Option<&Path>) -> anyhow::Result<Self> {
        Self::from_config_with(config, state_dir, &RedisOptions::default())
    }

    /// [`Stores::from_config`] with explicit Redis deadlines.
    pub fn from_config_with(
        config: &RuntimeConfig,
        state_dir: Option<&Path>,
        redis: &RedisOptions,
    ) -> anyhow::Result<Self> {
        let mut configs: BTreeMap<&str, KeyValueStoreConfig> = config
            .key_value_stores
            .iter()
            .map(|(label, store)| (label.as_str(), store.clone()))
            .collect();
        configs
            .entry(DEFAULT_LABEL)
            .or_insert_with(|| KeyValueStoreConfig::Spin {
                path: state_dir.map(|dir| dir.join(DEFAULT_SQLITE_FILE)),
            });

        // Labels kept in the same file share one pool, as they share its table.
        let mut pools: HashMap<PathBuf, Arc<SqlitePool>> = HashMap::new();
        let mut stores: BTreeMap<String, Arc<dyn Store>> = BTreeMap::new();
        for (label, store) in configs {
            let store: Arc<dyn Store> = match store {
                KeyValueStoreConfig::Spin { path: None } => {
                    let pool = SqlitePool::new(SqliteLocation::Memory, 1);
                    Arc::new(SqliteStore::new(pool, label))
                }
                KeyValueStoreConfig::Spin { path: Some(path) } => {
                    let path = std::path::absolute(&path)
                        .with_context(|| format!("key-value store {label:?}: bad path {path:?}"))?;
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir).with_context(|| {
                            format!("key-value store {label:?}: cannot create directory {dir:?}")
                        })?;
                    }
                    let pool = pools.entry(path.clone()).or_insert_with(|| {
                        SqlitePool::new(
                            SqliteLocation::File(path),
                            SqlitePool::default_max_connections(),
                        )
                    });
                    Arc::new(SqliteStore::new(Arc::clone(pool), label))
                }
                KeyValueStoreConfig::Redis { url } => Arc::new(
                    RedisStore::new(&url, redis.clone())
                        .with_context(|| format!("key-value store {label:?}"))?,
                ),
            };
            stores.insert(label.to_owned(), store);
        }
        Ok(Self { stores })
    }

    /// Stores given directly (tests, embedders).
    pub fn new(stores: impl IntoIterator<Item = (String, Arc<dyn Store>)>) -> Self {
        Self {
            stores: stores.into_iter().collect(),
        }
    }

    /// The store for `label`, if one is configured.
    pub fn get(&self, label: &str) -> Option<&Arc<dyn Store>> {
        self.stores.get(label)
    }

    /// Whether `label` is configured.
    pub fn is_defined(&self, label: &str) -> bool {
        self.stores.contains_key(label)
    }

    /// `(label, summary)` for every store, for the startup log.
    pub fn summaries(&self) -> impl Iterator<Item = (&str, String)> {
        self.stores
            .iter()
            .map(|(label, store)| (label.as_str(), store.summary()))
    }

    /// Checks a component's `key_value_stores` before serving, as Spin does
    /// when it loads the app: every label must be configured.
    pub fn check_component<'a>(
        &self,
        component: &str,
        labels: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), UnknownStoreLabel> {
        match labels.into_iter().find(|label| !self.is_defined(label)) {
            Some(label) => Err(UnknownStoreLabel {
                component: component.to_owned(),
                label: label.to_owned(),
            }),
            None => Ok(()),
        }
    }
}
