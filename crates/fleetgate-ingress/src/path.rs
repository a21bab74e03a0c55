//! Ingress rule paths: types, validation and the normal form used as table keys.

use std::fmt;
use std::str::FromStr;

/// How an Ingress path is matched (`spec.rules[].http.paths[].pathType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathType {
    /// Byte-equal match of the whole URL path.
    Exact,
    /// Element-wise prefix match on `/`-separated path elements.
    Prefix,
    /// Left to the implementation; fleetgate treats it as [`PathType::Prefix`]
    /// (as Higress does), not as nginx's string prefix.
    ImplementationSpecific,
}

impl PathType {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PathType::Exact => "Exact",
            PathType::Prefix => "Prefix",
            PathType::ImplementationSpecific => "ImplementationSpecific",
        }
    }

    /// Whether this type matches by path prefix.
    pub fn is_prefix(self) -> bool {
        !matches!(self, PathType::Exact)
    }
}

impl fmt::Display for PathType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PathType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Exact" => Ok(PathType::Exact),
            "Prefix" => Ok(PathType::Prefix),
            "ImplementationSpecific" => Ok(PathType::ImplementationSpecific),
            other => Err(format!(
                "unknown pathType \"{other}\" (expected Exact, Prefix or ImplementationSpecific)"
            )),
        }
    }
}

/// Why a rule path was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPath {
    /// The path as written.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid path \"{}\": {}", self.path, self.reason)
    }
}

impl std::error::Error for InvalidPath {}

/// Sequences that Kubernetes forbids in `Exact` and `Prefix` paths: they
/// would let a request reach a path other than the one the rule names.
const FORBIDDEN_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const FORBIDDEN_SUFFIXES: [&str; 2] = ["/..", "/."];

/// Validates an Ingress path for its type (the Kubernetes API server's rules).
pub fn validate_path(path: &str, path_type: PathType) -> Result<(), InvalidPath> {
    let invalid = |reason: String| InvalidPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return match path_type {
            PathType::ImplementationSpecific => Ok(()),
            _ => Err(invalid(format!("a {path_type} path must not be empty"))),
        };
    }
    if !path.starts_with('/') {
        return Err(invalid("must start with '/'".to_string()));
    }
    if path_type == PathType::ImplementationSpecific {
        return Ok(());
    }
    if let Some(seq) = FORBIDDEN_SEQUENCES.iter().find(|s| path.contains(**s)) {
        return Err(invalid(format!("must not contain \"{seq}\"")));
    }
    if let Some(suffix) = FORBIDDEN_SUFFIXES.iter().find(|s| path.ends_with(**s)) {
        return Err(invalid(format!("must not end with \"{suffix}\"")));
    }
    Ok(())
}

/// The key a path is stored under: prefix paths lose their trailing `/`
/// (except `/` itself), so `/foo/` and `/foo` are the same prefix rule.
pub(crate) fn table_key(path: &str, path_type: PathType) -> &str {
    if path.is_empty() {
        return "/";
    }
    if path_type.is_prefix() && path.len() > 1 {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return "/";
        }
        return trimmed;
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_spellings() {
        assert_eq!("Exact".parse::<PathType>().unwrap(), PathType::Exact);
        assert_eq!("Prefix".parse::<PathType>().unwrap(), PathType::Prefix);
        assert_eq!(
            "ImplementationSpecific".parse::<PathType>().unwrap(),
            PathType::ImplementationSpecific
        );
        assert!("prefix".parse::<PathType>().is_err());
    }

    #[test]
    fn validation_rules() {
        for ok in ["/", "/foo", "/foo/", "/a.b", "/.well-known/x", "/foo..bar"] {
            validate_path(ok, PathType::Exact).unwrap();
            validate_path(ok, PathType::Prefix).unwrap();
        }
        for (bad, why) in [
            ("", "empty"),
            ("foo", "start with"),
            ("/a//b", "//"),
            ("/a/./b", "/./"),
            ("/a/../b", "/../"),
            ("/a%2fb", "%2f"),
            ("/a%2Fb", "%2F"),
            ("/a/..", "/.."),
            ("/a/.", "/."),
        ] {
            for t in [PathType::Exact, PathType::Prefix] {
                let err = validate_path(bad, t).unwrap_err();
                assert!(err.to_string().contains(why), "{bad}: {err}");
            }
        }
    }

    #[test]
    fn implementation_specific_is_lenient_but_absolute() {
        validate_path("", PathType::ImplementationSpecific).unwrap();
        validate_path("/a//b", PathType::ImplementationSpecific).unwrap();
        assert!(validate_path("a", PathType::ImplementationSpecific).is_err());
    }

    #[test]
    fn prefix_keys_drop_trailing_slash() {
        assert_eq!(table_key("/foo/", PathType::Prefix), "/foo");
        assert_eq!(table_key("/", PathType::Prefix), "/");
        assert_eq!(table_key("/foo/", PathType::Exact), "/foo/");
        assert_eq!(table_key("", PathType::ImplementationSpecific), "/");
    }
}
