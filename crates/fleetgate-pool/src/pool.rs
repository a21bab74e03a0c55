//! A Service port's endpoints and the weighted selection over them.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_load_balancing::discovery::Static;
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, Backends, HealthRegistry, LoadBalancer};

use crate::endpoint::Endpoint;
use crate::outlier::{EndpointState, Outcome, OutlierConfig};
use crate::timeouts::UpstreamTimeouts;

/// Per-pool settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolOptions {
    /// Connect, read, write and idle timeouts of its peers.
    pub timeouts: UpstreamTimeouts,
    /// Passive outlier detection.
    pub outlier: OutlierConfig,
}

/// How many candidates `select` looks at before giving up.
const MAX_SELECT_ITERATIONS: usize = 256;

/// A health registry in which health is tracked per address, so that pools
/// (Services, subsets) sharing a pod share its health and its probe.
pub fn new_health_registry() -> Arc<HealthRegistry> {
    Arc::new(HealthRegistry::with_equivalence(|backend: &Backend| {
        let mut h = DefaultHasher::new();
        backend.addr.hash(&mut h);
        h.finish()
    }))
}

/// An endpoint chosen for one request, with its ready-made peer.
#[derive(Debug)]
pub struct Picked<'a> {
    /// The endpoint.
    pub endpoint: &'a Arc<Endpoint>,
    /// Its position in [`EndpointPool::endpoints`].
    pub index: usize,
}

/// The endpoints behind one Service port (or a subset of them), with weighted
/// round-robin selection over the healthy ones.
pub struct EndpointPool {
    name: String,
    endpoints: Vec<Arc<Endpoint>>,
    peers: Vec<HttpPeer>,
    states: Vec<Arc<EndpointState>>,
    by_address: HashMap<std::net::SocketAddr, usize>,
    options: PoolOptions,
    balancer: LoadBalancer<RoundRobin>,
}

impl std::fmt::Debug for EndpointPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointPool")
            .field("name", &self.name)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl EndpointPool {
    /// Builds a pool with endpoint state of its own. `name` is for logs
    /// (e.g. `ns/service:port`). See [`EndpointPool::with_shared_state`].
    pub fn new(
        name: impl Into<String>,
        endpoints: Vec<Arc<Endpoint>>,
        registry: &Arc<HealthRegistry>,
        options: PoolOptions,
    ) -> Self {
        Self::with_shared_state(name, endpoints, registry, options, |_| Arc::default())
    }

    /// Builds a pool whose endpoints' outlier state comes from `state_for`
    /// (shared per address, e.g. by [`HealthChecks::endpoint_state`](crate::HealthChecks::endpoint_state)).
    /// Endpoints with the same address are merged (the first one counts).
    /// Weight 0 endpoints are kept for listing but take no traffic.
    pub fn with_shared_state(
        name: impl Into<String>,
        endpoints: Vec<Arc<Endpoint>>,
        registry: &Arc<HealthRegistry>,
        options: PoolOptions,
        state_for: impl Fn(std::net::SocketAddr) -> Arc<EndpointState>,
    ) -> Self {
        let mut unique = Vec::with_capacity(endpoints.len());
        let mut by_address = HashMap::with_capacity(endpoints.len());
        for e in endpoints {
            if let std::collections::hash_map::Entry::Vacant(slot) = by_address.entry(e.address) {
                slot.insert(unique.len());
                unique.push(e);
            }
        }
        let backends: BTreeSet<Backend> = unique
            .iter()
            .filter(|e| e.weight > 0)
            .map(|e| Backend {
                addr: PingoraAddr::Inet(e.address),
                weight: e.weight as usize,
                ext: Default::default(),
            })
            .collect();
        let view = Backends::new_with_health_registry(Static::new(backends), Arc::clone(registry));
        let balancer = LoadBalancer::from_backends(view);
        // Static discovery completes without waiting; drive it once in place.
        let updated = poll_once(balancer.update());
        if !matches!(updated, Some(Ok(()))) {
            log::error!("static endpoint discovery did not complete at once");
        }
        let peers = unique
            .iter()
            .map(|e| make_peer(e, &options.timeouts))
            .collect();
        let states = unique.iter().map(|e| state_for(e.address)).collect();
        EndpointPool {
            name: name.into(),
            endpoints: unique,
            peers,
            states,
            by_address,
            options,
            balancer,
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All endpoints, healthy or not.
    pub fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    /// Its settings.
    pub fn options(&self) -> PoolOptions {
        self.options
    }

    /// The live state of the endpoint at `index`.
    pub fn state(&self, index: usize) -> &EndpointState {
        &self.states[index]
    }

    /// Whether the endpoint at `index` can take traffic now: healthy by its
    /// active checks and not ejected.
    pub fn is_available(&self, index: usize) -> bool {
        !self.states[index].is_ejected() && self.is_healthy(self.endpoints[index].address)
    }

    /// `(available, total)` endpoints with a non-zero weight.
    pub fn availability(&self) -> (u32, u32) {
        let mut available = 0;
        let mut total = 0;
        for (i, e) in self.endpoints.iter().enumerate() {
            if e.weight > 0 {
                total += 1;
                if self.is_available(i) {
                    available += 1;
                }
            }
        }
        (available, total)
    }

    /// `(available, total)` endpoints per cluster id, in cluster order.
    pub fn availability_by_cluster(&self) -> std::collections::BTreeMap<&str, (u32, u32)> {
        let mut per = std::collections::BTreeMap::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            let entry: &mut (u32, u32) = per.entry(e.cluster.as_str()).or_default();
            entry.1 += 1;
            if self.is_available(i) {
                entry.0 += 1;
            }
        }
        per
    }

    /// Records the outcome of a request to the endpoint at `index`, for
    /// outlier detection. Ejects it when it crossed the failure threshold
    /// and the pool's ejection budget allows.
    pub fn report(&self, index: usize, outcome: Outcome) {
        let Some(state) = self.states.get(index) else {
            return;
        };
        if !state.record(outcome, &self.options.outlier) {
            return;
        }
        let ejected = self.states.iter().filter(|s| s.is_ejected()).count();
        let limit = self.states.len() * self.options.outlier.max_ejection_percent as usize / 100;
        if ejected >= limit {
            log::warn!(
                "outlier: endpoint {} of {} keeps failing but {ejected} of {} endpoints are already ejected (max {}%); keeping it",
                self.endpoints[index].address,
                self.name,
                self.states.len(),
                self.options.outlier.max_ejection_percent
            );
            return;
        }
        let time = state.eject(&self.options.outlier);
        log::warn!(
            "outlier: endpoint {} ({} cluster {}) ejected for {time:?} after {} consecutive failures (ejection #{})",
            self.endpoints[index].address,
            self.name,
            self.endpoints[index].cluster,
            self.options.outlier.consecutive_failures,
            state.ejections()
        );
    }

    /// Whether the pool has no endpoint at all.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Picks the next healthy endpoint by weighted round robin.
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
    /// endpoints beats overloading the few).
    pub fn select_any(&self, accept: impl Fn(&Endpoint) -> bool) -> Option<Picked<'_>> {
        self.select_inner(true, accept)
    }

    fn select_inner(
        &self,
        ignore_health: bool,
        accept: impl Fn(&Endpoint) -> bool,
    ) -> Option<Picked<'_>> {
        let chosen = std::cell::Cell::new(None);
        self.balancer
            .select_with(b"", MAX_SELECT_ITERATIONS, |backend, healthy| {
                if !healthy && !ignore_health {
                    return false;
                }
                let PingoraAddr::Inet(addr) = backend.addr else {
                    return false;
                };
                match self.by_address.get(&addr) {
                    Some(&i)
                        if (ignore_health || !self.states[i].is_ejected())
                            && accept(&self.endpoints[i]) =>
                    {
                        chosen.set(Some(i));
                        true
                    }
                    _ => false,
                }
            })?;
        chosen.get().map(|index| Picked {
            endpoint: &self.endpoints[index],
            index,
        })
    }

    /// Whether the endpoint at `address` is currently healthy in this pool.
    pub fn is_healthy(&self, address: std::net::SocketAddr) -> bool {
        self.by_address.get(&address).is_some_and(|&i| {
            let e = &self.endpoints[i];
            let backend = Backend {
                addr: PingoraAddr::Inet(e.address),
                weight: e.weight as usize,
                ext: Default::default(),
            };
            self.balancer.backends().ready(&backend)
        })
    }

    /// A peer for the picked endpoint, carrying the pool's timeouts.
    pub fn peer(&self, picked: Picked<'_>) -> Box<HttpPeer> {
        Box::new(self.peers[picked.index].clone())
    }
}

fn make_peer(endpoint: &Endpoint, timeouts: &UpstreamTimeouts) -> HttpPeer {
    let mut peer = HttpPeer::new(endpoint.address, false, String::new());
    peer.options.connection_timeout = Some(timeouts.connect);
    peer.options.read_timeout = Some(timeouts.read);
    peer.options.write_timeout = Some(timeouts.write);
    peer.options.idle_timeout = Some(timeouts.idle);
    peer
}

fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
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
        EndpointPool::new(
            "t",
            endpoints,
            &new_health_registry(),
            PoolOptions::default(),
        )
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
        let p = EndpointPool::new("t", endpoints, &new_health_registry(), options);
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
