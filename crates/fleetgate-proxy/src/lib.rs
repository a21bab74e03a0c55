//! The fleetgate `ProxyHttp`: Kubernetes Ingress routing over multi-cluster
//! upstream pools, on Pingora.
//!
//! This crate composes the stage crates, each usable on its own:
//!
//! 1. match: `fleetgate-ingress` finds the route for the Host and path
//!    ([`RouteTable::lookup`](fleetgate_ingress::RouteTable::lookup));
//! 2. pool: `fleetgate-pool` picks a healthy endpoint of the route's
//!    Service port ([`EndpointPool::select`](fleetgate_pool::EndpointPool::select));
//! 3. peer: the pool hands out a ready [`HttpPeer`](pingora_core::upstreams::peer::HttpPeer)
//!    with the Service's timeouts.
//!
//! All routing state lives in an immutable [`Snapshot`] compiled from a
//! [`Config`](fleetgate_config::Config) at load, behind an atomic pointer
//! ([`SharedSnapshot`]), so a reload swaps the whole routing state at once and
//! the request path takes no lock.
//!
//! Embedding it in your own Pingora server:
//!
//! ```no_run
//! use std::sync::Arc;
//! use arc_swap::ArcSwap;
//! use fleetgate_proxy::{Gateway, Snapshot};
//!
//! let config = fleetgate_config::Config::load("conf/fleetgate.toml".as_ref())
//!     .unwrap_or_else(|errors| panic!("{errors}"));
//! let checks = fleetgate_pool::HealthChecks::new();
//! let snapshot = Snapshot::compile(&config, 1, &checks, None)
//!     .unwrap_or_else(|errors| panic!("{errors}"));
//! let gateway = Gateway::new(Arc::new(ArcSwap::from_pointee(snapshot)));
//! // let mut service = pingora_proxy::http_proxy_service(&server.configuration, gateway);
//! // server.add_service(background_service("health checks", checks.supervisor()));
//! ```

#![warn(missing_docs)]

pub mod access_log;
pub mod client_guard;
mod compile;
pub mod edge;
mod forwarded;
mod gateway;
pub mod metrics;
pub mod request_checks;
pub mod responses;
mod snapshot;
mod stats;
pub mod target;

pub use access_log::{AccessLog, AccessRecord};
pub use client_guard::{ConnectionCounts, ConnectionLimits, GuardedApp};
pub use edge::Scheme;
pub use gateway::{Gateway, RequestCtx};
pub use metrics::Metrics;
pub use snapshot::{CompileReport, EdgePolicy, PoolPolicy, Route, SharedSnapshot, Snapshot};
pub use stats::GatewayStats;
pub use target::{Target, TargetPools};
