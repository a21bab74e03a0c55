//! fleetgate configuration: one TOML file, plus the Kubernetes manifests it
//! names, validated into one [`Config`].
//!
//! Operators write TOML for what Kubernetes does not describe (listeners,
//! clusters, endpoints, timeouts) and keep their routing in the Ingress YAML
//! they already apply with kubectl, or write the same Ingress information
//! natively in TOML. Both sources go through one validation pass, so an
//! Ingress means the same wherever it is written.
//!
//! Loading is all or nothing: [`Config::load`] returns every error it finds
//! (file, line and column where the parser gives them, the object, the field,
//! and what is wrong), or a configuration that is complete. Callers can swap
//! in a new configuration knowing it was never half-applied.
//!
//! ```no_run
//! let config = fleetgate_config::Config::load("conf/fleetgate.toml".as_ref())
//!     .unwrap_or_else(|errors| panic!("{errors}"));
//! for ingress in config.served_ingresses() {
//!     println!("{}", ingress.key());
//! }
//! ```

#![warn(missing_docs)]

mod annotations;
mod balancing;
mod basic_auth;
mod byte_size;
mod certificates;
mod compression;
mod cors;
mod draft;
mod duplicate_keys;
mod duration;
mod endpoint_files;
mod error;
mod files;
mod forward_auth;
mod header_rules;
mod hub_source;
mod input_limits;
mod load;
mod manifests;
mod mirror;
mod model;
mod path_rewrites;
mod rate_limits;
mod redirects;
mod route_upstream;
mod sections;
mod services;
mod source_ranges;
mod toml_ingress;
mod toml_schema;

pub use annotations::{known, KnownAnnotation, Support, UnsupportedAnnotations, KNOWN};
pub use balancing::{AffinityCookie, Balancing};
pub use basic_auth::{BasicAuth, BasicAuthRequest, DEFAULT_REALM};
pub use byte_size::ByteSize;
pub use compression::{Compression, COMPRESSION_ANNOTATION};
pub use cors::{
    CorsOrigins, CorsPolicy, DEFAULT_CORS_HEADERS, DEFAULT_CORS_MAX_AGE, DEFAULT_CORS_METHODS,
};
pub use duration::HumanDuration;
pub use endpoint_files::slice_files;
pub use error::{ConfigError, ConfigErrors, Location};
pub use forward_auth::ForwardAuth;
pub use header_rules::{HeaderOp, HeaderRules};
pub use input_limits::{MAX_FILE_SIZE, MAX_NESTING_DEPTH};
pub use load::{DEFAULT_ADMIN_LISTEN, DEFAULT_GRACE_PERIOD, DEFAULT_NAMESPACE};
pub use manifests::{parse_manifests, ManifestSummary};
pub use mirror::{MirrorSpec, MirrorTarget};
pub use model::*;
pub use path_rewrites::{regex_hosts, PathMatching, RewriteRequest};
pub use rate_limits::{RateLimits, DEFAULT_BURST_MULTIPLIER};
pub use redirects::RedirectRule;
pub use route_upstream::{NextUpstreamRule, RouteUpstream, NEXT_UPSTREAM_STATUSES};
pub use source_ranges::SourceRanges;
