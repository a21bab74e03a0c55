//! Multi-cluster upstream pools for Pingora.
//!
//! A Kubernetes Service that runs in several clusters is, to the gateway, one
//! set of endpoints (pod addresses) spread over clusters and zones. This crate
//! holds those endpoints with the labels the rest of fleetgate selects on
//! (`topology.istio.io/cluster`, `topology.kubernetes.io/zone`, and the
//! endpoint's own), and picks one per request by weighted round robin, so
//! traffic follows pod counts: nine endpoints in one cluster and one in
//! another get 90% and 10%. Active health checks are
//! `pingora-load-balancing`'s.
//!
//! Health is shared: every [`EndpointPool`] that reads one [`HealthView`]
//! (see [`HealthChecks`]) sees the same health for the same address, so a
//! pod that serves several Services or subsets is probed and judged once. Passive outlier detection ([`OutlierConfig`],
//! [`EndpointPool::report`]) ejects endpoints that keep failing real requests.
//!
//! Use it from any Pingora proxy:
//!
//! ```no_run
//! use std::sync::Arc;
//! use fleetgate_pool::{Endpoint, EndpointPool, PoolOptions};
//!
//! let endpoints = vec![
//!     Arc::new(Endpoint::new("127.0.0.1:18001".parse().unwrap(), "c7fb82a1")),
//!     Arc::new(Endpoint::new("127.0.0.1:18011".parse().unwrap(), "cd3007b2")),
//! ];
//! let pool = EndpointPool::new("gateway-demo/service1:80", endpoints, PoolOptions::default());
//! // In `ProxyHttp::upstream_peer`:
//! let picked = pool.select().expect("no healthy endpoint");
//! let peer = pool.peer(picked);
//! ```

#![warn(missing_docs)]

mod cluster;
mod endpoint;
mod health;
mod outlier;
mod pool;
mod protocol;
mod schedule;
mod timeouts;

pub use cluster::{ClusterFlight, ClusterState, Clusters, DrainPhase};
pub use endpoint::{Condition, Endpoint, Labels, CLUSTER_LABEL, ZONE_LABEL};
pub use health::{HealthCheckConfig, HealthChecks, HealthSupervisor, HealthView, Probe};
pub use outlier::{
    now_ms, EndpointPermit, EndpointState, HealthEpoch, Outcome, OutlierConfig, Trigger,
};
pub use pingora_load_balancing::HealthRegistry;
pub use pool::{EndpointPool, Picked, PoolOptions};
pub use protocol::{PeerProtocol, PeerTls};
pub use timeouts::UpstreamTimeouts;
