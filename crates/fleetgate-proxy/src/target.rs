//! Where a route's requests go: a Service port, whole, or split into
//! priority tiers by a cluster subset.
//!
//! A subset route (MSE `service-subset`) has two pools over the Service's
//! endpoints: tier 0, those the subset selects, and tier 1, the rest. Tier 0
//! takes all traffic while enough of it is healthy and spills over to tier 1
//! by Envoy's rule as it degrades; an empty subset sends everything to the
//! rest, which is then the whole Service. Tier loads depend on health, which
//! changes rarely, so they are cached: recomputed when the pool crate's
//! health epoch moves (a flip, an ejection, a return) and otherwise every
//! [`TIER_REFRESH_MS`] (ejections that simply expire), not per request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use fleetgate_pool::{health_epoch, now_ms, EndpointPool, Picked};
use fleetgate_subset::{pick_tier, tier_loads, PriorityConfig, TierHealth, TierLoads};

use crate::metrics::TargetCounters;

/// How stale cached tier loads may be when no health change was signalled,
/// in milliseconds.
pub const TIER_REFRESH_MS: u64 = 1_000;

/// The pools behind a target, as indices into the snapshot's pools.
#[derive(Debug)]
pub enum TargetPools {
    /// The Service is not declared: requests get 503.
    Undeclared,
    /// All endpoints of the Service port.
    Whole(usize),
    /// A subset and the rest, in priority order.
    Tiered(Tiers),
}

/// A subset split into priority tiers.
#[derive(Debug)]
pub struct Tiers {
    /// Tier 0: the subset's pool.
    pub subset: usize,
    /// Tier 1: the rest of the Service.
    pub rest: usize,
    /// The subset, for listings.
    pub selector: Arc<str>,
    priority: PriorityConfig,
    computed_ms: AtomicU64,
    /// The health epoch the cached loads were computed at.
    epoch: AtomicU64,
    loads: ArcSwap<TierLoads>,
}

impl Tiers {
    /// Tiers over two pools.
    pub fn new(subset: usize, rest: usize, selector: Arc<str>, priority: PriorityConfig) -> Self {
        Tiers {
            subset,
            rest,
            selector,
            priority,
            computed_ms: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            loads: ArcSwap::from_pointee(tier_loads(&[], &priority)),
        }
    }

    /// Current tier loads (recomputed after a health change, else when older
    /// than [`TIER_REFRESH_MS`]).
    pub fn loads(&self, pools: &[Arc<EndpointPool>]) -> arc_swap::Guard<Arc<TierLoads>> {
        let now = now_ms().max(1);
        let computed = self.computed_ms.load(Ordering::Relaxed);
        let epoch = health_epoch();
        if computed == 0
            || epoch != self.epoch.load(Ordering::Relaxed)
            || now.saturating_sub(computed) >= TIER_REFRESH_MS
        {
            // Read the epoch before the health it covers.
            self.epoch.store(epoch, Ordering::Relaxed);
            let health = |i: usize| {
                let (healthy, total) = pools[i].availability();
                TierHealth { healthy, total }
            };
            let loads = tier_loads(&[health(self.subset), health(self.rest)], &self.priority);
            self.loads.store(Arc::new(loads));
            self.computed_ms.store(now, Ordering::Relaxed);
        }
        self.loads.load()
    }
}

/// One destination of a route: the main Service or a canary's.
#[derive(Debug)]
pub struct Target {
    /// `namespace/service:port` as referenced.
    pub service: Arc<str>,
    /// Its pools.
    pub pools: TargetPools,
    /// Its request and latency metric handles.
    pub counters: TargetCounters,
}

/// Picks from `pool`, skipping endpoints this request already failed on,
/// and leaving a cluster that looks down.
fn pick_from<'a>(pool: &'a EndpointPool, failed: &[SocketAddr], panic: bool) -> Option<Picked<'a>> {
    if failed.is_empty() {
        return if panic {
            pool.select_any(|_| true)
        } else {
            pool.select()
        };
    }
    let last_cluster = failed.last().and_then(|addr| {
        pool.endpoints()
            .find(|e| e.address == *addr)
            .map(|e| e.cluster.as_str())
    });
    if let Some(cluster) = last_cluster {
        if cluster_looks_down(pool, cluster, failed) {
            if let Some(p) =
                pool.select_with(|e| e.cluster != cluster && !failed.contains(&e.address))
            {
                return Some(p);
            }
        }
    }
    pool.select_with(|e| !failed.contains(&e.address))
        .or_else(|| {
            panic
                .then(|| pool.select_any(|e| !failed.contains(&e.address)))
                .flatten()
        })
}

/// Whether endpoints of `cluster` other than the ones this request already
/// tried are failing too: then a retry should leave the cluster.
fn cluster_looks_down(pool: &EndpointPool, cluster: &str, failed: &[SocketAddr]) -> bool {
    let failed_here = pool
        .endpoints()
        .filter(|e| e.cluster == cluster && failed.contains(&e.address))
        .count();
    if failed_here > 1 {
        return true;
    }
    pool.endpoints().enumerate().any(|(i, e)| {
        e.cluster == cluster
            && !failed.contains(&e.address)
            && (!pool.is_available(i) || pool.state(i).consecutive_failures() > 0)
    })
}

impl Target {
    /// Whether any endpoint of this target can take traffic now.
    pub fn has_available(&self, pools: &[Arc<EndpointPool>]) -> bool {
        match &self.pools {
            TargetPools::Undeclared => false,
            TargetPools::Whole(i) => pools[*i].any_available(),
            TargetPools::Tiered(t) => {
                pools[t.subset].any_available() || pools[t.rest].any_available()
            }
        }
    }

    /// Picks a pool and an endpoint for a try of a request. `failed` holds
    /// the endpoints earlier tries failed on; `roll` is a random number,
    /// drawn only when tiers split traffic.
    pub fn pick<'a>(
        &self,
        pools: &'a [Arc<EndpointPool>],
        failed: &[SocketAddr],
        roll: impl FnOnce() -> u64,
    ) -> Option<(usize, Picked<'a>)> {
        match &self.pools {
            TargetPools::Undeclared => None,
            TargetPools::Whole(i) => pick_from(&pools[*i], failed, false).map(|p| (*i, p)),
            TargetPools::Tiered(t) => {
                let loads = t.loads(pools);
                let first = match (loads.load(0), loads.load(1)) {
                    (100, _) => 0,
                    (_, 100) => 1,
                    (0, 0) => 0,
                    _ => pick_tier(&loads, roll()).unwrap_or(0),
                };
                let order = if first == 0 {
                    [(t.subset, 0), (t.rest, 1)]
                } else {
                    [(t.rest, 1), (t.subset, 0)]
                };
                for (pool, tier) in order {
                    if let Some(p) = pick_from(&pools[pool], failed, loads.in_panic(tier)) {
                        return Some((pool, p));
                    }
                }
                None
            }
        }
    }
}
