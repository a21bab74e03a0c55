//! The routing snapshot: a [`Router`] and what the proxy keeps beside it,
//! built at load.
//!
//! A [`Snapshot`] is immutable. The proxy reads the current one through an
//! atomic pointer ([`SharedSnapshot`]); a reload builds a new one off the
//! request path and swaps it in, so a request always sees one whole
//! configuration, never a mix.

use std::sync::Arc;

use arc_swap::ArcSwap;
use fleetgate_ingress::PathNormalization;
use fleetgate_router::{Router, Target};
use fleetgate_tls::CertStore;

use crate::metrics::TargetCounters;

/// What building a configuration found, for `check`, logs and status.
#[derive(Debug, Clone, Default)]
pub struct CompileReport {
    /// Served Ingresses (`namespace/name`).
    pub served: Vec<String>,
    /// Ignored Ingresses and why.
    pub ignored: Vec<(String, String)>,
    /// Canary Ingresses (or some of their rules) with no main route to bind
    /// to, and which rule.
    pub unbound: Vec<(String, String)>,
    /// Problems that do not stop the gateway (e.g. a backend Service that is
    /// not declared: its routes answer 503).
    pub warnings: Vec<String>,
}

impl CompileReport {
    /// One human line per ignored Ingress, unbound canary and warning.
    pub fn lines(&self) -> Vec<String> {
        let ignored = self
            .ignored
            .iter()
            .map(|(name, reason)| format!("ignored: Ingress {name}: {reason}"));
        let unbound = self.unbound.iter().map(|(name, what)| {
            format!("unbound canary: Ingress {name}: no main route for {what}")
        });
        let warnings = self.warnings.iter().map(|w| format!("warning: {w}"));
        ignored.chain(unbound).chain(warnings).collect()
    }
}

/// Metric handles for `target`.
fn target_counters(target: &Target) -> Arc<TargetCounters> {
    Arc::new(TargetCounters::new(
        Arc::clone(&target.ingress),
        Arc::clone(&target.service),
        target.canary,
        target.clusters(),
    ))
}

/// One configuration, ready to serve.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with each reload.
    pub generation: u64,
    /// Routes, targets and pools.
    pub router: Router,
    /// The certificates of the TLS listeners.
    pub certificates: Arc<CertStore>,
    /// How requests are judged at the edge (scheme, trusted proxies).
    pub edge: EdgePolicy,
    /// What building it found.
    pub report: CompileReport,
    /// Metric handles per target, by [`fleetgate_router::TargetId`]: the
    /// metrics observer's state, kept beside the router rather than in it.
    counters: Box<[Arc<TargetCounters>]>,
}

/// How the gateway judges where a request came from.
#[derive(Debug, Clone, Default)]
pub struct EdgePolicy {
    /// Peers whose `X-Forwarded-Proto` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How request paths are normalised before routing.
    pub path_normalization: PathNormalization,
    /// How responses are compressed.
    pub compression: crate::CompressionPolicy,
    /// Whether requests get an `X-Request-Id` (see [`crate::request_id`]).
    pub request_id: bool,
}

impl EdgePolicy {
    /// Whether `peer` is a trusted proxy.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

/// The current snapshot, swappable under load.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

impl Snapshot {
    /// Removes from `metrics` the series of Ingresses and Services this
    /// snapshot no longer routes to (after a reload swapped it in).
    /// Returns how many series went.
    pub fn forget_removed_series(&self, metrics: &crate::Metrics) -> usize {
        let mut ingresses = std::collections::HashSet::new();
        let mut services = std::collections::HashSet::new();
        for target in self.router.targets() {
            ingresses.insert(&*target.ingress);
            services.insert(&*target.service);
        }
        metrics.forget_removed(&ingresses, &services)
    }

    /// A snapshot serving `router`, with TLS `certificates` (use
    /// `CertStore::default()` without TLS listeners).
    pub fn new(generation: u64, router: Router, certificates: Arc<CertStore>) -> Self {
        let counters = router.targets().map(target_counters).collect();
        Snapshot {
            generation,
            router,
            certificates,
            edge: EdgePolicy::default(),
            report: CompileReport::default(),
            counters,
        }
    }

    /// Sets how requests are judged at the edge.
    pub fn with_edge(mut self, edge: EdgePolicy) -> Self {
        self.edge = edge;
        self
    }

    /// Attaches what building the configuration found.
    pub fn with_report(mut self, report: CompileReport) -> Self {
        self.report = report;
        self
    }

    /// The metric handles of `target`.
    /// This snapshot with `router` in place of its own, where `router` has
    /// the same routes and targets over some other pools (see
    /// `Router::with_pools_replaced`): generation `generation`, the rest
    /// shared. Metric handles of targets whose pools did not change are
    /// kept.
    pub fn patched(&self, generation: u64, router: Router) -> Snapshot {
        let counters = router
            .targets()
            .zip(self.router.targets())
            .zip(self.counters.iter())
            .map(|((new, old), counters)| {
                let same = new.service_pools().count() == old.service_pools().count()
                    && new
                        .service_pools()
                        .zip(old.service_pools())
                        .all(|(a, b)| Arc::ptr_eq(a, b));
                if same {
                    Arc::clone(counters)
                } else {
                    target_counters(new)
                }
            })
            .collect();
        Snapshot {
            generation,
            router,
            certificates: Arc::clone(&self.certificates),
            edge: self.edge.clone(),
            report: self.report.clone(),
            counters,
        }
    }

    pub(crate) fn counters(&self, target: &Target) -> Option<&TargetCounters> {
        self.counters.get(target.id().index()).map(|c| &**c)
    }
}
