//! The ingress-nginx flavour: one canary per route, header then cookie then
//! weight.
//!
//! This mirrors the order and the early exits of ingress-nginx's balancer
//! (`route_to_alternative_balancer`), including its surprises, because users
//! migrating from it rely on them: a configured header value makes `always`
//! and `never` ordinary strings; `never` stops the later steps; a pattern that
//! fails at request time sends the request to the main Service; a weight total
//! below 100 counts as 100.

use http::HeaderName;

use crate::annotations::{
    set, CanaryAnnotations, BY_COOKIE_VALUE, BY_QUERY, BY_QUERY_PATTERN, BY_QUERY_VALUE,
};
use crate::matchers::ValueMatcher;
use crate::request::RequestView;

/// What a present canary header is tested against.
#[derive(Debug, Clone)]
enum HeaderRule {
    /// `canary-by-header-value`: equal -> canary, else fall through.
    Value(Box<[u8]>),
    /// `canary-by-header-pattern`: a match -> canary; a regex that does not
    /// compile -> main Service and stop; else fall through.
    Pattern(ValueMatcher),
    /// Neither: `always` -> canary, `never` -> main and stop.
    AlwaysNever,
}

/// Why a decision ended, for the three-way steps.
enum Step {
    Canary,
    Main,
    Next,
}

/// The compiled ingress-nginx decision for the one canary of a route.
#[derive(Debug, Clone)]
pub(crate) struct NginxPolicy {
    header: Option<(HeaderName, HeaderRule)>,
    cookie: Option<Box<[u8]>>,
    weight: u32,
    /// `canary-weight-total`, raised to 100 when below.
    total: u32,
}

impl NginxPolicy {
    /// Compiles a canary; returns it with its description.
    pub(crate) fn new(a: &CanaryAnnotations) -> (Self, String) {
        let mut parts = Vec::new();
        let header = set(&a.header).and_then(|name| {
            let rule = match (set(&a.header_value), set(&a.header_pattern)) {
                (Some(value), _) => {
                    parts.push(format!("header {name} = {value}"));
                    HeaderRule::Value(Box::from(value.as_bytes()))
                }
                (None, Some(pattern)) => {
                    let matcher = ValueMatcher::search(pattern);
                    if matches!(matcher, ValueMatcher::Invalid) {
                        parts.push(format!("header {name} ~ {pattern} (invalid regex: main)"));
                    } else {
                        parts.push(format!("header {name} ~ {pattern}"));
                    }
                    HeaderRule::Pattern(matcher)
                }
                (None, None) => {
                    parts.push(format!("header {name} = always/never"));
                    HeaderRule::AlwaysNever
                }
            };
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(header) => Some((header, rule)),
                Err(_) => {
                    parts.push(format!("(invalid header name {name:?}: never present)"));
                    None
                }
            }
        });
        let cookie = set(&a.cookie).map(|name| {
            parts.push(format!("cookie {name} = always/never"));
            Box::from(name.as_bytes())
        });
        let (weight, asked) = (a.weight(), a.weight_total());
        let total = asked.max(100);
        if weight > 0 || parts.is_empty() {
            let mut text = format!("weight {weight}/{total}");
            if asked < total {
                text.push_str(&format!(" (total {asked} counts as 100)"));
            }
            parts.push(text);
        }
        let mut text = parts.join(", then ");
        let ignored: Vec<&str> = [
            (BY_COOKIE_VALUE, &a.cookie_value),
            (BY_QUERY, &a.query),
            (BY_QUERY_VALUE, &a.query_value),
            (BY_QUERY_PATTERN, &a.query_pattern),
        ]
        .into_iter()
        .filter(|(_, field)| set(field).is_some())
        .map(|(key, _)| key)
        .collect();
        if !ignored.is_empty() {
            text.push_str(&format!(
                "; ignored in nginx flavour: {}",
                ignored.join(", ")
            ));
        }
        let policy = NginxPolicy {
            header,
            cookie,
            weight,
            total,
        };
        (policy, text)
    }

    fn header_step(&self, req: &RequestView<'_>) -> Step {
        let Some((name, rule)) = &self.header else {
            return Step::Next;
        };
        let Some(value) = req.header(name) else {
            return Step::Next;
        };
        match rule {
            HeaderRule::Value(expected) if **expected == *value => Step::Canary,
            HeaderRule::Value(_) => Step::Next,
            HeaderRule::Pattern(matcher) => match matcher.test(value) {
                Some(true) => Step::Canary,
                Some(false) => Step::Next,
                None => Step::Main,
            },
            HeaderRule::AlwaysNever => always_never(value),
        }
    }

    fn cookie_step(&self, req: &RequestView<'_>) -> Step {
        match self.cookie.as_deref().and_then(|name| req.cookie(name)) {
            Some(value) => always_never(value),
            None => Step::Next,
        }
    }

    /// Whether the request goes to the canary. Rolls only when the weight
    /// step is reached and the weight is neither 0 nor the whole total.
    #[inline]
    pub(crate) fn decide(&self, req: &RequestView<'_>, roll: impl FnOnce() -> u64) -> bool {
        match self.header_step(req) {
            Step::Canary => return true,
            Step::Main => return false,
            Step::Next => {}
        }
        match self.cookie_step(req) {
            Step::Canary => return true,
            Step::Main => return false,
            Step::Next => {}
        }
        if self.weight == 0 {
            return false;
        }
        if self.weight >= self.total {
            return true;
        }
        // ingress-nginx: math.random(total) <= weight, with random in 1..=total.
        let pick = ((u128::from(roll()) * u128::from(self.total)) >> 64) as u32 + 1;
        pick <= self.weight
    }
}

fn always_never(value: &[u8]) -> Step {
    match value {
        b"always" => Step::Canary,
        b"never" => Step::Main,
        _ => Step::Next,
    }
}
