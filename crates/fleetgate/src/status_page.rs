//! The status page: `/` on the admin listener, for operators who look at
//! a page (as HAProxy's stats page or Traefik's dashboard).
//!
//! Three static files, compiled into the binary (no external asset, so it
//! works on a gateway with no way out): the page, its script and its
//! style. They hold no data and are served without the token; the script
//! fetches `/status` (state, clusters, reloads) and `/traffic` (request
//! counters per route, target and cluster) every two seconds, with the
//! token the operator typed in when the API has one (kept in the tab's
//! session storage only), and shows each route's live split from the
//! difference between two readings. It only reads: no button of the page
//! changes anything.

use std::collections::BTreeMap;

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::state::GatewayState;

const INDEX: &str = include_str!("status_page/index.html");
const SCRIPT: &str = include_str!("status_page/page.js");
const STYLE: &str = include_str!("status_page/page.css");

/// Whether `path` is one of the page's files.
pub fn is_page_file(path: &str) -> bool {
    matches!(path, "/" | "/ui/page.js" | "/ui/page.css")
}

/// One of the page's files, with headers that keep it to itself: nothing
/// from elsewhere runs in it, and no other site can frame it.
pub fn file(path: &str) -> Response<Vec<u8>> {
    let (content_type, body) = match path {
        "/ui/page.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/ui/page.css" => ("text/css; charset=utf-8", STYLE),
        _ => ("text/html; charset=utf-8", INDEX),
    };
    let mut response =
        crate::admin::respond(StatusCode::OK, content_type, body.as_bytes().to_vec());
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.insert(name, http::HeaderValue::from_static(value));
    }
    response
}

/// Requests so far per target and cluster, from the request counters
/// (`counters`: ingress, service, target, cluster, requests), and each
/// route's targets (`targets`: route, ingress, service, target), so the
/// page can group a canary with its route and list idle routes too.
pub fn traffic(state: &GatewayState) -> Value {
    let mut counts: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
    for family in prometheus::core::Collector::collect(&state.metrics.requests) {
        for metric in family.get_metric() {
            let label = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map_or_else(String::new, |l| l.value().to_string())
            };
            let key = (
                label("ingress"),
                label("service"),
                label("target"),
                label("cluster"),
            );
            // Counters hold whole numbers.
            *counts.entry(key).or_default() += metric.get_counter().get_value() as u64;
        }
    }
    let rows: Vec<Value> = counts
        .into_iter()
        .map(|((ingress, service, target, cluster), requests)| {
            json!({ "ingress": ingress, "service": service, "target": target, "cluster": cluster, "requests": requests })
        })
        .collect();
    // Each route's targets, with the route's (main) Ingress: a canary's
    // counters carry the canary Ingress's name.
    let snapshot = state.snapshot.load();
    let mut seen = std::collections::HashSet::new();
    let mut targets: Vec<Value> = Vec::new();
    for route in snapshot.router.routes() {
        for t in route.targets() {
            if seen.insert((&*route.ingress, &*t.ingress, &*t.service, t.canary)) {
                targets.push(json!({
                    "route": &*route.ingress,
                    "ingress": &*t.ingress,
                    "service": &*t.service,
                    "target": if t.canary { "canary" } else { "main" },
                }));
            }
        }
    }
    json!({ "generation": state.generation(), "counters": rows, "targets": targets })
}
