//! Spin 4.0.2's instance-reuse settings (crates/trigger-http/src/lib.rs):
//! `--max-instance-reuse-count`, `--max-instance-concurrent-reuse-count`,
//! `--request-timeout` and `--idle-instance-timeout`, each a value or a
//! range `a..b` from which every new instance picks its own at random
//! (half-open, as `rand`'s `random_range`), parsed exactly as Spin parses
//! them. They shape WASI 0.3 components only: a WASI 0.2 instance serves
//! one request, whatever the flags (Spin's WASI 0.2 executor ignores them).

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;
use rand::distr::uniform::SampleUniform;

/// Spin's default for `--max-instance-reuse-count` (WASI 0.3).
pub const DEFAULT_MAX_INSTANCE_REUSE_COUNT: usize = 128;
/// Spin's default for `--max-instance-concurrent-reuse-count` (WASI 0.3).
pub const DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT: usize = 16;
/// Spin's default for `--idle-instance-timeout`.
pub const DEFAULT_IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(1);

/// A value, or bounds to pick one from (`a..b`, `b` excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range<T> {
    /// Always this value.
    Value(T),
    /// A value picked at random in `a..b` for each instance.
    Bounds(T, T),
}

impl<T: SampleUniform + PartialOrd + Copy> Range<T> {
    /// A value for a new instance, or `None` for an empty range (`a..b`
    /// with `b <= a`), on which Spin's `random_range` panics.
    pub fn pick(&self) -> Option<T> {
        match *self {
            Range::Value(v) => Some(v),
            Range::Bounds(a, b) if a < b => Some(rand::rng().random_range(a..b)),
            Range::Bounds(..) => None,
        }
    }
}

impl<T> Range<T> {
    fn map<V>(self, f: impl Fn(T) -> V) -> Range<V> {
        match self {
            Range::Value(v) => Range::Value(f(v)),
            Range::Bounds(a, b) => Range::Bounds(f(a), f(b)),
        }
    }
}

/// Spin's `parse_range`: `N` or `A..B`, with its error words.
fn parse_range<T: FromStr>(s: &str) -> Result<Range<T>, String>
where
    T::Err: Display,
{
    let error = |e| format!("expected integer or range; got {s:?}; {e}");
    if let Some((start, end)) = s.split_once("..") {
        Ok(Range::Bounds(
            start.parse().map_err(error)?,
            end.parse().map_err(error)?,
        ))
    } else {
        Ok(Range::Value(s.parse().map_err(error)?))
    }
}

/// `--max-instance-reuse-count` and `--max-instance-concurrent-reuse-count`.
pub fn parse_usize_range(s: &str) -> Result<Range<usize>, String> {
    parse_range(s)
}

/// Spin's `ParsedDuration`, to the letter: a bare integer is seconds; else
/// the `s` suffix is stripped first, so `5s` is five seconds but `500ms`,
/// `5us`, `5μs` and `5ns` are refused (`"500m"` is not an integer), as
/// Spin 4.0.2 refuses them, though its message lists those suffixes.
struct ParsedDuration(Duration);

impl FromStr for ParsedDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = |e| {
            format!("expected integer suffixed by `s`, `ms`, `us`, `μs`, or `ns`; got {s:?}; {e}")
        };
        Ok(Self(match s.parse() {
            Ok(val) => Duration::from_secs(val),
            Err(err) => {
                if let Some(num) = s.strip_suffix("s") {
                    Duration::from_secs(num.parse().map_err(error)?)
                } else if let Some(num) = s.strip_suffix("ms") {
                    Duration::from_millis(num.parse().map_err(error)?)
                } else if let Some(num) = s.strip_suffix("us").or(s.strip_suffix("μs")) {
                    Duration::from_micros(num.parse().map_err(error)?)
                } else if let Some(num) = s.strip_suffix("ns") {
                    Duration::from_nanos(num.parse().map_err(error)?)
                } else {
                    return Err(error(err));
                }
            }
        }))
    }
}

/// `--request-timeout` and `--idle-instance-timeout`.
pub fn parse_duration_range(s: &str) -> Result<Range<Duration>, String> {
    parse_range::<ParsedDuration>(s).map(|v| v.map(|v| v.0))
}

/// Spin's `InstanceReuseConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseConfig {
    /// Requests one instance serves before it is dropped.
    pub max_instance_reuse_count: Range<usize>,
    /// Requests one instance serves at once.
    pub max_instance_concurrent_reuse_count: Range<usize>,
    /// A request's time budget in a WASI 0.3 instance (none by default).
    pub request_timeout: Option<Range<Duration>>,
    /// How long an idle instance is kept for the next request.
    pub idle_instance_timeout: Range<Duration>,
}

impl Default for ReuseConfig {
    fn default() -> Self {
        Self {
            max_instance_reuse_count: Range::Value(DEFAULT_MAX_INSTANCE_REUSE_COUNT),
            max_instance_concurrent_reuse_count: Range::Value(
                DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT,
            ),
            request_timeout: None,
            idle_instance_timeout: Range::Value(DEFAULT_IDLE_INSTANCE_TIMEOUT),
        }
    }
}

/// What one WASI 0.3 instance got from [`ReuseConfig`].
#[derive(Debug, Clone, Copy)]
pub struct InstanceReuse {
    pub max_reuse: usize,
    pub max_concurrent: usize,
    /// `Duration::MAX` when no `--request-timeout` (Spin's).
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ReuseConfig {
    /// The values for a new instance, or why there are none (an empty
    /// range, or a reuse count of 0, on which Spin panics).
    pub fn pick(&self) -> Result<InstanceReuse, String> {
        let empty = |flag: &str| format!("{flag}: cannot sample empty range");
        let picked = InstanceReuse {
            max_reuse: self
                .max_instance_reuse_count
                .pick()
                .ok_or_else(|| empty("--max-instance-reuse-count"))?,
            max_concurrent: self
                .max_instance_concurrent_reuse_count
                .pick()
                .ok_or_else(|| empty("--max-instance-concurrent-reuse-count"))?,
            request_timeout: match self.request_timeout {
                Some(range) => range.pick().ok_or_else(|| empty("--request-timeout"))?,
                None => Duration::MAX,
            },
            idle_timeout: self
                .idle_instance_timeout
                .pick()
                .ok_or_else(|| empty("--idle-instance-timeout"))?,
        };
        if picked.max_reuse == 0 {
            return Err("`max_instance_reuse_count` must be at least 1".into());
        }
        Ok(picked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_a_value_or_a_range_as_spin_parses_them() {
        assert_eq!(parse_usize_range("8"), Ok(Range::Value(8)));
        assert_eq!(parse_usize_range("1..8"), Ok(Range::Bounds(1, 8)));
        assert_eq!(
            parse_usize_range("x").unwrap_err(),
            r#"expected integer or range; got "x"; invalid digit found in string"#
        );
        assert!(parse_usize_range("1..").is_err());
        assert!(parse_usize_range("-1").is_err());
    }

    #[test]
    fn durations_are_whole_seconds_with_or_without_s_as_on_spin_4_0_2() {
        let secs = |n| Duration::from_secs(n);
        assert_eq!(parse_duration_range("2"), Ok(Range::Value(secs(2))));
        assert_eq!(parse_duration_range("2s"), Ok(Range::Value(secs(2))));
        assert_eq!(
            parse_duration_range("1..8s"),
            Ok(Range::Bounds(secs(1), secs(8)))
        );
        // Spin strips `s` before trying `ms`, `us`, `μs` or `ns`: all refused.
        for s in ["500ms", "5us", "5μs", "5ns", "1.5s", "5m"] {
            assert!(parse_duration_range(s).is_err(), "{s}");
        }
        assert_eq!(
            parse_duration_range("500ms").unwrap_err(),
            "expected integer or range; got \"500ms\"; expected integer suffixed by `s`, `ms`, \
             `us`, `μs`, or `ns`; got \"500ms\"; invalid digit found in string"
        );
    }

    #[test]
    fn defaults_are_spins() {
        let picked = ReuseConfig::default().pick().unwrap();
        assert_eq!(picked.max_reuse, 128);
        assert_eq!(picked.max_concurrent, 16);
        assert_eq!(picked.request_timeout, Duration::MAX);
        assert_eq!(picked.idle_timeout, Duration::from_secs(1));
    }

    #[test]
    fn a_range_is_picked_per_instance_within_its_half_open_bounds() {
        let config = ReuseConfig {
            max_instance_reuse_count: Range::Bounds(1, 4),
            ..ReuseConfig::default()
        };
        let seen: std::collections::BTreeSet<usize> =
            (0..200).map(|_| config.pick().unwrap().max_reuse).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
        let empty = ReuseConfig {
            max_instance_reuse_count: Range::Bounds(4, 4),
            ..ReuseConfig::default()
        };
        assert!(empty.pick().is_err());
        let zero = ReuseConfig {
            max_instance_reuse_count: Range::Value(0),
            ..ReuseConfig::default()
        };
        assert!(zero.pick().is_err());
    }
}
