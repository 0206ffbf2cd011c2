//! Spin application variables: declarations, templates, providers, and the
//! `fermyon:spin/variables@2.0.0` host.
//!
//! ```toml
//! [variables]
//! api_token = { required = true, secret = true }
//! upstream_origin = { default = "https://api.example.com" }
//!
//! [component.router.variables]
//! token = "{{ api_token }}"
//! auth_header = "Bearer {{ api_token }}"
//! ```
//!
//! The manifest module turns `[variables]` into [`VariableDecl`]s and each
//! component's table into `(name, template)` pairs; [`Resolver::new`] checks
//! them as Spin does before serving, and each instance gets a
//! [`host::VariablesCtx`] over the shared resolver. Values come from the
//! providers in Spin's order (`--variable`, then `SPIN_VARIABLE_<NAME>`,
//! see [`providers`]) and then the default, and are resolved on each `get`.
//!
//! - [`template`]: `{{ name }}` parsing and name rules (pure);
//! - [`providers`]: `--variable` and environment values;
//! - [`resolver`]: load-time checks and resolution;
//! - [`host`]: the wasmtime binding.

pub mod host;
pub mod host_v3;
pub mod providers;
pub mod resolver;
pub mod template;

use std::fmt;

pub use host::{VariablesCtx, add_to_linker};
pub use providers::{EnvProvider, Provider, StaticProvider, VariableFlag, spin_up_providers};
pub use resolver::Resolver;
pub use template::{Template, validate_name};

/// One entry of the manifest's `[variables]` table.
///
/// Spin requires exactly one of `required = true` or a `default`;
/// [`Resolver::new`] checks it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct VariableDecl {
    /// `default = "..."`: the value when no provider has one.
    pub default: Option<String>,
    /// `required = true`: a provider must supply the value before serving.
    pub required: bool,
    /// `secret = true`: the value is sensitive. Spin only uses this to keep
    /// values out of logs and telemetry; the runner never prints values.
    pub secret: bool,
}

impl fmt::Debug for VariableDecl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = match (&self.default, self.secret) {
            (Some(_), true) => Some("<secret>"),
            (default, _) => default.as_deref(),
        };
        f.debug_struct("VariableDecl")
            .field("default", &default)
            .field("required", &self.required)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Why a variable could not be resolved: Spin's `spin_expressions::Error`,
/// with its messages. The host maps it to the guest's `error` variant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    /// The name breaks Spin's naming rules (see [`validate_name`]).
    #[error("invalid variable name: {0}")]
    InvalidName(String),
    /// A malformed template, or one naming an undeclared variable.
    #[error("invalid variable template: {0}")]
    InvalidTemplate(String),
    /// A provider failed, or a required variable has no value.
    #[error("provider error: {0}")]
    Provider(String),
    /// The component has no variable with that name.
    #[error("undefined variable: {0}")]
    Undefined(String),
}

/// Why the application's variables are not fit to serve (found at load time).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An application variable with an invalid name.
    #[error("variable {name:?}: {source}")]
    Variable {
        /// The `[variables]` key.
        name: String,
        /// What is wrong with it.
        source: VariableError,
    },
    /// Neither or both of `required` and `default`.
    #[error("variable {name:?}: must be `required` OR have a `default`")]
    RequiredOrDefault {
        /// The `[variables]` key.
        name: String,
    },
    /// A component variable with a bad name or template, e.g.
    /// `component "router" variable "token": invalid variable template: unknown variable "api_tokn"`.
    #[error("component {component:?} variable {key:?}: {source}")]
    ComponentVariable {
        /// The component id.
        component: String,
        /// The component variable's name.
        key: String,
        /// What is wrong with it.
        source: VariableError,
    },
    /// Required variables that no provider gives a value.
    #[error(
        "provider error: no provider resolved required variable(s): {0:?} (set each with `--variable NAME=VALUE` or the environment variable SPIN_VARIABLE_<NAME in upper case>)"
    )]
    Unresolved(Vec<String>),
    /// A provider failed while checking required variables.
    #[error("{0}")]
    Provider(VariableError),
}
