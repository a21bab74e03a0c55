//! End to end: zone-aware routing. A gateway that knows its zone keeps a
//! Service's traffic there while the zone is healthy, whatever the pod
//! counts elsewhere, and crosses zones when it is not.

use std::time::Duration;

use fleetgate_e2e::config::{header, host_ingress, listen_addr, manifests, seed, service};
use fleetgate_e2e::{
    assert_none_failed, fleetgate_cli, Backend, Gateway, HttpClient, Load, TempDir,
};

/// Health checks every 300 ms, one failure marks an endpoint down.
const FAST_HEALTH: &str = r#"
prefer_zone = "local"

[service.health_check]
kind = "http"
path = "/healthz"
interval = "300ms"
timeout = "200ms"
healthy_threshold = 1
unhealthy_threshold = 1
"#;

/// One pod in the gateway's zone (zone-a, cluster c7fb82a1) and three in
/// zone-b: the local pod takes everything; when it dies, zone-b takes
/// over with no failed request; `routes` shows the tiers.
#[test]
fn local_zone_first_then_the_others() {
    let mut local = Backend::start("cluster-demo-1");
    let remote: Vec<Backend> = (0..3).map(|_| Backend::start("cluster-demo-2")).collect();
    let mut eps = vec![("c7fb82a1", &local)];
    eps.extend(remote.iter().map(|b| ("cd3007b2", b)));
    let listen = listen_addr();
    let dir = TempDir::new("zones");
    let config = format!(
        "{}{}{}",
        header(listen, "zone = \"zone-a\""),
        service("web", 80, &eps, FAST_HEALTH),
        manifests(&[dir.write(
            "ing.yaml",
            &host_ingress("web", "zones.example", "web", None, &[])
        )])
    );
    let config_path = dir.write("gw.toml", &config);
    let (_, table) = fleetgate_cli(&["routes", "-c", config_path.to_str().unwrap()]);
    assert!(
        table.contains("zone zone-a: c7fb82a1=1; then other zones: cd3007b2=3"),
        "{table}"
    );

    let gw = Gateway::start(&config_path, listen);
    let c = HttpClient::new(gw.addr).tally("zones.example", "/", &[], 40);
    assert_eq!(
        c.get("cluster-demo-1"),
        Some(&40),
        "local first despite 1:3 pods: {c:?}"
    );

    let load = Load::start(
        gw.addr,
        "zones.example",
        "/",
        &[],
        3,
        Duration::from_millis(10),
    );
    std::thread::sleep(Duration::from_millis(500));
    local.kill();
    gw.wait_for_log("is unhealthy", 1, Duration::from_secs(5))
        .expect("the local pod is marked down");
    std::thread::sleep(Duration::from_millis(500));
    let samples = load.stop();
    assert_none_failed(&samples, 100);
    let c = HttpClient::new(gw.addr).tally("zones.example", "/", &[], 30);
    assert_eq!(c.get("cluster-demo-2"), Some(&30), "crossed zones: {c:?}");
}

/// With a subset too, the subset comes first and the zone within it: from
/// a zone-b gateway, the route pinned to cluster-demo-1 (zone-a) stays
/// there, and the rest of the Service is ordered local first.
#[test]
fn subsets_come_before_zones() {
    let a = Backend::start("cluster-demo-1");
    let b = Backend::start("cluster-demo-2");
    let listen = listen_addr();
    let dir = TempDir::new("zones-subset");
    let config = format!(
        "{}{}{}",
        header(listen, "zone = \"zone-b\""),
        service(
            "service1",
            80,
            &[("c7fb82a1", &a), ("cd3007b2", &b)],
            "prefer_zone = \"local\"\n"
        ),
        manifests(&[seed("ingress-demo-cluster-one.yaml")])
    );
    let config_path = dir.write("gw.toml", &config);
    let (_, table) = fleetgate_cli(&["routes", "-c", config_path.to_str().unwrap()]);
    let subset = "subset cluster-demo-1 (topology.istio.io/cluster=c7fb82a1)";
    assert!(
        table.contains(&format!("{subset} in zone zone-b: (none); then {subset} in other zones: c7fb82a1=1; then the rest in zone zone-b: cd3007b2=1; then the rest in other zones: (none)")),
        "{table}"
    );
    let gw = Gateway::start(&config_path, listen);
    let c = HttpClient::new(gw.addr).tally("example.com", "/service1", &[], 20);
    assert_eq!(
        c.get("cluster-demo-1"),
        Some(&20),
        "the subset wins over the zone: {c:?}"
    );
}

/// `prefer_zone = "local"` without `[gateway] zone` is refused, saying
/// what is missing.
#[test]
fn a_zone_preference_needs_the_gateway_zone() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("zones-refused");
    let config = format!(
        "{}{}",
        header(listen, ""),
        service("web", 80, &[("c7fb82a1", &a)], "prefer_zone = \"local\"\n"),
    );
    let config_path = dir.write("gw.toml", &config);
    let (code, text) = fleetgate_cli(&["check", "-c", config_path.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("prefer_zone = \"local\" (on gateway-demo/web:80) needs [gateway] zone"),
        "{text}"
    );
}
