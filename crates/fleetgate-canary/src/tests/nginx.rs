//! The ingress-nginx flavour: header, then cookie, then weight, with
//! ingress-nginx's early exits and edge cases.

use super::{at, canary, decide_with, route, Req};
use crate::{CanaryAnnotations, CanaryRouteBuilder, Dice, Flavour};

/// One row: canary keys, request headers, roll, expected (canary?, rolled?).
struct Case {
    name: &'static str,
    keys: &'static [(&'static str, &'static str)],
    headers: &'static [(&'static str, &'static str)],
    roll: u64,
    canary: bool,
    rolled: bool,
}

const HEADER: (&str, &str) = ("canary-by-header", "X-Canary");
const COOKIE: (&str, &str) = ("canary-by-cookie", "canary");
const ALL_WEIGHT: (&str, &str) = ("canary-weight", "100");

const CASES: &[Case] = &[
    // Header only: always / never / anything else.
    Case {
        name: "header always",
        keys: &[HEADER],
        headers: &[("x-canary", "always")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    Case {
        name: "header name is case-insensitive",
        keys: &[("canary-by-header", "x-canary")],
        headers: &[("X-CANARY", "always")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    Case {
        name: "header value is case-sensitive",
        keys: &[HEADER],
        headers: &[("x-canary", "Always")],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "header never stops cookie and weight",
        keys: &[HEADER, COOKIE, ALL_WEIGHT],
        headers: &[("x-canary", "never"), ("cookie", "canary=always")],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "other header value falls through to cookie",
        keys: &[HEADER, COOKIE],
        headers: &[("x-canary", "yes"), ("cookie", "canary=always")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    Case {
        name: "absent header falls through to weight",
        keys: &[HEADER, ALL_WEIGHT],
        headers: &[],
        roll: u64::MAX,
        canary: true,
        rolled: false,
    },
    Case {
        name: "only the first header value counts",
        keys: &[HEADER],
        headers: &[("x-canary", "nope"), ("x-canary", "always")],
        roll: 0,
        canary: false,
        rolled: false,
    },
    // Header value.
    Case {
        name: "header value equal",
        keys: &[HEADER, ("canary-by-header-value", "v1")],
        headers: &[("x-canary", "v1")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    Case {
        name: "header value is exact, not a regex",
        keys: &[HEADER, ("canary-by-header-value", "v1|v2")],
        headers: &[("x-canary", "v2")],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "header value turns off always",
        keys: &[HEADER, ("canary-by-header-value", "v1")],
        headers: &[("x-canary", "always")],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "header value turns off never",
        keys: &[HEADER, ("canary-by-header-value", "v1"), COOKIE],
        headers: &[("x-canary", "never"), ("cookie", "canary=always")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    Case {
        name: "header value mismatch falls through to weight",
        keys: &[HEADER, ("canary-by-header-value", "v1"), ALL_WEIGHT],
        headers: &[("x-canary", "v2")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    // Header pattern.
    Case {
        name: "header pattern is an unanchored search",
        keys: &[HEADER, ("canary-by-header-pattern", "beta")],
        headers: &[("x-canary", "user-beta-7")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    Case {
        name: "header pattern anchors are the user's",
        keys: &[HEADER, ("canary-by-header-pattern", "^beta")],
        headers: &[("x-canary", "user-beta-7")],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "header pattern turns off always",
        keys: &[HEADER, ("canary-by-header-pattern", "^beta")],
        headers: &[("x-canary", "always")],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "header pattern turns off never",
        keys: &[HEADER, ("canary-by-header-pattern", "^beta"), COOKIE],
        headers: &[("x-canary", "never"), ("cookie", "canary=always")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    Case {
        name: "header value wins over pattern (pattern match ignored)",
        keys: &[
            HEADER,
            ("canary-by-header-value", "v1"),
            ("canary-by-header-pattern", "beta"),
        ],
        headers: &[("x-canary", "beta")],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "header value wins over pattern (value match)",
        keys: &[
            HEADER,
            ("canary-by-header-value", "v1"),
            ("canary-by-header-pattern", "beta"),
        ],
        headers: &[("x-canary", "v1")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    // Cookie.
    Case {
        name: "cookie always",
        keys: &[COOKIE],
        headers: &[("cookie", "a=1; canary=always")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    Case {
        name: "cookie in a second Cookie header",
        keys: &[COOKIE],
        headers: &[("cookie", "a=1"), ("cookie", "canary=always")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    Case {
        name: "cookie never stops weight",
        keys: &[COOKIE, ALL_WEIGHT],
        headers: &[("cookie", "canary=never")],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "other cookie value falls through to weight",
        keys: &[COOKIE, ("canary-weight", "30")],
        headers: &[("cookie", "canary=1")],
        roll: 0,
        canary: true,
        rolled: true,
    },
    Case {
        name: "header always beats cookie never",
        keys: &[HEADER, COOKIE],
        headers: &[("x-canary", "always"), ("cookie", "canary=never")],
        roll: 0,
        canary: true,
        rolled: false,
    },
    Case {
        name: "cookie-value is MSE only: ignored",
        keys: &[COOKIE, ("canary-by-cookie-value", "v2")],
        headers: &[("cookie", "canary=v2")],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "query is MSE only: ignored",
        keys: &[("canary-by-query", "env")],
        headers: &[],
        roll: 0,
        canary: false,
        rolled: false,
    },
    // Weight: random integer in 1..=total, `<= weight` -> canary.
    Case {
        name: "no weight: main, no roll",
        keys: &[],
        headers: &[],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "weight 0 never",
        keys: &[("canary-weight", "0")],
        headers: &[],
        roll: 0,
        canary: false,
        rolled: false,
    },
    Case {
        name: "weight == total always",
        keys: &[("canary-weight", "250"), ("canary-weight-total", "250")],
        headers: &[],
        roll: u64::MAX,
        canary: true,
        rolled: false,
    },
    Case {
        name: "total below 100 counts as 100 (50/50 is 50%: high roll)",
        keys: &[("canary-weight", "50"), ("canary-weight-total", "50")],
        headers: &[],
        roll: u64::MAX,
        canary: false,
        rolled: true,
    },
    Case {
        name: "total below 100 counts as 100 (50/50 is 50%: low roll)",
        keys: &[("canary-weight", "50"), ("canary-weight-total", "50")],
        headers: &[],
        roll: 0,
        canary: true,
        rolled: true,
    },
    Case {
        name: "weight 1 of 1000, lowest roll picks 1",
        keys: &[("canary-weight", "1"), ("canary-weight-total", "1000")],
        headers: &[],
        roll: 0,
        canary: true,
        rolled: true,
    },
];

#[test]
fn nginx_table() {
    for case in CASES {
        let r = route(Flavour::Nginx, &[canary(case.keys)]);
        let req = Req::new(case.headers, Some("env=always"));
        let (decision, rolled) = decide_with(&r, &req, case.roll);
        assert_eq!(
            (decision, rolled),
            (case.canary.then_some(0), case.rolled),
            "{}",
            case.name
        );
    }
}

#[test]
fn weight_boundaries_are_exact() {
    // 30/100: picks 1..=30 of 1..=100 go to the canary.
    let r = route(Flavour::Nginx, &[canary(&[("canary-weight", "30")])]);
    let req = Req::new(&[], None);
    let edge = at(30, 100);
    assert_eq!(decide_with(&r, &req, edge - 1), (Some(0), true));
    assert_eq!(decide_with(&r, &req, edge), (None, true));
    // 1/1000: only the lowest thousandth.
    let r = route(
        Flavour::Nginx,
        &[canary(&[
            ("canary-weight", "1"),
            ("canary-weight-total", "1000"),
        ])],
    );
    let edge = at(1, 1000);
    assert_eq!(decide_with(&r, &req, edge - 1), (Some(0), true));
    assert_eq!(decide_with(&r, &req, edge), (None, true));
}

#[test]
fn weight_share_over_many_rolls() {
    let r = route(Flavour::Nginx, &[canary(&[("canary-weight", "20")])]);
    let req = Req::new(&[], None);
    let dice = Dice::new(20_240_601);
    let n = 100_000;
    let hits = (0..n)
        .filter(|_| r.decide(&req.view(), || dice.roll()).is_some())
        .count();
    // Expected 20 000; the standard deviation is about 126.
    assert!((19_000..=21_000).contains(&hits), "{hits}");
    assert_eq!(hits, NGINX_20_PERCENT_HITS);
}

/// Canary hits of `weight_share_over_many_rolls` with its fixed seed.
const NGINX_20_PERCENT_HITS: usize = 20_007;

#[test]
fn invalid_pattern_at_request_time_goes_to_main_and_stops() {
    // parse_canary rejects this pattern; built by hand it models
    // ingress-nginx's request-time regex error.
    let invalid = CanaryAnnotations {
        header: Some("x-canary".into()),
        header_pattern: Some("(beta".into()),
        cookie: Some("canary".into()),
        weight: Some(100),
        ..Default::default()
    };
    let r = route(Flavour::Nginx, &[invalid]);
    let present = Req::new(&[("x-canary", "beta"), ("cookie", "canary=always")], None);
    assert_eq!(decide_with(&r, &present, 0), (None, false));
    // Without the header the rule is not reached: cookie, then weight.
    let absent = Req::new(&[("cookie", "canary=always")], None);
    assert_eq!(decide_with(&r, &absent, 0), (Some(0), false));
    assert_eq!(decide_with(&r, &Req::new(&[], None), 0), (Some(0), false));
    assert!(r.describe()[0].1.contains("invalid regex: main"));
}

#[test]
fn second_canary_is_a_conflict_naming_both() {
    let mut builder = CanaryRouteBuilder::new(Flavour::Nginx);
    builder
        .add("a/x", &canary(&[("canary-weight", "10")]), "x")
        .unwrap();
    let err = builder.add("a/y", &canary(&[HEADER]), "y").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"route already has canary Ingress "a/x"; ingress-nginx allows one canary per route, so "a/y" is rejected"#
    );
    assert_eq!(
        (err.existing.as_str(), err.rejected.as_str()),
        ("a/x", "a/y")
    );
    let r = builder.build();
    assert_eq!(r.len(), 1);
    assert_eq!(*r.target(0), "x");
}

#[test]
fn empty_route_always_main() {
    let r = CanaryRouteBuilder::<u8>::new(Flavour::Nginx).build();
    assert!(r.is_empty());
    assert_eq!(
        r.decide(&Req::new(&[], None).view(), || unreachable!()),
        None
    );
}

#[test]
fn describe_nginx() {
    let r = route(
        Flavour::Nginx,
        &[canary(&[
            HEADER,
            ("canary-by-header-value", "v1"),
            COOKIE,
            ("canary-weight", "20"),
            ("canary-weight-total", "50"),
            ("canary-by-query", "env"),
        ])],
    );
    assert_eq!(
        r.describe(),
        vec![(
            "ns/canary-0".to_owned(),
            "header X-Canary = v1, then cookie canary = always/never, then weight 20/100 (total 50 counts as 100); ignored in nginx flavour: canary-by-query".to_owned()
        )]
    );
    let plain = route(Flavour::Nginx, &[canary(&[])]);
    assert_eq!(plain.describe()[0].1, "weight 0/100");
    assert_eq!(plain.flavour(), Flavour::Nginx);
    assert_eq!(plain.ingress(0), Some("ns/canary-0"));
    assert_eq!(plain.get(1), None);
}
