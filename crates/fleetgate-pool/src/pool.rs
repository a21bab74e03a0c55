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
use crate::timeouts::UpstreamTimeouts;

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
    by_address: HashMap<std::net::SocketAddr, usize>,
    timeouts: UpstreamTimeouts,
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
    /// Builds a pool. `name` is for logs (e.g. `ns/service:port`). Endpoints
    /// with the same address are merged (their weights are not added: the
    /// first one counts). Weight 0 endpoints are kept for listing but take no
    /// traffic.
    pub fn new(
        name: impl Into<String>,
        endpoints: Vec<Arc<Endpoint>>,
        registry: &Arc<HealthRegistry>,
        timeouts: UpstreamTimeouts,
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
        let peers = unique.iter().map(|e| make_peer(e, &timeouts)).collect();
        EndpointPool {
            name: name.into(),
            endpoints: unique,
            peers,
            by_address,
            timeouts,
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

    /// The timeouts its peers carry.
    pub fn timeouts(&self) -> UpstreamTimeouts {
        self.timeouts
    }

    /// Whether the pool has no endpoint at all.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Picks the next healthy endpoint by weighted round robin.
    pub fn select(&self) -> Option<Picked<'_>> {
        self.select_with(|_| true)
    }

    /// Picks the next healthy endpoint that `accept` also agrees to (e.g. one
    /// not yet tried by this request).
    pub fn select_with(&self, accept: impl Fn(&Endpoint) -> bool) -> Option<Picked<'_>> {
        let chosen = std::cell::Cell::new(None);
        self.balancer
            .select_with(b"", MAX_SELECT_ITERATIONS, |backend, healthy| {
                if !healthy {
                    return false;
                }
                let PingoraAddr::Inet(addr) = backend.addr else {
                    return false;
                };
                match self.by_address.get(&addr) {
                    Some(&i) if accept(&self.endpoints[i]) => {
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
            UpstreamTimeouts::default(),
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
