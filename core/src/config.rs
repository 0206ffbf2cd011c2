//! Configuration: Spin application variables, read as strings, parsed into the
//! settings each component needs.
//!
//! Every variable has a default (the same as in spin.toml), so a variable the
//! host does not know reads as its default. An invalid value is an error that
//! names the variable, the value and the accepted range; it is never a panic.
//!
//! ```toml
//! # spin.toml
//! [variables]
//! threshold = { default = "100" }
//! multiplier = { default = "2" }
//! ```

use crate::rule::Rule;
use crate::upstream::Upstream;

/// Variable names, as declared in spin.toml (`[variables]` and each
/// component's `[component.<name>.variables]`).
pub mod names {
    pub const THRESHOLD: &str = "threshold";
    pub const MULTIPLIER: &str = "multiplier";
    pub const CACHE_TTL_SECONDS: &str = "cache_ttl_seconds";
    pub const UPSTREAM_ORIGIN: &str = "upstream_origin";
    pub const UPSTREAM_PATH: &str = "upstream_path";
    pub const UPSTREAM_TIMEOUT_MS: &str = "upstream_timeout_ms";
    pub const MAX_BODY_BYTES: &str = "max_body_bytes";
    pub const MAX_BATCH_ITEMS: &str = "max_batch_items";
    pub const ADMIN_TOKEN: &str = "admin_token";
}

/// Defaults, identical to the `default`s in spin.toml.
pub mod defaults {
    pub const THRESHOLD: u64 = 100;
    pub const MULTIPLIER: u64 = 2;
    pub const CACHE_TTL_SECONDS: u64 = 300;
    pub const UPSTREAM_TIMEOUT_MS: u64 = 2000;
    pub const MAX_BODY_BYTES: u64 = 65536;
    pub const MAX_BATCH_ITEMS: u64 = 1000;
}

/// Upper bounds that keep the components' memory and the store's values sane.
pub mod limits {
    /// One year.
    pub const MAX_CACHE_TTL_SECONDS: u64 = 31_536_000;
    /// Ten minutes, Spin's own default outbound timeout.
    pub const MAX_UPSTREAM_TIMEOUT_MS: u64 = 600_000;
    /// 16 MiB.
    pub const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
    pub const MAX_BATCH_ITEMS: u64 = 100_000;
}

/// An invalid variable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name, e.g. `multiplier`.
    pub variable: &'static str,
    /// The value as given.
    pub value: String,
    /// What is accepted.
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid value {:?} for variable `{}`: {}",
            self.value, self.variable, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub(crate) fn new(variable: &'static str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            variable,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Parses a whole number in `min..=max`; surrounding whitespace is ignored.
pub fn parse_number(
    variable: &'static str,
    raw: Option<&str>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    let range = || format!("must be a whole number from {min} to {max}");
    let text = raw.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::new(variable, raw, range()));
    }
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(variable, raw, range())),
    }
}

fn parse_usize(
    variable: &'static str,
    raw: Option<&str>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<usize, ConfigError> {
    let n = parse_number(variable, raw, default, min, max)?;
    usize::try_from(n).map_err(|_| ConfigError::new(variable, &n.to_string(), "too large"))
}

/// The processing rule, read by the processor (to apply it) and by the
/// router (so that cache keys change when the rule does).
pub fn rule_from(mut get: impl FnMut(&'static str) -> Option<String>) -> Result<Rule, ConfigError> {
    let threshold = parse_number(
        names::THRESHOLD,
        get(names::THRESHOLD).as_deref(),
        defaults::THRESHOLD,
        0,
        u64::MAX,
    )?;
    let multiplier = parse_number(
        names::MULTIPLIER,
        get(names::MULTIPLIER).as_deref(),
        defaults::MULTIPLIER,
        1,
        u64::MAX,
    )?;
    Ok(Rule {
        threshold,
        multiplier,
    })
}

/// What the processor reads: `threshold`, `multiplier`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorConfig {
    pub rule: Rule,
}

impl ProcessorConfig {
    /// Reads the processor's variables through `get` (`None` = not set).
    pub fn from_vars(get: impl FnMut(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(ProcessorConfig {
            rule: rule_from(get)?,
        })
    }
}

/// What the router reads: the rule (for cache keys), the limits and the
/// admin token.
#[derive(Clone, PartialEq, Eq)]
pub struct RouterConfig {
    pub rule: Rule,
    pub max_body_bytes: usize,
    pub max_batch_items: usize,
    /// `None` when `admin_token` is empty: the admin API answers 403.
    pub admin_token: Option<String>,
}

impl std::fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterConfig")
            .field("rule", &self.rule)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_batch_items", &self.max_batch_items)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl RouterConfig {
    /// Reads all the router's variables through `get` (`None` = not set).
    /// The router itself reads per route only what the route needs
    /// ([`rule_from`], [`max_body_bytes_from`], [`max_batch_items_from`],
    /// [`admin_token_from`]): each read is a host call.
    pub fn from_vars(
        mut get: impl FnMut(&'static str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Ok(RouterConfig {
            rule: rule_from(&mut get)?,
            max_body_bytes: max_body_bytes_from(&mut get)?,
            max_batch_items: max_batch_items_from(&mut get)?,
            admin_token: admin_token_from(&mut get),
        })
    }
}

/// `max_body_bytes`: the largest request body the router reads.
pub fn max_body_bytes_from(
    mut get: impl FnMut(&'static str) -> Option<String>,
) -> Result<usize, ConfigError> {
    parse_usize(
        names::MAX_BODY_BYTES,
        get(names::MAX_BODY_BYTES).as_deref(),
        defaults::MAX_BODY_BYTES,
        1,
        limits::MAX_BODY_BYTES,
    )
}

/// `max_batch_items`: the most items of one batch.
pub fn max_batch_items_from(
    mut get: impl FnMut(&'static str) -> Option<String>,
) -> Result<usize, ConfigError> {
    parse_usize(
        names::MAX_BATCH_ITEMS,
        get(names::MAX_BATCH_ITEMS).as_deref(),
        defaults::MAX_BATCH_ITEMS,
        1,
        limits::MAX_BATCH_ITEMS,
    )
}

/// `admin_token`; `None` when empty (the admin API answers 403).
pub fn admin_token_from(mut get: impl FnMut(&'static str) -> Option<String>) -> Option<String> {
    get(names::ADMIN_TOKEN).filter(|t| !t.is_empty())
}

/// `cache_ttl_seconds`: how long a stored answer stays fresh.
pub fn ttl_from(mut get: impl FnMut(&'static str) -> Option<String>) -> Result<u64, ConfigError> {
    parse_number(
        names::CACHE_TTL_SECONDS,
        get(names::CACHE_TTL_SECONDS).as_deref(),
        defaults::CACHE_TTL_SECONDS,
        1,
        limits::MAX_CACHE_TTL_SECONDS,
    )
}

/// What the cache reads: the TTL and the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    pub ttl_seconds: u64,
    /// `None` when `upstream_origin` is empty: `/api/data` answers 503 and
    /// the cache makes no outbound call at all.
    pub upstream: Option<Upstream>,
    pub upstream_timeout_ms: u64,
}

impl CacheConfig {
    /// Reads the cache's variables through `get` (`None` = not set).
    pub fn from_vars(
        mut get: impl FnMut(&'static str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let ttl_seconds = ttl_from(&mut get)?;
        let upstream_timeout_ms = parse_number(
            names::UPSTREAM_TIMEOUT_MS,
            get(names::UPSTREAM_TIMEOUT_MS).as_deref(),
            defaults::UPSTREAM_TIMEOUT_MS,
            1,
            limits::MAX_UPSTREAM_TIMEOUT_MS,
        )?;
        let origin = get(names::UPSTREAM_ORIGIN).unwrap_or_default();
        let path = get(names::UPSTREAM_PATH).unwrap_or_default();
        let upstream = Upstream::parse(&origin, &path)?;
        Ok(CacheConfig {
            ttl_seconds,
            upstream,
            upstream_timeout_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl FnMut(&'static str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn unset_variables_take_the_documented_defaults() {
        let router = RouterConfig::from_vars(vars(&[])).unwrap();
        assert_eq!(
            router.rule,
            Rule {
                threshold: 100,
                multiplier: 2
            }
        );
        assert_eq!(router.max_body_bytes, 65536);
        assert_eq!(router.max_batch_items, 1000);
        assert_eq!(router.admin_token, None);
        let cache = CacheConfig::from_vars(vars(&[])).unwrap();
        assert_eq!(cache.ttl_seconds, 300);
        assert_eq!(cache.upstream_timeout_ms, 2000);
        assert_eq!(cache.upstream, None);
    }

    #[test]
    fn values_are_read_and_trimmed() {
        let p =
            ProcessorConfig::from_vars(vars(&[("threshold", " 7 "), ("multiplier", "3")])).unwrap();
        assert_eq!(
            p.rule,
            Rule {
                threshold: 7,
                multiplier: 3
            }
        );
    }

    #[test]
    fn zero_multiplier_is_an_error_naming_the_variable() {
        let err = ProcessorConfig::from_vars(vars(&[("multiplier", "0")])).unwrap_err();
        assert_eq!(err.variable, "multiplier");
        assert!(err.to_string().contains("`multiplier`"), "{err}");
    }

    #[test]
    fn non_numeric_ttl_is_an_error_naming_the_variable() {
        let err = CacheConfig::from_vars(vars(&[("cache_ttl_seconds", "5m")])).unwrap_err();
        assert_eq!(err.variable, "cache_ttl_seconds");
        assert_eq!(err.value, "5m");
    }

    #[test]
    fn negative_and_empty_numbers_are_errors() {
        for bad in [
            "-1",
            "",
            "  ",
            "1.5",
            "1e3",
            "+3",
            "99999999999999999999999",
        ] {
            let err = RouterConfig::from_vars(vars(&[("max_body_bytes", bad)])).unwrap_err();
            assert_eq!(err.variable, "max_body_bytes", "{bad:?}");
        }
    }

    #[test]
    fn zero_limits_are_errors() {
        assert!(RouterConfig::from_vars(vars(&[("max_batch_items", "0")])).is_err());
        assert!(CacheConfig::from_vars(vars(&[("upstream_timeout_ms", "0")])).is_err());
        assert!(CacheConfig::from_vars(vars(&[("cache_ttl_seconds", "0")])).is_err());
    }

    #[test]
    fn each_route_reads_only_its_variables() {
        let mut read = Vec::new();
        let mut get = |name: &'static str| {
            read.push(name);
            None
        };
        rule_from(&mut get).unwrap();
        max_body_bytes_from(&mut get).unwrap();
        assert_eq!(read, ["threshold", "multiplier", "max_body_bytes"]);
        read.clear();
        let mut get = |name: &'static str| {
            read.push(name);
            Some("7".to_string())
        };
        assert_eq!(ttl_from(&mut get), Ok(7));
        assert_eq!(read, ["cache_ttl_seconds"]);
    }

    #[test]
    fn empty_admin_token_disables_the_admin_api() {
        let c = RouterConfig::from_vars(vars(&[("admin_token", "")])).unwrap();
        assert_eq!(c.admin_token, None);
        let c = RouterConfig::from_vars(vars(&[("admin_token", "s3cret")])).unwrap();
        assert_eq!(c.admin_token.as_deref(), Some("s3cret"));
    }

    #[test]
    fn debug_output_never_shows_the_admin_token() {
        let c = RouterConfig::from_vars(vars(&[("admin_token", "s3cret")])).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn upstream_is_read_from_origin_and_path() {
        let c = CacheConfig::from_vars(vars(&[
            ("upstream_origin", "https://api.example.com"),
            ("upstream_path", "/data"),
        ]))
        .unwrap();
        let up = c.upstream.unwrap();
        assert_eq!(up.origin(), "https://api.example.com");
        assert_eq!(up.path(), "/data");
    }

    #[test]
    fn an_origin_with_a_path_is_an_error_naming_the_variable() {
        let err =
            CacheConfig::from_vars(vars(&[("upstream_origin", "https://api.example.com/data")]))
                .unwrap_err();
        assert_eq!(err.variable, "upstream_origin");
    }
}
