//! The `spin:key-value/key-value@3.0.0` host (WASI 0.3 components, spin-sdk
//! 6 and 7): Spin 4's `v3::HostStoreWithStore` (crates/factor-key-value/
//! src/host.rs) over the same per-instance [`KeyValueCtx`] as 2.0.0, with
//! the same guest-visible errors. The functions are async (the guest may run
//! other tasks while one waits); each borrows the context only between
//! awaits. As on Spin 4.0.2, these calls emit no spans.

use std::sync::Arc;

use wasmtime::component::{Accessor, FutureReader, HasData, Linker, Resource, StreamReader};

use super::host::{KeyValueCtx, MAX_OPEN_STORES, OpenStore};
use super::{Store, StoreError};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package edge:runner-key-value-v3;
            world key-value-v3-host { import spin:key-value/key-value@3.0.0; }
        ",
        path: "wit",
        imports: { default: trappable },
        with: { "spin:key-value/key-value.store": crate::key_value::host::OpenStore },
    });
}

use bindings::spin::key_value::key_value;
pub use key_value::Error;

/// Adds `spin:key-value/key-value@3.0.0` to `linker`; `get` finds the
/// instance's [`KeyValueCtx`] in the store data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KeyValueCtx,
) -> anyhow::Result<()> {
    key_value::add_to_linker::<T, KeyValueV3>(linker, get)
        .map_err(|err| anyhow::Error::from_boxed(err.into_boxed_dyn_error()))
}

/// The host functions see a `&mut KeyValueCtx` borrowed from the store data.
struct KeyValueV3;

impl HasData for KeyValueV3 {
    type Data<'a> = &'a mut KeyValueCtx;
}

impl key_value::Host for KeyValueCtx {}

impl key_value::HostStore for KeyValueCtx {
    fn drop(&mut self, handle: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.close(handle)
    }
}

/// The backend behind `handle`, or a trap for a stale handle (a host bug).
fn backend<T>(
    accessor: &Accessor<T, KeyValueV3>,
    handle: &Resource<OpenStore>,
) -> wasmtime::Result<(String, Arc<dyn Store>)> {
    accessor.with(|mut access| {
        let open = access.get().store(handle)?;
        Ok((open.label.clone(), open.store.clone()))
    })
}

/// A backend failure becomes the guest's `other(message)`, logged as 2.0.0's.
fn guest<T>(
    (label, store): &(String, Arc<dyn Store>),
    operation: &str,
    result: Result<T, StoreError>,
) -> Result<T, Error> {
    result.map_err(|err| {
        eprintln!(
            "key-value store {label:?} ({}): {operation} failed: {err}",
            store.summary()
        );
        Error::Other(err.to_string())
    })
}

impl<U> key_value::HostStoreWithStore<U> for KeyValueV3 {
    async fn open(
        accessor: &Accessor<U, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        accessor.with(|mut access| {
            let ctx = access.get();
            // Spin checks the component's permission first, then the
            // store's existence, then the table (as 2.0.0).
            if !ctx.allowed.contains(&label) {
                return Ok(Err(Error::AccessDenied));
            }
            let Some(store) = ctx.stores.get(&label).cloned() else {
                return Ok(Err(Error::NoSuchStore));
            };
            if ctx.open >= MAX_OPEN_STORES {
                return Ok(Err(Error::StoreTableFull));
            }
            Ok(Ok(ctx.push(OpenStore { label, store })?))
        })
    }

    async fn get(
        accessor: &Accessor<U, Self>,
        handle: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let open = backend(accessor, &handle)?;
        let result = open.1.get(&key).await;
        Ok(guest(&open, "get", result))
    }

    async fn set(
        accessor: &Accessor<U, Self>,
        handle: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let open = backend(accessor, &handle)?;
        let result = open.1.set(&key, &value).await;
        Ok(guest(&open, "set", result))
    }

    async fn delete(
        accessor: &Accessor<U, Self>,
        handle: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let open = backend(accessor, &handle)?;
        let result = open.1.delete(&key).await;
        Ok(guest(&open, "delete", result))
    }

    async fn exists(
        accessor: &Accessor<U, Self>,
        handle: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let open = backend(accessor, &handle)?;
        let result = open.1.exists(&key).await;
        Ok(guest(&open, "exists", result))
    }

    /// The keys as a stream, then the outcome on the future: a backend
    /// failure is an empty stream and `other(message)`. (Spin traps for a
    /// stale handle here too.)
    async fn get_keys(
        accessor: &Accessor<U, Self>,
        handle: Resource<OpenStore>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        let open = backend(accessor, &handle)?;
        let result = open.1.get_keys().await;
        let (keys, outcome) = match guest(&open, "get-keys", result) {
            Ok(keys) => (keys, Ok(())),
            Err(err) => (Vec::new(), Err(err)),
        };
        accessor.with(|mut access| {
            let keys = StreamReader::new(&mut access, keys)?;
            let outcome = FutureReader::new(&mut access, async move {
                wasmtime::Result::<_, wasmtime::Error>::Ok(outcome)
            })?;
            Ok((keys, outcome))
        })
    }
}
