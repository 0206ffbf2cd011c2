//! Building the stores from the runtime config and the state directory.

use super::super::Stores;
use crate::runtime_config::{self, RuntimeConfig};
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_is_sqlite_in_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::from_config(&RuntimeConfig::default(), Some(dir.path())).unwrap();
    let default = stores.get("default").unwrap();
    let file = dir.path().join("sqlite_key_value.db");
    assert_eq!(default.summary(), format!("\"{}\"", file.display()));
    default.set("k", b"v").await.unwrap();
    assert!(file.is_file());
    assert_eq!(stores.summaries().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_state_dir_the_default_store_is_in_memory() {
    let stores = Stores::from_config(&RuntimeConfig::default(), None).unwrap();
    let default = stores.get("default").unwrap();
    assert_eq!(default.summary(), "a temporary in-memory store");
    default.set("k", b"v").await.unwrap();
    assert_eq!(default.get("k").await.unwrap(), Some(b"v".to_vec()));
}

#[test]
fn the_runtime_config_can_move_default_to_redis() {
    let config = runtime_config::parse(
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://:pw@cache:6379/3\"\n",
        None,
    )
    .unwrap();
    let stores = Stores::from_config(&config, Some(Path::new("/unused"))).unwrap();
    assert_eq!(
        stores.get("default").unwrap().summary(),
        "Redis at cache:6379"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_sqlite_labels_get_their_directories_and_share_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = runtime_config::parse(
        "[key_value_store.a]\ntype = \"spin\"\npath = \"nested/dir/kv.db\"\n\
         [key_value_store.b]\ntype = \"spin\"\npath = \"nested/dir/kv.db\"\n",
        Some(dir.path()),
    )
    .unwrap();
    let stores = Stores::from_config(&config, Some(dir.path())).unwrap();
    assert!(dir.path().join("nested/dir").is_dir());
    let (a, b) = (stores.get("a").unwrap(), stores.get("b").unwrap());
    a.set("k", b"from a").await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), None);
    assert!(stores.is_defined("default"));
}

#[test]
fn a_component_listing_an_unconfigured_label_is_rejected_at_startup() {
    let stores = Stores::from_config(&RuntimeConfig::default(), None).unwrap();
    stores.check_component("cache", ["default"]).unwrap();
    let err = stores
        .check_component("cache", ["default", "shared"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"cache\"") && err.contains("\"shared\""),
        "{err}"
    );
    assert!(err.contains("[key_value_store.shared]"), "{err}");
}
