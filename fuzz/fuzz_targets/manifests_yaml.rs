//! The Kubernetes manifest parser (Ingress, Service, Secret, List) on
//! arbitrary text.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = fleetgate_config::parse_manifests("fuzz.yaml".as_ref(), text, "default");
});
