//! A Service port's endpoints and the weighted selection over them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use std::sync::atomic::{AtomicUsize, Ordering};

use pingora_core::upstreams::peer::HttpPeer;

use crate::cluster::{ClusterState, Clusters};
use crate::endpoint::Endpoint;
use crate::health::{HealthChecks, HealthView};
use crate::outlier::{EndpointPermit, EndpointState, HealthEpoch, Outcome, OutlierConfig};
use crate::protocol::{make_peer, PeerProtocol};
use crate::schedule::{owner, WeightedOrder};
use crate::timeouts::UpstreamTimeouts;

/// Per-pool settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolOptions {
    /// Connect, read, write and idle timeouts of its peers.
    pub timeouts: UpstreamTimeouts,
    /// Passive outlier detection.
    pub outlier: OutlierConfig,
    /// HTTP version and TLS towards the endpoints.
    pub protocol: PeerProtocol,
}

/// An endpoint chosen for one request.
#[derive(Debug)]
pub struct Picked<'a> {
    /// The endpoint.
    pub endpoint: &'a Arc<Endpoint>,
    /// Its position in [`EndpointPool::endpoints`].
    pub index: usize,
}

/// The endpoints behind one Service port (or a subset of them), with weighted
/// round-robin selection over the available ones.
///
/// Selection is weighted round robin over the endpoints' cumulative weights
/// (see the `schedule` module), falling back to a scan of the available
/// endpoints when the scheduled one is down. What a pick reads sits
/// together: the pool's first fields, then one slot per endpoint with its
/// cumulative weight, outlier state, endpoint and peer. Nothing else is per
/// pool: active health comes from a [`HealthView`]
/// (`pingora-load-balancing`'s health checks) shared by every pool with the
/// same health-check settings,
/// and outlier state and upstream peers are shared per address (see
/// [`HealthChecks`]), so a configuration with thousands of pools stays small
/// and compiles in linear time.
#[repr(C)]
pub struct EndpointPool {
    // Read by every pick: kept first, in declaration order.
    slots: Box<[Slot]>,
    order: WeightedOrder,
    health: Option<HealthView>,
    /// Start of the exhaustive scan that backs up the weighted pick.
    scan: AtomicUsize,
    // Read for listings, reports and logs.
    name: String,
    options: PoolOptions,
    /// Moved by availability changes of these endpoints.
    epoch: HealthEpoch,
}

/// What a pick reads of one endpoint, in one place.
struct Slot {
    /// The sum of the (reduced) weights of this endpoint and those before it.
    cumulative: u64,
    state: Arc<EndpointState>,
    /// Its cluster's state: drained or not.
    cluster: Arc<ClusterState>,
    endpoint: Arc<Endpoint>,
    peer: Arc<HttpPeer>,
}

impl std::fmt::Debug for EndpointPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointPool")
            .field("name", &self.name)
            .field("endpoints", &self.endpoints().collect::<Vec<_>>())
            .finish()
    }
}

impl EndpointPool {
    /// Builds a pool with endpoint state and peers of its own and no active
    /// health checks. `name` is for logs (e.g. `ns/service:port`). See
    /// [`EndpointPool::with_shared_state`].
    pub fn new(
        name: impl Into<String>,
        endpoints: Vec<Arc<Endpoint>>,
        options: PoolOptions,
    ) -> Self {
        Self::build(name.into(), endpoints, options, None, None)
    }

    /// Builds a pool whose endpoints' health comes from `health` (one probe
    /// per address however many pools list it, see
    /// [`HealthChecks::health_view`]) and whose outlier state and upstream
    /// peers are `shared`'s, per address. Endpoints with the same address
    /// are merged (the first one counts). Weight 0 endpoints are kept for
    /// listing but take no traffic.
    pub fn with_shared_state(
        name: impl Into<String>,
        endpoints: Vec<Arc<Endpoint>>,
        options: PoolOptions,
        health: Option<HealthView>,
        shared: &HealthChecks,
    ) -> Self {
        Self::build(name.into(), endpoints, options, health, Some(shared))
    }

    fn build(
        name: String,
        endpoints: Vec<Arc<Endpoint>>,
        options: PoolOptions,
        health: Option<HealthView>,
        shared: Option<&HealthChecks>,
    ) -> Self {
        let mut unique: Vec<Arc<Endpoint>> = Vec::with_capacity(endpoints.len());
        let mut seen = HashMap::with_capacity(endpoints.len());
        for e in endpoints {
            if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(e.address) {
                slot.insert(());
                unique.push(e);
            }
        }
        let weights: Vec<u32> = unique.iter().map(|e| e.weight).collect();
        let (order, cumulative) = WeightedOrder::build(&weights);
        let epoch = shared.map_or_else(HealthEpoch::new, |s| s.epoch().clone());
        let own_clusters;
        let clusters = match shared {
            Some(s) => s.clusters(),
            None => {
                own_clusters = Clusters::new(epoch.clone());
                &own_clusters
            }
        };
        let slots = unique
            .into_iter()
            .zip(cumulative)
            .map(|(endpoint, cumulative)| {
                let (peer, state) = match shared {
                    Some(shared) => (
                        shared.peer(endpoint.address, &options.timeouts, &options.protocol),
                        shared.endpoint_state(endpoint.address),
                    ),
                    None => (
                        Arc::new(make_peer(
                            endpoint.address,
                            &options.timeouts,
                            &options.protocol,
                        )),
                        Arc::new(EndpointState::with_epoch(epoch.clone())),
                    ),
                };
                let cluster = clusters.state(&endpoint.cluster);
                Slot {
                    cumulative,
                    state,
                    cluster,
                    endpoint,
                    peer,
                }
            })
            .collect();
        EndpointPool {
            name,
            options,
            health,
            slots,
            order,
            scan: AtomicUsize::new(0),
            epoch,
        }
    }

    /// The epoch that moves whenever one of these endpoints' availability
    /// changes (a health flip, an ejection, a return): what a cache of
    /// anything derived from availability compares against. Pools built
    /// over one [`HealthChecks`] share it.
    pub fn health_epoch(&self) -> &HealthEpoch {
        &self.epoch
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All endpoints, healthy or not, in index order.
    pub fn endpoints(&self) -> impl ExactSizeIterator<Item = &Arc<Endpoint>> + Clone + '_ {
        self.slots.iter().map(|s| &s.endpoint)
    }

    /// The endpoint at `index` (as in [`Picked::index`]).
    pub fn endpoint(&self, index: usize) -> &Arc<Endpoint> {
        &self.slots[index].endpoint
    }

    /// Its settings.
    pub fn options(&self) -> &PoolOptions {
        &self.options
    }

    /// The health view it reads, if it has active checks.
    pub fn health(&self) -> Option<&HealthView> {
        self.health.as_ref()
    }

    /// The live state of the endpoint at `index`.
    pub fn state(&self, index: usize) -> &Arc<EndpointState> {
        &self.slots[index].state
    }

    /// The state of the cluster of the endpoint at `index`: drained or
    /// not, requests in flight.
    pub fn cluster(&self, index: usize) -> &Arc<ClusterState> {
        &self.slots[index].cluster
    }

    /// Whether the endpoint at `index` is in a drained cluster: it takes no
    /// new request, even in panic mode.
    #[inline]
    pub fn is_drained(&self, index: usize) -> bool {
        self.slots[index].cluster.is_drained()
    }

    /// Takes a place among `cap` requests in flight to the endpoint at
    /// `index` (shared by every pool listing its address), if one is free.
    pub fn try_acquire(&self, index: usize, cap: u32) -> Option<EndpointPermit> {
        self.slots[index].state.try_acquire(cap)
    }

    /// Whether the endpoint at `address` passes its active health checks
    /// (always, when the pool has none).
    pub fn is_healthy(&self, address: SocketAddr) -> bool {
        self.health.as_ref().is_none_or(|h| h.is_healthy(address))
    }

    /// Whether the endpoint at `index` can take traffic now: healthy by its
    /// active checks, not ejected, and not in a drained cluster.
    pub fn is_available(&self, index: usize) -> bool {
        self.available_with(index, &mut None)
    }

    /// [`EndpointPool::is_available`], with the pool's ejection cutoff
    /// (see [`EndpointPool::ejection_cutoff`]) computed at most once per
    /// `cutoff` however many endpoints a caller asks about.
    fn available_with(&self, index: usize, cutoff: &mut Option<usize>) -> bool {
        let slot = &self.slots[index];
        if slot.cluster.is_drained() {
            return false;
        }
        let honoured_ejection = slot.state.is_ejected()
            && index < *cutoff.get_or_insert_with(|| self.ejection_cutoff());
        !honoured_ejection && self.is_healthy(slot.endpoint.address)
    }

    /// Ejection state is shared by address, so another pool may have
    /// ejected endpoints this one lists; this pool still keeps no more than
    /// its own `max_ejection_percent` out: the first ejected endpoints in
    /// index order, up to the budget, stay out, and the rest take traffic.
    /// Returns the index below which an ejection is honoured. One pass over
    /// the pool, made only when some endpoint is ejected.
    #[cold]
    fn ejection_cutoff(&self) -> usize {
        let budget = self.ejection_budget();
        let mut honoured = 0;
        for (i, s) in self.slots.iter().enumerate() {
            if s.state.is_ejected() {
                if honoured == budget {
                    return i;
                }
                honoured += 1;
            }
        }
        self.slots.len()
    }

    /// How many endpoints this pool lets be ejected at once: a share of
    /// those not drained (a drain must not let ejections empty the rest).
    fn ejection_budget(&self) -> usize {
        let serving = self
            .slots
            .iter()
            .filter(|s| !s.cluster.is_drained())
            .count();
        serving * self.options.outlier.max_ejection_percent as usize / 100
    }

    /// Whether any endpoint with a non-zero weight can take traffic now
    /// (stops at the first).
    pub fn any_available(&self) -> bool {
        let mut cutoff = None;
        (0..self.slots.len())
            .any(|i| self.slots[i].endpoint.weight > 0 && self.available_with(i, &mut cutoff))
    }

    /// `(available, total)` endpoints with a non-zero weight. Endpoints of
    /// drained clusters are in neither: a drain shrinks the pool rather
    /// than making it look unhealthy (no panic mode because of a drain).
    pub fn availability(&self) -> (u32, u32) {
        self.availability_unless(|_| false)
    }

    /// [`EndpointPool::availability`], with the endpoints `down` names
    /// counted as unavailable (a what-if of an outage).
    pub fn availability_unless(&self, down: impl Fn(&Endpoint) -> bool) -> (u32, u32) {
        let mut available = 0;
        let mut total = 0;
        let mut cutoff = None;
        for (i, e) in self.endpoints().enumerate() {
            if e.weight > 0 && !self.is_drained(i) {
                total += 1;
                if !down(e) && self.available_with(i, &mut cutoff) {
                    available += 1;
                }
            }
        }
        (available, total)
    }

    /// `(available, total)` endpoints per cluster id, in cluster order.
    pub fn availability_by_cluster(&self) -> BTreeMap<&str, (u32, u32)> {
        let mut per = BTreeMap::new();
        let mut cutoff = None;
        for (i, e) in self.endpoints().enumerate() {
            let entry: &mut (u32, u32) = per.entry(e.cluster.as_str()).or_default();
            entry.1 += 1;
            if self.available_with(i, &mut cutoff) {
                entry.0 += 1;
            }
        }
        per
    }

    /// Records the outcome of a request to the endpoint at `index`, for
    /// outlier detection. Ejects it when it crossed the failure threshold
    /// and the pool's ejection budget allows.
    pub fn report(&self, index: usize, outcome: Outcome) {
        let Some(state) = self.slots.get(index).map(|s| &s.state) else {
            return;
        };
        let Some(trigger) = state.record(outcome, &self.options.outlier) else {
            return;
        };
        let ejected = self.slots.iter().filter(|s| s.state.is_ejected()).count();
        let limit = self.ejection_budget();
        if ejected >= limit {
            log::warn!(
                "outlier: endpoint {} of {} keeps failing but {ejected} of {} endpoints are already ejected (max {}%); keeping it",
                self.endpoint(index).address,
                self.name,
                self.slots.len(),
                self.options.outlier.max_ejection_percent
            );
            return;
        }
        let time = state.eject(&self.options.outlier);
        log::warn!(
            "outlier: endpoint {} ({} cluster {}) ejected for {time:?} after {trigger} (ejection #{})",
            self.endpoint(index).address,
            self.name,
            self.endpoint(index).cluster,
            state.ejections()
        );
    }

    /// Whether the pool has no endpoint at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Picks the next available endpoint by weighted round robin.
    pub fn select(&self) -> Option<Picked<'_>> {
        self.select_with(|_| true)
    }

    /// Picks the next healthy, non-ejected endpoint that `accept` also agrees
    /// to (e.g. one not yet tried by this request).
    pub fn select_with(&self, accept: impl Fn(&Endpoint) -> bool) -> Option<Picked<'_>> {
        self.select_inner(false, accept)
    }

    /// Like [`EndpointPool::select_with`], ignoring health and ejections
    /// (panic mode: when too little of a pool is healthy, spreading over all
    /// endpoints beats overloading the few). Drained clusters stay out.
    pub fn select_any(&self, accept: impl Fn(&Endpoint) -> bool) -> Option<Picked<'_>> {
        self.select_inner(true, accept)
    }

    fn select_inner(
        &self,
        ignore_health: bool,
        accept: impl Fn(&Endpoint) -> bool,
    ) -> Option<Picked<'_>> {
        let cutoff = std::cell::Cell::new(None);
        let usable = |i: usize| {
            (if ignore_health {
                !self.slots[i].cluster.is_drained()
            } else {
                let mut c = cutoff.get();
                let available = self.available_with(i, &mut c);
                cutoff.set(c);
                available
            }) && accept(&self.slots[i].endpoint)
        };
        // Weighted round robin first: the pick that keeps traffic in
        // proportion to weights.
        let point = self.order.next_point()?;
        let scheduled = owner(|i| self.slots[i].cumulative, self.slots.len(), point);
        if usable(scheduled) {
            return Some(self.picked(scheduled));
        }
        // Then every endpoint once, from a rotating start, so that a usable
        // endpoint is found whenever there is one.
        let n = self.slots.len();
        let start = self.scan.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.slots[i].endpoint.weight > 0 && usable(i))
            .map(|i| self.picked(i))
    }

    fn picked(&self, index: usize) -> Picked<'_> {
        Picked {
            endpoint: &self.slots[index].endpoint,
            index,
        }
    }

    /// A peer for the picked endpoint, carrying the pool's timeouts.
    pub fn peer(&self, picked: Picked<'_>) -> Box<HttpPeer> {
        Box::new(HttpPeer::clone(&self.slots[picked.index].peer))
    }
}

/// Polls a future once; `None` if it is not ready.
pub(crate) fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(spec: &[(&str, &str, u32)]) -> EndpointPool {
        let endpoints = spec
            .iter()
            .map(|(a, c, w)| Arc::new(Endpoint::new(a.parse().unwrap(), c).with_weight(*w)))
            .collect();
        EndpointPool::new("t", endpoints, PoolOptions::default())
    }

    fn count(p: &EndpointPool, n: usize) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for _ in 0..n {
            let picked = p.select().unwrap();
            *out.entry(picked.endpoint.cluster.clone()).or_default() += 1;
        }
        out
    }

    #[test]
    fn traffic_follows_pod_counts() {
        let mut spec: Vec<(String, &str, u32)> = (1..=9)
            .map(|i| (format!("127.0.0.1:{}", 18000 + i), "c1", 1))
            .collect();
        spec.push(("127.0.0.1:18011".into(), "c2", 1));
        let spec: Vec<_> = spec.iter().map(|(a, c, w)| (a.as_str(), *c, *w)).collect();
        let counts = count(&pool(&spec), 1000);
        assert_eq!(counts["c1"], 900);
        assert_eq!(counts["c2"], 100);
    }

    #[test]
    fn large_pools_follow_weights_too() {
        let spec: Vec<(String, &str, u32)> = (0..40)
            .map(|i| {
                (
                    format!("127.0.0.1:{}", 20_000 + i),
                    if i < 30 { "c1" } else { "c2" },
                    1,
                )
            })
            .collect();
        let spec: Vec<_> = spec.iter().map(|(a, c, w)| (a.as_str(), *c, *w)).collect();
        let counts = count(&pool(&spec), 4000);
        assert_eq!((counts["c1"], counts["c2"]), (3000, 1000));
    }

    #[test]
    fn weights_scale_shares_and_zero_takes_none() {
        let p = pool(&[
            ("127.0.0.1:1", "a", 3),
            ("127.0.0.1:2", "b", 1),
            ("127.0.0.1:3", "z", 0),
        ]);
        let counts = count(&p, 400);
        assert_eq!(counts["a"], 300);
        assert_eq!(counts["b"], 100);
        assert!(!counts.contains_key("z"));
        assert_eq!(p.endpoints().len(), 3);
    }

    #[test]
    fn accept_filters_candidates() {
        let p = pool(&[("127.0.0.1:1", "a", 1), ("127.0.0.1:2", "b", 1)]);
        for _ in 0..10 {
            assert_eq!(
                p.select_with(|e| e.cluster == "b")
                    .unwrap()
                    .endpoint
                    .cluster,
                "b"
            );
        }
        assert!(p.select_with(|_| false).is_none());
    }

    #[test]
    fn ejected_endpoints_leave_rotation_within_budget() {
        let endpoints = (1..=4)
            .map(|i| {
                Arc::new(Endpoint::new(
                    format!("127.0.0.1:{i}").parse().unwrap(),
                    "a",
                ))
            })
            .collect();
        let options = PoolOptions {
            outlier: OutlierConfig {
                consecutive_failures: 2,
                max_ejection_percent: 50,
                ..OutlierConfig::default()
            },
            ..PoolOptions::default()
        };
        let p = EndpointPool::new("t", endpoints, options);
        for i in 0..3 {
            p.report(i, Outcome::Failure);
            p.report(i, Outcome::Failure);
        }
        // Two of four may be out at once; the third stays.
        assert!(p.state(0).is_ejected() && p.state(1).is_ejected());
        assert!(!p.state(2).is_ejected());
        assert_eq!(p.availability(), (2, 4));
        for _ in 0..20 {
            let i = p.select().unwrap().index;
            assert!(i == 2 || i == 3, "picked ejected endpoint {i}");
        }
        assert!(
            p.select_any(|e| e.address.port() == 1).is_some(),
            "panic mode ignores ejection"
        );
    }

    #[test]
    fn a_pool_keeps_its_own_ejection_budget_when_another_pool_ejects() {
        let checks = HealthChecks::new();
        let address: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let ejecting = PoolOptions {
            outlier: OutlierConfig {
                consecutive_failures: 1,
                max_ejection_percent: 50,
                ..OutlierConfig::default()
            },
            ..PoolOptions::default()
        };
        let endpoint = |a: SocketAddr| Arc::new(Endpoint::new(a, "c"));
        let a = EndpointPool::with_shared_state(
            "a",
            vec![endpoint(address), endpoint(other)],
            ejecting,
            None,
            &checks,
        );
        let b = EndpointPool::with_shared_state(
            "b",
            vec![endpoint(address)],
            PoolOptions::default(),
            None,
            &checks,
        );
        a.report(0, Outcome::Failure);
        assert!(a.state(0).is_ejected(), "pool a may eject one of two");
        assert_eq!(a.availability(), (1, 2));
        // Pool b lists the same address alone: 50% of one endpoint is none.
        assert!(b.is_available(0));
        assert_eq!(b.select().unwrap().index, 0);
    }

    #[test]
    fn a_drained_cluster_takes_nothing_not_even_in_panic_mode() {
        let checks = HealthChecks::new();
        let endpoints = vec![
            Arc::new(Endpoint::new("127.0.0.1:1".parse().unwrap(), "a")),
            Arc::new(Endpoint::new("127.0.0.1:2".parse().unwrap(), "a")),
            Arc::new(Endpoint::new("127.0.0.1:3".parse().unwrap(), "b")),
        ];
        let p =
            EndpointPool::with_shared_state("t", endpoints, PoolOptions::default(), None, &checks);
        let before = checks.epoch().get();
        assert!(checks.clusters().set_drained("a", true));
        assert!(checks.epoch().get() > before, "tier caches must look again");
        assert_eq!(
            p.availability(),
            (1, 1),
            "drained endpoints leave the totals"
        );
        assert_eq!(p.availability_by_cluster()["a"], (0, 2));
        for _ in 0..10 {
            assert_eq!(p.select().unwrap().endpoint.cluster, "b");
            assert_eq!(p.select_any(|_| true).unwrap().endpoint.cluster, "b");
        }
        assert!(p.is_drained(0) && !p.is_available(0));
        // A pool built after the drain (a reload, new endpoints) sees it.
        let later = EndpointPool::with_shared_state(
            "t2",
            vec![Arc::new(Endpoint::new("127.0.0.1:4".parse().unwrap(), "a"))],
            PoolOptions::default(),
            None,
            &checks,
        );
        assert!(!later.any_available());
        assert!(later.select_any(|_| true).is_none());
        checks.clusters().set_drained("a", false);
        assert_eq!(p.availability(), (3, 3));
        assert!(later.any_available());
    }

    #[test]
    fn empty_pool_selects_nothing() {
        let p = pool(&[]);
        assert!(p.is_empty());
        assert!(p.select().is_none());
    }

    #[test]
    fn peers_carry_timeouts() {
        let p = pool(&[("127.0.0.1:1", "a", 1)]);
        assert!(p.is_healthy("127.0.0.1:1".parse().unwrap()));
        let peer = p.peer(p.select().unwrap());
        assert_eq!(
            peer.options.connection_timeout,
            Some(UpstreamTimeouts::default().connect)
        );
    }
}
