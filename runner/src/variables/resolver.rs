//! The resolver: application variables, component variables and providers.
//!
//! Built once at load time, where it checks what Spin checks before serving
//! (names, templates, required variables); then shared (`Arc`) by every
//! instance. Values are resolved lazily on each `get`, as Spin does, so a
//! provider's answer is never cached here.

use std::{collections::HashMap, fmt};

use super::{
    ConfigError, Provider, VariableDecl, VariableError,
    template::{Template, validate_name},
};

/// Resolves component variables (`fermyon:spin/variables.get`) and
/// manifest templates against the application variables.
pub struct Resolver {
    /// Application variables by name.
    variables: HashMap<String, VariableDecl>,
    /// Component id -> component variable name -> template.
    components: HashMap<String, HashMap<String, Template>>,
    /// Asked in order before a variable's default.
    providers: Vec<Box<dyn Provider>>,
}

impl Resolver {
    /// Checks the declarations and builds the resolver.
    ///
    /// - `variables`: the `[variables]` table;
    /// - `components`: each component's `[component.<id>.variables]` table
    ///   (components without one may be left out);
    /// - `providers`: in precedence order, e.g. [`super::spin_up_providers`].
    ///
    /// Fails, naming the culprit, on an invalid name, a declaration that is
    /// not exactly one of `required` / `default`, a component template that is
    /// malformed or names an undeclared variable, or a required variable that
    /// no provider has a value for.
    pub fn new<C, V>(
        variables: impl IntoIterator<Item = (String, VariableDecl)>,
        components: C,
        providers: Vec<Box<dyn Provider>>,
    ) -> Result<Self, ConfigError>
    where
        C: IntoIterator<Item = (String, V)>,
        V: IntoIterator<Item = (String, String)>,
    {
        let mut declared: Vec<(String, VariableDecl)> = variables.into_iter().collect();
        declared.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, decl) in &declared {
            validate_name(name).map_err(|source| ConfigError::Variable {
                name: name.clone(),
                source,
            })?;
            if decl.required == decl.default.is_some() {
                return Err(ConfigError::RequiredOrDefault { name: name.clone() });
            }
        }
        let variables: HashMap<String, VariableDecl> = declared.into_iter().collect();

        let mut parsed = HashMap::new();
        for (component, templates) in components {
            let mut table = HashMap::new();
            for (key, template) in templates {
                let checked = validate_name(&key)
                    .and_then(|()| Template::parse(&template))
                    .and_then(|t| check_declared(&t, &variables).map(|()| t));
                match checked {
                    Ok(t) => table.insert(key, t),
                    Err(source) => {
                        return Err(ConfigError::ComponentVariable {
                            component,
                            key,
                            source,
                        });
                    }
                };
            }
            parsed.insert(component, table);
        }

        let resolver = Self {
            variables,
            components: parsed,
            providers,
        };
        resolver.ensure_required_resolvable()?;
        Ok(resolver)
    }

    /// The value of component `component_id`'s variable `name`, as the
    /// `fermyon:spin/variables.get` host function answers it.
    pub fn get(&self, component_id: &str, name: &str) -> Result<String, VariableError> {
        validate_name(name)?;
        let template = self
            .components
            .get(component_id)
            .and_then(|table| table.get(name))
            .ok_or_else(|| {
                VariableError::Undefined(format!("no variable for {component_id:?}.{name:?}"))
            })?;
        template.render(|var| self.resolve_variable(var))
    }

    /// Resolves a template against the application variables, as Spin does
    /// for `allowed_outbound_hosts = ["{{ upstream_origin }}"]`: component
    /// variables play no part, and an undeclared name is an invalid name.
    pub fn resolve_template(&self, template: &str) -> Result<String, VariableError> {
        let template = Template::parse(template)?;
        template.render(|var| {
            if self.variables.contains_key(var) {
                self.resolve_variable(var)
            } else {
                Err(VariableError::InvalidName(var.to_string()))
            }
        })
    }

    /// Spin's startup check: every required variable has a value from some
    /// provider (a provider failure aborts the check).
    fn ensure_required_resolvable(&self) -> Result<(), ConfigError> {
        let mut unresolved = Vec::new();
        let mut required: Vec<&String> = self
            .variables
            .iter()
            .filter(|(_, decl)| decl.default.is_none())
            .map(|(name, _)| name)
            .collect();
        required.sort();
        for name in required {
            if self
                .ask_providers(name)
                .map_err(ConfigError::Provider)?
                .is_none()
            {
                unresolved.push(name.clone());
            }
        }
        if unresolved.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Unresolved(unresolved))
        }
    }

    /// Providers first, then the default.
    fn resolve_variable(&self, name: &str) -> Result<String, VariableError> {
        if let Some(value) = self.ask_providers(name)? {
            return Ok(value);
        }
        let decl = self
            .variables
            .get(name)
            .ok_or_else(|| VariableError::InvalidName(name.to_string()))?;
        decl.default.clone().ok_or_else(|| {
            VariableError::Provider(format!("no provider resolved required variable {name:?}"))
        })
    }

    fn ask_providers(&self, name: &str) -> Result<Option<String>, VariableError> {
        for provider in &self.providers {
            if let Some(value) = provider.get(name).map_err(VariableError::Provider)? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }
}

/// Every expression in `template` names a declared application variable.
fn check_declared(
    template: &Template,
    variables: &HashMap<String, VariableDecl>,
) -> Result<(), VariableError> {
    match template.variables().find(|v| !variables.contains_key(*v)) {
        Some(unknown) => Err(VariableError::InvalidTemplate(format!(
            "unknown variable {unknown:?}"
        ))),
        None => Ok(()),
    }
}

impl fmt::Debug for Resolver {
    /// Names only: defaults and provided values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.variables.keys().collect();
        names.sort();
        let mut components: Vec<&String> = self.components.keys().collect();
        components.sort();
        f.debug_struct("Resolver")
            .field("variables", &names)
            .field("components", &components)
            .field("providers", &self.providers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::variables::{EnvProvider, StaticProvider, spin_up_providers};

    fn default(value: &str) -> VariableDecl {
        VariableDecl {
            default: Some(value.to_string()),
            ..Default::default()
        }
    }

    fn required() -> VariableDecl {
        VariableDecl {
            required: true,
            ..Default::default()
        }
    }

    type Components<'a> = &'a [(&'a str, &'a [(&'a str, &'a str)])];

    fn build(
        variables: &[(&str, VariableDecl)],
        components: Components<'_>,
        providers: Vec<Box<dyn Provider>>,
    ) -> Result<Resolver, ConfigError> {
        Resolver::new(
            variables.iter().map(|(n, d)| (n.to_string(), d.clone())),
            components.iter().map(|(id, table)| {
                let table: Vec<(String, String)> = table
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (id.to_string(), table)
            }),
            providers,
        )
    }

    fn spin_up(flags: &[(&str, &str)], env: &[(&str, &str)]) -> Vec<Box<dyn Provider>> {
        let flags = flags.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        spin_up_providers(StaticProvider::new(flags), EnvProvider::new(env.to_vec()))
    }

    /// A provider whose values tests change between calls.
    #[derive(Debug, Default, Clone)]
    struct Changing(Arc<Mutex<HashMap<String, Result<String, String>>>>);

    impl Changing {
        fn set(&self, name: &str, value: Result<&str, &str>) {
            let value = value.map(String::from).map_err(String::from);
            self.0.lock().unwrap().insert(name.to_string(), value);
        }
    }

    impl Provider for Changing {
        fn get(&self, name: &str) -> Result<Option<String>, String> {
            self.0.lock().unwrap().get(name).cloned().transpose()
        }
    }

    #[test]
    fn values_come_from_flags_then_env_then_default() {
        // Spin: --variable is inserted at providers[0]; the env provider is last.
        let vars = [
            ("a", default("default a")),
            ("b", default("default b")),
            ("c", default("default c")),
        ];
        let table: &[(&str, &str)] = &[("a", "{{ a }}"), ("b", "{{ b }}"), ("c", "{{ c }}")];
        let resolver = build(
            &vars,
            &[("comp", table)],
            spin_up(
                &[("a", "flag a")],
                &[("SPIN_VARIABLE_A", "env a"), ("SPIN_VARIABLE_B", "env b")],
            ),
        )
        .unwrap();
        let cases = [("a", "flag a"), ("b", "env b"), ("c", "default c")];
        for (name, expected) in cases {
            assert_eq!(
                resolver.get("comp", name).as_deref(),
                Ok(expected),
                "{name}"
            );
        }
    }

    #[test]
    fn component_templates_mix_literals_and_variables() {
        // Spin: resolve_static, resolve_variable_default, resolve_variable_provider.
        let vars = [
            ("default", default("default-value")),
            ("required", required()),
        ];
        let table: &[(&str, &str)] = &[
            ("plain", "static-value"),
            ("with_default", "prefix-{{ default }}-suffix"),
            ("with_provider", "prefix-{{ required }}-suffix"),
            ("both", "{{required}}/{{ default }}"),
        ];
        let providers = spin_up(&[], &[("SPIN_VARIABLE_REQUIRED", "provider-value")]);
        let resolver = build(&vars, &[("test-component", table)], providers).unwrap();
        let cases = [
            ("plain", "static-value"),
            ("with_default", "prefix-default-value-suffix"),
            ("with_provider", "prefix-provider-value-suffix"),
            ("both", "provider-value/default-value"),
        ];
        for (key, expected) in cases {
            assert_eq!(
                resolver.get("test-component", key).as_deref(),
                Ok(expected),
                "{key}"
            );
        }
    }

    #[test]
    fn get_errors_are_spins() {
        let vars = [("a", default("x"))];
        let table: &[(&str, &str)] = &[("key", "{{ a }}")];
        let resolver = build(&vars, &[("comp", table)], vec![]).unwrap();
        let cases = [
            ("comp", "missing", VariableError::Undefined(r#"no variable for "comp"."missing""#.into())),
            ("other", "key", VariableError::Undefined(r#"no variable for "other"."key""#.into())),
            (
                "comp",
                "Key",
                VariableError::InvalidName(
                    "\"Key\": invalid character 'K'. Variable names may contain only lower-case letters, numbers, and underscores.".into(),
                ),
            ),
            ("comp", "", VariableError::InvalidName("\"\": must not be empty".into())),
        ];
        for (component, name, expected) in cases {
            assert_eq!(
                resolver.get(component, name),
                Err(expected),
                "{component}.{name}"
            );
        }
        // Application variables are not component variables.
        assert!(matches!(
            resolver.get("comp", "a"),
            Err(VariableError::Undefined(_))
        ));
    }

    #[test]
    fn resolution_is_lazy_so_providers_are_asked_on_every_get() {
        let changing = Changing::default();
        changing.set("token", Ok("first"));
        let vars = [("token", required()), ("fallback", default("default"))];
        let table: &[(&str, &str)] = &[("token", "{{ token }}"), ("fallback", "{{ fallback }}")];
        let resolver = build(&vars, &[("comp", table)], vec![Box::new(changing.clone())]).unwrap();
        assert_eq!(resolver.get("comp", "token").as_deref(), Ok("first"));

        changing.set("token", Ok("second"));
        assert_eq!(resolver.get("comp", "token").as_deref(), Ok("second"));

        changing.0.lock().unwrap().clear();
        assert_eq!(
            resolver.get("comp", "token"),
            Err(VariableError::Provider(
                r#"no provider resolved required variable "token""#.into()
            ))
        );

        changing.set("fallback", Err("vault is down"));
        assert_eq!(
            resolver.get("comp", "fallback"),
            Err(VariableError::Provider("vault is down".into()))
        );
    }

    #[test]
    fn required_variables_without_a_value_fail_before_serving() {
        let vars = [
            ("api_token", required()),
            ("b_key", required()),
            ("c", default("c")),
        ];
        let err = build(&vars, &[], vec![]).unwrap_err();
        assert!(matches!(&err, ConfigError::Unresolved(names) if names == &["api_token", "b_key"]));
        assert!(
            err.to_string().starts_with(
                r#"provider error: no provider resolved required variable(s): ["api_token", "b_key"]"#
            ),
            "{err}"
        );

        let providers = spin_up(&[("api_token", "t")], &[("SPIN_VARIABLE_B_KEY", "b")]);
        build(&vars, &[], providers).expect("both required variables have values");
    }

    #[test]
    fn provider_failures_while_checking_required_variables_fail_loading() {
        let failing = Changing::default();
        failing.set(
            "token",
            Err("failed to resolve env var SPIN_VARIABLE_TOKEN"),
        );
        let err = build(&[("token", required())], &[], vec![Box::new(failing)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "provider error: failed to resolve env var SPIN_VARIABLE_TOKEN"
        );
    }

    #[test]
    fn component_templates_are_checked_at_load_naming_the_culprit() {
        let vars = [
            ("api_token", required()),
            ("origin", default("https://example.com")),
        ];
        let providers = || spin_up(&[("api_token", "t")], &[]);
        let cases: &[(&str, &str, &str)] = &[
            (
                "token",
                "Bearer {{ api_tokn }}",
                r#"component "router" variable "token": invalid variable template: unknown variable "api_tokn""#,
            ),
            (
                "token",
                "{{ api_token }",
                r#"component "router" variable "token": invalid variable template: unmatched '{{' in template"#,
            ),
            (
                "Token",
                "{{ api_token }}",
                r#"component "router" variable "Token": invalid variable name: "Token": invalid character 'T'. Variable names may contain only lower-case letters, numbers, and underscores."#,
            ),
            (
                "token",
                "{{ }}",
                r#"component "router" variable "token": invalid variable template: unknown variable """#,
            ),
        ];
        for (key, template, message) in cases {
            let table: &[(&str, &str)] = &[("fine", "{{ origin }}"), (key, template)];
            let err = build(&vars, &[("router", table)], providers()).unwrap_err();
            assert_eq!(err.to_string(), *message, "{key} = {template:?}");
        }
    }

    #[test]
    fn declarations_are_checked_at_load() {
        let cases: &[(&str, VariableDecl, &str)] = &[
            (
                "api-token",
                default("x"),
                "variable \"api-token\": invalid variable name: \"api-token\": invalid character '-'. Variable names may contain only lower-case letters, numbers, and underscores.",
            ),
            (
                "x_",
                default("x"),
                "variable \"x_\": invalid variable name: \"x_\": must end with a lowercase ASCII letter or digit",
            ),
            (
                "neither",
                VariableDecl::default(),
                "variable \"neither\": must be `required` OR have a `default`",
            ),
            (
                "both",
                VariableDecl {
                    required: true,
                    ..default("x")
                },
                "variable \"both\": must be `required` OR have a `default`",
            ),
        ];
        for (name, decl, message) in cases {
            let err = build(&[(name, decl.clone())], &[], vec![]).unwrap_err();
            assert_eq!(err.to_string(), *message, "{name}");
        }
    }

    #[test]
    fn manifest_templates_resolve_against_application_variables() {
        // Spin resolves allowed_outbound_hosts with a resolver over the
        // application variables only (PreparedResolver).
        let vars = [
            ("upstream_origin", default("https://api.example.com")),
            ("port", required()),
        ];
        let table: &[(&str, &str)] = &[("component_only", "{{ port }}")];
        let resolver = build(
            &vars,
            &[("comp", table)],
            spin_up(&[], &[("SPIN_VARIABLE_PORT", "8443")]),
        )
        .unwrap();
        let cases = [
            ("{{ upstream_origin }}", Ok("https://api.example.com")),
            (
                "https://*.example.com:{{ port }}",
                Ok("https://*.example.com:8443"),
            ),
            ("https://example.com", Ok("https://example.com")),
            (
                "{{ component_only }}",
                Err(VariableError::InvalidName("component_only".into())),
            ),
            (
                "{{ upstream_origin",
                Err(VariableError::InvalidTemplate(
                    "unmatched '{{' in template".into(),
                )),
            ),
        ];
        for (template, expected) in cases {
            assert_eq!(
                resolver.resolve_template(template),
                expected.map(String::from),
                "{template}"
            );
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = VariableDecl {
            secret: true,
            ..default("hunter2")
        };
        let resolver = build(
            &[("password", secret.clone())],
            &[],
            spin_up(
                &[("password", "hunter3")],
                &[("SPIN_VARIABLE_PASSWORD", "hunter4")],
            ),
        )
        .unwrap();
        let shown = format!("{secret:?} {resolver:?}");
        assert!(!shown.contains("hunter"), "{shown}");
    }
}
