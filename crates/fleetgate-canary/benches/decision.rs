//! Cost of one canary decision on an MSE route with three canaries: a header
//! canary with a literal value, a cookie canary and a weight canary.
//!
//! Run with `cargo bench -p fleetgate-canary -- --warm-up-time 1 --measurement-time 3`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use fleetgate_canary::{
    parse_canary_for, CanaryRoute, CanaryRouteBuilder, Dice, Flavour, RequestView,
};
use http::{HeaderMap, HeaderValue};

fn canary(keys: &[(&str, &str)]) -> fleetgate_canary::CanaryAnnotations {
    let mut annotations: BTreeMap<String, String> = keys
        .iter()
        .map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string()))
        .collect();
    annotations.insert("nginx.ingress.kubernetes.io/canary".into(), "true".into());
    parse_canary_for(&annotations, Flavour::Mse)
        .expect("valid annotations")
        .expect("a canary")
}

fn route() -> CanaryRoute<&'static str> {
    let mut builder = CanaryRouteBuilder::new(Flavour::Mse);
    let canaries = [
        (
            "bench/by-header",
            canary(&[
                ("canary-by-header", "canary-dest"),
                ("canary-by-header-value", "cluster1"),
            ]),
            "header",
        ),
        (
            "bench/by-cookie",
            canary(&[("canary-by-cookie", "canary")]),
            "cookie",
        ),
        (
            "bench/by-weight",
            canary(&[("canary-weight", "20")]),
            "weight",
        ),
    ];
    for (ingress, annotations, target) in canaries {
        builder
            .add(ingress, &annotations, target)
            .expect("mse takes many canaries");
    }
    builder.build()
}

/// Headers of a typical browser request, plus `extra`.
fn headers(extra: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    let common = [
        ("host", "shop.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
        ),
        ("accept", "text/html,application/xhtml+xml"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "session=4f2a9c; theme=dark; lang=en"),
    ];
    for (name, value) in common.iter().chain(extra) {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

fn decision(c: &mut Criterion) {
    let route = route();
    let dice = Dice::new(1);
    let cases = [
        (
            "header match",
            headers(&[("canary-dest", "cluster1")]),
            Some(0),
        ),
        (
            "cookie match",
            headers(&[("cookie", "canary=always")]),
            Some(1),
        ),
        ("no match (weight)", headers(&[]), None),
    ];
    let mut group = c.benchmark_group("decision");
    for (name, headers, expected) in &cases {
        let request = RequestView {
            headers,
            query: Some("page=2&sort=price"),
        };
        if expected.is_some() {
            assert_eq!(route.decide(&request, || dice.roll()), *expected);
        }
        group.bench_function(*name, |b| {
            b.iter(|| route.decide(black_box(&request), || dice.roll()))
        });
    }
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
