//! Reading and validating the canary annotations of one Ingress.
//!
//! Mistakes in canary annotations silently send production traffic to the
//! wrong place, so everything that can be checked without a request is checked
//! here, at load time, and reported with the key exactly as the user wrote it:
//! values that are not numbers, weights above their total, regexes that do not
//! compile, a `-value` without the key it qualifies, canary keys on an Ingress
//! that is not a canary.

use std::collections::BTreeMap;
use std::fmt;

use http::HeaderName;

use crate::flavour::Flavour;
use crate::keys::annotation;
use crate::matchers::{compile, compile_full_match, mse_alternation, regex_reason};

/// `canary`: `"true"` makes the Ingress a canary.
pub const CANARY: &str = "canary";
/// `canary-by-header`: the request header that selects the canary.
pub const BY_HEADER: &str = "canary-by-header";
/// `canary-by-header-value`: the header value that selects the canary.
pub const BY_HEADER_VALUE: &str = "canary-by-header-value";
/// `canary-by-header-pattern`: a regex searched in the header value.
pub const BY_HEADER_PATTERN: &str = "canary-by-header-pattern";
/// `canary-by-cookie`: the cookie that selects the canary.
pub const BY_COOKIE: &str = "canary-by-cookie";
/// `canary-by-cookie-value` (MSE only): the cookie value that selects it.
pub const BY_COOKIE_VALUE: &str = "canary-by-cookie-value";
/// `canary-by-query` (MSE only): the query parameter that selects it.
pub const BY_QUERY: &str = "canary-by-query";
/// `canary-by-query-value` (MSE only): the parameter value that selects it.
pub const BY_QUERY_VALUE: &str = "canary-by-query-value";
/// `canary-by-query-pattern` (MSE only): a regex searched in the parameter.
pub const BY_QUERY_PATTERN: &str = "canary-by-query-pattern";
/// `canary-weight`: the share of traffic, out of `canary-weight-total`.
pub const WEIGHT: &str = "canary-weight";
/// `canary-weight-total`: the denominator of `canary-weight` (default 100).
pub const WEIGHT_TOTAL: &str = "canary-weight-total";

/// The default of `canary-weight-total`.
pub const DEFAULT_WEIGHT_TOTAL: u32 = 100;

/// Every canary key except `canary` itself, in the order errors are looked for.
const CANARY_KEYS: [&str; 10] = [
    BY_HEADER,
    BY_HEADER_VALUE,
    BY_HEADER_PATTERN,
    BY_COOKIE,
    BY_COOKIE_VALUE,
    BY_QUERY,
    BY_QUERY_VALUE,
    BY_QUERY_PATTERN,
    WEIGHT,
    WEIGHT_TOTAL,
];

/// The canary settings of one canary Ingress (one with `canary: "true"`).
///
/// Usually produced by [`parse_canary`]; it can also be filled in directly
/// (for example from a native configuration format) and checked with
/// [`CanaryAnnotations::validate`]. Empty strings count as absent, as in
/// ingress-nginx and Higress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CanaryAnnotations {
    /// `canary-by-header`: header name.
    pub header: Option<String>,
    /// `canary-by-header-value`.
    pub header_value: Option<String>,
    /// `canary-by-header-pattern`.
    pub header_pattern: Option<String>,
    /// `canary-by-cookie`: cookie name.
    pub cookie: Option<String>,
    /// `canary-by-cookie-value` (MSE only).
    pub cookie_value: Option<String>,
    /// `canary-by-query` (MSE only): query parameter name.
    pub query: Option<String>,
    /// `canary-by-query-value` (MSE only).
    pub query_value: Option<String>,
    /// `canary-by-query-pattern` (MSE only).
    pub query_pattern: Option<String>,
    /// `canary-weight`.
    pub weight: Option<u32>,
    /// `canary-weight-total`; `None` means [`DEFAULT_WEIGHT_TOTAL`].
    pub weight_total: Option<u32>,
}

/// A non-empty string field.
pub(crate) fn set(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}

impl CanaryAnnotations {
    /// Whether any header, cookie or query key is set: in the MSE flavour
    /// such a canary is a *match canary* and its weight is not used.
    pub fn is_match_canary(&self) -> bool {
        set(&self.header).is_some() || set(&self.cookie).is_some() || set(&self.query).is_some()
    }

    /// `canary-weight` or 0.
    pub fn weight(&self) -> u32 {
        self.weight.unwrap_or(0)
    }

    /// `canary-weight-total` or [`DEFAULT_WEIGHT_TOTAL`].
    pub fn weight_total(&self) -> u32 {
        self.weight_total.unwrap_or(DEFAULT_WEIGHT_TOTAL)
    }

    /// Checks a value built by hand the way [`parse_canary_for`] checks
    /// annotations; errors name the keys without prefix.
    pub fn validate(&self, flavour: Flavour) -> Result<(), AnnotationError> {
        let origin = |key: &str| (key.to_owned(), self.field_text(key));
        self.check(Some(flavour), &origin)
    }

    /// The value of a field, as text, for messages.
    fn field_text(&self, key: &str) -> String {
        let text = |f: &Option<String>| f.clone().unwrap_or_default();
        let number = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        match key {
            BY_HEADER => text(&self.header),
            BY_HEADER_VALUE => text(&self.header_value),
            BY_HEADER_PATTERN => text(&self.header_pattern),
            BY_COOKIE => text(&self.cookie),
            BY_COOKIE_VALUE => text(&self.cookie_value),
            BY_QUERY => text(&self.query),
            BY_QUERY_VALUE => text(&self.query_value),
            BY_QUERY_PATTERN => text(&self.query_pattern),
            WEIGHT => number(self.weight),
            WEIGHT_TOTAL => number(self.weight_total),
            _ => String::new(),
        }
    }

    /// The checks shared by [`parse_canary`] and [`Self::validate`];
    /// `origin` gives the key as written and its value for a key name.
    /// With `flavour` `Some(Mse)`, `*-value` regexes are compiled too.
    fn check(
        &self,
        flavour: Option<Flavour>,
        origin: &dyn Fn(&str) -> (String, String),
    ) -> Result<(), AnnotationError> {
        let fail = |key: &str, reason: String| {
            let (key, value) = origin(key);
            Err(AnnotationError { key, value, reason })
        };
        let needs = |key: &str, base: &str| fail(key, format!("needs {base} on the same Ingress"));

        if set(&self.header).is_none() {
            if set(&self.header_value).is_some() {
                return needs(BY_HEADER_VALUE, BY_HEADER);
            }
            if set(&self.header_pattern).is_some() {
                return needs(BY_HEADER_PATTERN, BY_HEADER);
            }
        }
        if set(&self.cookie).is_none() && set(&self.cookie_value).is_some() {
            return needs(BY_COOKIE_VALUE, BY_COOKIE);
        }
        if set(&self.query).is_none() {
            if set(&self.query_value).is_some() {
                return needs(BY_QUERY_VALUE, BY_QUERY);
            }
            if set(&self.query_pattern).is_some() {
                return needs(BY_QUERY_PATTERN, BY_QUERY);
            }
        }
        if let Some(name) = set(&self.header) {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                return fail(BY_HEADER, "not a valid HTTP header name".into());
            }
        }
        if let Some(name) = set(&self.cookie) {
            if !valid_cookie_name(name) {
                return fail(BY_COOKIE, "not a valid cookie name".into());
            }
        }
        if let Some(name) = set(&self.query) {
            if name
                .bytes()
                .any(|b| matches!(b, b'&' | b'=' | b'#') || b <= b' ')
            {
                return fail(BY_QUERY, "not a valid query parameter name".into());
            }
        }
        if self.weight_total == Some(0) {
            return fail(WEIGHT_TOTAL, "not a positive integer".into());
        }
        if self.weight() > self.weight_total() {
            let reason = match self.weight_total {
                Some(total) => format!("greater than {WEIGHT_TOTAL} ({total})"),
                None => format!("greater than the default {WEIGHT_TOTAL} ({DEFAULT_WEIGHT_TOTAL})"),
            };
            return fail(WEIGHT, reason);
        }
        for (key, field) in [
            (BY_HEADER_PATTERN, &self.header_pattern),
            (BY_QUERY_PATTERN, &self.query_pattern),
        ] {
            if let Some(Err(err)) = set(field).map(compile) {
                return fail(key, regex_reason(&err));
            }
        }
        if flavour == Some(Flavour::Mse) {
            for (key, field) in [
                (BY_HEADER_VALUE, &self.header_value),
                (BY_QUERY_VALUE, &self.query_value),
            ] {
                if let Some(value) = set(field) {
                    if let Err(err) = compile_full_match(value) {
                        let reason = format!(
                            "{} (the mse flavour matches the regex {:?})",
                            regex_reason(&err),
                            mse_alternation(value)
                        );
                        return fail(key, reason);
                    }
                }
            }
        }
        Ok(())
    }
}

/// A cookie name as RFC 6265 allows it: visible ASCII without separators.
fn valid_cookie_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// An invalid canary annotation: the key as written, its value, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationError {
    /// The full key as written, e.g. `nginx.ingress.kubernetes.io/canary-weight`.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for AnnotationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "annotation {:?} = {:?}: {}",
            self.key, self.value, self.reason
        )
    }
}

impl std::error::Error for AnnotationError {}

/// Reads the canary annotations of one Ingress, with the checks that hold in
/// both flavours.
///
/// Returns `Ok(None)` when the Ingress is not a canary: no canary key at all,
/// or `canary: "false"` and no other canary key. Errors (naming the key as
/// written and its value): `canary` other than `"true"`/`"false"`; other
/// canary keys without `canary: "true"`; a weight that is not a non-negative
/// integer, a total that is not a positive integer, a weight above its total
/// (100 by default); an invalid header or query pattern; a `-value` or
/// `-pattern` key without its base key; an invalid header, cookie or query
/// parameter name.
///
/// MSE-only keys (`canary-by-query*`, `canary-by-cookie-value`) are read
/// only under `mse.ingress.kubernetes.io/`; see [`crate::annotation`].
///
/// In the MSE flavour a `*-value` is a regex; [`parse_canary_for`] also
/// checks that it compiles.
///
/// ```
/// use std::collections::BTreeMap;
/// use fleetgate_canary::parse_canary;
///
/// let mut annotations = BTreeMap::new();
/// annotations.insert("nginx.ingress.kubernetes.io/canary".to_owned(), "true".to_owned());
/// annotations.insert("nginx.ingress.kubernetes.io/canary-weight".to_owned(), "abc".to_owned());
/// let err = parse_canary(&annotations).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"annotation "nginx.ingress.kubernetes.io/canary-weight" = "abc": not a non-negative integer"#
/// );
/// ```
pub fn parse_canary(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<CanaryAnnotations>, AnnotationError> {
    parse(annotations, None)
}

/// Like [`parse_canary`], plus the checks of one flavour: in
/// [`Flavour::Mse`], `canary-by-header-value` and `canary-by-query-value`
/// must compile as the regex `always|<value>`. (In [`Flavour::Nginx`] a
/// header value is a plain string, so any value is valid.)
pub fn parse_canary_for(
    annotations: &BTreeMap<String, String>,
    flavour: Flavour,
) -> Result<Option<CanaryAnnotations>, AnnotationError> {
    parse(annotations, Some(flavour))
}

fn parse(
    annotations: &BTreeMap<String, String>,
    flavour: Option<Flavour>,
) -> Result<Option<CanaryAnnotations>, AnnotationError> {
    let error = |(key, value): (&str, &str), reason: &str| AnnotationError {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let first_other = CANARY_KEYS.iter().find_map(|k| annotation(annotations, k));
    match annotation(annotations, CANARY) {
        None => match first_other {
            None => return Ok(None),
            Some(found) => {
                return Err(error(
                    found,
                    "canary keys need canary: \"true\" on the same Ingress",
                ))
            }
        },
        Some((_, "true")) => {}
        Some((key, "false")) => {
            return match first_other {
                None => Ok(None),
                Some(found) => Err(error(
                    found,
                    &format!(
                        "ignored because {key} is \"false\"; set it to \"true\" or remove this key"
                    ),
                )),
            }
        }
        Some(found) => return Err(error(found, "expected \"true\" or \"false\"")),
    }

    let text = |key: &str| {
        annotation(annotations, key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let number = |key: &str, reason: &str| -> Result<Option<u32>, AnnotationError> {
        match annotation(annotations, key) {
            None => Ok(None),
            Some(found) => parse_u32(found.1)
                .map(Some)
                .ok_or_else(|| error(found, reason)),
        }
    };
    let canary = CanaryAnnotations {
        header: text(BY_HEADER),
        header_value: text(BY_HEADER_VALUE),
        header_pattern: text(BY_HEADER_PATTERN),
        cookie: text(BY_COOKIE),
        cookie_value: text(BY_COOKIE_VALUE),
        query: text(BY_QUERY),
        query_value: text(BY_QUERY_VALUE),
        query_pattern: text(BY_QUERY_PATTERN),
        weight: number(WEIGHT, "not a non-negative integer")?,
        weight_total: number(WEIGHT_TOTAL, "not a positive integer")?,
    };
    let origin = |key: &str| match annotation(annotations, key) {
        Some((k, v)) => (k.to_owned(), v.to_owned()),
        None => (key.to_owned(), String::new()),
    };
    canary.check(flavour, &origin)?;
    Ok(Some(canary))
}

/// Decimal digits only (no sign, no spaces), fitting a `u32`.
fn parse_u32(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
