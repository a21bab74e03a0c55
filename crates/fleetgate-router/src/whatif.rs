//! What-if: where a target's traffic would go if some clusters or zones
//! were down, for disaster-recovery planning (`fleetgate routes --down`,
//! `/routes?down=`).
//!
//! The answer is worked out from the rules a request follows, not from a
//! second model of them: an endpoint takes traffic when the pool says it is
//! available ([`EndpointPool::is_available`]: health, ejections, drains)
//! and it is not among the ones assumed down; within a pool, traffic
//! follows the endpoints' weights (what weighted round robin converges
//! to); subset tiers split by [`fleetgate_subset::tier_loads`] over the
//! tiers' health, with the assumed-down endpoints counted as unhealthy, as
//! a real outage would count them; a tier in panic mode spreads its first
//! tries over every endpoint that is not drained, down ones included (the
//! retries then move to the live ones). Nothing is picked: the live
//! gateway's round robin and counters are not touched.

use std::sync::Arc;

use fleetgate_pool::{Endpoint, EndpointPool};
use fleetgate_subset::{tier_loads, TierHealth};

use crate::target::{Target, TargetPools};

/// The endpoints assumed down: those in one of `clusters` or `zones`.
#[derive(Debug, Clone, Default)]
pub struct Down {
    /// Cluster ids.
    pub clusters: Vec<String>,
    /// Zones.
    pub zones: Vec<String>,
    /// The names as the operator gave them, for listings.
    pub asked: Vec<String>,
}

impl Down {
    /// Whether `endpoint` is assumed down.
    pub fn covers(&self, endpoint: &Endpoint) -> bool {
        self.clusters.contains(&endpoint.cluster)
            || endpoint
                .zone
                .as_ref()
                .is_some_and(|z| self.zones.iter().any(|d| d == z))
    }

    /// Whether nothing is assumed down.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty() && self.zones.is_empty()
    }
}

/// Where a target's requests would go.
#[derive(Debug, Clone, PartialEq)]
pub enum Outlook {
    /// Shares per cluster, in percent (summing to 100), largest first.
    /// `panic`: whether some tier's first tries would also go to down
    /// endpoints.
    Shares {
        /// `(cluster, percent)`.
        shares: Vec<(Arc<str>, f64)>,
        /// Whether some of the traffic is spread in panic mode.
        panic: bool,
    },
    /// No endpoint would take the request: 503 (a canary's requests go to
    /// the main Service instead).
    Nowhere,
}

impl std::fmt::Display for Outlook {
    /// `c7fb82a1 90% cd3007b2 10%`, `(panic) ...`, or `nowhere`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outlook::Nowhere => f.write_str("nowhere"),
            Outlook::Shares { shares, panic } => {
                if *panic {
                    f.write_str("(panic: first tries also to down endpoints) ")?;
                }
                for (i, (cluster, percent)) in shares.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    write!(f, "{sep}{cluster} {}%", round_share(*percent))?;
                }
                Ok(())
            }
        }
    }
}

/// A percentage with one decimal when it is not whole.
fn round_share(p: f64) -> String {
    let tenths = (p * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0}")
    } else {
        format!("{tenths:.1}")
    }
}

/// Summed endpoint weights per cluster.
type ClusterWeights = Vec<(Arc<str>, u64)>;

/// Weight per cluster of the endpoints of `pool` that `takes` accepts.
fn weights(pool: &EndpointPool, takes: impl Fn(usize, &Endpoint) -> bool) -> ClusterWeights {
    let mut out: ClusterWeights = Vec::new();
    for (i, e) in pool.endpoints().enumerate() {
        if e.weight == 0 || !takes(i, e) {
            continue;
        }
        match out.iter_mut().find(|(c, _)| **c == *e.cluster) {
            Some((_, w)) => *w += u64::from(e.weight),
            None => out.push((e.cluster.as_str().into(), u64::from(e.weight))),
        }
    }
    out
}

/// A tier's health with `down` endpoints counted as unhealthy (drained
/// ones are out of both counts, as in [`EndpointPool::availability`]).
fn health(pool: &EndpointPool, down: &Down) -> TierHealth {
    let (healthy, total) = pool.availability_unless(|e| down.covers(e));
    TierHealth { healthy, total }
}

/// The weights a pool's traffic would follow: its live endpoints, or in
/// panic every endpoint that is not drained.
fn tier_weights(pool: &EndpointPool, down: &Down, panic: bool) -> ClusterWeights {
    if panic {
        weights(pool, |i, _| !pool.is_drained(i))
    } else {
        weights(pool, |i, e| pool.is_available(i) && !down.covers(e))
    }
}

/// Where `target`'s requests would go with `down` down (and everything
/// else as it is now).
pub fn outlook(target: &Target, down: &Down) -> Outlook {
    // (fraction of traffic, weights it follows)
    let mut parts: Vec<(f64, ClusterWeights)> = Vec::new();
    let mut panic = false;
    match &target.pools {
        TargetPools::Undeclared => return Outlook::Nowhere,
        TargetPools::Whole(pool) => parts.push((1.0, tier_weights(pool, down, false))),
        TargetPools::Tiered(t) => {
            let tiers: Vec<TierHealth> = t.pools.iter().map(|p| health(p, down)).collect();
            let loads = tier_loads(&tiers, t.priority());
            // As `Target::pick`: the chosen tier first, then the others in
            // priority order when it has nothing to give; traffic a tier
            // cannot take is carried to the next.
            let mut carried = 0.0;
            let first_with_load = loads.loads().iter().position(|&l| l > 0).unwrap_or(0);
            let order = std::iter::once(first_with_load)
                .chain((0..t.pools.len()).filter(|&tier| tier != first_with_load));
            for tier in order {
                let share = f64::from(loads.load(tier)) / 100.0 + carried;
                let in_panic = loads.in_panic(tier);
                let w = tier_weights(&t.pools[tier], down, in_panic);
                if w.is_empty() {
                    carried = share;
                    continue;
                }
                carried = 0.0;
                panic |= in_panic && share > 0.0;
                parts.push((share, w));
            }
        }
    }
    let mut shares: Vec<(Arc<str>, f64)> = Vec::new();
    for (fraction, w) in parts {
        let sum: u64 = w.iter().map(|(_, w)| w).sum();
        if sum == 0 || fraction == 0.0 {
            continue;
        }
        for (cluster, weight) in w {
            let p = 100.0 * fraction * weight as f64 / sum as f64;
            match shares.iter_mut().find(|(c, _)| *c == cluster) {
                Some((_, s)) => *s += p,
                None => shares.push((cluster, p)),
            }
        }
    }
    if shares.is_empty() {
        return Outlook::Nowhere;
    }
    shares.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Outlook::Shares { shares, panic }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_pool::HealthChecks;
    use fleetgate_subset::PriorityConfig;

    use crate::target::Tiers;
    use crate::{PoolSpec, RouterBuilder};

    fn endpoints(spec: &[(&str, &str, usize)]) -> Vec<Arc<Endpoint>> {
        let mut out = Vec::new();
        let mut port = 1;
        for (cluster, zone, n) in spec {
            for _ in 0..*n {
                out.push(Arc::new(
                    Endpoint::new(format!("10.0.0.1:{port}").parse().unwrap(), cluster)
                        .with_zone(zone),
                ));
                port += 1;
            }
        }
        out
    }

    fn down(clusters: &[&str], zones: &[&str]) -> Down {
        Down {
            clusters: clusters.iter().map(|s| s.to_string()).collect(),
            zones: zones.iter().map(|s| s.to_string()).collect(),
            asked: Vec::new(),
        }
    }

    #[test]
    fn whole_services_follow_pod_counts_of_what_is_left() {
        let checks = HealthChecks::new();
        let mut b = RouterBuilder::new(&checks);
        let pool = b.pool(PoolSpec::new(
            "web",
            endpoints(&[("a", "za", 9), ("b", "zb", 1)]),
        ));
        let t = Target::whole("ns/web", "ns/web:80", pool);
        assert_eq!(outlook(&t, &Down::default()).to_string(), "a 90% b 10%");
        assert_eq!(outlook(&t, &down(&["a"], &[])).to_string(), "b 100%");
        assert_eq!(outlook(&t, &down(&[], &["zb"])).to_string(), "a 100%");
        assert_eq!(outlook(&t, &down(&["a", "b"], &[])), Outlook::Nowhere);
        // A drain is taken into account as the request path does.
        checks.clusters().set_drained("b", true);
        assert_eq!(outlook(&t, &Down::default()).to_string(), "a 100%");
    }

    #[test]
    fn subsets_spill_over_and_panic_is_reported() {
        let checks = HealthChecks::new();
        let mut b = RouterBuilder::new(&checks);
        let subset = b.pool(PoolSpec::new("web[subset]", endpoints(&[("a", "za", 2)])));
        let rest = b.pool(PoolSpec::new("web[rest]", {
            // Other addresses than the subset's.
            let mut e = endpoints(&[("x", "zx", 2), ("b", "zb", 3)]);
            e.drain(..2);
            e
        }));
        let t = Target::new(
            "ns/web",
            "ns/web:80",
            TargetPools::Tiered(Tiers::new(
                subset,
                rest,
                "a".into(),
                PriorityConfig::default(),
            )),
        );
        assert_eq!(outlook(&t, &Down::default()).to_string(), "a 100%");
        assert_eq!(outlook(&t, &down(&["a"], &[])).to_string(), "b 100%");
        assert_eq!(
            outlook(&t, &down(&["a", "b"], &[])).to_string(),
            "(panic: first tries also to down endpoints) b 60% a 40%",
            "total panic spreads by tier size"
        );
    }
}
