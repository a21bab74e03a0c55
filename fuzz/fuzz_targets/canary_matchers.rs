//! The canary matchers (header, cookie, query; exact and regex) against
//! requests from the input: the first lines are annotations (`key=value`)
//! up to an empty line, then a target, then `name: value` headers.

#![no_main]

use std::collections::BTreeMap;

use fleetgate_canary::{parse_canary_for, CanaryRouteBuilder, Flavour, RequestView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (annotation_text, request_text) = text.split_once("\n\n").unwrap_or((text, ""));
    let annotations: BTreeMap<String, String> = annotation_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string()))
        .collect();
    let mut lines = request_text.lines();
    let mut request = http::Request::builder().uri(lines.next().unwrap_or("/"));
    for line in lines.take(32) {
        if let Some((name, value)) = line.split_once(": ") {
            request = request.header(name, value);
        }
    }
    let Ok(request) = request.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let view = RequestView::from_parts(&parts);
    for flavour in [Flavour::Mse, Flavour::Nginx] {
        if let Ok(Some(canary)) = parse_canary_for(&annotations, flavour) {
            let mut builder = CanaryRouteBuilder::new(flavour);
            let _ = builder.add("fuzz/a", &canary, 0u32);
            let _ = builder.add("fuzz/b", &canary, 1u32);
            let route = builder.build();
            for roll in [0, 1, 99, u64::MAX] {
                if let Some(i) = route.decide(&view, || roll) {
                    assert!(route.get(i).is_some());
                }
            }
        }
    }
});
