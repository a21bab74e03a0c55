//! Subset routing for a multi-cluster gateway, with Envoy's priority spill-over.
//!
//! A Service behind the gateway has endpoints in several clusters; each
//! endpoint carries labels, among them [`CLUSTER_LABEL`] (its cluster id) and
//! [`ZONE_LABEL`] (its zone). An Ingress route can restrict itself to a
//! *subset* of those endpoints with MSE's `service-subset` / `subset-labels`
//! annotations. That serves two jobs:
//!
//! * **primary / secondary clusters**: a subset naming cluster 1 sends all
//!   traffic there while it is healthy, and the rest of the Service takes
//!   over as it fails;
//! * **cluster-level canaries**: a canary route (e.g. selected by a header)
//!   carries a subset so that it means "this Service, but only in cluster 2",
//!   or only the endpoints labelled with an OpenSergo canary version.
//!
//! Failover is not all-or-nothing: the subset is tier 0, the rest of the
//! Service tier 1, and traffic spills from one to the next in proportion to
//! their health exactly as Envoy spills between priority levels (default
//! overprovisioning factor 1.4: the subset keeps everything until under ~71.4%
//! of it is healthy; 50% healthy gives 70/30). Envoy's panic threshold keeps a
//! mostly-dead pool from concentrating all traffic on its few survivors.
//!
//! The crate is pure logic (no I/O, no async, no dependencies):
//!
//! * [`parse_subset`] reads the annotations once, when the Ingress is loaded;
//! * [`SubsetSelector::matches`] sorts endpoints into tiers, without allocating;
//! * [`tier_loads`] turns per-tier health into per-tier load and panic flags,
//!   whenever health changes;
//! * [`pick_tier`] chooses the tier of each request from a random number.
//!
//! # Using it from a Pingora proxy
//!
//! In a `ProxyHttp` implementation, keep the selector with the route, keep
//! the tiers' endpoint lists and their [`TierLoads`] next to your health
//! state (recompute on health changes and publish, e.g. through an
//! `ArcSwap`), and in `upstream_peer` pick the tier, then an endpoint within
//! it: a healthy one, or any one when the tier is in panic.
//!
//! ```
//! use std::collections::BTreeMap;
//! use fleetgate_subset::{
//!     parse_subset, pick_tier, tier_loads, PriorityConfig, TierHealth, CLUSTER_LABEL,
//!     SERVICE_SUBSET, SUBSET_LABELS,
//! };
//!
//! struct Endpoint {
//!     addr: &'static str,
//!     labels: BTreeMap<String, String>,
//!     healthy: bool,
//! }
//! let endpoint = |addr, cluster: &str, healthy| Endpoint {
//!     addr,
//!     labels: BTreeMap::from([(CLUSTER_LABEL.to_owned(), cluster.to_owned())]),
//!     healthy,
//! };
//!
//! // When the Ingress is loaded: "prefer cluster c2".
//! let annotations = BTreeMap::from([
//!     (SERVICE_SUBSET.to_owned(), "cluster-2".to_owned()),
//!     (SUBSET_LABELS.to_owned(), "topology.istio.io/cluster c2\n".to_owned()),
//! ]);
//! let Some(subset) = parse_subset(&annotations)? else {
//!     unreachable!("the route names a subset");
//! };
//! assert_eq!(subset.to_string(), "cluster-2 (topology.istio.io/cluster=c2)");
//!
//! // When endpoints or their health change: tier 0 = subset, tier 1 = the rest.
//! let endpoints = [
//!     endpoint("10.0.1.1:80", "c1", true),
//!     endpoint("10.0.1.2:80", "c1", true),
//!     endpoint("10.0.2.1:80", "c2", true),
//!     endpoint("10.0.2.2:80", "c2", false),
//! ];
//! let tier_of = |ep: &Endpoint| usize::from(!subset.matches(&ep.labels));
//! let mut tiers = [TierHealth::default(); 2];
//! for ep in &endpoints {
//!     let tier = &mut tiers[tier_of(ep)];
//!     tier.total += 1;
//!     tier.healthy += u32::from(ep.healthy);
//! }
//! let config = PriorityConfig::default();
//! config.validate()?;
//! let loads = tier_loads(&tiers, &config);
//! assert_eq!(loads.loads(), &[70, 30]); // c2 is half healthy: 70% stays there
//!
//! // Per request (in `upstream_peer`): a random u64 from your RNG picks the tier.
//! let roll: u64 = 0x1234_5678_9abc_def0;
//! let Some(tier) = pick_tier(&loads, roll) else {
//!     unreachable!("the Service has endpoints");
//! };
//! let candidates: Vec<&str> = endpoints
//!     .iter()
//!     .filter(|ep| tier_of(ep) == tier && (ep.healthy || loads.in_panic(tier)))
//!     .map(|ep| ep.addr)
//!     .collect();
//! assert_eq!(candidates, ["10.0.2.1:80"]);
//! // ...then balance over `candidates` and build the `HttpPeer`.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The spill-over rule is Envoy's priority-level load calculation, with
//! its overprovisioning factor and panic threshold.

#![warn(missing_docs)]

mod error;
mod labels;
mod loads;
mod priority;
mod selector;

pub use error::SubsetError;
pub use labels::{CANARY_LABEL_PREFIX, CLUSTER_LABEL, SERVICE_SUBSET, SUBSET_LABELS, ZONE_LABEL};
pub use loads::{pick_tier, TierLoads};
pub use priority::{tier_loads, PriorityConfig, TierHealth};
pub use selector::{parse_subset, SubsetSelector};
