//! The canary annotation parsers of both flavours, on `key=value` lines;
//! what parses is also built into a route and asked for a decision.

#![no_main]

use std::collections::BTreeMap;

use fleetgate_canary::{parse_canary_for, CanaryRouteBuilder, Flavour, RequestView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let annotations: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let key = if k.contains('/') {
                k.to_string()
            } else {
                format!("nginx.ingress.kubernetes.io/{k}")
            };
            (key, v.to_string())
        })
        .collect();
    let request = http::Request::builder()
        .uri("/?user=a")
        .header("x-canary", "always")
        .header("cookie", "canary=always")
        .body(())
        .expect("a valid request");
    let (parts, ()) = request.into_parts();
    let view = RequestView::from_parts(&parts);
    for flavour in [Flavour::Mse, Flavour::Nginx] {
        if let Ok(Some(canary)) = parse_canary_for(&annotations, flavour) {
            let mut builder = CanaryRouteBuilder::new(flavour);
            let _ = builder.add("fuzz/canary", &canary, 1u32);
            let route = builder.build();
            let _ = route.decide(&view, || 42);
            let _ = route.describe();
        }
    }
});
