//! Where a route's requests go: a Service port, whole, or split into
//! priority tiers by a cluster subset, by zone, or both.
//!
//! A subset route (MSE `service-subset`) has two pools over the Service's
//! endpoints: tier 0, those the subset selects, and tier 1, the rest. Tier 0
//! takes all traffic while enough of it is healthy and spills over to tier 1
//! by Envoy's rule as it degrades; an empty subset sends everything to the
//! rest, which is then the whole Service. A Service that prefers the
//! gateway's own zone is split the same way (its zone, then the others);
//! with a subset too, each subset tier is split by zone (subset in this
//! zone, subset elsewhere, the rest in this zone, the rest elsewhere). Tier loads depend on health, which
//! changes rarely, so they are cached: recomputed when the pools' health
//! epoch moves (a flip, an ejection, a return) and otherwise every
//! [`TIER_REFRESH_MS`] (ejections that simply expire), not per request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use fleetgate_pool::now_ms;
use fleetgate_subset::{pick_tier, tier_loads, PriorityConfig, TierHealth, TierLoads};

use crate::attempts::Attempt;
use crate::failover::pick_from;
use crate::picker::EndpointPicker;
use crate::service_pool::{PoolId, ServicePool};

/// How stale cached tier loads may be when no health change was signalled,
/// in milliseconds.
pub const TIER_REFRESH_MS: u64 = 1_000;

/// A target's position among all targets of its router, assigned when the
/// router is built: main targets and canaries, in route order. Observers
/// (metrics) keep per-target state in a vector indexed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TargetId(pub u32);

impl TargetId {
    /// As an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The pools behind a target.
#[derive(Debug)]
pub enum TargetPools {
    /// The Service is not declared: requests get 503.
    Undeclared,
    /// All endpoints of the Service port.
    Whole(Arc<ServicePool>),
    /// Priority tiers (a subset and the rest, the local zone and the
    /// others, or both).
    Tiered(Tiers),
}

/// A Service split into priority tiers.
#[derive(Debug)]
pub struct Tiers {
    /// The tiers' pools, tier 0 first.
    pub pools: Vec<Arc<ServicePool>>,
    /// What each tier holds, for listings (`subset cluster-demo-1 (...)`,
    /// `the rest`, `zone zone-a`, ...), one per pool.
    pub names: Vec<Arc<str>>,
    /// What splits them, for listings (the subset, the zone, or both).
    pub selector: Arc<str>,
    priority: PriorityConfig,
    computed_ms: AtomicU64,
    /// The health epochs (every pool's summed) the cached loads were
    /// computed at.
    epoch: AtomicU64,
    /// The health the cached loads were computed from, one word per tier
    /// (see [`health_word`]).
    inputs: Box<[AtomicU64]>,
    loads: ArcSwap<TierLoads>,
}

/// A tier's health as one word: healthy count in the high half, total in
/// the low half.
fn health_word(health: TierHealth) -> u64 {
    (u64::from(health.healthy) << 32) | u64::from(health.total)
}

impl Tiers {
    /// Tiers over a subset's pool and the rest's; `selector` names the
    /// subset in listings.
    pub fn new(
        subset: Arc<ServicePool>,
        rest: Arc<ServicePool>,
        selector: Arc<str>,
        priority: PriorityConfig,
    ) -> Self {
        let names = vec![format!("subset {selector}").into(), "the rest".into()];
        Self::over(vec![subset, rest], names, selector, priority)
    }

    /// Tiers over `pools`, tier 0 first, each described by its entry in
    /// `names`; `selector` says what splits them.
    pub fn over(
        pools: Vec<Arc<ServicePool>>,
        names: Vec<Arc<str>>,
        selector: Arc<str>,
        priority: PriorityConfig,
    ) -> Self {
        let inputs = pools.iter().map(|_| AtomicU64::new(0)).collect();
        Tiers {
            pools,
            names,
            selector,
            priority,
            computed_ms: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            inputs,
            loads: ArcSwap::from_pointee(tier_loads(&[], &priority)),
        }
    }

    /// The spill-over and panic settings.
    pub fn priority(&self) -> &PriorityConfig {
        &self.priority
    }

    /// The pools' health epochs, as one number that moves when any does
    /// (they only grow, so their sum moves whenever one does, also when
    /// pools share one epoch).
    fn epoch_now(&self) -> u64 {
        self.pools
            .iter()
            .fold(0u64, |sum, p| sum.wrapping_add(p.health_epoch().get()))
    }

    /// Current tier loads (recomputed after a health change, else when older
    /// than [`TIER_REFRESH_MS`]). Loads depend only on the tiers' health
    /// counts, so a refresh that finds the same counts keeps the cached
    /// loads (no allocation).
    pub fn loads(&self) -> arc_swap::Guard<Arc<TierLoads>> {
        let now = now_ms().max(1);
        let computed = self.computed_ms.load(Ordering::Relaxed);
        let epoch = self.epoch_now();
        if computed == 0
            || epoch != self.epoch.load(Ordering::Relaxed)
            || now.saturating_sub(computed) >= TIER_REFRESH_MS
        {
            // Read the epoch before the health it covers.
            self.epoch.store(epoch, Ordering::Relaxed);
            let health = |pool: &ServicePool| {
                let (healthy, total) = pool.availability();
                TierHealth { healthy, total }
            };
            let tiers: Vec<TierHealth> = self.pools.iter().map(|p| health(p)).collect();
            let mut changed = computed == 0;
            for (input, tier) in self.inputs.iter().zip(&tiers) {
                let word = health_word(*tier);
                changed |= input.swap(word, Ordering::Relaxed) != word;
            }
            if changed {
                self.loads
                    .store(Arc::new(tier_loads(&tiers, &self.priority)));
            }
            self.computed_ms.store(now, Ordering::Relaxed);
        }
        self.loads.load()
    }
}

/// One destination of a route: the main Service or a canary's.
#[derive(Debug)]
pub struct Target {
    id: TargetId,
    /// The Ingress (`namespace/name`) that sends requests here: the main
    /// Ingress, or the canary Ingress for a canary target.
    pub ingress: Arc<str>,
    /// `namespace/service:port` as referenced.
    pub service: Arc<str>,
    /// Whether this is a canary's target.
    pub canary: bool,
    /// Its pools.
    pub pools: TargetPools,
}

impl Target {
    /// A target sending `ingress`'s requests to `service` over `pools`.
    pub fn new(ingress: &str, service: &str, pools: TargetPools) -> Self {
        Target {
            id: TargetId::default(),
            ingress: ingress.into(),
            service: service.into(),
            canary: false,
            pools,
        }
    }

    /// A target over all endpoints of one pool.
    pub fn whole(ingress: &str, service: &str, pool: Arc<ServicePool>) -> Self {
        Self::new(ingress, service, TargetPools::Whole(pool))
    }

    /// Marks it as a canary's target (for metrics and logs).
    pub fn as_canary(mut self) -> Self {
        self.canary = true;
        self
    }

    /// Its position among its router's targets.
    pub fn id(&self) -> TargetId {
        self.id
    }

    pub(crate) fn set_id(&mut self, id: TargetId) {
        self.id = id;
    }

    /// The same target over the pools in `replaced` (by id) where it used
    /// their old versions. `None` when a subset's tier is replaced: tiers
    /// are split from the whole Service's endpoints, which only a rebuild
    /// does.
    pub(crate) fn remapped(&self, replaced: &HashMap<PoolId, Arc<ServicePool>>) -> Option<Target> {
        let pools = match &self.pools {
            TargetPools::Undeclared => TargetPools::Undeclared,
            TargetPools::Whole(p) => {
                TargetPools::Whole(Arc::clone(replaced.get(&p.id()).unwrap_or(p)))
            }
            TargetPools::Tiered(t) => {
                if t.pools.iter().any(|p| replaced.contains_key(&p.id())) {
                    return None;
                }
                TargetPools::Tiered(Tiers::over(
                    t.pools.clone(),
                    t.names.clone(),
                    Arc::clone(&t.selector),
                    t.priority,
                ))
            }
        };
        Some(Target {
            id: self.id,
            ingress: Arc::clone(&self.ingress),
            service: Arc::clone(&self.service),
            canary: self.canary,
            pools,
        })
    }

    /// Its pools in priority order (none, one, or the tiers').
    pub fn service_pools(&self) -> impl Iterator<Item = &Arc<ServicePool>> {
        let pools: &[Arc<ServicePool>] = match &self.pools {
            TargetPools::Undeclared => &[],
            TargetPools::Whole(p) => std::slice::from_ref(p),
            TargetPools::Tiered(t) => &t.pools,
        };
        pools.iter()
    }

    /// The clusters its endpoints are in, each once, in endpoint order.
    pub fn clusters(&self) -> Vec<Arc<str>> {
        let mut clusters: Vec<Arc<str>> = Vec::new();
        for e in self.service_pools().flat_map(|p| p.endpoints()) {
            if !clusters.iter().any(|c| **c == *e.cluster) {
                clusters.push(e.cluster.as_str().into());
            }
        }
        clusters
    }

    /// Whether any endpoint of this target can take traffic now.
    pub fn has_available(&self) -> bool {
        self.service_pools().any(|p| p.any_available())
    }

    /// Picks a pool, and in it an endpoint with `picker`, for a try of
    /// `request`, never one of `excluded` (those earlier tries failed on,
    /// and any found full); `roll` is a random number, drawn only when
    /// tiers split traffic.
    #[inline]
    pub fn pick<P: EndpointPicker + ?Sized>(
        &self,
        picker: &P,
        excluded: &[SocketAddr],
        request: &http::request::Parts,
        roll: impl FnOnce() -> u64,
    ) -> Option<Attempt<'_>> {
        match &self.pools {
            TargetPools::Undeclared => None,
            TargetPools::Whole(pool) => pick_from(picker, pool, excluded, false, request),
            TargetPools::Tiered(t) => {
                let loads = t.loads();
                // A tier with all the load, or none with any, needs no dice.
                let first = match loads.loads().iter().position(|&l| l == 100) {
                    Some(tier) => tier,
                    None if loads.loads().iter().all(|&l| l == 0) => 0,
                    None => pick_tier(&loads, roll()).unwrap_or(0),
                };
                // The chosen tier, then the others in priority order.
                std::iter::once(first)
                    .chain((0..t.pools.len()).filter(|&tier| tier != first))
                    .find_map(|tier| {
                        let pool = t.pools.get(tier)?;
                        pick_from(picker, pool, excluded, loads.in_panic(tier), request)
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_pool::{Endpoint, HealthChecks, OutlierConfig, PoolOptions};

    use crate::{PoolSpec, RouterBuilder};

    fn pool(builder: &mut RouterBuilder, name: &str, address: &str) -> Arc<ServicePool> {
        let endpoint = Arc::new(Endpoint::new(address.parse().unwrap(), "c1"));
        let mut spec = PoolSpec::new(name, vec![endpoint]);
        spec.options = PoolOptions {
            outlier: OutlierConfig {
                consecutive_failures: 1,
                max_ejection_percent: 100,
                ..OutlierConfig::default()
            },
            ..PoolOptions::default()
        };
        builder.pool(spec)
    }

    #[test]
    fn a_refresh_with_unchanged_health_keeps_the_cached_loads() {
        let checks = HealthChecks::new();
        let mut b = RouterBuilder::new(&checks);
        let subset = pool(&mut b, "web[subset]", "10.0.0.1:80");
        let rest = pool(&mut b, "web[rest]", "10.1.0.1:80");
        let tiers = Tiers::new(
            Arc::clone(&subset),
            rest,
            "c1".into(),
            PriorityConfig::default(),
        );
        let first = Arc::clone(&tiers.loads());
        assert_eq!(first.loads(), [100, 0]);
        // A refresh is due (as after an epoch moved for another endpoint
        // of a shared health state), but the tiers' health is the same.
        tiers.epoch.store(u64::MAX, Ordering::Relaxed);
        assert!(Arc::ptr_eq(&first, &tiers.loads()), "no new loads");
        // The subset's endpoint is ejected: new loads.
        subset.report(0, fleetgate_pool::Outcome::Failure);
        let after = tiers.loads();
        assert!(!Arc::ptr_eq(&first, &after));
        assert_eq!(after.loads(), [0, 100]);
    }
}
