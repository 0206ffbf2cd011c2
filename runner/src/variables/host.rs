//! The `fermyon:spin/variables@2.0.0` host, generated from `runner/wit`.
//!
//! Follows Spin's two-level pattern (`crates/factor-variables/src/host.rs`):
//! the outer `wasmtime::Result` would trap for a host bug, the inner
//! `Result<_, Error>` is what the guest sees. Every failure of `get` is the
//! guest's to handle (a bad name, an undefined variable, a missing value),
//! so nothing here traps.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::{Resolver, VariableError};
use crate::telemetry::{Trace, spans};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "variables-host",
        imports: { default: async | trappable },
    });
}

pub use bindings::fermyon::spin::variables::Error as GuestError;
use bindings::fermyon::spin::variables::{Host, add_to_linker as add_generated};

/// What one instance needs to answer `get`: its component id and the
/// application's shared resolver.
#[derive(Clone, Debug)]
pub struct VariablesCtx {
    /// The component this instance runs.
    pub component_id: String,
    /// The application's resolver, shared by all instances.
    pub resolver: Arc<Resolver>,
    /// The instance's span: each `get` is a `spin_variables.get` under it.
    pub trace: Trace,
}

impl VariablesCtx {
    /// The context for an instance of `component_id`.
    pub fn new(component_id: impl Into<String>, resolver: Arc<Resolver>) -> Self {
        Self {
            component_id: component_id.into(),
            resolver,
            trace: Trace::off(),
        }
    }
}

impl Host for VariablesCtx {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, GuestError>> {
        let span = spans::variable(&self.trace, &name);
        Ok(self.resolver.get(&self.component_id, &name).map_err(|err| {
            let guest_fault = !matches!(err, VariableError::Provider(_));
            let err = to_guest_error(err);
            spans::variable_failed(&span, &err.to_string(), guest_fault);
            err
        }))
    }
}

/// Spin's `expressions_to_variables_err`: names and undefined variables keep
/// their message; a template problem becomes `other` with the full text.
fn to_guest_error(err: VariableError) -> GuestError {
    match err {
        VariableError::InvalidName(msg) => GuestError::InvalidName(msg),
        VariableError::Undefined(msg) => GuestError::Undefined(msg),
        VariableError::Provider(msg) => GuestError::Provider(msg),
        err @ VariableError::InvalidTemplate(_) => GuestError::Other(err.to_string()),
    }
}

/// Adds `fermyon:spin/variables` to a linker whose store data reaches a
/// [`VariablesCtx`] through `get`. The host function is async, so the
/// store must be driven with wasmtime's `*_async` calls.
///
/// ```no_run
/// # use edge_runner::variables::{self, VariablesCtx};
/// struct Host { variables: VariablesCtx /* , wasi, http, kv... */ }
/// # fn f(engine: &wasmtime::Engine) -> anyhow::Result<()> {
/// let mut linker = wasmtime::component::Linker::<Host>::new(engine);
/// variables::add_to_linker(&mut linker, |host| &mut host.variables)?;
/// # Ok(()) }
/// ```
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut VariablesCtx,
) -> anyhow::Result<()> {
    add_generated::<T, HasSelf<VariablesCtx>>(linker, get)
        .map_err(|err| anyhow::Error::from_boxed(err.into_boxed_dyn_error()))
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;
    use crate::variables::{EnvProvider, StaticProvider, VariableDecl, spin_up_providers};

    /// The manifest of these tests:
    ///
    /// ```toml
    /// [variables]
    /// greeting = { default = "hello" }
    /// api_token = { required = true, secret = true }
    ///
    /// [component.probe.variables]
    /// greeting = "{{ greeting }}"
    /// auth = "Bearer {{ api_token }}"
    /// ```
    fn ctx(flags: &[(&str, &str)], env: &[(&str, &str)]) -> VariablesCtx {
        let variables = [
            (
                "greeting".to_string(),
                VariableDecl {
                    default: Some("hello".into()),
                    ..Default::default()
                },
            ),
            (
                "api_token".to_string(),
                VariableDecl {
                    required: true,
                    secret: true,
                    ..Default::default()
                },
            ),
        ];
        let components = [(
            "probe".to_string(),
            vec![
                ("greeting".to_string(), "{{ greeting }}".to_string()),
                ("auth".to_string(), "Bearer {{ api_token }}".to_string()),
            ],
        )];
        let flags = StaticProvider::new(flags.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let providers = spin_up_providers(flags, EnvProvider::new(env.to_vec()));
        let resolver = Resolver::new(variables, components, providers).expect("valid variables");
        VariablesCtx::new("probe", Arc::new(resolver))
    }

    fn get(ctx: &mut VariablesCtx, name: &str) -> Result<String, GuestError> {
        block_on(Host::get(ctx, name.to_string())).expect("get never traps")
    }

    #[test]
    fn defaults_are_returned_when_nothing_overrides_them() {
        let mut ctx = ctx(&[], &[("SPIN_VARIABLE_API_TOKEN", "t")]);
        assert_eq!(get(&mut ctx, "greeting").unwrap(), "hello");
    }

    #[test]
    fn spin_variable_environment_overrides_the_default() {
        let mut ctx = ctx(
            &[],
            &[
                ("SPIN_VARIABLE_GREETING", "hi from env"),
                ("SPIN_VARIABLE_API_TOKEN", "t"),
            ],
        );
        assert_eq!(get(&mut ctx, "greeting").unwrap(), "hi from env");
    }

    #[test]
    fn variable_flag_overrides_the_environment() {
        let mut ctx = ctx(
            &[("greeting", "hi from flag"), ("api_token", "flag-token")],
            &[
                ("SPIN_VARIABLE_GREETING", "hi from env"),
                ("SPIN_VARIABLE_API_TOKEN", "env-token"),
            ],
        );
        assert_eq!(get(&mut ctx, "greeting").unwrap(), "hi from flag");
        assert_eq!(get(&mut ctx, "auth").unwrap(), "Bearer flag-token");
    }

    #[test]
    fn secret_required_variables_resolve_through_templates() {
        let mut ctx = ctx(&[], &[("SPIN_VARIABLE_API_TOKEN", "s3cret")]);
        assert_eq!(get(&mut ctx, "auth").unwrap(), "Bearer s3cret");
    }

    #[test]
    fn undefined_variables_are_a_guest_error() {
        let mut ctx = ctx(&[("api_token", "t")], &[]);
        let cases = [
            ("missing", r#"no variable for "probe"."missing""#),
            // An application variable the component did not map.
            ("api_token", r#"no variable for "probe"."api_token""#),
        ];
        for (name, message) in cases {
            match get(&mut ctx, name) {
                Err(GuestError::Undefined(msg)) => assert_eq!(msg, message),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn invalid_names_are_a_guest_error() {
        let mut ctx = ctx(&[("api_token", "t")], &[]);
        let cases = [
            (
                "API_TOKEN",
                "\"API_TOKEN\": invalid character 'A'. Variable names may contain only lower-case letters, numbers, and underscores.",
            ),
            (
                "my-var",
                "\"my-var\": invalid character '-'. Variable names may contain only lower-case letters, numbers, and underscores.",
            ),
            (
                "9lives",
                "\"9lives\": must start with a lowercase ASCII letter",
            ),
        ];
        for (name, message) in cases {
            match get(&mut ctx, name) {
                Err(GuestError::InvalidName(msg)) => assert_eq!(msg, message),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn errors_map_to_the_guest_variant_as_spin_maps_them() {
        let cases = [
            (
                VariableError::InvalidName("n".into()),
                GuestError::InvalidName("n".into()),
            ),
            (
                VariableError::Undefined("u".into()),
                GuestError::Undefined("u".into()),
            ),
            (
                VariableError::Provider("p".into()),
                GuestError::Provider("p".into()),
            ),
            (
                VariableError::InvalidTemplate("t".into()),
                GuestError::Other("invalid variable template: t".into()),
            ),
        ];
        for (err, expected) in cases {
            assert_eq!(
                format!("{:?}", to_guest_error(err)),
                format!("{expected:?}")
            );
        }
    }

    #[test]
    fn the_interface_links_into_a_linker() {
        struct Data {
            variables: VariablesCtx,
        }
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::<Data>::new(&engine);
        add_to_linker(&mut linker, |data| &mut data.variables).unwrap();
    }
}
