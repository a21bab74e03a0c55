//! Path matching and rewriting annotations of an Ingress: `use-regex`,
//! `rewrite-target` (ingress-nginx) and `rewrite-path` (Higress/MSE).
//! `rewrite-host` is read with the header annotations, as the Higress
//! spelling of `upstream-vhost`.
//!
//! As in ingress-nginx, regex matching is a property of a host, not of one
//! Ingress: once any Ingress asks for it (`use-regex: "true"`, or a
//! `rewrite-target` that differs from a path), every path of that host,
//! from every Ingress, is matched as a regex ([`regex_hosts`]). Paths of
//! such a host are checked as regexes when the configuration is loaded.

use std::collections::{BTreeMap, BTreeSet};

use fleetgate_ingress::{
    check_path_value, compile_path_regex, HostPattern, PathRewrite, RewriteTemplate,
};

use crate::annotations::AnnotationError;
use crate::error::ConfigError;
use crate::model::{Disposition, Ingress};

/// How an Ingress's upstream paths are rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteRequest {
    /// `rewrite-target`: a template over the path's capture groups.
    Target(String),
    /// `rewrite-path`: the matched prefix (or whole path) replaced.
    Path(String),
}

/// What an Ingress's path annotations ask for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathMatching {
    /// `use-regex: "true"`.
    pub use_regex: bool,
    /// Its rewrite, if any.
    pub rewrite: Option<RewriteRequest>,
}

impl PathMatching {
    /// Whether the Ingress makes its hosts match paths as regexes: it says
    /// `use-regex`, or its `rewrite-target` differs from one of `paths`
    /// (a target equal to the path rewrites nothing in ingress-nginx).
    pub fn asks_for_regex<'a>(&self, mut paths: impl Iterator<Item = &'a str>) -> bool {
        self.use_regex
            || matches!(&self.rewrite, Some(RewriteRequest::Target(t)) if paths.any(|p| p != t))
    }

    /// The rewrite for one of the Ingress's paths (`regex`: its host
    /// matches paths as regexes). The loader checked the values, so an
    /// error here would only come from a hand-made `Config`.
    pub fn rewrite_for(
        &self,
        path: &str,
        path_type: fleetgate_ingress::PathType,
        regex: bool,
    ) -> Result<Option<PathRewrite>, fleetgate_ingress::InvalidRewrite> {
        match &self.rewrite {
            None => Ok(None),
            Some(RewriteRequest::Target(t)) => PathRewrite::nginx_target(path, path_type, t),
            Some(RewriteRequest::Path(v)) => {
                PathRewrite::replace_path(path, path_type, regex, v).map(Some)
            }
        }
    }
}

/// Reads `use-regex`, `rewrite-target` and `rewrite-path`.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
) -> Result<PathMatching, AnnotationError> {
    let mut matching = PathMatching::default();
    if let Some((key, value)) = fleetgate_canary::annotation(annotations, "use-regex") {
        // The spellings ingress-nginx accepts (Go's strconv.ParseBool).
        matching.use_regex = match value.trim() {
            "true" | "True" | "TRUE" | "t" | "T" | "1" => true,
            "false" | "False" | "FALSE" | "f" | "F" | "0" => false,
            _ => {
                return Err(AnnotationError {
                    key: key.to_string(),
                    message: format!("value {value:?}: \"true\" or \"false\""),
                })
            }
        };
    }
    let target = fleetgate_canary::annotation(annotations, "rewrite-target");
    let path = fleetgate_canary::annotation(annotations, "rewrite-path");
    match (target, path) {
        (Some((tk, _)), Some((pk, _))) => {
            return Err(AnnotationError {
                key: pk.to_string(),
                message: format!(
                "{tk} is also set: use one of rewrite-target (a regex template) and rewrite-path"
            ),
            })
        }
        (Some((key, value)), None) => {
            let value = value.trim();
            RewriteTemplate::parse(value).map_err(|e| AnnotationError {
                key: key.to_string(),
                message: e.to_string(),
            })?;
            matching.rewrite = Some(RewriteRequest::Target(value.to_string()));
        }
        (None, Some((key, value))) => {
            let value = value.trim();
            check_path_value(value).map_err(|e| AnnotationError {
                key: key.to_string(),
                message: e.to_string(),
            })?;
            matching.rewrite = Some(RewriteRequest::Path(value.to_string()));
        }
        (None, None) => {}
    }
    Ok(matching)
}

/// The hosts whose paths are matched as regexes: every host (and
/// `server-alias`) of a served main Ingress that asks for it, and the
/// aliases of Ingresses with a rule on such a host (an alias shares its
/// host's paths).
pub fn regex_hosts<'a>(
    ingresses: impl Iterator<Item = &'a Ingress> + Clone,
) -> BTreeSet<HostPattern> {
    let main = ingresses.filter(|i| i.disposition == Disposition::Served && i.canary.is_none());
    let mut hosts = BTreeSet::new();
    for ing in main.clone() {
        let paths = ing
            .rules
            .iter()
            .flat_map(|r| r.paths.iter().map(|p| p.path.as_str()));
        if ing.path_matching.asks_for_regex(paths) {
            hosts.extend(ing.rules.iter().map(|r| r.host.clone()));
            hosts.extend(ing.server_aliases.iter().cloned());
        }
    }
    for ing in main {
        if ing.rules.iter().any(|r| hosts.contains(&r.host)) {
            hosts.extend(ing.server_aliases.iter().cloned());
        }
    }
    hosts
}

/// Checks that every path of a regex host is a usable regex, at the
/// path's field.
pub(crate) fn check_regex_paths(ingresses: &[Ingress], errors: &mut Vec<ConfigError>) {
    let hosts = regex_hosts(ingresses.iter());
    if hosts.is_empty() {
        return;
    }
    for ing in ingresses
        .iter()
        .filter(|i| i.disposition == Disposition::Served && i.canary.is_none())
    {
        for (ri, rule) in ing.rules.iter().enumerate() {
            if !hosts.contains(&rule.host) && !ing.server_aliases.iter().any(|a| hosts.contains(a))
            {
                continue;
            }
            for (pi, p) in rule.paths.iter().enumerate() {
                if let Err(e) = compile_path_regex(&p.path, p.path_type) {
                    errors.push(
                        ConfigError::new(format!(
                            "{e}; paths of host {} are regular expressions \
                             (an Ingress for it sets use-regex or rewrite-target)",
                            rule.host
                        ))
                        .at(ing.origin.clone())
                        .object(format!("Ingress {}", ing.key()))
                        .field(format!("spec.rules[{ri}].http.paths[{pi}].path")),
                    );
                }
            }
        }
    }
}

/// Whether an Ingress restricts who may use its routes.
fn restricts_access(ing: &Ingress) -> bool {
    ing.source_ranges.is_some()
        || ing.basic_auth_request.is_some()
        || ing.forward_auth.is_some()
        || ing.rate_limits.is_some()
}

/// Warnings for regex hosts where a path of an Ingress without access
/// rules is tried before, and matches, a path of an Ingress with them:
/// requests written for the protected path would reach the other route.
/// (ingress-nginx behaves the same; this says so.)
pub(crate) fn shadowed_access_rules(ingresses: &[Ingress]) -> Vec<String> {
    let hosts = regex_hosts(ingresses.iter());
    let mut warnings = Vec::new();
    for host in &hosts {
        // (path, type, Ingress) in the order a regex host tries them.
        let mut order: Vec<(&str, fleetgate_ingress::PathType, &Ingress)> = ingresses
            .iter()
            .filter(|i| i.disposition == Disposition::Served && i.canary.is_none())
            .flat_map(|i| {
                i.rules
                    .iter()
                    .filter(|r| &r.host == host)
                    .flat_map(move |r| {
                        r.paths
                            .iter()
                            .map(move |p| (p.path.as_str(), p.path_type, i))
                    })
            })
            .collect();
        order.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| b.0.cmp(a.0)));
        for (j, (protected, _, owner)) in order.iter().enumerate() {
            if !restricts_access(owner) {
                continue;
            }
            for (earlier, kind, other) in &order[..j] {
                if other.key() == owner.key() || restricts_access(other) {
                    continue;
                }
                let takes = compile_path_regex(earlier, *kind).is_ok_and(|r| r.is_match(protected));
                if takes {
                    warnings.push(format!(
                        "host {host}: Ingress {}'s path {earlier} is tried before Ingress {}'s path {protected} \
                         (paths of this host are regular expressions, longest first) and matches it: \
                         requests for {protected} would reach {}'s route without {}'s access rules",
                        other.key(),
                        owner.key(),
                        other.key(),
                        owner.key()
                    ));
                }
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_each_annotation() {
        let m = parse(&map(&[
            ("nginx.ingress.kubernetes.io/use-regex", "true"),
            ("nginx.ingress.kubernetes.io/rewrite-target", "/$2"),
        ]))
        .unwrap();
        assert!(m.use_regex);
        assert_eq!(m.rewrite, Some(RewriteRequest::Target("/$2".into())));
        let m = parse(&map(&[("higress.io/rewrite-path", "/v1")])).unwrap();
        assert_eq!(m.rewrite, Some(RewriteRequest::Path("/v1".into())));
        assert_eq!(parse(&map(&[])).unwrap(), PathMatching::default());
    }

    #[test]
    fn bad_values_name_the_annotation() {
        for (pairs, key, why) in [
            (
                vec![("nginx.ingress.kubernetes.io/use-regex", "yes")],
                "nginx.ingress.kubernetes.io/use-regex",
                "\"true\" or \"false\"",
            ),
            (
                vec![("nginx.ingress.kubernetes.io/rewrite-target", "/$host")],
                "nginx.ingress.kubernetes.io/rewrite-target",
                "nginx variables",
            ),
            (
                vec![("mse.ingress.kubernetes.io/rewrite-path", "v1")],
                "mse.ingress.kubernetes.io/rewrite-path",
                "start with '/'",
            ),
            (
                vec![
                    ("nginx.ingress.kubernetes.io/rewrite-target", "/$1"),
                    ("higress.io/rewrite-path", "/v1"),
                ],
                "higress.io/rewrite-path",
                "one of",
            ),
        ] {
            let err = parse(&map(&pairs)).unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.message.contains(why), "{}", err.message);
        }
    }

    #[test]
    fn a_target_equal_to_every_path_asks_for_no_regex() {
        let m = PathMatching {
            use_regex: false,
            rewrite: Some(RewriteRequest::Target("/".into())),
        };
        assert!(!m.asks_for_regex(["/"].into_iter()));
        assert!(m.asks_for_regex(["/", "/a"].into_iter()));
    }
}
