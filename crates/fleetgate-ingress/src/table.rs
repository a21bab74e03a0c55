//! The compiled route table: host index, per-host path tables, defaults.
//!
//! Built once per configuration by [`RouteTableBuilder`], then read-only. A
//! lookup hashes the normalised host (exact table, then wildcard table keyed
//! by the host minus its first label, then the host-less table), then probes
//! the chosen host's exact paths and its prefix paths from the longest
//! candidate (the whole request path) down to `/`, one `/`-element at a time.
//! The first hit is the longest match, and `Exact` is tried before `Prefix`
//! at equal length, which is the Kubernetes precedence.
//!
//! A host may also have regex paths (see the `regex_path` module): those
//! are tried first, longest path as written first (equal lengths in
//! reverse byte order), and the first that matches wins, as ingress-nginx
//! orders its regex locations. A lookup on such a host costs one regex match per
//! path tried.

use std::collections::HashMap;

/// Hash maps of the lookup path: aHash is several times faster than SipHash
/// on short keys and still keyed per process (these maps are built from
/// configuration; requests only read them).
type FastMap<K, V> = HashMap<K, V, ahash::RandomState>;
use std::fmt;

use crate::host::{normalize_request_host, strip_request_host, wildcard_suffix, HostPattern};
use crate::host_index::{HostIndex, HostKey};
use crate::path::{table_key, InvalidPath, PathType};
use crate::regex_path::compile_path_regex;

/// A route refused because an earlier one has the same host, path and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRoute<T> {
    /// The refused target, handed back to the caller.
    pub target: T,
}

impl<T> fmt::Display for DuplicateRoute<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("another rule already has the same host, path and pathType")
    }
}

/// Why a regex path was refused; the target is handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegexRouteRefused<T> {
    /// An earlier rule has the same host, path and type.
    Duplicate(T),
    /// The path is not a usable regular expression.
    Invalid(T, InvalidPath),
}

impl<T> RegexRouteRefused<T> {
    /// The refused target.
    pub fn into_target(self) -> T {
        match self {
            RegexRouteRefused::Duplicate(t) | RegexRouteRefused::Invalid(t, _) => t,
        }
    }
}

impl<T> fmt::Display for RegexRouteRefused<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegexRouteRefused::Duplicate(_) => {
                f.write_str("another rule already has the same host, path and pathType")
            }
            RegexRouteRefused::Invalid(_, e) => e.fmt(f),
        }
    }
}

/// One path rule as stored in the table, for listing.
#[derive(Debug, Clone)]
pub struct RouteEntry<T> {
    /// The rule's host.
    pub host: HostPattern,
    /// The rule's path as written.
    pub path: String,
    /// The rule's path type.
    pub path_type: PathType,
    /// Whether the path is matched as a regular expression.
    pub regex: bool,
    /// What the rule routes to.
    pub target: T,
}

/// How a request matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind<'a> {
    /// A path rule matched.
    Path {
        /// The rule's host.
        host: &'a HostPattern,
        /// The rule's path as written.
        path: &'a str,
        /// The rule's path type.
        path_type: PathType,
    },
    /// No path matched; the `defaultBackend` of an Ingress defining the host.
    HostDefault,
    /// No path or host default matched; the gateway-wide default backend.
    GlobalDefault,
}

/// The result of a successful lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch<'a, T> {
    /// What the request routes to.
    pub target: &'a T,
    /// Why.
    pub kind: MatchKind<'a>,
}

/// Paths of one host (or of the host-less rules): 24 bytes, so that it fits
/// in a host index slot with its key (see the `host_index` module).
#[derive(Debug, Default)]
struct HostRoutes {
    /// The `/` prefix rule, which matches every path.
    root: Option<u32>,
    /// Index into `RouteTable::defaults`.
    default: Option<u32>,
    /// Every other rule; most hosts have none.
    paths: Option<Box<PathRoutes>>,
}

/// The exact, non-root prefix and regex rules of a host.
#[derive(Debug, Default)]
struct PathRoutes {
    /// Exact paths -> index into `RouteTable::routes`.
    exact: FastMap<Box<str>, u32>,
    /// Prefix paths without trailing `/` (never `/` itself) -> index.
    prefix: FastMap<Box<str>, u32>,
    /// Regex paths, in the order they are tried (sorted when built).
    regex: Vec<RegexRoute>,
}

/// One regex path rule.
#[derive(Debug)]
struct RegexRoute {
    regex: regex::Regex,
    /// The length of the path as written: longer is tried first.
    written_len: usize,
    /// Index into `RouteTable::routes`.
    index: u32,
}

impl HostRoutes {
    #[inline]
    fn lookup(&self, path: &str) -> Option<u32> {
        match &self.paths {
            Some(paths) => paths.lookup(path).or(self.root),
            None => self.root,
        }
    }
}

impl PathRoutes {
    fn lookup(&self, path: &str) -> Option<u32> {
        if !self.regex.is_empty() {
            if let Some(r) = self.regex.iter().find(|r| r.regex.is_match(path)) {
                return Some(r.index);
            }
        }
        if let Some(&i) = self.exact.get(path) {
            return Some(i);
        }
        if !self.prefix.is_empty() {
            let mut end = path.len();
            loop {
                let candidate = &path[..end];
                if let Some(&i) = self.prefix.get(candidate) {
                    return Some(i);
                }
                match candidate.rfind('/') {
                    Some(slash) if slash > 0 => end = slash,
                    _ => break,
                }
            }
        }
        None
    }
}

/// Accumulates Ingress rules, then [`build`](Self::build)s a [`RouteTable`].
#[derive(Debug)]
pub struct RouteTableBuilder<T> {
    routes: Vec<RouteEntry<T>>,
    defaults: Vec<(HostPattern, T)>,
    exact_hosts: FastMap<Box<str>, HostRoutes>,
    wildcard_hosts: FastMap<Box<str>, HostRoutes>,
    any_host: HostRoutes,
    global_default: Option<T>,
}

impl<T> Default for RouteTableBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RouteTableBuilder<T> {
    /// An empty builder.
    pub fn new() -> Self {
        RouteTableBuilder {
            routes: Vec::new(),
            defaults: Vec::new(),
            exact_hosts: FastMap::default(),
            wildcard_hosts: FastMap::default(),
            any_host: HostRoutes::default(),
            global_default: None,
        }
    }

    /// Adds a path rule. `path` must already be valid for `path_type` (see
    /// [`validate_path`](crate::validate_path)). The first rule for a given
    /// host, path and type wins; a later one is handed back as
    /// [`DuplicateRoute`].
    pub fn add_path(
        &mut self,
        host: &HostPattern,
        path: &str,
        path_type: PathType,
        target: T,
    ) -> Result<(), DuplicateRoute<T>> {
        let index = self.routes.len() as u32;
        let routes = self.host_routes_mut(host);
        let key = table_key(path, path_type);
        if path_type.is_prefix() && key == "/" {
            if routes.root.is_some() {
                return Err(DuplicateRoute { target });
            }
            routes.root = Some(index);
        } else {
            let paths = routes.paths.get_or_insert_with(Box::default);
            let map = if path_type.is_prefix() {
                &mut paths.prefix
            } else {
                &mut paths.exact
            };
            if map.contains_key(key) {
                return Err(DuplicateRoute { target });
            }
            map.insert(key.into(), index);
        }
        self.routes.push(RouteEntry {
            host: host.clone(),
            path: path.to_string(),
            path_type,
            regex: false,
            target,
        });
        Ok(())
    }

    /// Adds a regex path rule (see the `regex_path` module): `path` is a
    /// regular expression matched case-insensitively from the start of the
    /// request path (to its end for [`PathType::Exact`]). A host's regex
    /// rules are tried before its other rules, longest `path` first. The
    /// first rule for a given host, path and type wins.
    pub fn add_regex_path(
        &mut self,
        host: &HostPattern,
        path: &str,
        path_type: PathType,
        target: T,
    ) -> Result<(), RegexRouteRefused<T>> {
        let regex = match compile_path_regex(path, path_type) {
            Ok(r) => r,
            Err(e) => return Err(RegexRouteRefused::Invalid(target, e)),
        };
        let index = self.routes.len() as u32;
        let duplicate = self.find_regex(host, path, path_type).is_some();
        if duplicate {
            return Err(RegexRouteRefused::Duplicate(target));
        }
        let routes = self.host_routes_mut(host);
        let paths = routes.paths.get_or_insert_with(Box::default);
        paths.regex.push(RegexRoute {
            regex,
            written_len: path.len(),
            index,
        });
        self.routes.push(RouteEntry {
            host: host.clone(),
            path: path.to_string(),
            path_type,
            regex: true,
            target,
        });
        Ok(())
    }

    /// The target of the rule with exactly this host, path and type, if one
    /// was added. Canary Ingresses use this to bind to their main route.
    pub fn route_mut(
        &mut self,
        host: &HostPattern,
        path: &str,
        path_type: PathType,
    ) -> Option<&mut T> {
        let index = self.find(host, path, path_type)?;
        Some(&mut self.routes[index as usize].target)
    }

    /// Sets the default backend for requests to `host` whose path matches no
    /// rule (an Ingress's `spec.defaultBackend`). For [`HostPattern::Any`] it
    /// applies to hosts no rule names. The first default for a host wins; a
    /// later one is handed back.
    pub fn set_host_default(
        &mut self,
        host: &HostPattern,
        target: T,
    ) -> Result<(), DuplicateRoute<T>> {
        let index = self.defaults.len() as u32;
        let routes = self.host_routes_mut(host);
        if routes.default.is_some() {
            return Err(DuplicateRoute { target });
        }
        routes.default = Some(index);
        self.defaults.push((host.clone(), target));
        Ok(())
    }

    /// Sets the gateway-wide default backend, used when neither a path rule
    /// nor a host default matches.
    pub fn set_global_default(&mut self, target: T) {
        self.global_default = Some(target);
    }

    /// Finishes the table.
    pub fn build(mut self) -> RouteTable<T> {
        // Longest path as written first; equal lengths in reverse byte
        // order of the paths (ingress-nginx sorts its locations so).
        let routes = &self.routes;
        let all = self
            .exact_hosts
            .values_mut()
            .chain(self.wildcard_hosts.values_mut())
            .chain(std::iter::once(&mut self.any_host));
        for host_routes in all {
            if let Some(paths) = host_routes.paths.as_mut() {
                paths.regex.sort_by(|a, b| {
                    b.written_len.cmp(&a.written_len).then_with(|| {
                        routes[b.index as usize]
                            .path
                            .cmp(&routes[a.index as usize].path)
                    })
                });
            }
        }
        RouteTable {
            routes: self.routes,
            defaults: self.defaults,
            exact_hosts: HostIndex::new(self.exact_hosts),
            wildcard_hosts: HostIndex::new(self.wildcard_hosts),
            any_host: self.any_host,
            global_default: self.global_default,
        }
    }

    fn host_routes_mut(&mut self, host: &HostPattern) -> &mut HostRoutes {
        match host {
            HostPattern::Exact(h) => self.exact_hosts.entry(h.as_str().into()).or_default(),
            HostPattern::Wildcard(s) => self.wildcard_hosts.entry(s.as_str().into()).or_default(),
            HostPattern::Any => &mut self.any_host,
        }
    }

    /// The regex rule with exactly this host, path and type.
    fn find_regex(&self, host: &HostPattern, path: &str, path_type: PathType) -> Option<u32> {
        let routes = self.host_routes(host)?;
        let paths = routes.paths.as_ref()?;
        paths.regex.iter().map(|r| r.index).find(|&i| {
            let entry = &self.routes[i as usize];
            entry.path == path && entry.path_type == path_type
        })
    }

    fn host_routes(&self, host: &HostPattern) -> Option<&HostRoutes> {
        match host {
            HostPattern::Exact(h) => self.exact_hosts.get(h.as_str()),
            HostPattern::Wildcard(s) => self.wildcard_hosts.get(s.as_str()),
            HostPattern::Any => Some(&self.any_host),
        }
    }

    fn find(&self, host: &HostPattern, path: &str, path_type: PathType) -> Option<u32> {
        if let Some(i) = self.find_regex(host, path, path_type) {
            return Some(i);
        }
        let routes = self.host_routes(host)?;
        let key = table_key(path, path_type);
        let found = if path_type.is_prefix() && key == "/" {
            routes.root
        } else {
            let paths = routes.paths.as_ref()?;
            if path_type.is_prefix() {
                paths.prefix.get(key).copied()
            } else {
                paths.exact.get(key).copied()
            }
        }?;
        // Prefix and ImplementationSpecific share slots; bind only to the same type.
        (self.routes[found as usize].path_type == path_type).then_some(found)
    }
}

/// Ingress rules compiled for lookup. See the module docs for the algorithm.
#[derive(Debug)]
pub struct RouteTable<T> {
    routes: Vec<RouteEntry<T>>,
    defaults: Vec<(HostPattern, T)>,
    exact_hosts: HostIndex<HostRoutes>,
    wildcard_hosts: HostIndex<HostRoutes>,
    any_host: HostRoutes,
    global_default: Option<T>,
}

impl<T> RouteTable<T> {
    /// Routes a request. `host` is the raw Host header or `:authority` (any
    /// case, optional port); `path` is the URL path without the query.
    /// `None` means nothing matched and no default applies: answer 404.
    pub fn lookup<'a>(&'a self, host: &str, path: &str) -> Option<RouteMatch<'a, T>> {
        let host = strip_request_host(host);
        let routes = match HostKey::lowered(host) {
            Some(key) => self.host_routes(&key),
            None => self.long_host_routes(host),
        };
        if let Some(i) = routes.lookup(path) {
            let entry = &self.routes[i as usize];
            return Some(RouteMatch {
                target: &entry.target,
                kind: MatchKind::Path {
                    host: &entry.host,
                    path: &entry.path,
                    path_type: entry.path_type,
                },
            });
        }
        if let Some(d) = routes.default {
            return Some(RouteMatch {
                target: &self.defaults[d as usize].1,
                kind: MatchKind::HostDefault,
            });
        }
        self.global_default.as_ref().map(|target| RouteMatch {
            target,
            kind: MatchKind::GlobalDefault,
        })
    }

    /// Every path rule, in the order added.
    pub fn routes(&self) -> &[RouteEntry<T>] {
        &self.routes
    }

    /// Every host default backend, in the order added.
    pub fn host_defaults(&self) -> impl Iterator<Item = (&HostPattern, &T)> {
        self.defaults.iter().map(|(h, t)| (h, t))
    }

    /// The gateway-wide default backend, if any.
    pub fn global_default(&self) -> Option<&T> {
        self.global_default.as_ref()
    }

    /// Number of distinct hosts with rules or defaults (precise and wildcard).
    pub fn host_count(&self) -> usize {
        self.exact_hosts.len() + self.wildcard_hosts.len()
    }

    /// The routes of a host that fits an inline key (nearly all do).
    #[inline]
    fn host_routes(&self, key: &HostKey) -> &HostRoutes {
        if let Some(routes) = self.exact_hosts.get_key(key) {
            return routes;
        }
        if !self.wildcard_hosts.is_empty() {
            if let Some(routes) = key
                .wildcard_suffix()
                .and_then(|s| self.wildcard_hosts.get_key(&s))
            {
                return routes;
            }
        }
        &self.any_host
    }

    /// The routes of a host too long for an inline key.
    #[cold]
    fn long_host_routes(&self, host: &str) -> &HostRoutes {
        let mut buf = [0u8; 256];
        let host = normalize_request_host(host, &mut buf);
        if let Some(routes) = self.exact_hosts.get(host) {
            return routes;
        }
        if let Some(routes) = wildcard_suffix(host).and_then(|s| self.wildcard_hosts.get(s)) {
            return routes;
        }
        &self.any_host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rules: &[(&str, &str, PathType)]) -> RouteTable<String> {
        let mut b = RouteTableBuilder::new();
        for (host, path, t) in rules {
            let h = HostPattern::parse(host).unwrap();
            crate::validate_path(path, *t).unwrap();
            b.add_path(&h, path, *t, format!("{host}|{path}|{t}"))
                .unwrap();
        }
        b.build()
    }

    fn hit(t: &RouteTable<String>, host: &str, path: &str) -> Option<String> {
        t.lookup(host, path).map(|m| m.target.clone())
    }

    use PathType::{Exact, ImplementationSpecific as Impl, Prefix};

    /// Every row of the Kubernetes documentation's Ingress matching examples.
    #[test]
    fn kubernetes_examples_table() {
        /// (rules, request path, the rule path that must match).
        type Case<'a> = (&'a [(&'a str, PathType)], &'a str, Option<&'a str>);
        let cases: &[Case] = &[
            (&[("/", Prefix)], "/anything/at/all", Some("/")),
            (&[("/foo", Exact)], "/foo", Some("/foo")),
            (&[("/foo", Exact)], "/bar", None),
            (&[("/foo", Exact)], "/foo/", None),
            (&[("/foo/", Exact)], "/foo", None),
            (&[("/foo", Prefix)], "/foo", Some("/foo")),
            (&[("/foo", Prefix)], "/foo/", Some("/foo")),
            (&[("/foo/", Prefix)], "/foo", Some("/foo/")),
            (&[("/foo/", Prefix)], "/foo/", Some("/foo/")),
            (&[("/aaa/bb", Prefix)], "/aaa/bbb", None),
            (&[("/aaa/bbb/", Prefix)], "/aaa/bbb", Some("/aaa/bbb/")),
            (&[("/aaa/bbb", Prefix)], "/aaa/bbb/ccc", Some("/aaa/bbb")),
            (&[("/aaa/bbb", Prefix)], "/aaa/bbbxyz", None),
            (
                &[("/", Prefix), ("/aaa", Prefix), ("/aaa/bbb", Prefix)],
                "/aaa/bbb",
                Some("/aaa/bbb"),
            ),
            (
                &[("/", Prefix), ("/aaa", Prefix), ("/aaa/bbb", Prefix)],
                "/ccc",
                Some("/"),
            ),
            (&[("/aaa", Prefix)], "/ccc", None),
        ];
        for (rules, request, expected) in cases {
            let rules: Vec<_> = rules.iter().map(|(p, t)| ("example.com", *p, *t)).collect();
            let t = table(&rules);
            let got = t.lookup("example.com", request).map(|m| match m.kind {
                MatchKind::Path { path, .. } => path.to_string(),
                other => panic!("unexpected {other:?}"),
            });
            assert_eq!(
                got.as_deref(),
                *expected,
                "rules {rules:?} request {request}"
            );
        }
    }

    #[test]
    fn exact_beats_prefix_on_tie() {
        let t = table(&[("a.com", "/foo", Prefix), ("a.com", "/foo", Exact)]);
        assert_eq!(hit(&t, "a.com", "/foo").unwrap(), "a.com|/foo|Exact");
        assert_eq!(hit(&t, "a.com", "/foo/x").unwrap(), "a.com|/foo|Prefix");
    }

    #[test]
    fn longest_match_wins_across_types() {
        let t = table(&[
            ("a.com", "/a", Exact),
            ("a.com", "/a/b", Prefix),
            ("a.com", "/", Prefix),
        ]);
        assert_eq!(hit(&t, "a.com", "/a/b/c").unwrap(), "a.com|/a/b|Prefix");
        assert_eq!(hit(&t, "a.com", "/a").unwrap(), "a.com|/a|Exact");
        assert_eq!(hit(&t, "a.com", "/a/c").unwrap(), "a.com|/|Prefix");
    }

    #[test]
    fn implementation_specific_is_element_prefix() {
        let t = table(&[("a.com", "/api", Impl)]);
        assert!(hit(&t, "a.com", "/api/v1").is_some());
        assert!(hit(&t, "a.com", "/apiv1").is_none());
    }

    #[test]
    fn path_matching_is_case_sensitive() {
        let t = table(&[("a.com", "/Foo", Prefix)]);
        assert!(hit(&t, "a.com", "/Foo/x").is_some());
        assert!(hit(&t, "a.com", "/foo/x").is_none());
    }

    #[test]
    fn host_precedence_and_no_fallthrough() {
        let t = table(&[
            ("foo.bar.com", "/exact", Prefix),
            ("*.bar.com", "/wild", Prefix),
            ("", "/", Prefix),
        ]);
        assert_eq!(
            hit(&t, "foo.bar.com", "/exact").unwrap(),
            "foo.bar.com|/exact|Prefix"
        );
        // Precise host chosen: its paths only, no fall-through to wildcard or host-less.
        assert_eq!(hit(&t, "foo.bar.com", "/wild"), None);
        assert_eq!(
            hit(&t, "baz.bar.com", "/wild").unwrap(),
            "*.bar.com|/wild|Prefix"
        );
        assert_eq!(hit(&t, "baz.bar.com", "/other"), None);
        // Two extra labels: not covered by the wildcard, so host-less rules apply.
        assert_eq!(hit(&t, "a.baz.bar.com", "/wild").unwrap(), "|/|Prefix");
        assert_eq!(hit(&t, "bar.com", "/wild").unwrap(), "|/|Prefix");
        assert_eq!(hit(&t, "unknown.org", "/x").unwrap(), "|/|Prefix");
    }

    #[test]
    fn host_is_case_insensitive_and_port_is_ignored() {
        let t = table(&[("example.com", "/svc1", Exact)]);
        assert!(hit(&t, "EXAMPLE.com:8080", "/svc1").is_some());
        assert!(hit(&t, "example.com.", "/svc1").is_some());
        let w = table(&[("*.foo.com", "/", Prefix)]);
        assert!(hit(&w, "Bar.FOO.com:80", "/x").is_some());
    }

    #[test]
    fn long_hosts_route_like_short_ones() {
        let long = "a-very-long-service-name.team-platform.prod.example.com";
        let t = table(&[(long, "/", Prefix), ("*.bar.com", "/w", Prefix)]);
        assert_eq!(
            hit(&t, &format!("{}:443", long.to_uppercase()), "/x").unwrap(),
            format!("{long}|/|Prefix")
        );
        let long_under_wildcard = "a-label-long-enough-to-spill-the-inline-key.BAR.com.";
        assert_eq!(
            hit(&t, long_under_wildcard, "/w/1").unwrap(),
            "*.bar.com|/w|Prefix"
        );
        assert_eq!(hit(&t, "x.bar.com", "/w").unwrap(), "*.bar.com|/w|Prefix");
    }

    #[test]
    fn defaults_host_then_global_then_none() {
        let mut b = RouteTableBuilder::new();
        let h = HostPattern::parse("a.com").unwrap();
        b.add_path(&h, "/api", Prefix, "api").unwrap();
        b.set_host_default(&h, "a-default").unwrap();
        assert_eq!(
            b.set_host_default(&h, "second").unwrap_err().target,
            "second"
        );
        let t = b.build();
        let m = t.lookup("a.com", "/nothing").unwrap();
        assert_eq!((*m.target, m.kind), ("a-default", MatchKind::HostDefault));
        assert!(t.lookup("b.com", "/x").is_none());

        let mut b = RouteTableBuilder::new();
        b.add_path(&h, "/api", Prefix, "api").unwrap();
        b.set_global_default("global");
        let t = b.build();
        let m = t.lookup("a.com", "/nothing").unwrap();
        assert_eq!((*m.target, m.kind), ("global", MatchKind::GlobalDefault));
        assert_eq!(*t.lookup("b.com", "/").unwrap().target, "global");
    }

    #[test]
    fn duplicates_are_refused_first_wins() {
        let mut b = RouteTableBuilder::new();
        let h = HostPattern::parse("a.com").unwrap();
        b.add_path(&h, "/foo", Prefix, 1).unwrap();
        assert_eq!(b.add_path(&h, "/foo/", Prefix, 2).unwrap_err().target, 2);
        assert_eq!(b.add_path(&h, "/foo", Impl, 3).unwrap_err().target, 3);
        b.add_path(&h, "/foo", Exact, 4).unwrap();
        b.add_path(&h, "/", Prefix, 5).unwrap();
        assert_eq!(b.add_path(&h, "/", Impl, 6).unwrap_err().target, 6);
        let t = b.build();
        assert_eq!(t.routes().len(), 3);
        assert_eq!(*t.lookup("a.com", "/foo/x").unwrap().target, 1);
    }

    #[test]
    fn route_mut_binds_only_identical_rules() {
        let mut b = RouteTableBuilder::new();
        let h = HostPattern::parse("a.com").unwrap();
        b.add_path(&h, "/svc", Exact, vec!["main"]).unwrap();
        b.add_path(&h, "/p", Prefix, vec!["p"]).unwrap();
        b.route_mut(&h, "/svc", Exact).unwrap().push("canary");
        assert!(b.route_mut(&h, "/svc", Prefix).is_none());
        assert!(b.route_mut(&h, "/p", Impl).is_none());
        assert!(b.route_mut(&h, "/p/", Prefix).is_some());
        assert!(b.route_mut(&HostPattern::Any, "/svc", Exact).is_none());
        let t = b.build();
        assert_eq!(
            t.lookup("a.com", "/svc").unwrap().target,
            &vec!["main", "canary"]
        );
    }

    #[test]
    fn lookup_scales_with_many_hosts() {
        let mut b = RouteTableBuilder::new();
        for i in 0..10_000 {
            let h = HostPattern::parse(&format!("h{i}.example.com")).unwrap();
            b.add_path(&h, "/", Prefix, i).unwrap();
        }
        let t = b.build();
        assert_eq!(t.host_count(), 10_000);
        assert_eq!(*t.lookup("h9999.example.com", "/a/b").unwrap().target, 9999);
        assert!(t.lookup("h10000.example.com", "/").is_none());
    }

    fn regex_table(rules: &[(&str, &str, PathType)]) -> RouteTable<String> {
        let mut b = RouteTableBuilder::new();
        for (host, path, t) in rules {
            let h = HostPattern::parse(host).unwrap();
            b.add_regex_path(&h, path, *t, path.to_string()).unwrap();
        }
        b.build()
    }

    /// The path priority example of ingress-nginx's documentation: a
    /// host's paths, all regexes once one Ingress asks, are tried longest
    /// first.
    #[test]
    fn regex_paths_longest_first() {
        let t = regex_table(&[
            ("test.com", "/foo/bar", Prefix),
            ("test.com", "/foo/bar/", Prefix),
            ("test.com", "/foo/bar/(.+)", Impl),
        ]);
        assert_eq!(hit(&t, "test.com", "/foo/bar/1").unwrap(), "/foo/bar/(.+)");
        assert_eq!(hit(&t, "test.com", "/foo/bar/").unwrap(), "/foo/bar/");
        assert_eq!(hit(&t, "test.com", "/foo/bar").unwrap(), "/foo/bar");
        // A string prefix, not element-wise, and case-insensitive.
        assert_eq!(hit(&t, "test.com", "/FOO/barx").unwrap(), "/foo/bar");
        assert_eq!(hit(&t, "test.com", "/foo"), None);
    }

    /// The warning example of the same documentation: a longer regex
    /// takes a request a shorter plain-looking path was written for.
    #[test]
    fn a_longer_regex_wins_over_a_shorter_literal() {
        let t = regex_table(&[
            ("test.com", "/foo/bar/bar", Prefix),
            ("test.com", "/foo/bar/[A-Z0-9]{3}", Impl),
        ]);
        assert_eq!(
            hit(&t, "test.com", "/foo/bar/bar").unwrap(),
            "/foo/bar/[A-Z0-9]{3}"
        );
    }

    #[test]
    fn regex_exact_and_ties_by_path() {
        let t = regex_table(&[
            ("h", "/a.c", Prefix),
            ("h", "/ab.", Prefix),
            ("h", "/x.z", Exact),
            ("h", "/", Prefix),
        ]);
        // Equal lengths: the greater path (bytes) first, whatever the
        // order added: "/ab." sorts after "/a.c".
        assert_eq!(hit(&t, "h", "/abc").unwrap(), "/ab.");
        // Exact is anchored at the end; the next one takes the rest.
        assert_eq!(hit(&t, "h", "/xyz").unwrap(), "/x.z");
        assert_eq!(hit(&t, "h", "/xyzw").unwrap(), "/");
    }

    #[test]
    fn regex_rules_are_refused_when_invalid_or_repeated_and_canaries_bind() {
        let mut b = RouteTableBuilder::new();
        let h = HostPattern::parse("h").unwrap();
        b.add_regex_path(&h, "/a/(.*)", Impl, 1).unwrap();
        assert!(matches!(
            b.add_regex_path(&h, "/a/(.*)", Impl, 2),
            Err(RegexRouteRefused::Duplicate(2))
        ));
        let invalid = b.add_regex_path(&h, "/a/(", Impl, 3).unwrap_err();
        assert!(
            invalid.to_string().contains("regular expression"),
            "{invalid}"
        );
        assert_eq!(invalid.into_target(), 3);
        assert_eq!(b.route_mut(&h, "/a/(.*)", Impl).copied(), Some(1));
        assert!(b.route_mut(&h, "/a/(.*)", Prefix).is_none());
        let t = b.build();
        assert!(t.routes()[0].regex);
        // Another host is not a regex host.
        assert_eq!(t.lookup("other", "/a/x"), None);
    }
}
