//! Canary release decisions from nginx / MSE / Higress canary annotations.
//!
//! A *canary Ingress* (`canary: "true"`) names another Service on the same
//! host, path and pathType as a main Ingress; some requests go to it instead
//! of the main Service, chosen by a header, a cookie, a query parameter
//! (MSE) or a random weight. This crate does two jobs, both without knowing
//! anything about proxies or Kubernetes clients:
//!
//! 1. **At configuration time**, [`parse_canary`] / [`parse_canary_for`]
//!    read and validate an Ingress's annotations into [`CanaryAnnotations`]
//!    (the keys may use the `nginx.ingress.kubernetes.io/`,
//!    `mse.ingress.kubernetes.io/` or `higress.io/` prefix, see
//!    [`annotation`]), and a [`CanaryRouteBuilder`] compiles the canaries of
//!    one route into a [`CanaryRoute`]: header names, literal values and
//!    size-limited regexes, cumulative weight thresholds.
//! 2. **Per request**, [`CanaryRoute::decide`] picks the canary (or the main
//!    Service) from a [`RequestView`] without allocating or parsing, in well
//!    under a microsecond. Randomness comes from a closure, normally
//!    [`Dice::roll`], and is only drawn when weights decide.
//!
//! # Flavours
//!
//! Users bring annotations written for one of two gateways, which disagree,
//! so a route is compiled for one [`Flavour`]:
//!
//! - [`Flavour::Mse`] (default; Higress / MSE Ingress): any number of
//!   canaries per route. One with a header, cookie or query key is a *match
//!   canary*, otherwise a *weight canary*. Header/query conditions of all
//!   match canaries are tried first (in the order added), then their cookie
//!   conditions; a header or query value is an RE2-style full match of
//!   `always|<value>`, a pattern an unanchored search, a bare key means
//!   `always`; a cookie must equal `always` (or `canary-by-cookie-value`).
//!   Traffic that matched nothing is split by the weight canaries, each
//!   taking `weight/total` of it (exact fractions, unlike Higress's whole
//!   percents), the main Service the rest.
//! - [`Flavour::Nginx`] (ingress-nginx): one canary per route, combining
//!   header (exact value, pattern, or `always`/`never`), then cookie
//!   (`always`/`never`), then weight (a total below 100 counts as 100), with
//!   ingress-nginx's early exits.
//!
//! # Use from a Pingora proxy
//!
//! Build one [`CanaryRoute`] per route when loading configuration and keep
//! it beside the route's main target. In `upstream_peer` (or
//! `request_filter`), view the request with
//! `RequestView::from_parts(session.req_header())` (Pingora's request
//! header dereferences to [`http::request::Parts`]) and pick the upstream.
//! If the chosen canary has no healthy endpoint, fall back to the main
//! Service. The same flow, without Pingora:
//!
//! ```
//! use std::collections::BTreeMap;
//! use fleetgate_canary::{parse_canary_for, CanaryRoute, CanaryRouteBuilder, Dice, Flavour, RequestView};
//!
//! // Configuration time: two canary Ingresses on the route of "web".
//! let flavour: Flavour = "mse".parse().unwrap();
//! let ingresses = [
//!     ("shop/web-by-header", [("mse.ingress.kubernetes.io/canary-by-header", "x-env")], "web-gray"),
//!     ("shop/web-weight", [("nginx.ingress.kubernetes.io/canary-weight", "10")], "web-v2"),
//! ];
//! let mut builder = CanaryRouteBuilder::new(flavour);
//! for (name, keys, service) in ingresses {
//!     let mut annotations: BTreeMap<String, String> = keys
//!         .iter()
//!         .map(|(k, v)| (k.to_string(), v.to_string()))
//!         .collect();
//!     annotations.insert("nginx.ingress.kubernetes.io/canary".into(), "true".into());
//!     let canary = parse_canary_for(&annotations, flavour)?.expect("a canary");
//!     builder.add(name, &canary, service)?;
//! }
//! let route: CanaryRoute<&str> = builder.build();
//! let dice = Dice::default();
//!
//! // Request time (in Pingora: RequestView::from_parts(session.req_header())).
//! let pick = |request: &http::Request<()>| {
//!     let (parts, ()) = request.clone().into_parts();
//!     let view = RequestView::from_parts(&parts);
//!     match route.decide(&view, || dice.roll()) {
//!         Some(i) => *route.target(i),
//!         None => "web",
//!     }
//! };
//! let gray = http::Request::builder().uri("/").header("x-env", "always").body(())?;
//! assert_eq!(pick(&gray), "web-gray");
//! let plain = http::Request::builder().uri("/").body(())?;
//! assert!(["web", "web-v2"].contains(&pick(&plain)));
//!
//! for (ingress, what) in route.describe() {
//!     println!("{ingress}: {what}"); // shop/web-weight: weight 10/100
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod annotations;
mod dice;
mod flavour;
mod keys;
mod matchers;
mod mse;
mod nginx;
mod request;
mod route;

#[cfg(test)]
mod tests;

pub use annotations::{
    parse_canary, parse_canary_for, AnnotationError, CanaryAnnotations, BY_COOKIE, BY_COOKIE_VALUE,
    BY_HEADER, BY_HEADER_PATTERN, BY_HEADER_VALUE, BY_QUERY, BY_QUERY_PATTERN, BY_QUERY_VALUE,
    CANARY, DEFAULT_WEIGHT_TOTAL, WEIGHT, WEIGHT_TOTAL,
};
pub use dice::Dice;
pub use flavour::{Flavour, UnknownFlavour};
pub use keys::{
    annotation, annotation_in, KeyScope, HIGRESS_PREFIX, MSE_ONLY_KEYS, MSE_PREFIX, NGINX_PREFIX,
    PREFIXES,
};
pub use matchers::REGEX_SIZE_LIMIT;
pub use request::RequestView;
pub use route::{CanaryConflict, CanaryRoute, CanaryRouteBuilder};
