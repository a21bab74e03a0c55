//! The Ingress host and path matcher: rules from the input (one per line,
//! `host path type`), then a lookup of the first line's host and path, raw
//! and normalised.

#![no_main]

use std::borrow::Cow;

use fleetgate_ingress::{
    normalize_path, normalize_request_host, validate_path, HostPattern, PathType, RouteTableBuilder,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let Some(request) = lines.next() else {
        return;
    };
    let (host, path) = request.split_once(' ').unwrap_or((request, "/"));
    let mut builder = RouteTableBuilder::new();
    for (i, rule) in lines.enumerate().take(64) {
        let mut fields = rule.split(' ');
        let (Some(h), Some(p), t) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let pattern = if h == "*" {
            HostPattern::Any
        } else {
            match HostPattern::parse(h) {
                Ok(p) => p,
                Err(_) => continue,
            }
        };
        let path_type = match t {
            Some("exact") => PathType::Exact,
            Some("impl") => PathType::ImplementationSpecific,
            _ => PathType::Prefix,
        };
        if validate_path(p, path_type).is_ok() {
            let _ = builder.add_path(&pattern, p, path_type, i);
        }
    }
    let table = builder.build();
    let _ = table.lookup(host, path);
    let mut buf = [0u8; 256];
    let _ = normalize_request_host(host, &mut buf);
    for merge in [false, true] {
        if let Ok(normal) = normalize_path(path, merge) {
            // Normalising is idempotent, and what it returns is a path.
            assert!(normal.starts_with('/'));
            let again = normalize_path(&normal, merge).expect("a normal path normalises");
            assert_eq!(again, Cow::Borrowed(&*normal));
            let _ = table.lookup(host, &normal);
        }
    }
});
