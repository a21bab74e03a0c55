//! The router's failover policy, without any process: pools are real,
//! outcomes are reported by hand.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use fleetgate_canary::{parse_canary, Flavour};
use fleetgate_ingress::{HostPattern, PathType};
use fleetgate_pool::{Endpoint, HealthChecks, OutlierConfig, PoolOptions};
use fleetgate_subset::PriorityConfig;

use crate::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn endpoint(address: &str, cluster: &str) -> Arc<Endpoint> {
    Arc::new(Endpoint::new(addr(address), cluster))
}

/// A pool over `endpoints` that ejects after `threshold` failures.
fn spec(name: &str, endpoints: Vec<Arc<Endpoint>>, threshold: u32) -> PoolSpec {
    let mut spec = PoolSpec::new(name, endpoints);
    spec.options = PoolOptions {
        outlier: OutlierConfig {
            consecutive_failures: threshold,
            max_ejection_percent: 100,
            ..OutlierConfig::default()
        },
        ..PoolOptions::default()
    };
    spec
}

/// A router with one route (`shop.example` `/`) to `target`.
fn router_with(builder: &mut RouterBuilder, target: Target) -> RouteId {
    let host = HostPattern::parse("shop.example").unwrap();
    builder
        .add_path(&host, "/", PathType::Prefix, Route::new("shop/web", target))
        .unwrap()
}

fn three_endpoints() -> Vec<Arc<Endpoint>> {
    vec![
        endpoint("10.0.0.1:80", "zone-a"),
        endpoint("10.0.0.2:80", "zone-a"),
        endpoint("10.1.0.1:80", "zone-b"),
    ]
}

/// Canary annotations: requests with `header: always` go to the canary.
fn header_canary(header: &str) -> fleetgate_canary::CanaryAnnotations {
    let annotations = BTreeMap::from([
        (
            "nginx.ingress.kubernetes.io/canary".to_string(),
            "true".to_string(),
        ),
        (
            "nginx.ingress.kubernetes.io/canary-by-header".to_string(),
            header.to_string(),
        ),
    ]);
    parse_canary(&annotations).unwrap().unwrap()
}

fn request() -> http::request::Parts {
    http::Request::new(()).into_parts().0
}

#[test]
fn a_retry_never_returns_to_a_failed_endpoint() {
    let checks = HealthChecks::new();
    let mut b = RouterBuilder::new(&checks);
    let pool = b.pool(spec("web", three_endpoints(), 0));
    let id = router_with(&mut b, Target::whole("shop/web", "web", pool));
    let router = b.build();
    let plan = router.plan(id, &request(), || 0);
    for _ in 0..20 {
        let mut attempts = Attempts::new();
        let first = router.next_peer(plan, &attempts, &request(), || 0).unwrap();
        let failed = first.endpoint().address;
        attempts.start(&first);
        attempts.report(&router, TryResult::Failed { timed_out: false });
        let second = router.next_peer(plan, &attempts, &request(), || 0).unwrap();
        assert_ne!(second.endpoint().address, failed);
    }
}

#[test]
fn a_retry_leaves_a_cluster_that_looks_down() {
    let checks = HealthChecks::new();
    let mut b = RouterBuilder::new(&checks);
    let pool = b.pool(spec("web", three_endpoints(), 0));
    let id = router_with(&mut b, Target::whole("shop/web", "web", Arc::clone(&pool)));
    let router = b.build();
    let plan = router.plan(id, &request(), || 0);
    // The second zone-a endpoint failed an earlier request too: zone-a
    // looks down, so a request that failed on the first goes to zone-b,
    // every time.
    pool.report(1, fleetgate_pool::Outcome::Failure);
    let mut checked = 0;
    for _ in 0..20 {
        let mut attempts = Attempts::new();
        attempts.start(
            &router
                .next_peer_with(
                    &WeightedRoundRobin,
                    plan,
                    &[addr("10.1.0.1:80")],
                    &request(),
                    || 0,
                )
                .unwrap(),
        );
        attempts.report(&router, TryResult::Failed { timed_out: true });
        assert!(attempts.last_failure_timed_out());
        let tried = attempts.failed()[0];
        if tried != addr("10.0.0.1:80") {
            continue;
        }
        let next = router.next_peer(plan, &attempts, &request(), || 0).unwrap();
        assert_eq!(next.endpoint().cluster, "zone-b");
        checked += 1;
    }
    assert!(checked > 0, "the first zone-a endpoint was tried");
}

#[test]
fn without_signs_of_trouble_a_retry_may_stay_in_the_cluster() {
    let checks = HealthChecks::new();
    let mut b = RouterBuilder::new(&checks);
    let pool = b.pool(spec("web", three_endpoints(), 0));
    let id = router_with(&mut b, Target::whole("shop/web", "web", pool));
    let router = b.build();
    let plan = router.plan(id, &request(), || 0);
    let mut clusters = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let attempts = Attempts::new();
        let excluded = [addr("10.0.0.1:80")];
        let next = router
            .next_peer_with(&WeightedRoundRobin, plan, &excluded, &request(), || 0)
            .unwrap();
        assert_ne!(next.endpoint().address, excluded[0]);
        clusters.insert(next.endpoint().cluster.clone());
        drop(attempts);
    }
    assert_eq!(
        clusters.len(),
        2,
        "both the neighbour and the other zone serve"
    );
}

#[test]
fn the_retry_budget_is_the_pools() {
    let checks = HealthChecks::new();
    let mut b = RouterBuilder::new(&checks);
    let mut s = spec("web", three_endpoints(), 0);
    s.policy.retries = 2;
    let pool = b.pool(s);
    let id = router_with(&mut b, Target::whole("shop/web", "web", pool));
    let router = b.build();
    let plan = router.plan(id, &request(), || 0);
    let mut attempts = Attempts::new();
    assert!(
        !attempts.take_retry(&router),
        "nothing to retry before a try"
    );
    attempts.start(&router.next_peer(plan, &attempts, &request(), || 0).unwrap());
    assert!(attempts.take_retry(&router));
    assert!(attempts.take_retry(&router));
    assert!(!attempts.take_retry(&router), "two retries, then no more");
    assert_eq!(attempts.retries(), 2);
}

#[test]
fn reported_failures_eject_and_a_5xx_counts() {
    let checks = HealthChecks::new();
    let mut b = RouterBuilder::new(&checks);
    let pool = b.pool(spec("web", vec![endpoint("10.0.0.1:80", "zone-a")], 2));
    let id = router_with(&mut b, Target::whole("shop/web", "web", Arc::clone(&pool)));
    let router = b.build();
    let plan = router.plan(id, &request(), || 0);
    let mut attempts = Attempts::new();
    attempts.start(&router.next_peer(plan, &attempts, &request(), || 0).unwrap());
    attempts.report(&router, TryResult::Answered(503));
    assert!(pool.is_available(0));
    attempts.report(&router, TryResult::Answered(502));
    assert!(!pool.is_available(0), "two 5xx in a row eject it");
    assert!(router
        .next_peer(plan, &Attempts::new(), &request(), || 0)
        .is_none());
}

#[test]
fn a_subset_spills_over_at_once_when_its_health_changes() {
    let checks = HealthChecks::new();
    let mut b = RouterBuilder::new(&checks);
    let subset = b.pool(spec(
        "web[subset]",
        vec![endpoint("10.0.0.1:80", "zone-a")],
        1,
    ));
    let rest = b.pool(spec(
        "web[rest]",
        vec![endpoint("10.1.0.1:80", "zone-b")],
        1,
    ));
    let tiers = Tiers::new(
        Arc::clone(&subset),
        rest,
        "zone-a".into(),
        PriorityConfig::default(),
    );
    let id = router_with(
        &mut b,
        Target::new("shop/web", "web", TargetPools::Tiered(tiers)),
    );
    let router = b.build();
    let plan = router.plan(id, &request(), || 0);
    for _ in 0..5 {
        let a = router
            .next_peer(plan, &Attempts::new(), &request(), || 0)
            .unwrap();
        assert_eq!(
            a.endpoint().cluster,
            "zone-a",
            "the subset takes everything"
        );
    }
    // The ejection moves the health epoch: the very next pick sees it,
    // not one refresh interval later.
    subset.report(0, fleetgate_pool::Outcome::Failure);
    let a = router
        .next_peer(plan, &Attempts::new(), &request(), || 0)
        .unwrap();
    assert_eq!(a.endpoint().cluster, "zone-b");
}

#[test]
fn health_epochs_are_per_health_checks_not_per_process() {
    let one = HealthChecks::new();
    let two = HealthChecks::new();
    let mut b = RouterBuilder::new(&one);
    let pool = b.pool(spec("web", vec![endpoint("10.0.0.1:80", "zone-a")], 1));
    let _router = b.build();
    let before = two.epoch().get();
    pool.report(0, fleetgate_pool::Outcome::Failure);
    assert!(one.epoch().get() > 0);
    assert_eq!(
        two.epoch().get(),
        before,
        "another gateway's caches are undisturbed"
    );
}

#[test]
fn a_canary_without_endpoints_falls_back_to_main() {
    let checks = HealthChecks::new();
    let mut b = RouterBuilder::new(&checks).canary_flavour(Flavour::Mse);
    let main = b.pool(spec("web", three_endpoints(), 0));
    let empty = b.pool(spec("web-v2", Vec::new(), 0));
    let live = b.pool(spec("web-v3", vec![endpoint("10.2.0.1:80", "zone-c")], 0));
    let id = router_with(&mut b, Target::whole("shop/web", "web", main));
    for (name, header, pool) in [("web-v2", "x-v2", empty), ("web-v3", "x-v3", live)] {
        let ingress = format!("shop/{name}");
        let target = Target::whole(&ingress, name, pool);
        b.add_canary(id, &ingress, &header_canary(header), target)
            .unwrap();
    }
    let router = b.build();

    let mut req = request();
    req.headers.insert("x-v2", "always".parse().unwrap());
    let plan = router.plan(id, &req, || 0);
    assert_eq!(plan.canary, None, "web-v2 has no endpoint: main serves");
    assert_eq!(&*router.target(plan).service, "web");

    let mut req = request();
    req.headers.insert("x-v3", "always".parse().unwrap());
    let plan = router.plan(id, &req, || 0);
    assert_eq!(plan.canary, Some(1));
    let target = router.target(plan);
    assert!(target.canary);
    assert_eq!(&*target.ingress, "shop/web-v3");
    assert_eq!(
        router.route(id).canary_ingress(plan.canary),
        Some("shop/web-v3")
    );
}

#[test]
fn targets_are_numbered_in_route_order() {
    let checks = HealthChecks::new();
    let mut b = RouterBuilder::new(&checks);
    let pool = b.pool(spec("web", three_endpoints(), 0));
    assert!(
        Arc::ptr_eq(&pool, &b.pool(spec("web", Vec::new(), 0))),
        "one pool per name"
    );
    let first = router_with(&mut b, Target::whole("shop/web", "web", Arc::clone(&pool)));
    let dup = Route::new(
        "shop/other",
        Target::whole("shop/other", "web", Arc::clone(&pool)),
    );
    let host = HostPattern::parse("shop.example").unwrap();
    assert!(
        b.add_path(&host, "/", PathType::Prefix, dup).is_err(),
        "first rule wins"
    );
    let fallback =
        b.add_default_route(Route::new("default", Target::whole("default", "web", pool)));
    b.set_global_default(fallback).unwrap();
    let router = b.build();
    let ids: Vec<_> = router.targets().map(|t| t.id().index()).collect();
    assert_eq!(ids, [0, 1]);
    assert_eq!(router.target_count(), 2);
    assert_eq!(router.lookup("SHOP.example:8080", "/x"), Some(first));
    assert_eq!(router.lookup("other.example", "/x"), Some(fallback));
    assert_eq!(router.route(first).target(None).clusters().len(), 2);
}

#[test]
fn an_unchanged_pool_is_taken_over_by_the_next_router() {
    let checks = HealthChecks::new();
    let mut b = RouterBuilder::new(&checks);
    let pool = b.pool(spec("web", three_endpoints(), 0));
    let changed = b.pool(spec("api", three_endpoints(), 0));
    let old = b.build();
    let mut b = RouterBuilder::new(&checks).reuse_pools_of(&old);
    let same = b.pool(spec("web", three_endpoints(), 0));
    let other = b.pool(spec("api", three_endpoints(), 3));
    assert!(Arc::ptr_eq(same.endpoint_pool(), pool.endpoint_pool()));
    assert!(!Arc::ptr_eq(other.endpoint_pool(), changed.endpoint_pool()));
}

/// Pods come and go with every rollout: a rebuilt router forgets the
/// peers and state of addresses no pool lists any more, and keeps those of
/// addresses that stay (with their state).
#[test]
fn addresses_that_leave_are_forgotten_and_those_that_stay_are_kept() {
    let checks = HealthChecks::new();
    let mut b = RouterBuilder::new(&checks);
    let kept = Arc::clone(
        b.pool(spec(
            "web",
            vec![endpoint("10.0.0.1:80", "c1"), endpoint("10.0.0.2:80", "c1")],
            1,
        ))
        .state(0),
    );
    let first = b.build();
    assert_eq!(checks.tracked_addresses(), 2);
    let mut b = RouterBuilder::new(&checks).reuse_pools_of(&first);
    let pool = b.pool(spec(
        "web",
        vec![endpoint("10.0.0.1:80", "c1"), endpoint("10.0.0.3:80", "c1")],
        1,
    ));
    let _second = b.build();
    assert_eq!(
        checks.tracked_addresses(),
        2,
        "10.0.0.2 forgotten, 10.0.0.3 added"
    );
    assert!(
        Arc::ptr_eq(&checks.endpoint_state(addr("10.0.0.1:80")), pool.state(0)),
        "the address that stayed keeps its state"
    );
    assert!(
        Arc::ptr_eq(&kept, pool.state(0)),
        "the same state object as before"
    );
    drop(first);
}
