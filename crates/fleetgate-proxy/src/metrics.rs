//! Prometheus metrics of the request path.
//!
//! Counters are labelled the way operators ask questions of a multi-cluster
//! gateway: which Ingress and Service, which cluster answered, main or
//! canary, and the status class. State that already lives elsewhere (health,
//! ejections, reloads) is read when metrics are gathered, not counted twice.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

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
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
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
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(upstream_latency.clone()),
            Box::new(retries.clone()),
        ] {
            registry.register(m).expect("unique metric");
        }
        Metrics {
            registry,
            requests,
            upstream_latency,
            retries,
        }
    }
}

/// `2xx`, `4xx`, ... for a status; `none` when nothing was sent.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}
