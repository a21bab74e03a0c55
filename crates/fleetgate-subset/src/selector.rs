//! Subset selectors: which endpoints of a Service a route may use.
//!
//! MSE Ingress lets a route name a *subset* of its Service with
//! `mse.ingress.kubernetes.io/service-subset`, defined either by explicit
//! labels (`mse.ingress.kubernetes.io/subset-labels`, e.g. the cluster label
//! for "only cluster 2") or, without them, by the OpenSergo canary labels.
//! Parsing happens once when the Ingress is read; [`SubsetSelector::matches`]
//! then runs per endpoint and never allocates.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

use crate::error::SubsetError;
use crate::labels::{
    is_label_key, is_label_value, CANARY_LABEL_PREFIX, SERVICE_SUBSET, SUBSET_LABELS,
};

/// The subset value that (like `""`) means "endpoints without canary labels".
const BASE: &str = "base";

/// Which endpoints of a Service belong to a named subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsetSelector {
    name: String,
    rule: Rule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// Every pair must be present with exactly that value. Sorted by key,
    /// keys unique, never empty.
    AllOf(Vec<(String, String)>),
    /// No label key may start with [`CANARY_LABEL_PREFIX`].
    NoCanaryLabel,
}

impl SubsetSelector {
    /// The subset's name: the value of `service-subset`, as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether an endpoint with these labels belongs to the subset.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match &self.rule {
            Rule::AllOf(pairs) => pairs
                .iter()
                .all(|(key, value)| labels.get(key.as_str()) == Some(value)),
            Rule::NoCanaryLabel => !labels
                .range::<str, _>((Bound::Included(CANARY_LABEL_PREFIX), Bound::Unbounded))
                .next()
                .is_some_and(|(key, _)| key.starts_with(CANARY_LABEL_PREFIX)),
        }
    }
}

impl fmt::Display for SubsetSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            f.write_str("\"\"")?;
        } else {
            f.write_str(&self.name)?;
        }
        match &self.rule {
            Rule::AllOf(pairs) => {
                f.write_str(" (")?;
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}={value}")?;
                }
                f.write_str(")")
            }
            Rule::NoCanaryLabel => write!(f, " (no {CANARY_LABEL_PREFIX}* label)"),
        }
    }
}

/// Reads the subset of a route from its Ingress annotations.
///
/// Only `mse.ingress.kubernetes.io/service-subset` and
/// `mse.ingress.kubernetes.io/subset-labels` are read. Returns `Ok(None)` when
/// the route names no subset (it then uses the whole Service).
///
/// # Errors
///
/// A `subset-labels` line that is not exactly `key value`, a key given twice
/// with different values, a `subset-labels` with no pair at all or without a
/// `service-subset`, and keys or values no Kubernetes label can have.
pub fn parse_subset(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<SubsetSelector>, SubsetError> {
    let labels = annotations.get(SUBSET_LABELS);
    let Some(name) = annotations.get(SERVICE_SUBSET) else {
        return match labels {
            Some(labels) => Err(SubsetError::new(
                SUBSET_LABELS,
                labels,
                format!("needs {SERVICE_SUBSET} to name the subset"),
            )),
            None => Ok(None),
        };
    };
    let rule = match labels {
        Some(labels) => Rule::AllOf(parse_label_pairs(labels)?),
        None => implicit_rule(name)?,
    };
    Ok(Some(SubsetSelector {
        name: name.clone(),
        rule,
    }))
}

/// The rule for a `service-subset` without `subset-labels`.
fn implicit_rule(name: &str) -> Result<Rule, SubsetError> {
    let version = name.trim();
    if version.is_empty() || version == BASE {
        return Ok(Rule::NoCanaryLabel);
    }
    let key = format!("{CANARY_LABEL_PREFIX}-{version}");
    if !is_label_value(version) || !is_label_key(&key) {
        return Err(SubsetError::new(
            SERVICE_SUBSET,
            name,
            format!("`{key}: {version}` is not a valid Kubernetes label"),
        ));
    }
    Ok(Rule::AllOf(vec![(key, version.to_owned())]))
}

/// Parses `key value` lines into sorted, de-duplicated pairs.
fn parse_label_pairs(text: &str) -> Result<Vec<(String, String)>, SubsetError> {
    let error = |reason: String| SubsetError::new(SUBSET_LABELS, text, reason);
    let mut pairs: BTreeMap<&str, &str> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let mut tokens = line.split_whitespace();
        let (key, value) = match (tokens.next(), tokens.next(), tokens.next()) {
            (None, _, _) => continue,
            (Some(key), Some(value), None) => (key, value),
            _ => {
                return Err(error(format!(
                    "line {number}: expected `<key> <value>`, got {:?}",
                    line.trim()
                )))
            }
        };
        if !is_label_key(key) {
            return Err(error(format!(
                "line {number}: {key:?} is not a valid label key"
            )));
        }
        if !is_label_value(value) {
            return Err(error(format!(
                "line {number}: {value:?} is not a valid label value"
            )));
        }
        if let Some(previous) = pairs.insert(key, value) {
            if previous != value {
                return Err(error(format!(
                    "line {number}: label {key} given twice, as {previous:?} and {value:?}"
                )));
            }
        }
    }
    if pairs.is_empty() {
        return Err(error("no `<key> <value>` pair".to_owned()));
    }
    Ok(pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{CLUSTER_LABEL, ZONE_LABEL};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<SubsetSelector>, SubsetError> {
        parse_subset(&map(pairs))
    }

    fn selector(pairs: &[(&str, &str)]) -> SubsetSelector {
        match parse(pairs) {
            Ok(Some(selector)) => selector,
            other => panic!("expected a selector, got {other:?}"),
        }
    }

    fn error(pairs: &[(&str, &str)]) -> SubsetError {
        match parse(pairs) {
            Err(err) => err,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn no_subset_annotation() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(
            parse(&[("nginx.ingress.kubernetes.io/canary", "true")]),
            Ok(None)
        );
        // Only the MSE keys count: Higress spellings are ignored.
        assert_eq!(parse(&[("higress.io/service-subset", "gray")]), Ok(None));
    }

    #[test]
    fn cluster_subset() {
        let s = selector(&[
            (SERVICE_SUBSET, "cluster-demo-2"),
            (SUBSET_LABELS, "topology.istio.io/cluster cd3007b2\n"),
        ]);
        assert_eq!(s.name(), "cluster-demo-2");
        assert_eq!(
            s.to_string(),
            "cluster-demo-2 (topology.istio.io/cluster=cd3007b2)"
        );
        assert!(s.matches(&map(&[(CLUSTER_LABEL, "cd3007b2"), ("app", "demo")])));
        assert!(!s.matches(&map(&[(CLUSTER_LABEL, "c1")])));
        assert!(!s.matches(&map(&[("app", "demo")])));
    }

    #[test]
    fn several_pairs_all_must_match() {
        let s = selector(&[
            (SERVICE_SUBSET, "hz-2"),
            (
                SUBSET_LABELS,
                "  topology.istio.io/cluster   c2  \n\n\ttopology.kubernetes.io/zone\tcn-hangzhou-h\r\n",
            ),
        ]);
        assert_eq!(
            s.to_string(),
            "hz-2 (topology.istio.io/cluster=c2, topology.kubernetes.io/zone=cn-hangzhou-h)"
        );
        assert!(s.matches(&map(&[
            (CLUSTER_LABEL, "c2"),
            (ZONE_LABEL, "cn-hangzhou-h")
        ])));
        assert!(!s.matches(&map(&[(CLUSTER_LABEL, "c2")])));
        assert!(!s.matches(&map(&[
            (CLUSTER_LABEL, "c2"),
            (ZONE_LABEL, "cn-hangzhou-i")
        ])));
    }

    #[test]
    fn repeated_identical_pair_is_fine() {
        let s = selector(&[(SERVICE_SUBSET, "x"), (SUBSET_LABELS, "app a\napp a")]);
        assert_eq!(s.to_string(), "x (app=a)");
    }

    #[test]
    fn explicit_labels_win_over_base() {
        let s = selector(&[(SERVICE_SUBSET, "base"), (SUBSET_LABELS, "app a")]);
        assert!(s.matches(&map(&[("app", "a"), ("opensergo.io/canary-gray", "gray")])));
    }

    #[test]
    fn base_subset() {
        for name in ["", "base"] {
            let s = selector(&[(SERVICE_SUBSET, name)]);
            assert_eq!(s.name(), name);
            assert!(s.matches(&map(&[])));
            assert!(s.matches(&map(&[(CLUSTER_LABEL, "c1"), ("opensergo.io/x", "1")])));
            assert!(s.matches(&map(&[("opensergo.io/canarz", "1"), ("zzz", "1")])));
            assert!(!s.matches(&map(&[("opensergo.io/canary", "")])));
            assert!(!s.matches(&map(&[("opensergo.io/canary-gray", "gray")])));
            assert!(!s.matches(&map(&[
                ("a", "1"),
                ("opensergo.io/canary-v2", "v2"),
                ("zzz", "1")
            ])));
        }
        assert_eq!(
            selector(&[(SERVICE_SUBSET, "base")]).to_string(),
            "base (no opensergo.io/canary* label)"
        );
        assert_eq!(
            selector(&[(SERVICE_SUBSET, "")]).to_string(),
            "\"\" (no opensergo.io/canary* label)"
        );
    }

    #[test]
    fn canary_version_subset() {
        let s = selector(&[(SERVICE_SUBSET, "gray")]);
        assert_eq!(s.name(), "gray");
        assert_eq!(s.to_string(), "gray (opensergo.io/canary-gray=gray)");
        assert!(s.matches(&map(&[("opensergo.io/canary-gray", "gray")])));
        assert!(!s.matches(&map(&[("opensergo.io/canary-gray", "blue")])));
        assert!(!s.matches(&map(&[("opensergo.io/canary-blue", "gray")])));
        assert!(!s.matches(&map(&[])));
    }

    #[test]
    fn labels_without_subset_is_an_error() {
        let err = error(&[(SUBSET_LABELS, "app a")]);
        assert_eq!(err.key, SUBSET_LABELS);
        assert_eq!(err.value, "app a");
        assert!(err.reason.contains(SERVICE_SUBSET), "{err}");
    }

    #[test]
    fn malformed_lines_are_errors() {
        for (text, needle) in [
            ("app", "line 1"),
            ("app a\napp", "line 2"),
            ("app a b", "line 1"),
            ("app=a", "line 1"),
            ("", "no `<key> <value>` pair"),
            (" \n\t\n", "no `<key> <value>` pair"),
            ("app a\napp b", "given twice"),
            ("Bad.Prefix/app a", "not a valid label key"),
            ("app -a", "not a valid label value"),
        ] {
            let err = error(&[(SERVICE_SUBSET, "s"), (SUBSET_LABELS, text)]);
            assert_eq!(err.key, SUBSET_LABELS);
            assert_eq!(err.value, text);
            assert!(err.reason.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn canary_version_must_make_a_label() {
        for name in ["gr ay", "-gray", &"v".repeat(57)] {
            let err = error(&[(SERVICE_SUBSET, name)]);
            assert_eq!(err.key, SERVICE_SUBSET);
            assert_eq!(err.value, name);
        }
        assert!(parse(&[(SERVICE_SUBSET, &"v".repeat(56))]).is_ok());
    }
}
