//! Metrics read from state at scrape time: endpoints, health flips,
//! ejections, reloads, access-log drops.

use std::sync::atomic::Ordering;

use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use crate::state::GatewayState;

fn family(c: &dyn prometheus::core::Collector) -> Vec<MetricFamily> {
    c.collect()
}

/// Gathers the scrape-time metrics.
pub fn gauges(state: &GatewayState) -> Vec<MetricFamily> {
    let mut out = process();
    let snapshot = state.snapshot.load();
    let endpoints = IntGaugeVec::new(
        Opts::new(
            "fleetgate_endpoints",
            "Endpoints of a pool in a cluster (each address counted once per pool)",
        ),
        &["pool", "cluster"],
    )
    .expect("valid metric");
    let available = IntGaugeVec::new(
        Opts::new(
            "fleetgate_endpoints_available",
            "Endpoints of a pool in a cluster that take traffic: healthy, not ejected, not drained",
        ),
        &["pool", "cluster"],
    )
    .expect("valid metric");
    let mut ejections_total: u64 = 0;
    for pool in snapshot.router.pools() {
        for (cluster, (up, total)) in pool.availability_by_cluster() {
            available
                .with_label_values(&[pool.name(), cluster])
                .set(i64::from(up));
            endpoints
                .with_label_values(&[pool.name(), cluster])
                .set(i64::from(total));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for pool in snapshot.router.pools() {
        for (i, e) in pool.endpoints().enumerate() {
            if seen.insert(e.address) {
                ejections_total += u64::from(pool.state(i).ejections());
            }
        }
    }
    out.extend(family(&endpoints));
    out.extend(family(&available));

    let ejections = IntCounter::new(
        "fleetgate_ejections_total",
        "Outlier ejections of endpoints",
    )
    .expect("valid metric");
    ejections.inc_by(ejections_total);
    out.extend(family(&ejections));

    let flips = IntCounter::new(
        "fleetgate_health_flips_total",
        "Active health-check state changes",
    )
    .expect("valid metric");
    flips.inc_by(state.checks.flips());
    out.extend(family(&flips));

    let reloads = IntCounterVec::new(
        Opts::new(
            "fleetgate_reloads_total",
            "Configuration reloads by outcome",
        ),
        &["outcome"],
    )
    .expect("valid metric");
    let (ok, failed) = state.reload_counts();
    reloads.with_label_values(&["ok"]).inc_by(ok);
    reloads.with_label_values(&["error"]).inc_by(failed);
    out.extend(family(&reloads));

    let generation = IntGauge::new(
        "fleetgate_config_generation",
        "Serving configuration generation",
    )
    .expect("valid metric");
    generation.set(i64::try_from(state.generation()).unwrap_or(i64::MAX));
    out.extend(family(&generation));

    let in_flight = IntGauge::new("fleetgate_requests_in_flight", "Requests being served")
        .expect("valid metric");
    in_flight.set(i64::try_from(state.stats.in_flight.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
    out.extend(family(&in_flight));

    let truncated = IntCounter::new(
        "fleetgate_responses_truncated_total",
        "Responses cut short after they started because the upstream failed mid-body",
    )
    .expect("valid metric");
    truncated.inc_by(state.stats.truncated.load(Ordering::Relaxed));
    out.extend(family(&truncated));

    let overflowed = IntCounter::new(
        "fleetgate_upstream_overflows_total",
        "Requests answered 503 because every endpoint was at max_requests_per_endpoint",
    )
    .expect("valid metric");
    overflowed.inc_by(state.stats.overflowed.load(Ordering::Relaxed));
    out.extend(family(&overflowed));

    let live = state.discovery.status();
    if !live.is_empty() {
        let connected = IntGaugeVec::new(
            Opts::new(
                "fleetgate_discovery_connected",
                "Whether a cluster's live endpoint source reaches its data (1) or not (0)",
            ),
            &["cluster"],
        )
        .expect("valid metric");
        let age = prometheus::GaugeVec::new(
            Opts::new(
                "fleetgate_discovery_data_age_seconds",
                "Time since a cluster's live endpoint source last changed or confirmed its data",
            ),
            &["cluster"],
        )
        .expect("valid metric");
        let updates = IntCounterVec::new(
            Opts::new(
                "fleetgate_discovery_updates_total",
                "Changes a cluster's live endpoint source delivered",
            ),
            &["cluster"],
        )
        .expect("valid metric");
        for (cluster, s) in &live {
            connected
                .with_label_values(&[cluster])
                .set(i64::from(s.connected));
            if let Some(elapsed) = s.updated.and_then(|t| t.elapsed().ok()) {
                age.with_label_values(&[cluster]).set(elapsed.as_secs_f64());
            }
            updates.with_label_values(&[cluster]).inc_by(s.updates);
        }
        out.extend(family(&connected));
        out.extend(family(&age));
        out.extend(family(&updates));
    }
    if let Some(store) = state.hub.store() {
        let source = store.status();
        let connected = IntGauge::new(
            "fleetgate_hub_connected",
            "Whether the hub cluster's watches reach its API server (1) or not (0)",
        )
        .expect("valid metric");
        connected.set(i64::from(source.connected));
        out.extend(family(&connected));
        if let Some(elapsed) = source.updated.and_then(|t| t.elapsed().ok()) {
            let age = prometheus::Gauge::new(
                "fleetgate_hub_data_age_seconds",
                "Time since the hub cluster's objects last changed or were confirmed by a relist",
            )
            .expect("valid metric");
            age.set(elapsed.as_secs_f64());
            out.extend(family(&age));
        }
        let rejected = IntGauge::new(
            "fleetgate_hub_rejected_objects",
            "Hub objects left out of the serving configuration because they do not validate",
        )
        .expect("valid metric");
        rejected.set(i64::try_from(state.hub.rejected().len()).unwrap_or(i64::MAX));
        out.extend(family(&rejected));
        let writes = store.writes();
        let written = IntCounterVec::new(
            Opts::new(
                "fleetgate_hub_status_writes_total",
                "Ingress status write-backs to the hub cluster, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        written.with_label_values(&["ok"]).inc_by(writes.written);
        written.with_label_values(&["failed"]).inc_by(writes.failed);
        out.extend(family(&written));
    }
    let applies = IntCounter::new(
        "fleetgate_endpoint_updates_total",
        "Snapshots built because live endpoint sources changed (not reloads)",
    )
    .expect("valid metric");
    applies.inc_by(state.discovery.applies());
    out.extend(family(&applies));
    let patches = IntCounter::new(
        "fleetgate_endpoint_patches_total",
        "Endpoint updates applied by replacing the changed pools in the serving snapshot, without a build",
    )
    .expect("valid metric");
    patches.inc_by(state.discovery.patches());
    out.extend(family(&patches));

    let counts = &state.stats.connections;
    let open = IntGauge::new(
        "fleetgate_client_connections",
        "Client connections open now",
    )
    .expect("valid metric");
    open.set(i64::try_from(counts.open.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
    out.extend(family(&open));

    let accepted = IntCounter::new(
        "fleetgate_client_connections_accepted_total",
        "Client connections accepted (including those closed at once by max_connections)",
    )
    .expect("valid metric");
    accepted.inc_by(counts.accepted.load(Ordering::Relaxed));
    out.extend(family(&accepted));

    let dropped = IntCounter::new(
        "fleetgate_access_log_dropped_total",
        "Access log lines dropped because the log writer fell behind or its output failed",
    )
    .expect("valid metric");
    dropped.inc_by(state.live.access_log().dropped());
    out.extend(family(&dropped));

    let refused = IntCounterVec::new(
        Opts::new(
            "fleetgate_client_refusals_total",
            "Client connections and request heads refused by the client limits",
        ),
        &["reason"],
    )
    .expect("valid metric");
    for (reason, n) in [
        ("max_connections", &counts.refused),
        ("header_too_large", &counts.heads_too_large),
        ("header_timeout", &counts.heads_too_slow),
        ("bad_request_line", &counts.heads_malformed),
    ] {
        refused
            .with_label_values(&[reason])
            .inc_by(n.load(Ordering::Relaxed));
    }
    out.extend(family(&refused));
    out
}

/// `fleetgate_build_info` and the process's own metrics (CPU seconds,
/// resident memory, open and maximum file descriptors, start time), as
/// Prometheus clients name them.
fn process() -> Vec<MetricFamily> {
    let build = IntGaugeVec::new(
        Opts::new(
            "fleetgate_build_info",
            "The running build: always 1, with its version, commit and features as labels",
        ),
        &["version", "commit", "features"],
    )
    .expect("valid metric");
    build
        .with_label_values(&[
            crate::build_info::VERSION,
            crate::build_info::COMMIT,
            crate::build_info::FEATURES,
        ])
        .set(1);
    let mut out = family(&build);
    static PROCESS: std::sync::OnceLock<prometheus::process_collector::ProcessCollector> =
        std::sync::OnceLock::new();
    let process = PROCESS.get_or_init(prometheus::process_collector::ProcessCollector::for_self);
    out.extend(prometheus::core::Collector::collect(process));
    out
}
