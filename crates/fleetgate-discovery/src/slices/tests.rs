use super::*;

fn slice(yaml: &str) -> Slice {
    let s: EndpointSlice = serde_yaml_ng::from_str(yaml).expect("test slice parses");
    Slice::from_endpoint_slice(s, "default")
        .expect("valid slice")
        .expect("slice of a Service")
}

const HEAD: &str = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n  labels: { kubernetes.io/service-name: web }\n";

fn v4(ports: &str, endpoints: &str) -> Slice {
    slice(&format!(
        "{HEAD}addressType: IPv4\nports: {ports}\nendpoints:\n{endpoints}"
    ))
}

fn addresses(found: &ServiceEndpoints) -> Vec<String> {
    found
        .endpoints
        .iter()
        .map(|e| e.address.to_string())
        .collect()
}

#[test]
fn conditions_follow_kube_proxy() {
    let s = v4(
        "[{ port: 8080 }]",
        "  - { addresses: [10.0.0.1], conditions: { ready: true } }\n\
         \x20 - { addresses: [10.0.0.2] }\n\
         \x20 - { addresses: [10.0.0.3], conditions: { ready: false, serving: true, terminating: true } }\n\
         \x20 - { addresses: [10.0.0.4], conditions: { ready: false, serving: false, terminating: true } }\n\
         \x20 - { addresses: [10.0.0.5], conditions: { ready: false } }\n",
    );
    let found = service_endpoints([&s], None, AddressFamily::Ipv4);
    let got: Vec<(String, Condition)> = found
        .endpoints
        .iter()
        .map(|e| (e.address.to_string(), e.condition))
        .collect();
    assert_eq!(
        got,
        vec![
            ("10.0.0.1:8080".to_string(), Condition::Ready),
            ("10.0.0.2:8080".to_string(), Condition::Ready),
            ("10.0.0.3:8080".to_string(), Condition::Terminating),
        ]
    );
}

#[test]
fn ports_are_matched_by_name() {
    let s = v4(
        "[{ name: http, port: 8080 }, { name: metrics, port: 9090 }, { name: dns, port: 53, protocol: UDP }]",
        "  - { addresses: [10.0.0.1] }\n",
    );
    assert_eq!(
        addresses(&service_endpoints(
            [&s],
            Some("metrics"),
            AddressFamily::Ipv4
        )),
        ["10.0.0.1:9090"]
    );
    let none = service_endpoints([&s], None, AddressFamily::Ipv4);
    assert!(
        none.endpoints.is_empty(),
        "two TCP ports: an unnamed Service port matches neither"
    );
    assert_eq!(
        none.unmatched_port_names
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["http", "metrics"]
    );
    assert!(
        service_endpoints([&s], Some("dns"), AddressFamily::Ipv4)
            .endpoints
            .is_empty(),
        "UDP ports are not proxied"
    );
    let single = v4(
        "[{ name: web, port: 8080 }]",
        "  - { addresses: [10.0.0.1] }\n",
    );
    assert_eq!(
        addresses(&service_endpoints([&single], None, AddressFamily::Ipv4)),
        ["10.0.0.1:8080"],
        "an unnamed Service port takes the only TCP port"
    );
}

#[test]
fn a_pod_in_two_slices_counts_once_and_ready_wins() {
    let a = v4("[{ port: 80 }]", "  - { addresses: [10.0.0.1], conditions: { ready: false, serving: true, terminating: true } }\n");
    let b = v4(
        "[{ port: 80 }]",
        "  - { addresses: [10.0.0.1] }\n  - { addresses: [10.0.0.2] }\n",
    );
    let found = service_endpoints([&a, &b], None, AddressFamily::Ipv4);
    assert_eq!(addresses(&found), ["10.0.0.1:80", "10.0.0.2:80"]);
    assert_eq!(found.endpoints[0].condition, Condition::Ready);
}

#[test]
fn dual_stack_uses_one_family() {
    let four = v4("[{ port: 80 }]", "  - { addresses: [10.0.0.1] }\n");
    let six = slice(&format!(
        "{HEAD}addressType: IPv6\nports: [{{ port: 80 }}]\nendpoints:\n  - {{ addresses: [\"fd00::1\"] }}\n"
    ));
    let found = service_endpoints([&four, &six], None, AddressFamily::Ipv4);
    assert_eq!(addresses(&found), ["10.0.0.1:80"]);
    assert_eq!(found.family, Some(AddressFamily::Ipv4));
    let found = service_endpoints([&four, &six], None, AddressFamily::Ipv6);
    assert_eq!(addresses(&found), ["[fd00::1]:80"]);
    // The preferred family has nothing serving: the other one is used.
    let empty_six = slice(&format!(
        "{HEAD}addressType: IPv6\nports: [{{ port: 80 }}]\nendpoints: []\n"
    ));
    let found = service_endpoints([&four, &empty_six], None, AddressFamily::Ipv6);
    assert_eq!(addresses(&found), ["10.0.0.1:80"]);
}

#[test]
fn zone_hints_and_node_become_labels() {
    let s = v4(
        "[{ port: 80 }]",
        "  - addresses: [10.0.0.1]\n    zone: zone-a\n    nodeName: node-7\n    hints: { forZones: [{ name: zone-a }, { name: zone-b }] }\n",
    );
    let e = &service_endpoints([&s], None, AddressFamily::Ipv4).endpoints[0];
    assert_eq!(e.zone.as_deref(), Some("zone-a"));
    assert_eq!(e.labels[ZONE_LABEL], "zone-a");
    assert_eq!(e.labels[ZONE_HINTS_LABEL], "zone-a,zone-b");
    assert_eq!(e.labels[NODE_LABEL], "node-7");
}

#[test]
fn bad_slices_say_which_field() {
    let parse = |yaml: &str| {
        let s: EndpointSlice = serde_yaml_ng::from_str(yaml).expect("parses");
        Slice::from_endpoint_slice(s, "default")
    };
    let err = parse(&format!(
        "{HEAD}addressType: IPv4\nendpoints:\n  - {{ addresses: [\"fd00::1\"] }}\n"
    ))
    .unwrap_err();
    assert!(
        err.contains("endpoints[0].addresses[0]") && err.contains("not an ipv4 address"),
        "{err}"
    );
    let err = parse(&format!(
        "{HEAD}addressType: IPv4\nendpoints:\n  - {{ addresses: [pod-a] }}\n"
    ))
    .unwrap_err();
    assert!(err.contains("\"pod-a\" is not an IP address"), "{err}");
    let err = parse(&format!(
        "{HEAD}addressType: IPv4\nports: [{{ port: 70000 }}]\nendpoints: []\n"
    ))
    .unwrap_err();
    assert!(err.contains("ports[0].port 70000 is out of range"), "{err}");
    let err = parse(&format!("{HEAD}addressType: Unix\nendpoints: []\n")).unwrap_err();
    assert!(err.contains("addressType"), "{err}");
    // Not a Service's, or FQDN: nothing to route to, not an error.
    let unowned = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: x }\naddressType: IPv4\nendpoints: []\n";
    assert_eq!(parse(unowned), Ok(None));
    assert_eq!(
        parse(&format!("{HEAD}addressType: FQDN\nendpoints: []\n")),
        Ok(None)
    );
}

#[test]
fn legacy_endpoints_read_as_slices() {
    let e: Endpoints = serde_yaml_ng::from_str(
        "apiVersion: v1\nkind: Endpoints\nmetadata: { name: web, namespace: shop }\nsubsets:\n\
         - addresses: [{ ip: 10.0.0.1, nodeName: n1 }, { ip: \"fd00::1\" }]\n\
         \x20 notReadyAddresses: [{ ip: 10.0.0.9 }]\n\
         \x20 ports: [{ name: http, port: 8080 }]\n",
    )
    .expect("parses");
    let slices = Slice::from_endpoints(e, "default").expect("valid");
    assert_eq!(slices.len(), 2, "one per family");
    assert!(slices
        .iter()
        .all(|s| s.service == "web" && s.namespace == "shop"));
    let found = service_endpoints(&slices, Some("http"), AddressFamily::Ipv4);
    assert_eq!(
        addresses(&found),
        ["10.0.0.1:8080"],
        "not-ready addresses are left out"
    );
}
