//! Every annotation error, key precedence, and what is not a canary.

use super::annotations;
use crate::{parse_canary, parse_canary_for, AnnotationError, CanaryAnnotations, Flavour};

const N: &str = "nginx.ingress.kubernetes.io/";
const M: &str = "mse.ingress.kubernetes.io/";
const H: &str = "higress.io/";

fn parse(pairs: &[(String, &str)]) -> Result<Option<CanaryAnnotations>, AnnotationError> {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    parse_canary(&annotations(&pairs))
}

fn k(prefix: &str, key: &str) -> String {
    format!("{prefix}{key}")
}

#[test]
fn not_a_canary() {
    assert_eq!(parse(&[]), Ok(None));
    assert_eq!(parse(&[(k(N, "rewrite-target"), "/")]), Ok(None));
    assert_eq!(parse(&[(k(N, "canary"), "false")]), Ok(None));
    assert_eq!(parse(&[(k(H, "canary"), "false")]), Ok(None));
    // MSE-only keys under another prefix are not canary keys at all.
    assert_eq!(parse(&[(k(N, "canary-by-query"), "env")]), Ok(None));
    assert_eq!(parse(&[(k(H, "canary-by-cookie-value"), "v")]), Ok(None));
}

#[test]
fn full_parse_with_mixed_prefixes() {
    let got = parse(&[
        (k(H, "canary"), "true"),
        (k(N, "canary-by-header"), "X-Canary"),
        (k(M, "canary-by-header-value"), "gz|bj"),
        (k(H, "canary-by-header-pattern"), "^b"),
        (k(N, "canary-by-cookie"), "c"),
        (k(M, "canary-by-cookie-value"), "v2"),
        (k(M, "canary-by-query"), "env"),
        (k(M, "canary-by-query-value"), "gray"),
        (k(M, "canary-by-query-pattern"), "gr.y"),
        (k(H, "canary-weight"), "600"),
        (k(M, "canary-weight-total"), "1000"),
    ]);
    let expected = CanaryAnnotations {
        header: Some("X-Canary".into()),
        header_value: Some("gz|bj".into()),
        header_pattern: Some("^b".into()),
        cookie: Some("c".into()),
        cookie_value: Some("v2".into()),
        query: Some("env".into()),
        query_value: Some("gray".into()),
        query_pattern: Some("gr.y".into()),
        weight: Some(600),
        weight_total: Some(1000),
    };
    assert_eq!(got, Ok(Some(expected)));
}

#[test]
fn prefix_precedence_nginx_then_mse_then_higress() {
    let all = parse(&[
        (k(N, "canary"), "true"),
        (k(N, "canary-weight"), "10"),
        (k(M, "canary-weight"), "20"),
        (k(H, "canary-weight"), "30"),
        (k(M, "canary-by-header"), "from-mse"),
        (k(H, "canary-by-header"), "from-higress"),
        (k(H, "canary-by-cookie"), "from-higress"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(all.weight, Some(10));
    assert_eq!(all.header.as_deref(), Some("from-mse"));
    assert_eq!(all.cookie.as_deref(), Some("from-higress"));
    // The winning key's value is the one validated.
    let err = parse(&[
        (k(N, "canary"), "true"),
        (k(N, "canary-weight"), "x"),
        (k(H, "canary-weight"), "5"),
    ])
    .unwrap_err();
    assert_eq!(err.key, k(N, "canary-weight"));
    // `canary: false` under nginx beats `true` under higress.
    assert_eq!(
        parse(&[(k(N, "canary"), "false"), (k(H, "canary"), "true")]),
        Ok(None)
    );
}

#[test]
fn mse_only_keys_are_ignored_under_other_prefixes() {
    let c = parse(&[
        (k(N, "canary"), "true"),
        (k(N, "canary-by-query"), "env"),
        (k(H, "canary-by-query-value"), "gray"),
        (k(N, "canary-by-cookie"), "c"),
        (k(N, "canary-by-cookie-value"), "v"),
        (k(H, "canary-by-query-pattern"), "("),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(c.query, None);
    assert_eq!(c.query_value, None);
    assert_eq!(c.query_pattern, None);
    assert_eq!(c.cookie_value, None);
    assert_eq!(c.cookie.as_deref(), Some("c"));
}

#[test]
fn empty_values_count_as_absent() {
    let c = parse(&[
        (k(N, "canary"), "true"),
        (k(N, "canary-by-header"), ""),
        (k(N, "canary-by-header-value"), ""),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(c, CanaryAnnotations::default());
    assert!(!c.is_match_canary());
}

/// One error case: annotations, then the exact message.
struct ErrorCase {
    pairs: &'static [(&'static str, &'static str)],
    message: &'static str,
}

const ERRORS: &[ErrorCase] = &[
    ErrorCase {
        pairs: &[("nginx.ingress.kubernetes.io/canary", "yes")],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary" = "yes": expected "true" or "false""#,
    },
    ErrorCase {
        pairs: &[("higress.io/canary", "True")],
        message: r#"annotation "higress.io/canary" = "True": expected "true" or "false""#,
    },
    ErrorCase {
        pairs: &[("nginx.ingress.kubernetes.io/canary-weight", "10")],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-weight" = "10": canary keys need canary: "true" on the same Ingress"#,
    },
    ErrorCase {
        pairs: &[("mse.ingress.kubernetes.io/canary-by-query", "env")],
        message: r#"annotation "mse.ingress.kubernetes.io/canary-by-query" = "env": canary keys need canary: "true" on the same Ingress"#,
    },
    ErrorCase {
        pairs: &[
            ("mse.ingress.kubernetes.io/canary", "false"),
            ("higress.io/canary-by-header", "x"),
        ],
        message: r#"annotation "higress.io/canary-by-header" = "x": ignored because mse.ingress.kubernetes.io/canary is "false"; set it to "true" or remove this key"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "abc"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-weight" = "abc": not a non-negative integer"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "-1"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-weight" = "-1": not a non-negative integer"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "12.5"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-weight" = "12.5": not a non-negative integer"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "+5"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-weight" = "+5": not a non-negative integer"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", ""),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-weight" = "": not a non-negative integer"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "99999999999"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-weight" = "99999999999": not a non-negative integer"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("higress.io/canary-weight-total", "0"),
        ],
        message: r#"annotation "higress.io/canary-weight-total" = "0": not a positive integer"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight-total", "ten"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-weight-total" = "ten": not a positive integer"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "101"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-weight" = "101": greater than the default canary-weight-total (100)"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-weight", "20"),
            ("mse.ingress.kubernetes.io/canary-weight-total", "10"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-weight" = "20": greater than canary-weight-total (10)"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-by-header", "x"),
            (
                "nginx.ingress.kubernetes.io/canary-by-header-pattern",
                "(beta",
            ),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-by-header-pattern" = "(beta": invalid regular expression: unclosed group"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("mse.ingress.kubernetes.io/canary-by-query", "env"),
            ("mse.ingress.kubernetes.io/canary-by-query-pattern", "[a"),
        ],
        message: r#"annotation "mse.ingress.kubernetes.io/canary-by-query-pattern" = "[a": invalid regular expression: unclosed character class"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-by-header-value", "v1"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-by-header-value" = "v1": needs canary-by-header on the same Ingress"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("higress.io/canary-by-header-pattern", "v1"),
        ],
        message: r#"annotation "higress.io/canary-by-header-pattern" = "v1": needs canary-by-header on the same Ingress"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("mse.ingress.kubernetes.io/canary-by-cookie-value", "v2"),
        ],
        message: r#"annotation "mse.ingress.kubernetes.io/canary-by-cookie-value" = "v2": needs canary-by-cookie on the same Ingress"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("mse.ingress.kubernetes.io/canary-by-query-value", "gray"),
        ],
        message: r#"annotation "mse.ingress.kubernetes.io/canary-by-query-value" = "gray": needs canary-by-query on the same Ingress"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("mse.ingress.kubernetes.io/canary-by-query-pattern", "gr"),
        ],
        message: r#"annotation "mse.ingress.kubernetes.io/canary-by-query-pattern" = "gr": needs canary-by-query on the same Ingress"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-by-header", "x canary"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-by-header" = "x canary": not a valid HTTP header name"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/canary-by-cookie", "a;b"),
        ],
        message: r#"annotation "nginx.ingress.kubernetes.io/canary-by-cookie" = "a;b": not a valid cookie name"#,
    },
    ErrorCase {
        pairs: &[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("mse.ingress.kubernetes.io/canary-by-query", "a&b"),
        ],
        message: r#"annotation "mse.ingress.kubernetes.io/canary-by-query" = "a&b": not a valid query parameter name"#,
    },
];

#[test]
fn every_error_names_key_value_and_reason() {
    for case in ERRORS {
        let err = parse_canary(&annotations(case.pairs)).expect_err(case.message);
        assert_eq!(err.to_string(), case.message);
        let source: &dyn std::error::Error = &err;
        assert!(source.source().is_none());
    }
}

#[test]
fn weight_limits_that_are_fine() {
    for (weight, total) in [
        ("0", None),
        ("100", None),
        ("600", Some("1000")),
        ("1", Some("1")),
    ] {
        let mut pairs = vec![(k(N, "canary"), "true"), (k(N, "canary-weight"), weight)];
        if let Some(total) = total {
            pairs.push((k(N, "canary-weight-total"), total));
        }
        assert!(parse(&pairs).unwrap().is_some(), "{weight}/{total:?}");
    }
}

#[test]
fn mse_value_regexes_are_checked_for_the_mse_flavour_only() {
    let pairs = annotations(&[
        ("nginx.ingress.kubernetes.io/canary", "true"),
        ("nginx.ingress.kubernetes.io/canary-by-header", "x"),
        ("nginx.ingress.kubernetes.io/canary-by-header-value", "(v1"),
    ]);
    assert!(parse_canary(&pairs).is_ok());
    assert!(parse_canary_for(&pairs, Flavour::Nginx).is_ok());
    let err = parse_canary_for(&pairs, Flavour::Mse).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"annotation "nginx.ingress.kubernetes.io/canary-by-header-value" = "(v1": invalid regular expression: unclosed group (the mse flavour matches the regex "always|(v1")"#
    );
    let query = annotations(&[
        ("nginx.ingress.kubernetes.io/canary", "true"),
        ("mse.ingress.kubernetes.io/canary-by-query", "q"),
        ("mse.ingress.kubernetes.io/canary-by-query-value", "a)|(b"),
    ]);
    assert_eq!(
        parse_canary_for(&query, Flavour::Mse).unwrap_err().key,
        "mse.ingress.kubernetes.io/canary-by-query-value"
    );
}

#[test]
fn validate_checks_hand_built_values() {
    let ok = CanaryAnnotations {
        header: Some("x".into()),
        header_value: Some("gz|bj".into()),
        ..Default::default()
    };
    assert_eq!(ok.validate(Flavour::Mse), Ok(()));
    let bad = CanaryAnnotations {
        weight: Some(30),
        weight_total: Some(20),
        ..Default::default()
    };
    assert_eq!(
        bad.validate(Flavour::Nginx).unwrap_err().to_string(),
        r#"annotation "canary-weight" = "30": greater than canary-weight-total (20)"#
    );
    let zero = CanaryAnnotations {
        weight_total: Some(0),
        ..Default::default()
    };
    assert_eq!(
        zero.validate(Flavour::Mse).unwrap_err().key,
        "canary-weight-total"
    );
}
