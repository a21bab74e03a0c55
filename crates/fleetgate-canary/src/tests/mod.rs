//! Table tests of the canary rules, per flavour,
//! plus annotation parsing. Helpers shared by the tables live here.

mod mse;
mod nginx;
mod parse;

use std::cell::Cell;
use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::keys::{MSE_PREFIX, NGINX_PREFIX};
use crate::{
    parse_canary, CanaryAnnotations, CanaryRoute, CanaryRouteBuilder, Flavour, RequestView,
};

/// Annotations from full keys.
fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A canary from short keys, parsed like a real Ingress: shared keys under
/// the nginx prefix, MSE-only keys under the MSE prefix.
fn canary(keys: &[(&str, &str)]) -> CanaryAnnotations {
    let mut full = annotations(&[("nginx.ingress.kubernetes.io/canary", "true")]);
    for (key, value) in keys {
        let prefix = match crate::KeyScope::of(key) {
            crate::KeyScope::Shared => NGINX_PREFIX,
            crate::KeyScope::MseOnly => MSE_PREFIX,
        };
        full.insert(format!("{prefix}{key}"), value.to_string());
    }
    parse_canary(&full)
        .expect("test canary parses")
        .expect("test canary is a canary")
}

/// A route of the given canaries, targets are their indices.
fn route(flavour: Flavour, canaries: &[CanaryAnnotations]) -> CanaryRoute<usize> {
    let mut builder = CanaryRouteBuilder::new(flavour);
    for (i, c) in canaries.iter().enumerate() {
        builder
            .add(&format!("ns/canary-{i}"), c, i)
            .expect("no conflict");
    }
    builder.build()
}

/// A request: headers (name, value) in order, and a raw query.
struct Req {
    headers: HeaderMap,
    query: Option<String>,
}

impl Req {
    fn new(headers: &[(&str, &str)], query: Option<&str>) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        Req {
            headers: map,
            query: query.map(str::to_owned),
        }
    }

    fn view(&self) -> RequestView<'_> {
        RequestView {
            headers: &self.headers,
            query: self.query.as_deref(),
        }
    }
}

/// Decides with a fixed roll; returns the decision and whether it rolled.
fn decide_with(route: &CanaryRoute<usize>, req: &Req, roll: u64) -> (Option<usize>, bool) {
    let rolled = Cell::new(0u32);
    let decision = route.decide(&req.view(), || {
        rolled.set(rolled.get() + 1);
        roll
    });
    assert!(rolled.get() <= 1, "rolled more than once");
    (decision, rolled.get() == 1)
}

/// The smallest roll that is at or above `fraction` = num/den of the range.
fn at(num: u128, den: u128) -> u64 {
    let threshold = (num << 64).div_ceil(den);
    u64::try_from(threshold).unwrap_or(u64::MAX)
}
