//! The `spin:variables/variables@3.0.0` host (WASI 0.3 components, spin-sdk
//! 6 and 7): Spin 4's `v3::HostWithStore` (crates/factor-variables/src/
//! host.rs): 2.0.0's `get`, async, with the same errors and the same
//! `spin_variables.get` span.

use wasmtime::component::{Accessor, HasData, Linker};

use super::VariableError;
use super::host::VariablesCtx;
use crate::telemetry::spans;

mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package edge:runner-variables-v3;
            world variables-v3-host { import spin:variables/variables@3.0.0; }
        ",
        path: "wit",
        imports: { default: trappable },
    });
}

use bindings::spin::variables::variables;
pub use variables::Error;

/// Adds `spin:variables/variables@3.0.0` to `linker`; `get` finds the
/// instance's [`VariablesCtx`] in the store data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut VariablesCtx,
) -> anyhow::Result<()> {
    variables::add_to_linker::<T, VariablesV3>(linker, get)
        .map_err(|err| anyhow::Error::from_boxed(err.into_boxed_dyn_error()))
}

struct VariablesV3;

impl HasData for VariablesV3 {
    type Data<'a> = &'a mut VariablesCtx;
}

impl variables::Host for VariablesCtx {}

impl<U> variables::HostWithStore<U> for VariablesV3 {
    async fn get(
        accessor: &Accessor<U, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        Ok(accessor.with(|mut access| {
            let ctx = access.get();
            let span = spans::variable(&ctx.trace, &name);
            ctx.resolver.get(&ctx.component_id, &name).map_err(|err| {
                let guest_fault = !matches!(err, VariableError::Provider(_));
                let err = match err {
                    VariableError::InvalidName(msg) => Error::InvalidName(msg),
                    VariableError::Undefined(msg) => Error::Undefined(msg),
                    VariableError::Provider(msg) => Error::Provider(msg),
                    err @ VariableError::InvalidTemplate(_) => Error::Other(err.to_string()),
                };
                spans::variable_failed(&span, &format!("{err:?}"), guest_fault);
                err
            })
        }))
    }
}
