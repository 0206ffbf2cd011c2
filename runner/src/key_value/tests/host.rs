//! The host binding, called directly through the generated traits: access
//! control, Spin's errors, handle lifetimes, and linking.

use super::super::host::{Error, HostStore, KeyValueCtx, MAX_OPEN_STORES, OpenStore};
use super::super::{
    RedisOptions, RedisStore, SqliteLocation, SqlitePool, SqliteStore, Store, Stores,
};
use edge_testkit::RedisServer;
use std::collections::HashSet;
use std::sync::Arc;
use wasmtime::component::Resource;

/// A store handle the guest lends to a method call.
fn borrow(handle: &Resource<OpenStore>) -> Resource<OpenStore> {
    Resource::new_borrow(handle.rep())
}

fn memory_store(label: &str) -> (String, Arc<dyn Store>) {
    let pool = SqlitePool::new(SqliteLocation::Memory, 1);
    (label.to_owned(), Arc::new(SqliteStore::new(pool, label)))
}

/// An instance allowed `allowed`, of an app configuring `configured`.
fn ctx(configured: &[&str], allowed: &[&str]) -> KeyValueCtx {
    let stores = Stores::new(configured.iter().map(|label| memory_store(label)));
    let allowed = allowed
        .iter()
        .map(|label| label.to_string())
        .collect::<HashSet<_>>();
    KeyValueCtx::new(Arc::new(stores), Arc::new(allowed))
}

fn guest_error<T>(result: wasmtime::Result<Result<T, Error>>) -> Error {
    match result.expect("no trap") {
        Ok(_) => panic!("expected a guest error"),
        Err(err) => err,
    }
}

#[tokio::test]
async fn opening_a_label_not_in_key_value_stores_is_access_denied() {
    let mut kv = ctx(&["default", "other"], &["default"]);
    let err = guest_error(kv.open("other".into()).await);
    assert!(matches!(err, Error::AccessDenied), "{err:?}");
    // Unlisted and unconfigured: still access-denied, as in Spin.
    let err = guest_error(kv.open("nowhere".into()).await);
    assert!(matches!(err, Error::AccessDenied), "{err:?}");
}

#[tokio::test]
async fn opening_an_allowed_but_unconfigured_label_is_no_such_store() {
    let mut kv = ctx(&["default"], &["default", "ghost"]);
    let err = guest_error(kv.open("ghost".into()).await);
    assert!(matches!(err, Error::NoSuchStore), "{err:?}");
}

#[tokio::test]
async fn an_allowed_store_serves_every_operation() {
    let mut kv = ctx(&["default"], &["default"]);
    let store = kv.open("default".into()).await.unwrap().unwrap();
    assert_eq!(
        kv.get(borrow(&store), "k".into()).await.unwrap().unwrap(),
        None
    );
    kv.set(borrow(&store), "k".into(), b"v".to_vec())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kv.get(borrow(&store), "k".into()).await.unwrap().unwrap(),
        Some(b"v".to_vec())
    );
    assert!(
        kv.exists(borrow(&store), "k".into())
            .await
            .unwrap()
            .unwrap()
    );
    assert_eq!(kv.get_keys(borrow(&store)).await.unwrap().unwrap(), ["k"]);
    kv.delete(borrow(&store), "k".into())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !kv.exists(borrow(&store), "k".into())
            .await
            .unwrap()
            .unwrap()
    );
    HostStore::drop(&mut kv, store).await.unwrap();
}

#[tokio::test]
async fn two_handles_to_one_label_share_data() {
    let mut kv = ctx(&["default"], &["default"]);
    let first = kv.open("default".into()).await.unwrap().unwrap();
    let second = kv.open("default".into()).await.unwrap().unwrap();
    kv.set(borrow(&first), "k".into(), b"v".to_vec())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kv.get(borrow(&second), "k".into()).await.unwrap().unwrap(),
        Some(b"v".to_vec())
    );
}

#[tokio::test]
async fn using_a_dropped_handle_traps() {
    let mut kv = ctx(&["default"], &["default"]);
    let store = kv.open("default".into()).await.unwrap().unwrap();
    let stale = borrow(&store);
    HostStore::drop(&mut kv, store).await.unwrap();
    assert!(
        kv.get(stale, "k".into()).await.is_err(),
        "a stale handle must trap"
    );
}

#[tokio::test]
async fn the_store_table_fills_up_and_frees_on_drop() {
    let mut kv = ctx(&["default"], &["default"]);
    let mut handles = Vec::new();
    for _ in 0..MAX_OPEN_STORES {
        handles.push(kv.open("default".into()).await.unwrap().unwrap());
    }
    let err = guest_error(kv.open("default".into()).await);
    assert!(matches!(err, Error::StoreTableFull), "{err:?}");
    HostStore::drop(&mut kv, handles.pop().unwrap())
        .await
        .unwrap();
    kv.open("default".into()).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_failure_reaches_the_guest_as_other() {
    let mut server = RedisServer::start();
    let redis: Arc<dyn Store> =
        Arc::new(RedisStore::new(&server.url(0), RedisOptions::default()).unwrap());
    let stores = Stores::new([("default".to_owned(), redis)]);
    let allowed = Arc::new(HashSet::from(["default".to_owned()]));
    let mut kv = KeyValueCtx::new(Arc::new(stores), allowed);
    let store = kv.open("default".into()).await.unwrap().unwrap();
    kv.set(borrow(&store), "k".into(), b"v".to_vec())
        .await
        .unwrap()
        .unwrap();

    server.stop();
    // A guest error, not a trap: the component answers without its cache.
    let err = guest_error(kv.get(borrow(&store), "k".into()).await);
    assert!(
        matches!(&err, Error::Other(msg) if msg.contains("Redis")),
        "{err:?}"
    );
}

#[test]
fn add_to_linker_links_the_interface() {
    struct Host {
        kv: KeyValueCtx,
    }
    let engine = wasmtime::Engine::new(&wasmtime::Config::new()).unwrap();
    let mut linker = wasmtime::component::Linker::<Host>::new(&engine);
    super::super::add_to_linker(&mut linker, |host| &mut host.kv).unwrap();
    // Linking twice is a duplicate definition: proves the first call defined it.
    assert!(super::super::add_to_linker(&mut linker, |host| &mut host.kv).is_err());
}
