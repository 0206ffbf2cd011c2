//! One behavioural suite, run against every backend: Spin's semantics for
//! missing keys, empty values, overwrite, delete, exists, get-keys and the
//! isolation of labels.

use super::super::Store;
use std::any::Any;
use std::sync::Arc;

/// Two labels, `a` and `b`, on one backend, and whatever keeps it alive.
pub struct Backend {
    pub a: Arc<dyn Store>,
    pub b: Arc<dyn Store>,
    pub _guard: Box<dyn Any + Send>,
}

/// Generates one `#[tokio::test]` per suite function for `$backend()`.
macro_rules! behaviour_suite {
    ($backend:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                $crate::key_value::tests::suite::$test($backend()).await;
            }
        )*
    };
}

/// Instantiates the whole suite for `$backend`.
macro_rules! all_behaviour_tests {
    ($backend:path) => {
        $crate::key_value::tests::suite::behaviour_suite!($backend;
            get_of_a_missing_key_is_none,
            set_then_get_returns_the_exact_bytes,
            an_empty_value_is_stored_and_is_not_missing,
            set_overwrites_the_previous_value,
            delete_removes_the_key_and_deleting_a_missing_key_is_ok,
            exists_follows_set_and_delete,
            get_keys_lists_exactly_the_keys_set,
            labels_do_not_see_each_others_keys,
            unicode_keys_round_trip,
            a_one_megabyte_value_round_trips,
        );
    };
}

pub(crate) use {all_behaviour_tests, behaviour_suite};

pub async fn get_of_a_missing_key_is_none(backend: Backend) {
    assert_eq!(backend.a.get("missing").await.unwrap(), None);
}

pub async fn set_then_get_returns_the_exact_bytes(backend: Backend) {
    let value = [0u8, 159, 146, 150, 255, b'\n', 0];
    backend.a.set("k", &value).await.unwrap();
    assert_eq!(backend.a.get("k").await.unwrap(), Some(value.to_vec()));
}

pub async fn an_empty_value_is_stored_and_is_not_missing(backend: Backend) {
    backend.a.set("empty", b"").await.unwrap();
    assert_eq!(backend.a.get("empty").await.unwrap(), Some(Vec::new()));
    assert!(backend.a.exists("empty").await.unwrap());
    assert_eq!(
        backend.a.get_keys().await.unwrap(),
        vec!["empty".to_owned()]
    );
}

pub async fn set_overwrites_the_previous_value(backend: Backend) {
    backend.a.set("k", b"first").await.unwrap();
    backend.a.set("k", b"second, longer").await.unwrap();
    assert_eq!(
        backend.a.get("k").await.unwrap(),
        Some(b"second, longer".to_vec())
    );
    backend.a.set("k", b"3").await.unwrap();
    assert_eq!(backend.a.get("k").await.unwrap(), Some(b"3".to_vec()));
    assert_eq!(backend.a.get_keys().await.unwrap().len(), 1);
}

pub async fn delete_removes_the_key_and_deleting_a_missing_key_is_ok(backend: Backend) {
    backend.a.set("k", b"v").await.unwrap();
    backend.a.delete("k").await.unwrap();
    assert_eq!(backend.a.get("k").await.unwrap(), None);
    backend.a.delete("k").await.unwrap();
    backend.a.delete("never-set").await.unwrap();
}

pub async fn exists_follows_set_and_delete(backend: Backend) {
    assert!(!backend.a.exists("k").await.unwrap());
    backend.a.set("k", b"v").await.unwrap();
    assert!(backend.a.exists("k").await.unwrap());
    backend.a.delete("k").await.unwrap();
    assert!(!backend.a.exists("k").await.unwrap());
}

pub async fn get_keys_lists_exactly_the_keys_set(backend: Backend) {
    assert!(backend.a.get_keys().await.unwrap().is_empty());
    for key in ["one", "two", "three"] {
        backend.a.set(key, key.as_bytes()).await.unwrap();
    }
    backend.a.delete("two").await.unwrap();
    let mut keys = backend.a.get_keys().await.unwrap();
    keys.sort();
    assert_eq!(keys, ["one", "three"]);
}

pub async fn labels_do_not_see_each_others_keys(backend: Backend) {
    backend.a.set("shared-name", b"from a").await.unwrap();
    assert_eq!(backend.b.get("shared-name").await.unwrap(), None);
    assert!(!backend.b.exists("shared-name").await.unwrap());
    assert!(backend.b.get_keys().await.unwrap().is_empty());

    backend.b.set("shared-name", b"from b").await.unwrap();
    assert_eq!(
        backend.a.get("shared-name").await.unwrap(),
        Some(b"from a".to_vec())
    );
    backend.b.delete("shared-name").await.unwrap();
    assert_eq!(
        backend.a.get("shared-name").await.unwrap(),
        Some(b"from a".to_vec())
    );
}

pub async fn unicode_keys_round_trip(backend: Backend) {
    let key = "über/ключ 🔑 with spaces";
    backend.a.set(key, "värde".as_bytes()).await.unwrap();
    assert_eq!(
        backend.a.get(key).await.unwrap(),
        Some("värde".as_bytes().to_vec())
    );
    assert_eq!(backend.a.get_keys().await.unwrap(), vec![key.to_owned()]);
}

pub async fn a_one_megabyte_value_round_trips(backend: Backend) {
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    backend.a.set("big", &value).await.unwrap();
    assert_eq!(backend.a.get("big").await.unwrap(), Some(value));
}
