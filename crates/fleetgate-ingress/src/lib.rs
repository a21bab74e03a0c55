//! Kubernetes Ingress rule matching, compiled for the request path.
//!
//! This crate turns the routing part of `networking.k8s.io/v1` Ingress objects
//! (host, path, pathType, default backends, class) into a [`RouteTable`] whose
//! lookup cost does not grow with the number of Ingresses: hosts are hashed,
//! and each host has its own table of exact paths plus prefix paths keyed by
//! their `/`-separated elements. A lookup costs one host hash probe plus one
//! hash probe per path element of the request, and never allocates.
//!
//! It knows nothing about proxies, pools or canaries: a route's target is any
//! `T` you choose (an index into your own backend table works well), so the
//! crate can be embedded in any Pingora proxy, or any other program.
//!
//! The semantics follow the Kubernetes Ingress API: precise hosts beat `*.wildcard` hosts, which beat
//! host-less rules; a wildcard covers exactly one DNS label; `Prefix` matches
//! whole path elements; `ImplementationSpecific` behaves as `Prefix`; the
//! longest matching path wins and `Exact` wins a tie; a request for a known
//! host never falls through to host-less rules. Hosts can also take regex
//! paths, matched the way ingress-nginx matches `use-regex` Ingresses
//! ([`RouteTableBuilder::add_regex_path`]).
//!
//! ```
//! use fleetgate_ingress::{HostPattern, PathType, RouteTableBuilder, MatchKind};
//!
//! let mut builder = RouteTableBuilder::new();
//! let host = HostPattern::parse("example.com").unwrap();
//! builder.add_path(&host, "/svc1", PathType::Exact, "service1").unwrap();
//! builder.add_path(&HostPattern::Any, "/", PathType::Prefix, "catch-all").unwrap();
//! let table = builder.build();
//!
//! let hit = table.lookup("Example.COM:8080", "/svc1").unwrap();
//! assert_eq!(*hit.target, "service1");
//! assert!(matches!(hit.kind, MatchKind::Path { .. }));
//! // A known host whose path matches nothing does not fall through.
//! assert!(table.lookup("example.com", "/other").is_none());
//! assert_eq!(*table.lookup("other.org", "/x").unwrap().target, "catch-all");
//! ```

#![warn(missing_docs)]

mod class;
mod host;
mod host_index;
mod normalize;
mod path;
mod regex_path;
mod rewrite;
mod table;

pub use class::{ClassFilter, LEGACY_CLASS_ANNOTATION};
pub use host::{normalize_request_host, HostPattern, InvalidHost};
pub use normalize::{normalize_path, PathError, PathNormalization};
pub use path::{validate_path, InvalidPath, PathType};
pub use regex_path::{compile_path_regex, PATH_REGEX_SIZE_LIMIT};
pub use rewrite::{check_path_value, InvalidRewrite, PathRewrite, RewriteTemplate};
pub use table::{
    DuplicateRoute, MatchKind, RegexRouteRefused, RouteEntry, RouteMatch, RouteTable,
    RouteTableBuilder,
};
