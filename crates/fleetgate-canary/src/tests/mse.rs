//! The MSE / Higress flavour: match canaries (header and query before
//! cookie) first, then weight canaries splitting the rest.

use super::{annotations, at, canary, decide_with, route, Req};
use crate::{parse_canary, CanaryAnnotations, CanaryRouteBuilder, Dice, Flavour};

/// One row: canary keys of a single canary, a request, expected canary?
struct Case {
    name: &'static str,
    keys: &'static [(&'static str, &'static str)],
    headers: &'static [(&'static str, &'static str)],
    query: Option<&'static str>,
    canary: bool,
}

const HEADER: (&str, &str) = ("canary-by-header", "X-Canary");
const QUERY: (&str, &str) = ("canary-by-query", "env");
const COOKIE: (&str, &str) = ("canary-by-cookie", "canary");

const fn case(
    name: &'static str,
    keys: &'static [(&'static str, &'static str)],
    headers: &'static [(&'static str, &'static str)],
    query: Option<&'static str>,
    canary: bool,
) -> Case {
    Case {
        name,
        keys,
        headers,
        query,
        canary,
    }
}

const CASES: &[Case] = &[
    // Header only: `always` selects, nothing else does, no `never` needed.
    case(
        "header always",
        &[HEADER],
        &[("x-canary", "always")],
        None,
        true,
    ),
    case(
        "header name case-insensitive",
        &[HEADER],
        &[("X-CANARY", "always")],
        None,
        true,
    ),
    case(
        "header other value",
        &[HEADER],
        &[("x-canary", "true")],
        None,
        false,
    ),
    case("header absent", &[HEADER], &[], None, false),
    // Header + value: full match of always|value.
    case(
        "value equal",
        &[HEADER, ("canary-by-header-value", "cluster1")],
        &[("x-canary", "cluster1")],
        None,
        true,
    ),
    case(
        "always still works with a value",
        &[HEADER, ("canary-by-header-value", "cluster1")],
        &[("x-canary", "always")],
        None,
        true,
    ),
    case(
        "value is a full match (prefix)",
        &[HEADER, ("canary-by-header-value", "cluster1")],
        &[("x-canary", "cluster10")],
        None,
        false,
    ),
    case(
        "value is a full match (suffix)",
        &[HEADER, ("canary-by-header-value", "cluster1")],
        &[("x-canary", "xcluster1")],
        None,
        false,
    ),
    case(
        "alternation gz",
        &[HEADER, ("canary-by-header-value", "gz|bj")],
        &[("x-canary", "gz")],
        None,
        true,
    ),
    case(
        "alternation bj",
        &[HEADER, ("canary-by-header-value", "gz|bj")],
        &[("x-canary", "bj")],
        None,
        true,
    ),
    case(
        "alternation always",
        &[HEADER, ("canary-by-header-value", "gz|bj")],
        &[("x-canary", "always")],
        None,
        true,
    ),
    case(
        "alternation is not a literal",
        &[HEADER, ("canary-by-header-value", "gz|bj")],
        &[("x-canary", "gz|bj")],
        None,
        false,
    ),
    case(
        "alternation other",
        &[HEADER, ("canary-by-header-value", "gz|bj")],
        &[("x-canary", "sh")],
        None,
        false,
    ),
    case(
        "regex value",
        &[HEADER, ("canary-by-header-value", "v[0-9]+")],
        &[("x-canary", "v12")],
        None,
        true,
    ),
    case(
        "regex value full match",
        &[HEADER, ("canary-by-header-value", "v[0-9]+")],
        &[("x-canary", "v12-rc")],
        None,
        false,
    ),
    case(
        "regex value keeps always",
        &[HEADER, ("canary-by-header-value", "v[0-9]+")],
        &[("x-canary", "always")],
        None,
        true,
    ),
    // Header + pattern: unanchored search; `always` is not special.
    case(
        "pattern search",
        &[HEADER, ("canary-by-header-pattern", "beta")],
        &[("x-canary", "user-beta-7")],
        None,
        true,
    ),
    case(
        "pattern no match",
        &[HEADER, ("canary-by-header-pattern", "beta")],
        &[("x-canary", "alpha")],
        None,
        false,
    ),
    case(
        "pattern without always",
        &[HEADER, ("canary-by-header-pattern", "^beta")],
        &[("x-canary", "always")],
        None,
        false,
    ),
    // Value wins over pattern.
    case(
        "value over pattern: pattern ignored",
        &[
            HEADER,
            ("canary-by-header-value", "v1"),
            ("canary-by-header-pattern", "beta"),
        ],
        &[("x-canary", "beta")],
        None,
        false,
    ),
    case(
        "value over pattern: value used",
        &[
            HEADER,
            ("canary-by-header-value", "v1"),
            ("canary-by-header-pattern", "beta"),
        ],
        &[("x-canary", "v1")],
        None,
        true,
    ),
    // Query: like header.
    case("query always", &[QUERY], &[], Some("a=1&env=always"), true),
    case("query other", &[QUERY], &[], Some("env=gray"), false),
    case("query absent", &[QUERY], &[], None, false),
    case(
        "query first occurrence",
        &[QUERY],
        &[],
        Some("env=no&env=always"),
        false,
    ),
    case(
        "query value",
        &[QUERY, ("canary-by-query-value", "gray")],
        &[],
        Some("env=gray"),
        true,
    ),
    case(
        "query value keeps always",
        &[QUERY, ("canary-by-query-value", "gray")],
        &[],
        Some("env=always"),
        true,
    ),
    case(
        "query value full match",
        &[QUERY, ("canary-by-query-value", "gray")],
        &[],
        Some("env=grayer"),
        false,
    ),
    case(
        "query pattern",
        &[QUERY, ("canary-by-query-pattern", "^gr")],
        &[],
        Some("env=grey"),
        true,
    ),
    case(
        "query value over pattern",
        &[
            QUERY,
            ("canary-by-query-value", "a"),
            ("canary-by-query-pattern", "gr"),
        ],
        &[],
        Some("env=grey"),
        false,
    ),
    case(
        "query name is not a header",
        &[QUERY],
        &[("env", "always")],
        None,
        false,
    ),
    // Cookie: `always`, or the cookie-value.
    case(
        "cookie always",
        &[COOKIE],
        &[("cookie", "x=1; canary=always")],
        None,
        true,
    ),
    case(
        "cookie other",
        &[COOKIE],
        &[("cookie", "canary=never")],
        None,
        false,
    ),
    case(
        "cookie absent",
        &[COOKIE],
        &[("cookie", "other=always")],
        None,
        false,
    ),
    case(
        "cookie value",
        &[COOKIE, ("canary-by-cookie-value", "v2")],
        &[("cookie", "canary=v2")],
        None,
        true,
    ),
    case(
        "cookie value replaces always",
        &[COOKIE, ("canary-by-cookie-value", "v2")],
        &[("cookie", "canary=always")],
        None,
        false,
    ),
    // A match canary with several keys matches if any matches.
    case(
        "any key: header",
        &[HEADER, QUERY, COOKIE],
        &[("x-canary", "always")],
        None,
        true,
    ),
    case(
        "any key: query",
        &[HEADER, QUERY, COOKIE],
        &[("x-canary", "no")],
        Some("env=always"),
        true,
    ),
    case(
        "any key: cookie",
        &[HEADER, QUERY, COOKIE],
        &[("cookie", "canary=always")],
        Some("env=no"),
        true,
    ),
    case(
        "any key: none",
        &[HEADER, QUERY, COOKIE],
        &[("x-canary", "no")],
        Some("env=no"),
        false,
    ),
    // A match canary ignores its weight.
    case(
        "match canary weight ignored",
        &[HEADER, ("canary-weight", "100")],
        &[],
        None,
        false,
    ),
];

#[test]
fn mse_table() {
    for case in CASES {
        let r = route(Flavour::Mse, &[canary(case.keys)]);
        let req = Req::new(case.headers, case.query);
        let (decision, rolled) = decide_with(&r, &req, 0);
        assert_eq!(decision, case.canary.then_some(0), "{}", case.name);
        assert!(!rolled, "{}: a match canary never rolls", case.name);
    }
}

#[test]
fn header_and_query_canaries_before_cookie_canaries() {
    let r = route(
        Flavour::Mse,
        &[
            canary(&[COOKIE]),                      // 0
            canary(&[("canary-by-header", "x-a")]), // 1
            canary(&[QUERY]),                       // 2
            canary(&[("canary-by-header", "x-b")]), // 3
            canary(&[("canary-weight", "100")]),    // 4
        ],
    );
    let decide = |headers: &[(&str, &str)], query| decide_with(&r, &Req::new(headers, query), 0);
    let all = [
        ("cookie", "canary=always"),
        ("x-a", "always"),
        ("x-b", "always"),
    ];
    assert_eq!(decide(&all, Some("env=always")), (Some(1), false));
    assert_eq!(decide(&all[..1], Some("env=always")), (Some(2), false));
    assert_eq!(decide(&[all[0], all[2]], None), (Some(3), false));
    assert_eq!(decide(&all[..1], None), (Some(0), false));
    assert_eq!(decide(&[], None), (Some(4), false));
}

#[test]
fn weight_canaries_split_what_matched_nothing() {
    let r = route(
        Flavour::Mse,
        &[
            canary(&[("canary-weight", "20")]),
            canary(&[HEADER]),
            canary(&[("canary-weight", "300"), ("canary-weight-total", "1000")]),
        ],
    );
    let plain = Req::new(&[], None);
    assert_eq!(decide_with(&r, &plain, 0), (Some(0), true));
    assert_eq!(decide_with(&r, &plain, at(20, 100) - 1), (Some(0), true));
    assert_eq!(decide_with(&r, &plain, at(20, 100)), (Some(2), true));
    assert_eq!(decide_with(&r, &plain, at(50, 100) - 1), (Some(2), true));
    assert_eq!(decide_with(&r, &plain, at(50, 100)), (None, true));
    assert_eq!(decide_with(&r, &plain, u64::MAX), (None, true));
    let matched = Req::new(&[("x-canary", "always")], None);
    assert_eq!(decide_with(&r, &matched, 0), (Some(1), false));
    // Exactly 100% in total is not "over": nothing is cut.
    let full = route(
        Flavour::Mse,
        &[
            canary(&[("canary-weight", "20")]),
            canary(&[("canary-weight", "800"), ("canary-weight-total", "1000")]),
        ],
    );
    let described: Vec<String> = full.describe().into_iter().map(|(_, d)| d).collect();
    assert_eq!(described, ["weight 20/100", "weight 800/1000"]);
    assert_eq!(decide_with(&full, &plain, u64::MAX), (Some(1), true));
}

#[test]
fn weights_over_100_percent_leave_later_canaries_the_rest() {
    let r = route(
        Flavour::Mse,
        &[
            canary(&[("canary-weight", "70")]),
            canary(&[("canary-weight", "50")]),
            canary(&[("canary-weight", "10")]),
        ],
    );
    let plain = Req::new(&[], None);
    assert_eq!(decide_with(&r, &plain, at(70, 100) - 1), (Some(0), true));
    assert_eq!(decide_with(&r, &plain, at(70, 100)), (Some(1), true));
    assert_eq!(decide_with(&r, &plain, u64::MAX), (Some(1), true));
    let described = r.describe();
    assert_eq!(described[0].1, "weight 70/100");
    assert_eq!(
        described[1].1,
        "weight 50/100 (only 30.00% left by earlier canaries)"
    );
    assert_eq!(
        described[2].1,
        "weight 10/100 (only 0.00% left by earlier canaries)"
    );
}

#[test]
fn rolls_only_when_weights_decide() {
    let plain = Req::new(&[], None);
    // No weight canary: no roll.
    let r = route(Flavour::Mse, &[canary(&[HEADER])]);
    assert_eq!(decide_with(&r, &plain, 0), (None, false));
    // Weight 0 (or none): never, no roll.
    let r = route(
        Flavour::Mse,
        &[canary(&[("canary-weight", "0")]), canary(&[])],
    );
    assert_eq!(decide_with(&r, &plain, 0), (None, false));
    // Weight == total: always, no roll, even after zero-weight canaries.
    let r = route(
        Flavour::Mse,
        &[
            canary(&[("canary-weight", "0")]),
            canary(&[("canary-weight", "7"), ("canary-weight-total", "7")]),
        ],
    );
    assert_eq!(decide_with(&r, &plain, u64::MAX), (Some(1), false));
    // Empty route.
    let r = CanaryRouteBuilder::<usize>::new(Flavour::Mse).build();
    assert!(r.is_empty());
    assert_eq!(decide_with(&r, &plain, 0), (None, false));
}

#[test]
fn weight_1_of_1000_is_a_tenth_of_a_percent() {
    let r = route(
        Flavour::Mse,
        &[canary(&[
            ("canary-weight", "1"),
            ("canary-weight-total", "1000"),
        ])],
    );
    let plain = Req::new(&[], None);
    let view = plain.view();
    let dice = Dice::new(1000);
    let n = 1_000_000;
    let hits = (0..n)
        .filter(|_| r.decide(&view, || dice.roll()).is_some())
        .count();
    // Expected 1000 (0.1%); the standard deviation is about 32.
    assert!((800..=1200).contains(&hits), "{hits}");
    assert_eq!(hits, MSE_1_PER_MILLE_HITS);
}

/// Canary hits of `weight_1_of_1000_is_a_tenth_of_a_percent` with its seed.
const MSE_1_PER_MILLE_HITS: usize = 1_026;

#[test]
fn three_weight_canaries_over_many_rolls() {
    let r = route(
        Flavour::Mse,
        &[
            canary(&[("canary-weight", "10")]),
            canary(&[("canary-weight", "25")]),
            canary(&[("canary-weight", "5"), ("canary-weight-total", "1000")]),
        ],
    );
    let plain = Req::new(&[], None);
    let view = plain.view();
    let dice = Dice::new(7);
    let mut counts = [0usize; 4];
    for _ in 0..200_000 {
        counts[r.decide(&view, || dice.roll()).unwrap_or(3)] += 1;
    }
    // Expected 20 000, 50 000, 1 000 and 129 000; bounds are > 6 sigma.
    assert!((19_000..=21_000).contains(&counts[0]), "{counts:?}");
    assert!((48_500..=51_500).contains(&counts[1]), "{counts:?}");
    assert!((800..=1_200).contains(&counts[2]), "{counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), 200_000);
}

#[test]
fn invalid_regexes_never_match() {
    // parse_canary_for(.., Mse) rejects these; built by hand they are kept
    // as conditions that never match.
    let bad_value = CanaryAnnotations {
        header: Some("x-canary".into()),
        header_value: Some("(v1".into()),
        ..Default::default()
    };
    let bad_pattern = CanaryAnnotations {
        query: Some("env".into()),
        query_pattern: Some("[a".into()),
        cookie: Some("canary".into()),
        ..Default::default()
    };
    let r = route(Flavour::Mse, &[bad_value, bad_pattern]);
    let req = Req::new(&[("x-canary", "always")], Some("env=always"));
    assert_eq!(decide_with(&r, &req, 0), (None, false));
    let cookie = Req::new(&[("x-canary", "always"), ("cookie", "canary=always")], None);
    assert_eq!(decide_with(&r, &cookie, 0), (Some(1), false));
    let described = r.describe();
    assert_eq!(
        described[0].1,
        "header x-canary = always|(v1 (invalid regex: never matches)"
    );
    assert_eq!(
        described[1].1,
        "query env ~ [a (invalid regex: never matches) or cookie canary = always"
    );
}

#[test]
fn prefixes_from_real_annotations() {
    // nginx beats mse beats higress; MSE-only keys only under mse.
    let parsed = parse_canary(&annotations(&[
        ("higress.io/canary", "true"),
        ("nginx.ingress.kubernetes.io/canary-by-header", "x-n"),
        ("mse.ingress.kubernetes.io/canary-by-header", "x-m"),
        ("higress.io/canary-by-header-value", "h"),
        ("mse.ingress.kubernetes.io/canary-by-header-value", "m"),
        ("nginx.ingress.kubernetes.io/canary-by-query", "ignored"),
    ]))
    .unwrap()
    .unwrap();
    let r = route(Flavour::Mse, &[parsed]);
    let yes = Req::new(&[("x-n", "m")], Some("ignored=always"));
    assert_eq!(decide_with(&r, &yes, 0), (Some(0), false));
    for (headers, query) in [
        (&[("x-m", "m")][..], None),
        (&[("x-n", "h")][..], None),
        (&[][..], Some("ignored=always")),
    ] {
        assert_eq!(decide_with(&r, &Req::new(headers, query), 0), (None, false));
    }
}

#[test]
fn describe_mse() {
    let r = route(
        Flavour::Mse,
        &[
            canary(&[
                ("canary-by-header", "canary-dest"),
                ("canary-by-header-value", "cluster1"),
            ]),
            canary(&[COOKIE, ("canary-weight", "5")]),
            canary(&[("canary-weight", "20")]),
            canary(&[QUERY, ("canary-by-query-pattern", "^gr")]),
        ],
    );
    let got: Vec<(String, String)> = r.describe();
    let want = [
        ("ns/canary-0", "header canary-dest = always|cluster1"),
        (
            "ns/canary-1",
            "cookie canary = always; weight ignored (match canary)",
        ),
        ("ns/canary-2", "weight 20/100"),
        ("ns/canary-3", "query env ~ ^gr"),
    ];
    assert_eq!(got.len(), want.len());
    for ((ingress, text), (want_ingress, want_text)) in got.iter().zip(want) {
        assert_eq!((ingress.as_str(), text.as_str()), (want_ingress, want_text));
    }
    assert_eq!(r.len(), 4);
    assert_eq!(*r.target(3), 3);
    assert_eq!(r.flavour(), Flavour::Mse);
}

#[test]
fn huge_coprime_totals_stay_ordered() {
    // Denominators whose product overflows u128: bounds fall back to sums.
    let totals = [
        "4294967291",
        "4294967279",
        "4294967231",
        "4294967197",
        "4294967189",
    ];
    let canaries: Vec<CanaryAnnotations> = totals
        .iter()
        .map(|t| canary(&[("canary-weight", "2147483600"), ("canary-weight-total", t)]))
        .collect();
    let r = route(Flavour::Mse, &canaries);
    let plain = Req::new(&[], None);
    assert_eq!(decide_with(&r, &plain, 0), (Some(0), true));
    assert_eq!(decide_with(&r, &plain, at(1, 4)), (Some(0), true));
    assert_eq!(decide_with(&r, &plain, at(3, 4)), (Some(1), true));
    // Two canaries take just under 100%: the third gets the sliver left.
    assert_eq!(decide_with(&r, &plain, u64::MAX), (Some(2), true));
    let described = r.describe();
    assert!(described[2].1.contains("(only 0.00% left"), "{described:?}");
    assert!(described[4].1.contains("(only 0.00% left"), "{described:?}");
}
