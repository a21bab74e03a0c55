//! End to end: endpoints that come from where they live. EndpointSlice
//! files per cluster, rewritten under load and picked up by `--watch`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use fleetgate_e2e::config::listen_addr;
use fleetgate_e2e::{
    assert_none_failed, free_port, Backend, Gateway, HttpClient, Load, Sample, TempDir,
};
use serde_json::Value;

/// The pool of Service gateway-demo/web port 80.
const WEB: &str = "gateway-demo/web:80";

/// An endpoint of a test slice: its loopback address and its conditions.
#[derive(Clone, Copy)]
enum Pod {
    Ready(&'static str),
    Terminating(&'static str),
}

/// An EndpointSlice of Service gateway-demo/web with one unnamed port.
fn slice_yaml(name: &str, port: u16, zone: &str, pods: &[Pod]) -> String {
    let mut out = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  namespace: gateway-demo\n  labels:\n    kubernetes.io/service-name: web\naddressType: IPv4\nports:\n  - port: {port}\n    protocol: TCP\nendpoints:\n"
    );
    if pods.is_empty() {
        out = out.replace("endpoints:\n", "endpoints: []\n");
    }
    for pod in pods {
        let (ip, conditions) = match pod {
            Pod::Ready(ip) => (ip, "ready: true, serving: true, terminating: false"),
            Pod::Terminating(ip) => (ip, "ready: false, serving: true, terminating: true"),
        };
        out.push_str(&format!(
            "  - addresses: [\"{ip}\"]\n    conditions: {{ {conditions} }}\n    zone: {zone}\n"
        ));
    }
    out
}

/// Replaces `path` in one step (write aside, rename), as a tool that
/// exports slices should.
fn replace(path: &Path, text: &str) {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, text).expect("write slice file");
    std::fs::rename(&aside, path).expect("rename slice file");
}

/// Two clusters whose endpoints come from one slice file each; Service
/// gateway-demo/web port 80 with HTTP health checks; example.com/ to it.
fn config(listen: std::net::SocketAddr, admin: u16) -> String {
    format!(
        r#"
[gateway]
name = "discovery"
listen = ["{listen}"]
ingress_class = "mse"

[admin]
listen = "127.0.0.1:{admin}"

[log]
access = "off"

[[cluster]]
id = "c1"
zone = "zone-a"
endpoint_slices = ["slices/c1.yaml"]

[[cluster]]
id = "c2"
zone = "zone-b"
endpoint_slices = ["slices/c2-*.yaml"]

[[service]]
namespace = "gateway-demo"
name = "web"
port = 80

[service.health_check]
kind = "http"
path = "/"
interval = "200ms"
timeout = "200ms"

[[ingress]]
namespace = "gateway-demo"
name = "web"
class = "mse"
rules = [{{ host = "example.com", paths = [{{ path = "/", type = "Prefix", service = "web", port = 80 }}] }}]
"#
    )
}

/// Who answered the samples sent in `from..to` after the load started.
fn answers(samples: &[Sample], from: Duration, to: Duration) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in samples.iter().filter(|s| s.at >= from && s.at < to) {
        if let Ok(body) = &s.result {
            *out.entry(body.clone()).or_default() += 1;
        }
    }
    out
}

/// Slice files rewritten under load, picked up by `--watch`: scaling up,
/// a pod terminating (it drains, new requests go elsewhere), a pod dying
/// (its health state survives the next change), a cluster scaled to zero
/// (traffic moves to the other). No request fails.
#[test]
fn endpoint_slice_files_follow_the_clusters_under_load() {
    let port = free_port();
    let pods = [
        "127.0.0.11",
        "127.0.0.12",
        "127.0.0.13",
        "127.0.0.21",
        "127.0.0.22",
    ];
    let mut backends: BTreeMap<&str, Backend> = pods
        .iter()
        .map(|ip| {
            (
                *ip,
                Backend::start_on(&format!("pod-{ip}"), &format!("{ip}:{port}")),
            )
        })
        .collect();
    let dir = TempDir::new("discovery-files");
    std::fs::create_dir_all(dir.path().join("slices")).expect("slices dir");
    let c1 = dir.path().join("slices/c1.yaml");
    let c2 = dir.path().join("slices/c2-a.yaml");
    use Pod::*;
    replace(
        &c1,
        &slice_yaml(
            "web-c1",
            port,
            "zone-a",
            &[
                Ready("127.0.0.11"),
                Ready("127.0.0.12"),
                Ready("127.0.0.13"),
            ],
        ),
    );
    replace(
        &c2,
        &slice_yaml("web-c2", port, "zone-b", &[Ready("127.0.0.21")]),
    );
    let listen = listen_addr();
    let path = dir.write("gw.toml", &config(listen, free_port()));
    let gw = Gateway::start_with(&path, listen, &["--watch"], &[]);

    let status = gw.admin_json("/status");
    let sources: Vec<&Value> = status["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| &c["source"])
        .collect();
    assert_eq!(sources, ["files", "files"], "{status}");
    let eps = gw.pool_endpoints(WEB);
    assert_eq!(eps.len(), 4, "{eps:?}");
    assert_eq!(eps[&format!("127.0.0.11:{port}")]["zone"], "zone-a");
    assert_eq!(eps[&format!("127.0.0.21:{port}")]["cluster"], "c2");
    assert_eq!(eps[&format!("127.0.0.21:{port}")]["condition"], "ready");
    assert_eq!(eps[&format!("127.0.0.21:{port}")]["source"], "files");

    let load = Load::start(
        gw.addr,
        "example.com",
        "/",
        &[],
        4,
        Duration::from_millis(5),
    );
    let mut marks = Vec::new();
    let mut step = |generation: u64, write: &dyn Fn()| {
        let before = load.elapsed();
        write();
        gw.wait_generation(generation);
        let applied = load.elapsed();
        // Let the new generation serve for a while.
        std::thread::sleep(Duration::from_millis(600));
        marks.push((before, applied, load.elapsed()));
    };

    // 1. 127.0.0.13 terminates: it drains, the rest serve.
    step(2, &|| {
        replace(
            &c1,
            &slice_yaml(
                "web-c1",
                port,
                "zone-a",
                &[
                    Ready("127.0.0.11"),
                    Ready("127.0.0.12"),
                    Terminating("127.0.0.13"),
                ],
            ),
        )
    });
    let eps = gw.pool_endpoints(WEB);
    let drained = &eps[&format!("127.0.0.13:{port}")];
    assert_eq!(
        (drained["condition"].as_str(), drained["weight"].as_u64()),
        (Some("terminating"), Some(0)),
        "{drained}"
    );

    // 2. 127.0.0.12 dies; health checks find out.
    backends.get_mut("127.0.0.12").expect("pod").kill();
    let dead = format!("127.0.0.12:{port}");
    gw.wait_pool_endpoints(WEB, "127.0.0.12 unhealthy", |eps| {
        eps[&dead]["healthy"] == false
    });

    // 3. Cluster 2 scales up (a new file matching its glob): the dead pod's
    //    health is not forgotten by the change.
    step(3, &|| {
        replace(
            &dir.path().join("slices/c2-b.yaml"),
            &slice_yaml("web-c2-b", port, "zone-b", &[Ready("127.0.0.22")]),
        )
    });
    let eps = gw.pool_endpoints(WEB);
    assert_eq!(
        eps[&dead]["healthy"], false,
        "health state kept across the change: {:?}",
        eps[&dead]
    );
    assert_eq!(eps.len(), 5);

    // 4. Cluster 1 scales to zero: cluster 2 takes everything.
    step(4, &|| {
        replace(&c1, &slice_yaml("web-c1", port, "zone-a", &[]))
    });

    let samples = load.stop();
    assert_none_failed(&samples, 501);

    let name = |ip: &str| format!("pod-{ip}");
    let settle = Duration::from_millis(100);
    // After step 1: .11, .12 and .21 share the traffic; .13 gets none.
    let (_, applied, end) = marks[0];
    let after = answers(&samples, applied + settle, end);
    assert!(
        !after.contains_key(&name("127.0.0.13")),
        "terminating pod got new requests: {after:?}"
    );
    let total: usize = after.values().sum();
    for ip in ["127.0.0.11", "127.0.0.12", "127.0.0.21"] {
        let share = after.get(&name(ip)).copied().unwrap_or(0) as f64 / total as f64;
        assert!(
            (0.25..0.42).contains(&share),
            "{ip} took {share:.2} of {after:?}"
        );
    }
    // After step 4: only cluster 2.
    let (_, applied, end) = marks[2];
    let after = answers(&samples, applied + settle, end);
    assert!(
        after
            .keys()
            .all(|k| k == &name("127.0.0.21") || k == &name("127.0.0.22")),
        "{after:?}"
    );
    assert!(after.len() == 2, "both cluster 2 pods serve: {after:?}");
    for (i, (before, applied, _)) in marks.iter().enumerate() {
        println!(
            "change {}: applied {:?} after the file was replaced",
            i + 1,
            *applied - *before
        );
    }
    println!("{} requests, 0 failed", samples.len());

    // `routes --endpoints` prints the same, from the files.
    let out = std::process::Command::new(fleetgate_e2e::bin_path("fleetgate"))
        .args(["routes", "--endpoints", "-c"])
        .arg(&path)
        .output()
        .expect("run routes");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("127.0.0.22:{port}"))
            && text.contains("cluster=c2 zone=zone-b ready weight=1 source=files"),
        "{text}"
    );
    assert!(!text.contains("127.0.0.11"), "cluster 1 is at zero: {text}");
}

/// A slice file that does not fit the configuration is rejected whole, with
/// where and why, and the previous endpoints keep serving.
#[test]
fn a_bad_slice_file_is_refused_and_the_old_endpoints_serve() {
    let port = free_port();
    let pod = Backend::start_on("pod-a", &format!("127.0.0.31:{port}"));
    let dir = TempDir::new("discovery-bad");
    std::fs::create_dir_all(dir.path().join("slices")).expect("slices dir");
    let c1 = dir.path().join("slices/c1.yaml");
    replace(
        &c1,
        &slice_yaml("web-c1", port, "zone-a", &[Pod::Ready("127.0.0.31")]),
    );
    replace(
        &dir.path().join("slices/c2-a.yaml"),
        &slice_yaml("web-c2", port, "zone-b", &[]),
    );
    let listen = listen_addr();
    let path = dir.write("gw.toml", &config(listen, free_port()));
    let gw = Gateway::start_with(&path, listen, &["--watch"], &[]);
    let mut client = HttpClient::new(gw.addr);
    assert_eq!(
        client.get("example.com", "/").expect("request").body,
        pod.name
    );

    // A named port the unnamed Service port cannot take, and an address
    // that is not an IP.
    let named = slice_yaml("web-c1", port, "zone-a", &[Pod::Ready("127.0.0.31")])
        .replace("  - port:", "  - name: metrics\n    port:")
        .replace(
            "protocol: TCP",
            "protocol: TCP\n  - name: http\n    port: 1\n    protocol: TCP",
        );
    replace(&c1, &named);
    let status = wait_failed(&gw, 1);
    let message = status["last_reload"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("c1.yaml")
            && message.contains("no port of its EndpointSlices in cluster \"c1\" is unnamed")
            && message.contains("\"http\", \"metrics\""),
        "{message}"
    );
    replace(
        &c1,
        &slice_yaml("web-c1", port, "zone-a", &[Pod::Ready("pod-a.example")]),
    );
    let status = wait_failed(&gw, 2);
    let message = status["last_reload"]["message"].as_str().unwrap_or("");
    assert!(message.contains("c1.yaml:1:1: EndpointSlice web-c1: endpoints[0].addresses[0]: \"pod-a.example\" is not an IP address"), "{message}");
    assert_eq!(status["generation"], 1);
    assert_eq!(
        client.get("example.com", "/").expect("request").body,
        pod.name
    );

    // `check` says the same.
    let out = std::process::Command::new(fleetgate_e2e::bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("run check");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("is not an IP address"),
        "{text}"
    );
}

/// Waits until `n` reloads have failed; returns `/status`.
fn wait_failed(gw: &Gateway, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = gw.admin_json("/status");
        if status["reloads"]["failed"].as_u64() >= Some(n) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "reload {n} never failed: {status}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Two clusters: c1 with a hand-written endpoint, c2 whose endpoints are
/// the A records of web.zone-b.test (asked of `dns`), and c3 whose one is
/// an SRV record's target.
fn dns_config(
    listen: std::net::SocketAddr,
    admin: u16,
    dns: std::net::SocketAddr,
    static_pod: std::net::SocketAddr,
    port: u16,
) -> String {
    format!(
        r#"
[gateway]
name = "discovery-dns"
listen = ["{listen}"]
ingress_class = "mse"

[admin]
listen = "127.0.0.1:{admin}"

[log]
access = "off"

[[cluster]]
id = "c1"
zone = "zone-a"

[[cluster]]
id = "c2"
zone = "zone-b"
source = "dns"
dns_server = "{dns}"
dns_timeout = "300ms"

[[cluster]]
id = "c3"
zone = "zone-c"
source = "dns"
dns_server = "{dns}"
dns_timeout = "300ms"

[[service]]
namespace = "gateway-demo"
name = "web"
port = 80
endpoints = [
  {{ cluster = "c1", address = "{static_pod}" }},
  {{ cluster = "c2", dns = "web.zone-b.test:{port}" }},
  {{ cluster = "c3", dns_srv = "_http._tcp.web.zone-c.test" }},
]

[[ingress]]
namespace = "gateway-demo"
name = "web"
class = "mse"
rules = [{{ host = "example.com", paths = [{{ path = "/", type = "Prefix", service = "web", port = 80 }}] }}]
"#
    )
}

/// A real DNS server (dnsmasq) changing A records under load: the gateway
/// follows within the TTL with no failed request; the server dying keeps
/// the last answer serving and shows the cluster disconnected; restarted,
/// it is followed again. An SRV record gives an endpoint with its own
/// port.
#[test]
fn dns_names_follow_their_records_under_load() {
    let port = free_port();
    let srv_port = free_port();
    let pods: BTreeMap<&str, Backend> = ["127.0.0.51", "127.0.0.52", "127.0.0.53"]
        .into_iter()
        .map(|ip| {
            (
                ip,
                Backend::start_on(&format!("pod-{ip}"), &format!("{ip}:{port}")),
            )
        })
        .collect();
    let static_pod = Backend::start("pod-static");
    let srv_pod = Backend::start_on("pod-srv", &format!("127.0.0.61:{srv_port}"));
    let dir = TempDir::new("discovery-dns");
    let hosts = dir.path().join("hosts");
    std::fs::create_dir_all(&hosts).expect("hosts dir");
    std::fs::write(
        hosts.join("zone-b"),
        "127.0.0.51 web.zone-b.test\n127.0.0.52 web.zone-b.test\n",
    )
    .expect("hosts");
    std::fs::write(hosts.join("zone-c"), "127.0.0.61 pod-c.zone-c.test\n").expect("hosts");
    let srv = format!("--srv-host=_http._tcp.web.zone-c.test,pod-c.zone-c.test,{srv_port},0,5");
    let mut dns = fleetgate_e2e::dns::Dnsmasq::start(&hosts, &[&srv]);
    let listen = listen_addr();
    let path = dir.write(
        "gw.toml",
        &dns_config(listen, free_port(), dns.addr, static_pod.addr, port),
    );
    let gw = Gateway::start(&path, listen);

    // Started with the answers in: no request goes out before them.
    let c2 = gw.cluster_status("c2");
    assert_eq!(
        (
            c2["source"].as_str(),
            c2["connected"].as_bool(),
            c2["synced"].as_bool()
        ),
        (Some("dns"), Some(true), Some(true)),
        "{c2}"
    );
    let eps = gw.pool_endpoints(WEB);
    let listed: Vec<&String> = eps.keys().collect();
    assert_eq!(listed.len(), 4, "{eps:?}");
    assert_eq!(
        eps[&format!("127.0.0.61:{srv_port}")]["cluster"],
        "c3",
        "SRV target and port"
    );
    assert_eq!(
        eps[&format!("127.0.0.61:{srv_port}")]["weight"],
        5,
        "SRV weight"
    );
    assert_eq!(eps[&format!("127.0.0.51:{port}")]["source"], "dns");
    assert_eq!(eps[&format!("127.0.0.51:{port}")]["zone"], "zone-b");

    let load = Load::start(
        gw.addr,
        "example.com",
        "/",
        &[],
        4,
        Duration::from_millis(5),
    );
    // .51 leaves the name, .53 joins it.
    let changed = Instant::now();
    dns.write_hosts(
        "zone-b",
        "127.0.0.52 web.zone-b.test\n127.0.0.53 web.zone-b.test\n",
    );
    let gone = format!("127.0.0.51:{port}");
    let joined = format!("127.0.0.53:{port}");
    gw.wait_pool_endpoints(WEB, ".53 in, .51 out", |eps| {
        eps.contains_key(&joined) && !eps.contains_key(&gone)
    });
    let followed = changed.elapsed();
    let applied = load.elapsed();
    std::thread::sleep(Duration::from_millis(500));

    // The server dies: the last answer keeps serving, the cluster says so.
    dns.kill();
    let c2 = gw.wait_cluster("c2", "disconnected", |c| c["connected"] == false);
    assert!(
        c2["error"]
            .as_str()
            .is_some_and(|e| e.contains("web.zone-b.test")),
        "{c2}"
    );
    assert!(
        gw.pool_endpoints(WEB).contains_key(&joined),
        "endpoints kept while the source is down"
    );
    std::thread::sleep(Duration::from_millis(500));
    let outage_end = load.elapsed();

    // Back, with a new answer: followed again.
    std::fs::write(hosts.join("zone-b"), "127.0.0.53 web.zone-b.test\n").expect("hosts");
    dns.restart();
    gw.wait_cluster("c2", "reconnected", |c| c["connected"] == true);
    let left = format!("127.0.0.52:{port}");
    gw.wait_pool_endpoints(WEB, ".52 out", |eps| {
        !eps.contains_key(&left) && eps.contains_key(&joined)
    });
    std::thread::sleep(Duration::from_millis(300));

    let samples = load.stop();
    assert_none_failed(&samples, 301);
    let during_outage = answers(&samples, applied + Duration::from_millis(100), outage_end);
    assert!(
        !during_outage.contains_key("pod-127.0.0.51"),
        "{during_outage:?}"
    );
    assert!(
        during_outage.contains_key("pod-127.0.0.53") && during_outage.contains_key("pod-srv"),
        "{during_outage:?}"
    );
    assert!(
        followed < Duration::from_secs(5),
        "record change followed in {followed:?}"
    );
    println!(
        "DNS change followed in {followed:?}; {} requests, 0 failed",
        samples.len()
    );

    let metrics = gw.admin_get("/metrics", None).body;
    assert!(
        metrics.contains("fleetgate_discovery_connected{cluster=\"c2\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("fleetgate_endpoint_updates_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    drop((pods, srv_pod));
}
