//! Spin's variable templates and names (pure).
//!
//! A template is a string with `{{ name }}` expressions, as Spin's
//! `crates/expressions/src/template.rs` parses it: text up to `{{` is a
//! literal, text from `{{` to the next `}}` is an expression (trimmed of
//! whitespace). There is no escape syntax; a `}}` outside an expression is
//! plain text, and a `{{` with no `}}` after it is an error.

use std::fmt;

use super::VariableError;

/// A parsed template, e.g. `"https://{{ host }}:{{ port }}"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// One piece of a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Text used as is.
    Lit(String),
    /// The trimmed text between `{{` and `}}`: a variable name (unchecked).
    Expr(String),
}

impl Template {
    /// Parses a template; the only error is an unmatched `{{`.
    pub fn parse(template: &str) -> Result<Self, VariableError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            if let Some(after_open) = rest.strip_prefix("{{") {
                let (expr, after_close) = after_open.split_once("}}").ok_or_else(|| {
                    VariableError::InvalidTemplate("unmatched '{{' in template".to_string())
                })?;
                parts.push(Part::Expr(expr.trim().to_string()));
                rest = after_close;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Lit(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        Ok(Self { parts })
    }

    /// The parts in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Whether the template has no expressions.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// The text with each expression replaced by `value(name)`; the first
    /// error stops it and is returned.
    pub fn render<E>(&self, mut value: impl FnMut(&str) -> Result<String, E>) -> Result<String, E> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(lit) => out.push_str(lit),
                Part::Expr(name) => out.push_str(&value(name)?),
            }
        }
        Ok(out)
    }

    /// The names the template refers to, in order (repeats included).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(name) => Some(name.as_str()),
            Part::Lit(_) => None,
        })
    }
}

impl fmt::Display for Template {
    /// The template in canonical form (`{{ name }}` with single spaces).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.parts.iter().try_for_each(|part| match part {
            Part::Lit(lit) => f.write_str(lit),
            Part::Expr(expr) => write!(f, "{{{{ {expr} }}}}"),
        })
    }
}

/// Checks a variable name as Spin does (its `Key::validate`): lower-case
/// ASCII letters, digits and single underscores, starting with a letter and
/// ending with a letter or digit, so that `SPIN_VARIABLE_<NAME>` round-trips.
///
/// The error message quotes the name and says what is wrong, in Spin's words.
pub fn validate_name(name: &str) -> Result<(), VariableError> {
    let reason = if name.is_empty() {
        "must not be empty".to_string()
    } else if let Some(invalid) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        format!(
            "invalid character {invalid:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        )
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a lowercase ASCII letter".to_string()
    } else if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        "must end with a lowercase ASCII letter or digit".to_string()
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores".to_string()
    } else {
        return Ok(());
    };
    Err(VariableError::InvalidName(format!("{name:?}: {reason}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Lit(s.to_string())
    }

    fn expr(s: &str) -> Part {
        Part::Expr(s.to_string())
    }

    #[test]
    fn templates_split_into_literals_and_expressions() {
        // Spin: template_parts, plus whitespace and brace edge cases.
        let cases: Vec<(&str, Vec<Part>)> = vec![
            ("", vec![]),
            ("a", vec![lit("a")]),
            ("a-{{ expr }}-b", vec![lit("a-"), expr("expr"), lit("-b")]),
            ("{{ expr1 }}{{ expr2 }}", vec![expr("expr1"), expr("expr2")]),
            ("{{name}}", vec![expr("name")]),
            ("{{  \tname \n }}", vec![expr("name")]),
            ("{{ }}", vec![expr("")]),
            ("a }} b", vec![lit("a }} b")]),
            ("{ {{ x }} }", vec![lit("{ "), expr("x"), lit(" }")]),
            ("{{ a {{ b }}", vec![expr("a {{ b")]),
            ("{{{ x }}}", vec![expr("{ x"), lit("}")]),
            (
                "http://{{ host }}:{{ port }}",
                vec![lit("http://"), expr("host"), lit(":"), expr("port")],
            ),
        ];
        for (template, expected) in cases {
            let parsed = Template::parse(template).unwrap_or_else(|e| panic!("{template:?}: {e}"));
            assert_eq!(parsed.parts(), expected.as_slice(), "{template:?}");
        }
    }

    #[test]
    fn unmatched_open_braces_are_an_error() {
        // Spin: template_parts_bad.
        for template in ["{{ matched }} {{ unmatched", "{{", "a {{ b } }"] {
            let err = Template::parse(template).unwrap_err();
            assert_eq!(
                err,
                VariableError::InvalidTemplate("unmatched '{{' in template".into()),
                "{template:?}"
            );
            assert_eq!(
                err.to_string(),
                "invalid variable template: unmatched '{{' in template"
            );
        }
    }

    #[test]
    fn literal_templates_have_no_expressions() {
        // Spin: template_literal.
        assert!(Template::parse("hello").unwrap().is_literal());
        assert!(!Template::parse("hello {{ world }}").unwrap().is_literal());
        let t = Template::parse("{{a}}-{{ b }}-{{a}}").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["a", "b", "a"]);
        assert_eq!(t.to_string(), "{{ a }}-{{ b }}-{{ a }}");
    }

    #[test]
    fn good_names_are_accepted() {
        // Spin: keys_good.
        for name in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3", "api_token"] {
            validate_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn bad_names_are_rejected_with_the_reason() {
        // Spin: keys_bad, with Spin's messages.
        let cases = [
            ("", "\"\": must not be empty"),
            (
                "aX",
                "\"aX\": invalid character 'X'. Variable names may contain only lower-case letters, numbers, and underscores.",
            ),
            ("1bc", "\"1bc\": must start with a lowercase ASCII letter"),
            ("_x", "\"_x\": must start with a lowercase ASCII letter"),
            (
                "x.y",
                "\"x.y\": invalid character '.'. Variable names may contain only lower-case letters, numbers, and underscores.",
            ),
            (
                "x_",
                "\"x_\": must end with a lowercase ASCII letter or digit",
            ),
            (
                "a__b",
                "\"a__b\": must not contain multiple consecutive underscores",
            ),
            (
                "x-y",
                "\"x-y\": invalid character '-'. Variable names may contain only lower-case letters, numbers, and underscores.",
            ),
        ];
        for (name, message) in cases {
            assert_eq!(
                validate_name(name),
                Err(VariableError::InvalidName(message.to_string())),
                "{name:?}"
            );
        }
    }
}
