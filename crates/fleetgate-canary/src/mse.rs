//! The MSE / Higress flavour: many canaries per route, matches before weights.
//!
//! Compiled into three flat lists so a decision is a short scan: header and
//! query conditions of every match canary (insertion order), then cookie
//! conditions, then cumulative weight thresholds. Weights are exact fractions
//! of the `u64` range rather than Higress's whole percents, so a weight of 1
//! out of 1000 really takes 0.1% of the traffic.

use http::HeaderName;

use crate::annotations::{set, CanaryAnnotations};
use crate::matchers::{mse_alternation, ValueMatcher};
use crate::request::RequestView;

/// The whole `u64` range as a threshold: `roll < FULL` always holds.
const FULL: u128 = 1 << 64;

/// Where a header or query condition reads its value.
#[derive(Debug, Clone)]
enum Source {
    Header(HeaderName),
    Query(Box<[u8]>),
}

/// A header or query condition of match canary `canary`.
#[derive(Debug, Clone)]
struct Condition {
    canary: usize,
    source: Source,
    matcher: ValueMatcher,
}

/// A cookie condition: cookie `name` equals `value`.
#[derive(Debug, Clone)]
struct CookieCondition {
    canary: usize,
    name: Box<[u8]>,
    value: Box<[u8]>,
}

/// A weight canary taking rolls below `below` (and not below the previous
/// slice's bound).
#[derive(Debug, Clone)]
struct Slice {
    canary: usize,
    below: u128,
}

/// The compiled MSE decision for one route.
#[derive(Debug, Clone)]
pub(crate) struct MsePolicy {
    conditions: Vec<Condition>,
    cookies: Vec<CookieCondition>,
    slices: Vec<Slice>,
    /// The bound of the last slice: the share of traffic weights take.
    taken: u128,
    /// That share as an exact fraction `(numerator, denominator)`, capped
    /// at 1; `None` once it no longer fits (absurd totals), after which
    /// bounds are summed with at most one unit of rounding per canary.
    share: Option<(u128, u128)>,
}

impl Default for MsePolicy {
    fn default() -> Self {
        MsePolicy {
            conditions: Vec::new(),
            cookies: Vec::new(),
            slices: Vec::new(),
            taken: 0,
            share: Some((0, 1)),
        }
    }
}

impl MsePolicy {
    /// Adds canary number `canary`; returns its description.
    pub(crate) fn add(&mut self, canary: usize, a: &CanaryAnnotations) -> String {
        if a.is_match_canary() {
            self.add_match(canary, a)
        } else {
            self.add_weight(canary, a.weight(), a.weight_total())
        }
    }

    fn add_match(&mut self, canary: usize, a: &CanaryAnnotations) -> String {
        let mut parts = Vec::new();
        if let Some(name) = set(&a.header) {
            let (matcher, text) = value_condition(set(&a.header_value), set(&a.header_pattern));
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(header) => {
                    parts.push(format!("header {header} {text}"));
                    self.conditions.push(Condition {
                        canary,
                        source: Source::Header(header),
                        matcher,
                    });
                }
                Err(_) => parts.push(format!("header {name:?} (invalid name: never matches)")),
            }
        }
        if let Some(name) = set(&a.query) {
            let (matcher, text) = value_condition(set(&a.query_value), set(&a.query_pattern));
            parts.push(format!("query {name} {text}"));
            self.conditions.push(Condition {
                canary,
                source: Source::Query(Box::from(name.as_bytes())),
                matcher,
            });
        }
        if let Some(name) = set(&a.cookie) {
            let value = set(&a.cookie_value).unwrap_or("always");
            parts.push(format!("cookie {name} = {value}"));
            self.cookies.push(CookieCondition {
                canary,
                name: Box::from(name.as_bytes()),
                value: Box::from(value.as_bytes()),
            });
        }
        let mut text = parts.join(" or ");
        if a.weight.is_some() {
            text.push_str("; weight ignored (match canary)");
        }
        text
    }

    fn add_weight(&mut self, canary: usize, weight: u32, total: u32) -> String {
        let mut text = format!("weight {weight}/{total}");
        let (weight, total) = (u128::from(weight), u128::from(total.max(1)));
        // The canary takes the rolls r with r / 2^64 < weight / total ...
        let asked = (weight << 64).div_ceil(total);
        // ... on top of the earlier weight canaries, whose exact cumulative
        // share gives the bound without accumulating rounding.
        let exact = self
            .share
            .and_then(|(n, d)| add_fraction(n, d, weight, total));
        let (below, over) = match exact.and_then(|(share, over)| Some((threshold(share)?, over))) {
            Some((below, over)) => {
                self.share = exact.map(|(share, _)| share);
                (below, over)
            }
            None => {
                self.share = None;
                let sum = self.taken + asked;
                (sum.min(FULL), sum > FULL)
            }
        };
        let got = below - self.taken;
        if over {
            let percent = got as f64 / FULL as f64 * 100.0;
            text.push_str(&format!(" (only {percent:.2}% left by earlier canaries)"));
        }
        if got > 0 {
            self.slices.push(Slice { canary, below });
            self.taken = below;
        }
        text
    }

    /// The canary for this request, if any. Rolls only when the weights
    /// leave the outcome open.
    #[inline]
    pub(crate) fn decide(
        &self,
        req: &RequestView<'_>,
        roll: impl FnOnce() -> u64,
    ) -> Option<usize> {
        for c in &self.conditions {
            let value = match &c.source {
                Source::Header(name) => req.header(name),
                Source::Query(name) => req.query_param(name),
            };
            if let Some(value) = value {
                if c.matcher.test(value) == Some(true) {
                    return Some(c.canary);
                }
            }
        }
        for c in &self.cookies {
            if req.cookie(&c.name) == Some(&*c.value) {
                return Some(c.canary);
            }
        }
        let first = self.slices.first()?;
        if first.below == FULL {
            return Some(first.canary);
        }
        let r = u128::from(roll());
        self.slices.iter().find(|s| r < s.below).map(|s| s.canary)
    }
}

/// The matcher and description for a header or query condition: value (a
/// full match of `always|value`) wins over pattern (a search); neither means
/// the value `always`.
fn value_condition(value: Option<&str>, pattern: Option<&str>) -> (ValueMatcher, String) {
    let (matcher, text) = match (value, pattern) {
        (Some(value), _) => (
            ValueMatcher::mse_value(value),
            format!("= {}", mse_alternation(value)),
        ),
        (None, Some(pattern)) => (ValueMatcher::search(pattern), format!("~ {pattern}")),
        (None, None) => (ValueMatcher::always(), "= always".to_owned()),
    };
    if matches!(matcher, ValueMatcher::Invalid) {
        (matcher, format!("{text} (invalid regex: never matches)"))
    } else {
        (matcher, text)
    }
}

/// `n/d + w/t`, reduced and capped at 1, if it fits; and whether it was
/// over 1 before the cap.
fn add_fraction(n: u128, d: u128, w: u128, t: u128) -> Option<((u128, u128), bool)> {
    let num = n.checked_mul(t)?.checked_add(w.checked_mul(d)?)?;
    let den = d.checked_mul(t)?;
    if num >= den {
        return Some(((1, 1), num > den));
    }
    let g = gcd(num, den);
    Some(((num / g, den / g), false))
}

/// The smallest roll not taken by the share `n/d`: `ceil(n * 2^64 / d)`.
fn threshold((n, d): (u128, u128)) -> Option<u128> {
    Some(n.checked_mul(FULL)?.div_ceil(d))
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}
