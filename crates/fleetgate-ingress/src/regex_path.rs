//! Regular-expression paths: the `use-regex` flavour of ingress-nginx.
//!
//! Users who move from ingress-nginx bring Ingresses whose paths are
//! regular expressions (`/api/v[0-9]+/.*`, `/app(/|$)(.*)` for a
//! `rewrite-target`). ingress-nginx writes each such path as a
//! case-insensitive nginx regex location anchored at the start, and orders
//! a host's locations by the length of their paths, longest first, taking
//! the first that matches. A host whose rules are matched this way is a
//! *regex host* of the table (see
//! [`RouteTableBuilder::add_regex_path`](crate::RouteTableBuilder::add_regex_path)).
//!
//! Patterns use the `regex` crate's syntax, which is RE2's (what the
//! Kubernetes documentation asks regex paths to stay within); look-around
//! and back-references are refused with a clear error rather than matched
//! differently. One deliberate difference from ingress-nginx: an `Exact`
//! path must match the whole request path (anchored at both ends), where
//! ingress-nginx's regex mode matches it as a prefix.

use regex::{Regex, RegexBuilder};

use crate::path::{InvalidPath, PathType};

/// The most memory one compiled path regex (and its lazy DFA) may use: a
/// path is short; this only stops a mistaken pattern from costing the
/// gateway memory.
pub const PATH_REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles an Ingress path as a regex path: case-insensitive, anchored
/// at the start, and for [`PathType::Exact`] at the end too. An empty path
/// (allowed for `ImplementationSpecific`) matches every request path.
pub fn compile_path_regex(path: &str, path_type: PathType) -> Result<Regex, InvalidPath> {
    let invalid = |reason: String| InvalidPath {
        path: path.to_string(),
        reason,
    };
    // The pattern on its own first: wrapped in a group, an unbalanced `)`
    // could close the group early and leave the rest unanchored.
    build(path).map_err(|e| invalid(regex_reason(&e)))?;
    let anchored = match path_type {
        PathType::Exact => format!("^(?:{path})$"),
        PathType::Prefix | PathType::ImplementationSpecific => format!("^(?:{path})"),
    };
    build(&anchored).map_err(|e| invalid(regex_reason(&e)))
}

fn build(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(PATH_REGEX_SIZE_LIMIT)
        .dfa_size_limit(PATH_REGEX_SIZE_LIMIT)
        .build()
}

/// A one-line reason for a regex error (the crate's errors span lines).
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    let detail = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.trim());
    format!("not a regular expression this gateway can use: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_at_the_start_and_case_insensitive() {
        let r = compile_path_regex("/foo/.*", PathType::ImplementationSpecific).unwrap();
        assert!(r.is_match("/foo/bar"));
        assert!(r.is_match("/FOO/bar"));
        assert!(!r.is_match("/x/foo/bar"));
        // A prefix, as an nginx location: not element-wise.
        let r = compile_path_regex("/foo", PathType::Prefix).unwrap();
        assert!(r.is_match("/foobar"));
    }

    #[test]
    fn exact_is_anchored_at_both_ends() {
        let r = compile_path_regex("/v[0-9]+", PathType::Exact).unwrap();
        assert!(r.is_match("/v12"));
        assert!(!r.is_match("/v12/x"));
    }

    #[test]
    fn an_unbalanced_group_cannot_unanchor_the_pattern() {
        let err = compile_path_regex("/a)|(.*", PathType::Prefix).unwrap_err();
        assert!(err.reason.contains("regular expression"), "{err}");
    }

    #[test]
    fn pcre_only_syntax_is_refused_with_the_reason() {
        let err = compile_path_regex("/(?!admin).*", PathType::Prefix).unwrap_err();
        assert!(err.to_string().contains("look-around"), "{err}");
    }

    #[test]
    fn empty_matches_everything() {
        let r = compile_path_regex("", PathType::ImplementationSpecific).unwrap();
        assert!(r.is_match("/anything"));
    }
}
