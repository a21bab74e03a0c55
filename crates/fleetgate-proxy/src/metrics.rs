//! Prometheus metrics of the request path.
//!
//! Counters are labelled the way operators ask questions of a multi-cluster
//! gateway: which Ingress and Service, which cluster answered, main or
//! canary, and the status class. State that already lives elsewhere (health,
//! ejections, reloads) is read when metrics are gathered, not counted twice.

use std::sync::{Arc, OnceLock};

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// The request-path metrics, registered in one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The registry to gather from.
    pub registry: Registry,
    /// Requests by ingress, service, cluster, target (main/canary) and status class.
    pub requests: IntCounterVec,
    /// Upstream response-header latency by service and cluster.
    pub upstream_latency: HistogramVec,
    /// Retries by service.
    pub retries: IntCounterVec,
    /// Responses the gateway wrote itself, by status code.
    pub gateway_responses: IntCounterVec,
    /// Time from a request's arrival to the end of its response.
    pub request_duration: Histogram,
    /// Handles of `gateway_responses`, by status code from 100.
    gateway_codes: Arc<[OnceLock<IntCounter>]>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "fleetgate_requests_total",
                "Requests by route, answering cluster, main or canary, and status class",
            ),
            &["ingress", "service", "cluster", "target", "code"],
        )
        .expect("valid metric");
        let upstream_latency = HistogramVec::new(
            HistogramOpts::new(
                "fleetgate_upstream_latency_seconds",
                "Time from choosing an endpoint to its response header",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["service", "cluster"],
        )
        .expect("valid metric");
        let retries = IntCounterVec::new(
            Opts::new(
                "fleetgate_retries_total",
                "Tries repeated on another endpoint after a failure",
            ),
            &["service"],
        )
        .expect("valid metric");
        let gateway_responses = IntCounterVec::new(
            Opts::new(
                "fleetgate_gateway_responses_total",
                "Responses the gateway wrote itself (refusals, module answers, errors), by status code",
            ),
            &["code"],
        )
        .expect("valid metric");
        let request_duration = Histogram::with_opts(
            HistogramOpts::new(
                "fleetgate_request_duration_seconds",
                "Time from a request's arrival to the end of its response",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(upstream_latency.clone()),
            Box::new(retries.clone()),
            Box::new(gateway_responses.clone()),
            Box::new(request_duration.clone()),
        ] {
            registry.register(m).expect("unique metric");
        }
        Metrics {
            registry,
            requests,
            upstream_latency,
            retries,
            gateway_responses,
            request_duration,
            gateway_codes: (100..600).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Removes the series of Ingresses and Services that are gone (not in
    /// `ingresses` or `services`), so that a deleted Ingress does not stay
    /// in every scrape for the life of the process. Returns how many
    /// series went. A route that comes back starts its counts from zero,
    /// which Prometheus reads as a counter reset.
    pub fn forget_removed(
        &self,
        ingresses: &std::collections::HashSet<&str>,
        services: &std::collections::HashSet<&str>,
    ) -> usize {
        let mut removed = 0;
        for (vec, label, kept) in [
            (&self.requests, "ingress", ingresses),
            (&self.requests, "service", services),
            (&self.retries, "service", services),
        ] {
            removed += remove_series(vec, label, kept);
        }
        removed += remove_series(&self.upstream_latency, "service", services);
        removed
    }

    /// Counts a response the gateway wrote itself with `code`.
    pub fn count_gateway_response(&self, code: u16) {
        let Some(slot) = code
            .checked_sub(100)
            .and_then(|i| self.gateway_codes.get(usize::from(i)))
        else {
            return;
        };
        slot.get_or_init(|| {
            self.gateway_responses
                .with_label_values(&[code.to_string().as_str()])
        })
        .inc();
    }
}

/// Histogram buckets of request and upstream times, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `2xx`, `4xx`, ... for a status; `none` when nothing was sent.
pub fn status_class(status: u16) -> &'static str {
    CLASSES[class_index(status)]
}

/// Status classes, in the order of [`class_index`].
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// The position of a status class in per-target counter slots.
fn class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        500..=599 => 4,
        _ => 5,
    }
}

/// Metric handles of one route target, resolved on first use and then
/// incremented without a label lookup.
///
/// `with_label_values` hashes every label value and takes a lock; a target
/// knows its labels (Ingress, Service, main or canary) at compile time and
/// its clusters from its endpoints, so it keeps one slot per cluster and
/// status class. The handles share the registry's counters, so counts carry
/// over reloads.
#[derive(Debug)]
pub struct TargetCounters {
    ingress: Arc<str>,
    service: Arc<str>,
    role: &'static str,
    /// Clusters this target's endpoints are in; the slot after the last is
    /// for requests that reached no endpoint (`-`).
    clusters: Box<[Arc<str>]>,
    requests: Box<[OnceLock<IntCounter>]>,
    latency: Box<[OnceLock<Histogram>]>,
}

impl TargetCounters {
    /// Slots for a target of `ingress` going to `service`, whose endpoints
    /// are in `clusters`; `canary` picks the `target` label.
    pub fn new(
        ingress: Arc<str>,
        service: Arc<str>,
        canary: bool,
        clusters: Vec<Arc<str>>,
    ) -> Self {
        let n = clusters.len() + 1;
        TargetCounters {
            ingress,
            service,
            role: if canary { "canary" } else { "main" },
            requests: (0..n * CLASSES.len()).map(|_| OnceLock::new()).collect(),
            latency: (0..n).map(|_| OnceLock::new()).collect(),
            clusters: clusters.into_boxed_slice(),
        }
    }

    fn cluster_slot(&self, cluster: Option<&str>) -> (usize, &str) {
        match cluster.and_then(|c| self.clusters.iter().position(|k| &**k == c)) {
            Some(i) => (i, &self.clusters[i]),
            None => (self.clusters.len(), "-"),
        }
    }

    /// Counts one request answered with `status` by an endpoint in
    /// `cluster` (`None`: no endpoint answered).
    pub fn count(&self, metrics: &Metrics, cluster: Option<&str>, status: u16) {
        let (slot, cluster) = self.cluster_slot(cluster);
        let class = class_index(status);
        self.requests[slot * CLASSES.len() + class]
            .get_or_init(|| {
                metrics.requests.with_label_values(&[
                    &self.ingress,
                    &self.service,
                    cluster,
                    self.role,
                    CLASSES[class],
                ])
            })
            .inc();
    }

    /// Records an upstream response-header latency from `cluster`.
    pub fn observe_latency(&self, metrics: &Metrics, cluster: &str, seconds: f64) {
        let (slot, cluster) = self.cluster_slot(Some(cluster));
        self.latency[slot]
            .get_or_init(|| {
                metrics
                    .upstream_latency
                    .with_label_values(&[&self.service, cluster])
            })
            .observe(seconds);
    }
}

/// Removes the series of `vec` whose `label` is neither `-` nor in `kept`.
fn remove_series<P: prometheus::core::MetricVecBuilder>(
    vec: &prometheus::core::MetricVec<P>,
    label: &str,
    kept: &std::collections::HashSet<&str>,
) -> usize {
    let mut gone = Vec::new();
    for family in prometheus::core::Collector::collect(vec) {
        for metric in family.get_metric() {
            let pairs = metric.get_label();
            let stale = pairs
                .iter()
                .any(|p| p.name() == label && p.value() != "-" && !kept.contains(p.value()));
            if stale {
                gone.push(
                    pairs
                        .iter()
                        .map(|p| (p.name().to_string(), p.value().to_string()))
                        .collect::<std::collections::HashMap<_, _>>(),
                );
            }
        }
    }
    for labels in &gone {
        let labels: std::collections::HashMap<&str, &str> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let _ = vec.remove(&labels);
    }
    gone.len()
}
