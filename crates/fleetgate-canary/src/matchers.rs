//! Value matchers for header and query conditions, compiled once per route.
//!
//! The request path must never parse configuration, so every annotation value
//! is turned here, at build time, into the cheapest matcher that has the same
//! meaning: MSE's `always|<value>` full match becomes a handful of byte-string
//! comparisons when the value has no regex metacharacters (the usual case,
//! e.g. `cluster1` or `gz|bj`), and a size-limited regex otherwise. Regexes
//! run on bytes, so header values that are not UTF-8 need no conversion.

use regex::bytes::{Regex, RegexBuilder};

/// The most memory one compiled canary regex (and its lazy DFA) may use.
/// Canary patterns are short; this only stops a hostile or mistaken pattern
/// from costing the gateway memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles `pattern` with the crate's limits.
pub(crate) fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// A one-line reason for a regex error (the crate's errors span lines).
pub(crate) fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    let detail = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.trim());
    format!("invalid regular expression: {detail}")
}

/// The regex an MSE `*-value` annotation stands for: `always|<value>`
/// (just `always` when the value is `always` itself).
pub(crate) fn mse_alternation(value: &str) -> String {
    if value == "always" {
        return value.to_string();
    }
    format!("always|{value}")
}

/// Compiles an MSE `*-value` as an RE2-style full match of `always|<value>`.
///
/// The alternation is first compiled on its own so that a value which only
/// parses thanks to the added group (say `a)|(b`) is rejected, as RE2 would.
pub(crate) fn compile_full_match(value: &str) -> Result<Regex, regex::Error> {
    let alternation = mse_alternation(value);
    compile(&alternation)?;
    compile(&format!(r"\A(?:{alternation})\z"))
}

/// Bytes with a special meaning in a regex outside a character class.
/// (`|` is handled separately: it splits literal alternatives.)
const META: &[u8] = b"\\.+*?()[]{}^$";

/// How a header or query value is tested.
#[derive(Debug, Clone)]
pub(crate) enum ValueMatcher {
    /// The value equals one of these.
    OneOf(Box<[Box<[u8]>]>),
    /// The regex matches (anchoring is part of the regex).
    Regex(Regex),
    /// The configured regex did not compile; what that means depends on the
    /// flavour (MSE: no match; ingress-nginx: main Service, stop).
    Invalid,
}

impl ValueMatcher {
    /// Matches exactly `always`: a header or query key without value.
    pub(crate) fn always() -> Self {
        ValueMatcher::OneOf(Box::new([Box::from(&b"always"[..])]))
    }

    /// An MSE `*-value`: full match of `always|<value>`.
    pub(crate) fn mse_value(value: &str) -> Self {
        if !value.bytes().any(|b| META.contains(&b)) {
            let alternatives = std::iter::once("always")
                .chain(value.split('|'))
                .map(|alt| Box::from(alt.as_bytes()))
                .collect();
            return ValueMatcher::OneOf(alternatives);
        }
        match compile_full_match(value) {
            Ok(re) => ValueMatcher::Regex(re),
            Err(_) => ValueMatcher::Invalid,
        }
    }

    /// A `*-pattern`: unanchored regex search.
    pub(crate) fn search(pattern: &str) -> Self {
        match compile(pattern) {
            Ok(re) => ValueMatcher::Regex(re),
            Err(_) => ValueMatcher::Invalid,
        }
    }

    /// `Some(matched)`, or `None` when the configured regex was invalid.
    #[inline]
    pub(crate) fn test(&self, value: &[u8]) -> Option<bool> {
        match self {
            ValueMatcher::OneOf(options) => Some(options.iter().any(|o| **o == *value)),
            ValueMatcher::Regex(re) => Some(re.is_match(value)),
            ValueMatcher::Invalid => None,
        }
    }

    /// Whether no regex runs for this matcher.
    #[cfg(test)]
    pub(crate) fn is_literal(&self) -> bool {
        matches!(self, ValueMatcher::OneOf(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_values_need_no_regex_and_agree_with_one() {
        let samples: &[&[u8]] = &[
            b"always",
            b"gz",
            b"bj",
            b"gz|bj",
            b"",
            b"cluster-1",
            b"xgz",
            b"gzx",
            b"Always",
            b"a b",
        ];
        for value in ["gz", "gz|bj", "cluster-1", "gz|", "a b", "#x&y~z-1"] {
            let literal = ValueMatcher::mse_value(value);
            assert!(literal.is_literal(), "{value}");
            let regex = ValueMatcher::Regex(compile_full_match(value).unwrap());
            for sample in samples {
                assert_eq!(
                    literal.test(sample),
                    regex.test(sample),
                    "{value} vs {sample:?}"
                );
            }
        }
    }

    #[test]
    fn regex_values_are_full_matches() {
        let m = ValueMatcher::mse_value("v1\\.[0-9]+");
        assert!(!m.is_literal());
        assert_eq!(m.test(b"v1.12"), Some(true));
        assert_eq!(m.test(b"always"), Some(true));
        assert_eq!(m.test(b"v1.12-beta"), Some(false));
        assert_eq!(m.test(b"xv1.1"), Some(false));
        // A value that is only valid inside the added group is invalid.
        assert!(matches!(
            ValueMatcher::mse_value("a)|(b"),
            ValueMatcher::Invalid
        ));
        assert!(matches!(
            ValueMatcher::mse_value("(a"),
            ValueMatcher::Invalid
        ));
    }

    #[test]
    fn search_is_unanchored_and_runs_on_bytes() {
        let m = ValueMatcher::search("beta");
        assert_eq!(m.test(b"user-beta-7"), Some(true));
        assert_eq!(m.test(b"user-alpha"), Some(false));
        assert_eq!(m.test(b"\xffbeta"), Some(true));
        assert!(matches!(ValueMatcher::search("("), ValueMatcher::Invalid));
        assert_eq!(ValueMatcher::Invalid.test(b"x"), None);
    }

    #[test]
    fn huge_regexes_are_refused() {
        assert!(compile("(a{1000}){1000}").is_err());
        let reason = regex_reason(&compile("(").unwrap_err());
        assert!(!reason.contains('\n'), "{reason}");
        assert!(
            reason.starts_with("invalid regular expression: "),
            "{reason}"
        );
    }
}
