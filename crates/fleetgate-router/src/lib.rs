//! fleetgate's router, as a library: Kubernetes Ingress matching, canary
//! choice, cluster subsets with spill-over, and failover across clusters,
//! over health-checked endpoint pools. Built in code with
//! [`RouterBuilder`]; no configuration format, and no proxy framework
//! beyond Pingora's core types (`HttpPeer`, `RequestHeader`).
//!
//! It composes the stage crates, each usable on its own:
//! `fleetgate-ingress` (host and path matching), `fleetgate-canary`
//! (header, cookie, query and weight canaries), `fleetgate-subset`
//! (priority tiers) and `fleetgate-pool` (endpoints, weighted selection,
//! health checks, outlier detection). What it adds is the policy between
//! them, unit-tested here without any process:
//!
//! - a request's plan (main or canary) is made once and kept for every
//!   retry; a canary with no endpoint available falls back to main;
//! - a retry never goes back to an endpoint that failed the request, and
//!   leaves a cluster that looks down (see the `failover` module);
//! - subset tiers take traffic by their health, with Envoy's spill-over
//!   and panic rules, cached until the pools' health epoch moves;
//! - the retry budget is the pool's.
//!
//! A proxy uses it per request as [`Router`]'s docs list: `lookup`,
//! `plan`, `next_peer` per try, and [`Attempts::report`] per outcome. The
//! `fleetgate-proxy` crate does this inside Pingora (picking through
//! [`Target::pick`] itself, to add the endpoints it finds full to the
//! excluded ones); a proxy of your own can too.

#![warn(missing_docs)]

mod affinity;
mod attempts;
mod builder;
mod failover;
mod host;
mod least_request;
mod picker;
mod route;
mod router;
mod service_pool;
mod target;
mod whatif;

#[cfg(test)]
mod tests;

pub use affinity::{cookie, endpoint_id, key_hash, HashKey, Rendezvous, Sticky};
pub use attempts::{Attempt, Attempts, EndpointRef, TryResult};
pub use builder::{PoolSpec, RouterBuilder};
pub use host::{request_host, target_authority};
pub use least_request::{LeastRequest, FULL_SCAN_UP_TO};
pub use picker::{Eligible, EndpointPicker, WeightedRoundRobin};
pub use route::{Plan, Route, RouteId};
pub use router::Router;
pub use service_pool::{PoolId, RequestPolicy, ServicePool};
pub use target::{Target, TargetId, TargetPools, Tiers, TIER_REFRESH_MS};
pub use whatif::{outlook, Down, Outlook};
