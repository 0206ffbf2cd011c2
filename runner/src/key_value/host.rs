//! The `fermyon:spin/key-value@2.0.0` host binding (world `key-value-host`
//! in `runner/wit/spin.wit`), with Spin's two levels of error: the outer
//! `wasmtime::Result` traps the guest and is kept for host bugs (a stale
//! handle); the inner [`Error`] is what the guest sees: `access-denied` for a
//! label outside the component's `key_value_stores`, `no-such-store` for a
//! label nothing configures, `other(message)` when the backend fails.

use super::{Store, Stores};
use crate::telemetry::{Trace, spans};
use std::collections::HashSet;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "key-value-host",
        imports: { default: async | trappable },
        with: { "fermyon:spin/key-value.store": super::OpenStore },
    });
}

use bindings::fermyon::spin::key_value;
/// The generated interface: the guest-visible [`Error`] and the traits
/// [`KeyValueCtx`] implements (callable directly, as the tests do).
pub use key_value::{Error, Host, HostStore};

/// Open stores one instance may hold at once; the next `open` gets
/// `store-table-full`. Spin's default table capacity.
pub const MAX_OPEN_STORES: usize = 256;

/// What a guest's `store` resource points at.
pub struct OpenStore {
    pub(super) label: String,
    pub(super) store: Arc<dyn Store>,
}

/// Per-instance key-value state: the labels this component may open, the
/// application's stores, and the instance's open store handles.
pub struct KeyValueCtx {
    pub(super) allowed: Arc<HashSet<String>>,
    pub(super) stores: Arc<Stores>,
    table: ResourceTable,
    pub(super) open: usize,
    /// The instance's span: each call is a `spin_key_value.*` span under it.
    pub(crate) trace: Trace,
}

impl KeyValueCtx {
    /// State for one instance of a component whose `key_value_stores` is
    /// `allowed`.
    pub fn new(stores: Arc<Stores>, allowed: Arc<HashSet<String>>) -> Self {
        Self {
            allowed,
            stores,
            table: ResourceTable::new(),
            open: 0,
            trace: Trace::off(),
        }
    }

    pub(super) fn store(&self, handle: &Resource<OpenStore>) -> wasmtime::Result<&OpenStore> {
        Ok(self.table.get(handle)?)
    }

    /// A new handle to `open` (shared by 2.0.0 and 3.0.0).
    pub(super) fn push(&mut self, open: OpenStore) -> wasmtime::Result<Resource<OpenStore>> {
        let handle = self.table.push(open)?;
        self.open += 1;
        Ok(handle)
    }

    /// Closes `handle` (shared by 2.0.0 and 3.0.0).
    pub(super) fn close(&mut self, handle: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.open -= 1;
        Ok(())
    }
}

/// Adds the key-value interface to `linker`; `get` finds the instance's
/// [`KeyValueCtx`] in the store data.
///
/// ```no_run
/// # use edge_runner::key_value::{self, KeyValueCtx};
/// struct Host { kv: KeyValueCtx /* , wasi, http... */ }
/// # fn f(engine: &wasmtime::Engine) -> anyhow::Result<()> {
/// let mut linker = wasmtime::component::Linker::<Host>::new(engine);
/// key_value::add_to_linker(&mut linker, |host| &mut host.kv)?;
/// # Ok(()) }
/// ```
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KeyValueCtx,
) -> anyhow::Result<()> {
    key_value::add_to_linker::<T, KeyValueData>(linker, get)
        .map_err(|err| anyhow::Error::from_boxed(err.into_boxed_dyn_error()))
}

/// Tells the generated `add_to_linker` that the host functions see a
/// `&mut KeyValueCtx` borrowed from the store data.
struct KeyValueData;

impl HasData for KeyValueData {
    type Data<'a> = &'a mut KeyValueCtx;
}

impl key_value::Host for KeyValueCtx {}

impl HostStore for KeyValueCtx {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        // Spin's span has the label and the backend's summary ("unknown"
        // for a label nothing configures), and marks no guest error.
        let _span = self.trace.is_on().then(|| {
            let backend = self.stores.get(&label).map(|s| s.summary());
            let backend = backend.as_deref().unwrap_or("unknown");
            spans::key_value(&self.trace, "open", Some((&label, backend)))
        });
        // Spin checks the component's permission before the store exists,
        // so an unlisted label is access-denied whether configured or not.
        if !self.allowed.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(store) = self.stores.get(&label) else {
            return Ok(Err(Error::NoSuchStore));
        };
        if self.open >= MAX_OPEN_STORES {
            return Ok(Err(Error::StoreTableFull));
        }
        let store = Arc::clone(store);
        Ok(Ok(self.push(OpenStore { label, store })?))
    }

    async fn get(
        &mut self,
        handle: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let span = spans::key_value(&self.trace, "get", None);
        let open = self.store(&handle)?;
        Ok(guest_result(open, "get", open.store.get(&key).await, &span))
    }

    async fn set(
        &mut self,
        handle: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let span = spans::key_value(&self.trace, "set", None);
        let open = self.store(&handle)?;
        Ok(guest_result(
            open,
            "set",
            open.store.set(&key, &value).await,
            &span,
        ))
    }

    async fn delete(
        &mut self,
        handle: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let span = spans::key_value(&self.trace, "delete", None);
        let open = self.store(&handle)?;
        Ok(guest_result(
            open,
            "delete",
            open.store.delete(&key).await,
            &span,
        ))
    }

    async fn exists(
        &mut self,
        handle: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let span = spans::key_value(&self.trace, "exists", None);
        let open = self.store(&handle)?;
        Ok(guest_result(
            open,
            "exists",
            open.store.exists(&key).await,
            &span,
        ))
    }

    async fn get_keys(
        &mut self,
        handle: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let span = spans::key_value(&self.trace, "get_keys", None);
        let open = self.store(&handle)?;
        Ok(guest_result(
            open,
            "get-keys",
            open.store.get_keys().await,
            &span,
        ))
    }

    async fn drop(&mut self, handle: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.close(handle)
    }
}

/// A backend failure becomes the guest's `other(message)`, logged here
/// because the guest may swallow it (the cache answers `x-cache: bypass`),
/// and marks the call's span as failed by the host, as Spin's
/// `track_error_on_span` does.
fn guest_result<T>(
    open: &OpenStore,
    operation: &str,
    result: Result<T, super::StoreError>,
    span: &Trace,
) -> Result<T, Error> {
    result.map_err(|err| {
        eprintln!(
            "key-value store {:?} ({}): {operation} failed: {err}",
            open.label,
            open.store.summary()
        );
        let error = Error::Other(err.to_string());
        spans::key_value_failed(span, &format!("{error:?}"), false);
        error
    })
}
