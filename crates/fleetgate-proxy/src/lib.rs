//! The fleetgate `ProxyHttp`: Kubernetes Ingress routing over multi-cluster
//! upstream pools, on Pingora.
//!
//! Routing itself is [`fleetgate_router`]'s: a [`Router`](fleetgate_router::Router)
//! built in code or from a configuration. This crate puts it inside
//! Pingora's request life cycle and adds what an edge needs around it.
//! [`Gateway`]'s callbacks, in the order a request meets them:
//!
//! | Pingora callback | what the gateway does | module step |
//! |---|---|---|
//! | `request_filter` | head limits settle; refuses malformed framing (400/501), bodies declared too large (413) | `BEFORE_MATCH` |
//! | | normalises the path (400 above the root); **match** (`Router::lookup`: 404 when nothing matches) | `AFTER_MATCH` (built-in: HTTPS redirect, 308), then the route's chain |
//! | `upstream_peer` (first try and every retry) | **plan** once (`Router::plan`: main or canary); **pick** (`Target::pick`: no endpoint that failed, out of a cluster that looks down, across subset tiers, then the `EndpointPicker`); waits for room under `max_requests_per_endpoint`; builds the peer (SNI, WebSocket timeouts) | |
//! | `upstream_request_filter` | origin-form target | `UPSTREAM_REQUEST` (built-in: `X-Forwarded-*`) |
//! | `request_body_filter` | body size limit (413) | |
//! | `fail_to_connect`, `error_while_proxy` | **report** the failure (`Attempts::report`); retry within the pool's budget, never for a client's fault | |
//! | `upstream_response_filter` | **report** the answer | `UPSTREAM_RESPONSE` (built-in: latency metric) |
//! | `response_filter` | HTTP/1.0 framing; close when the body was not read | `RESPONSE` (built-in: `Server` header) |
//! | `fail_to_proxy` | the gateway's own error answer, or a cut connection once a response has started | |
//! | `logging` | gives back the endpoint's place | `LOGGING` (built-in: metrics, access log) |
//!
//! Modules (see [`modules`]) are how behaviour is added at those steps, for
//! the whole gateway ([`Gateway::with_module`]) or one route
//! ([`modules::route_modules`]); [`Gateway::with_picker`] replaces the
//! endpoint choice; [`Gateway::with_http_module`] adds Pingora HTTP
//! modules.
//!
//! All routing state lives in an immutable [`Snapshot`] (the router, the
//! TLS certificates, the edge policy and the metric handles of each
//! target) behind an atomic pointer ([`SharedSnapshot`]), so a reload swaps
//! the whole routing state at once and the request path takes no lock.
//!
//! Embedding it in your own Pingora server, with routes built in code:
//!
//! ```
//! use std::sync::Arc;
//! use arc_swap::ArcSwap;
//! use fleetgate_ingress::{HostPattern, PathType};
//! use fleetgate_pool::{Endpoint, HealthChecks};
//! use fleetgate_proxy::{Gateway, Snapshot};
//! use fleetgate_router::{PoolSpec, Route, RouterBuilder, Target};
//!
//! let checks = HealthChecks::new();
//! let mut builder = RouterBuilder::new(&checks);
//! let pool = builder.pool(PoolSpec::new(
//!     "shop/web:80",
//!     vec![Arc::new(Endpoint::new("127.0.0.1:18001".parse().unwrap(), "zone-a"))],
//! ));
//! let host = HostPattern::parse("shop.example.com").unwrap();
//! let route = Route::new("shop/web", Target::whole("shop/web", "shop/web:80", pool));
//! builder.add_path(&host, "/", PathType::Prefix, route).unwrap();
//! let snapshot = Snapshot::new(1, builder.build(), Default::default());
//! let gateway = Gateway::new(Arc::new(ArcSwap::from_pointee(snapshot)));
//! // let mut service = pingora_proxy::http_proxy_service(&server.configuration, gateway);
//! // server.add_service(background_service("health checks", checks.supervisor()));
//! ```

#![warn(missing_docs)]

pub mod access_log;
pub mod client_guard;
pub mod compression;
pub mod connection_log;
pub mod edge;
mod forwarded;
mod gateway;
pub mod metrics;
pub mod modules;
mod options;
pub mod request_checks;
pub mod request_id;
pub mod resolver;
pub mod responses;
mod snapshot;
mod stats;
pub mod tls_info;

pub use access_log::{AccessLog, AccessRecord, Destination, LogFormat, ResponseSource};
pub use client_guard::{ConnectionCounts, ConnectionLimits, GuardedApp};
pub use compression::CompressionPolicy;
pub use connection_log::ConnectionLog;
pub use edge::{Origin, Scheme};
pub use gateway::{Gateway, RequestCtx};
pub use metrics::Metrics;
pub use modules::{Answer, Flow, GatewayModule, ModuleChain, Steps};
pub use options::{BodyLimits, ForwardedHeaders};
pub use snapshot::{CompileReport, EdgePolicy, SharedSnapshot, Snapshot};
pub use stats::GatewayStats;
