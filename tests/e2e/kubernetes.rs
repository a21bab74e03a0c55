//! End to end: endpoints watched in each member cluster's API server.
//!
//! No kube-apiserver can be installed here, so each cluster's API server
//! is `tests/clients/kube_api_server.py`, which speaks the list/watch wire
//! protocol (see its docs); fleetgate talks to it with the real kube-rs
//! client and watcher, through a kubeconfig, with a bearer token.

use std::time::Duration;

use fleetgate_e2e::config::listen_addr;
use fleetgate_e2e::kube_api::{endpoint_slice, KubeApi};
use fleetgate_e2e::{
    assert_none_failed, free_port, Backend, Gateway, HttpClient, Load, Sample, TempDir,
};

/// The pool of Service gateway-demo/web port 80.
const WEB: &str = "gateway-demo/web:80";

/// Clusters c1 and c2, each watched through its own kubeconfig; Service
/// gateway-demo/web port 80; example.com/ routes to it.
fn config(listen: std::net::SocketAddr, admin: u16, extra_cluster: &str) -> String {
    format!(
        r#"
[gateway]
name = "kubernetes"
listen = ["{listen}"]
ingress_class = "mse"

[admin]
listen = "127.0.0.1:{admin}"

[log]
access = "off"

[[cluster]]
id = "c1"
zone = "zone-a"
source = "kubernetes"
kubeconfig = "c1.kubeconfig"
api_timeout = "2s"
{extra_cluster}

[[cluster]]
id = "c2"
zone = "zone-b"
source = "kubernetes"
kubeconfig = "c2.kubeconfig"
context = "test"
api_timeout = "2s"

[[service]]
namespace = "gateway-demo"
name = "web"
port = 80

[[service]]
namespace = "gateway-demo"
name = "multi"
port = 80

[[ingress]]
namespace = "gateway-demo"
name = "web"
class = "mse"
rules = [{{ host = "example.com", paths = [{{ path = "/", type = "Prefix", service = "web", port = 80 }}] }}]
"#
    )
}

/// The API servers of clusters c1 and c2, with their kubeconfigs written
/// into `dir` as the configuration names them.
fn api_servers(dir: &TempDir) -> (KubeApi, KubeApi) {
    let api1 = KubeApi::start("token-1");
    let api2 = KubeApi::start("token-2");
    api1.kubeconfig(dir.path(), "c1.kubeconfig");
    api2.kubeconfig(dir.path(), "c2.kubeconfig");
    (api1, api2)
}

/// Ready pods at these loopback addresses.
fn ready<'a>(ips: &[&'a str]) -> Vec<(&'a str, bool, bool)> {
    ips.iter().map(|ip| (*ip, true, false)).collect()
}

/// Share of each cluster among the samples sent in `from..to`.
fn cluster_shares(samples: &[Sample], from: Duration, to: Duration) -> (usize, usize) {
    let mut c1 = 0;
    let mut c2 = 0;
    for s in samples.iter().filter(|s| s.at >= from && s.at < to) {
        match s.result.as_deref() {
            Ok(b) if b.starts_with("c1-") => c1 += 1,
            Ok(b) if b.starts_with("c2-") => c2 += 1,
            _ => {}
        }
    }
    (c1, c2)
}

/// The pods of both clusters on one port: c1 at 127.0.1.N, c2 at
/// 127.0.2.N, each answering `cK-N`.
struct Pods {
    port: u16,
    _backends: Vec<Backend>,
}

impl Pods {
    fn start(c1: usize, c2: usize) -> Pods {
        let port = free_port();
        let mut backends = Vec::new();
        for (cluster, n) in [(1, c1), (2, c2)] {
            for i in 1..=n {
                backends.push(Backend::start_on(
                    &format!("c{cluster}-{i}"),
                    &format!("127.0.{cluster}.{i}:{port}"),
                ));
            }
        }
        Pods {
            port,
            _backends: backends,
        }
    }
}

const C1_PODS: [&str; 9] = [
    "127.0.1.1",
    "127.0.1.2",
    "127.0.1.3",
    "127.0.1.4",
    "127.0.1.5",
    "127.0.1.6",
    "127.0.1.7",
    "127.0.1.8",
    "127.0.1.9",
];
const C2_PODS: [&str; 3] = ["127.0.2.1", "127.0.2.2", "127.0.2.3"];

/// Scaling by watch events under steady load: 9+1 pods, then 3+3, then
/// cluster 1 at zero. Each split follows within a second, with no failed
/// request. Then cluster 1's API server dies (its endpoints stay, its
/// status says so) and comes back rebuilt with newer resourceVersions
/// (the watch gets 410 Expired, lists again, and the new data replaces
/// the old in one step).
#[test]
fn watched_slices_follow_scaling_and_survive_their_api_server() {
    let pods = Pods::start(9, 3);
    let port = pods.port;
    let dir = TempDir::new("kubernetes-scale");
    let (mut api1, api2) = api_servers(&dir);
    let slice = |cluster: &str, pods: &[(&str, bool, bool)]| {
        endpoint_slice(
            "gateway-demo",
            &format!("web-{cluster}"),
            "web",
            port,
            "zone",
            pods,
        )
    };
    api1.put("endpointslices", &slice("c1", &ready(&C1_PODS)));
    api2.put("endpointslices", &slice("c2", &ready(&C2_PODS[..1])));
    // A slice of another Service, and one without the Service label: not used.
    api1.put(
        "endpointslices",
        &endpoint_slice(
            "gateway-demo",
            "other-1",
            "other",
            port,
            "zone",
            &ready(&["127.0.9.9"]),
        ),
    );
    let listen = listen_addr();
    let path = dir.write("gw.toml", &config(listen, free_port(), ""));
    let gw = Gateway::start(&path, listen);

    // Started with both clusters listed.
    let eps = gw.pool_endpoints(WEB);
    assert_eq!(eps.len(), 10, "9 + 1 from the first lists: {eps:?}");
    let c1 = gw.cluster_status("c1");
    assert_eq!(
        (
            c1["source"].as_str(),
            c1["connected"].as_bool(),
            c1["synced"].as_bool()
        ),
        (Some("kubernetes"), Some(true), Some(true)),
        "{c1}"
    );
    assert!(
        c1["endpoint_source"]
            .as_str()
            .is_some_and(|s| s.contains("c1.kubeconfig")),
        "{c1}"
    );
    assert_eq!(eps[&format!("127.0.2.1:{port}")]["source"], "kubernetes");

    // A Service whose slices name two ports, declared without port_name:
    // no endpoints, and a warning in /status that says why.
    let mut multi = endpoint_slice(
        "gateway-demo",
        "multi-1",
        "multi",
        port,
        "zone",
        &ready(&["127.0.9.8"]),
    );
    multi["ports"] =
        serde_json::json!([{ "name": "http", "port": port }, { "name": "admin", "port": 9 }]);
    api1.put("endpointslices", &multi);
    let expected = "Service gateway-demo/multi:80: no port of its EndpointSlices in cluster \"c1\" is unnamed; they have \"admin\", \"http\"";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = gw.admin_json("/status");
        let warned = status["warnings"].as_array().is_some_and(|w| {
            w.iter()
                .any(|w| w.as_str().is_some_and(|w| w.contains(expected)))
        });
        if warned {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no port warning: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gw.pool_endpoints("gateway-demo/multi:80").is_empty());

    let load = Load::start(
        gw.addr,
        "example.com",
        "/",
        &[],
        4,
        Duration::from_millis(5),
    );
    std::thread::sleep(Duration::from_millis(800));
    let t0 = load.elapsed();

    // 9+1 -> 3+3.
    api1.put("endpointslices", &slice("c1", &ready(&C1_PODS[..3])));
    api2.put("endpointslices", &slice("c2", &ready(&C2_PODS)));
    let follow_3_3 = gw.wait_pool_endpoints(WEB, "3+3", |eps| eps.len() == 6);
    let t1 = load.elapsed();
    std::thread::sleep(Duration::from_millis(1000));
    let t2 = load.elapsed();

    // Cluster 1 to zero (its slice stays, with no endpoints, as Kubernetes
    // keeps it).
    api1.put("endpointslices", &slice("c1", &[]));
    let follow_zero = gw.wait_pool_endpoints(WEB, "cluster 1 at zero", |eps| eps.len() == 3);
    let t3 = load.elapsed();
    std::thread::sleep(Duration::from_millis(800));
    let t4 = load.elapsed();

    // Back to 3+3, then cluster 1's API server dies: endpoints stay.
    api1.put("endpointslices", &slice("c1", &ready(&C1_PODS[..3])));
    gw.wait_pool_endpoints(WEB, "3+3 again", |eps| eps.len() == 6);
    api1.kill();
    let down = gw.wait_cluster("c1", "disconnected", |c| c["connected"] == false);
    assert!(
        down["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{down}"
    );
    assert_eq!(
        gw.pool_endpoints(WEB).len(),
        6,
        "endpoints kept while the API server is down"
    );
    std::thread::sleep(Duration::from_millis(500));
    let t5 = load.elapsed();

    // Rebuilt server, newer versions, different pods: resync.
    api1.restart(50_000);
    api1.put("endpointslices", &slice("c1", &ready(&C1_PODS[3..5])));
    let resync = gw.wait_pool_endpoints(WEB, "resync after restart", |eps| {
        eps.len() == 5
            && eps.contains_key(&format!("127.0.1.4:{port}"))
            && !eps.contains_key(&format!("127.0.1.1:{port}"))
    });
    gw.wait_cluster("c1", "reconnected", |c| {
        c["connected"] == true && c["error"].is_null()
    });
    std::thread::sleep(Duration::from_millis(300));

    let samples = load.stop();
    assert_none_failed(&samples, 1001);

    let (a, b) = cluster_shares(&samples, Duration::ZERO, t0);
    let share = a as f64 / (a + b) as f64;
    assert!(
        (0.85..0.95).contains(&share),
        "9+1: cluster 1 took {share:.3} ({a}/{b})"
    );
    let (a, b) = cluster_shares(&samples, t1 + Duration::from_millis(50), t2);
    let share = a as f64 / (a + b) as f64;
    assert!(
        (0.4..0.6).contains(&share),
        "3+3: cluster 1 took {share:.3} ({a}/{b})"
    );
    let (a, b) = cluster_shares(&samples, t3 + Duration::from_millis(50), t4);
    assert_eq!(a, 0, "cluster 1 at zero got {a} of {}", a + b);
    let (a, b) = cluster_shares(&samples, t4 + Duration::from_millis(300), t5);
    assert!(
        a > 0 && b > 0,
        "both clusters serve while cluster 1's API server is down ({a}/{b})"
    );
    assert!(
        follow_3_3 < Duration::from_secs(1),
        "3+3 followed in {follow_3_3:?}"
    );
    assert!(
        follow_zero < Duration::from_secs(1),
        "zero followed in {follow_zero:?}"
    );
    // Scaling changed endpoints only: applied as patches, not builds.
    let status = gw.admin_json("/status");
    assert!(
        status["endpoint_patches"].as_u64() >= Some(2),
        "scaling is patched into the serving snapshot: {status}"
    );
    println!(
        "followed: 3+3 in {follow_3_3:?}, zero in {follow_zero:?}, resync in {resync:?}; {} requests, 0 failed",
        samples.len()
    );
    drop(pods);
}

/// The watch's failure modes: a dropped stream resumes where it was (no
/// new list); 410 Expired lists again; 403 and a hung server keep the
/// endpoints and show the error; a relist that finds nothing where there
/// were slices is kept (and logged), by default.
#[test]
fn watch_failures_keep_endpoints_and_say_why() {
    let pods = Pods::start(2, 1);
    let port = pods.port;
    let dir = TempDir::new("kubernetes-failures");
    let (mut api1, api2) = api_servers(&dir);
    let slice = |name: &str, ips: &[&str]| {
        endpoint_slice("gateway-demo", name, "web", port, "zone-a", &ready(ips))
    };
    api1.put("endpointslices", &slice("web-a", &["127.0.1.1"]));
    api2.put("endpointslices", &slice("web-b", &["127.0.2.1"]));
    let listen = listen_addr();
    let path = dir.write("gw.toml", &config(listen, free_port(), ""));
    let gw = Gateway::start(&path, listen);
    let mut client = HttpClient::new(gw.addr);
    assert_eq!(gw.pool_endpoints(WEB).len(), 2);

    // A dropped stream: the watch resumes from its resourceVersion.
    let before = api1.stats();
    api1.drop_watches();
    api1.put("endpointslices", &slice("web-a2", &["127.0.1.2"]));
    gw.wait_pool_endpoints(WEB, "a second c1 slice after a drop", |eps| eps.len() == 3);
    let after = api1.stats();
    assert_eq!(
        after["list"], before["list"],
        "a dropped watch resumes without a list: {before} -> {after}"
    );
    assert!(
        after["watch"].as_u64() > before["watch"].as_u64(),
        "{after}"
    );

    // 410 Expired: while the watch is away, the slice is deleted and the
    // history forgotten; the watch comes back to a version that is gone,
    // lists again, and the data is replaced.
    api1.hang(true);
    api1.drop_watches();
    api1.delete("endpointslices", "gateway-demo", "web-a2");
    api1.compact();
    api1.hang(false);
    gw.wait_pool_endpoints(WEB, "the deleted slice gone", |eps| eps.len() == 2);
    let relisted = api1.stats();
    assert!(
        relisted["list"].as_u64() > after["list"].as_u64(),
        "410 forces a list: {relisted}"
    );

    // 403 (an RBAC change): the endpoints stay, the error shows.
    api1.auth("403");
    api1.drop_watches();
    let c1 = gw.wait_cluster("c1", "forbidden", |c| c["connected"] == false);
    assert!(
        c1["error"]
            .as_str()
            .is_some_and(|e| e.contains("403") || e.to_lowercase().contains("forbidden")),
        "{c1}"
    );
    assert_eq!(gw.pool_endpoints(WEB).len(), 2);
    for _ in 0..20 {
        let r = client.get("example.com", "/").expect("request");
        assert_eq!(r.status, 200, "{r:?}");
    }
    api1.auth("ok");
    gw.wait_cluster("c1", "reconnected after 403", |c| c["connected"] == true);

    // A hung server: noticed within api_timeout, endpoints kept.
    api1.hang(true);
    api1.drop_watches();
    let c1 = gw.wait_cluster("c1", "disconnected by a hung server", |c| {
        c["connected"] == false
    });
    assert!(c1["error"].as_str().is_some(), "{c1}");
    assert_eq!(gw.pool_endpoints(WEB).len(), 2);
    api1.hang(false);
    gw.wait_cluster("c1", "reconnected after hanging", |c| {
        c["connected"] == true
    });

    // A rebuilt server that lists nothing (as a wrong namespace or RBAC
    // rule would): the old endpoints are kept, loudly.
    api1.restart(90_000);
    gw.wait_cluster("c1", "relisted the empty server", |c| {
        c["connected"] == true && c["updates"].as_u64() > Some(0)
    });
    assert!(
        gw.wait_for_log(
            "returned no EndpointSlice for any declared Service",
            1,
            Duration::from_secs(15)
        )
        .is_some(),
        "{}",
        gw.log_text()
    );
    assert_eq!(
        gw.pool_endpoints(WEB).len(),
        2,
        "kept after an empty relist"
    );
    for _ in 0..20 {
        assert_eq!(client.get("example.com", "/").expect("request").status, 200);
    }
    drop(pods);
}

/// Terminating pods drain: a request in flight to a pod that starts
/// terminating finishes; new requests go to the ready pods.
#[test]
fn terminating_pods_finish_what_they_started() {
    let pods = Pods::start(2, 1);
    let port = pods.port;
    let dir = TempDir::new("kubernetes-drain");
    let (api1, api2) = api_servers(&dir);
    let slice = |pods: &[(&str, bool, bool)]| {
        endpoint_slice("gateway-demo", "web-a", "web", port, "zone-a", pods)
    };
    api1.put("endpointslices", &slice(&ready(&["127.0.1.1"])));
    api2.put(
        "endpointslices",
        &endpoint_slice("gateway-demo", "web-b", "web", port, "zone-b", &[]),
    );
    let listen = listen_addr();
    let path = dir.write("gw.toml", &config(listen, free_port(), ""));
    let gw = Gateway::start(&path, listen);

    // A slow request is under way on 127.0.1.1 when it starts terminating
    // and 127.0.1.2 becomes ready.
    let addr = gw.addr;
    let slow = std::thread::spawn(move || {
        let mut c = HttpClient::new(addr);
        c.get("example.com", "/slow/1500").expect("slow request")
    });
    std::thread::sleep(Duration::from_millis(300));
    api1.put(
        "endpointslices",
        &slice(&[("127.0.1.1", false, true), ("127.0.1.2", true, false)]),
    );
    let terminating = format!("127.0.1.1:{port}");
    gw.wait_pool_endpoints(WEB, "127.0.1.1 terminating", |eps| {
        eps.get(&terminating)
            .is_some_and(|e| e["condition"] == "terminating")
    });
    let mut client = HttpClient::new(gw.addr);
    let tally = client.tally("example.com", "/", &[], 20);
    assert_eq!(
        tally.get("c1-2"),
        Some(&20),
        "new requests go to the ready pod: {tally:?}"
    );
    let r = slow.join().expect("slow request thread");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "c1-1"),
        "the request in flight finished on the terminating pod"
    );

    // When no ready pod is left, terminating ones serve.
    api1.put("endpointslices", &slice(&[("127.0.1.1", false, true)]));
    gw.wait_pool_endpoints(WEB, "only a terminating pod", |eps| eps.len() == 1);
    let tally = client.tally("example.com", "/", &[], 5);
    assert_eq!(tally.get("c1-1"), Some(&5), "{tally:?}");
    drop(pods);
}

/// Declares Service `shop/NAME` port 80 in the configuration at `path`
/// and reloads; returns once the reload serves.
fn reload_adding_service(gw: &Gateway, path: &std::path::Path, name: &str) {
    let more = format!(
        "{}\n[[service]]\nnamespace = \"shop\"\nname = \"{name}\"\nport = 80\n",
        std::fs::read_to_string(path).expect("config")
    );
    std::fs::write(path, more).expect("rewrite config");
    let generation = gw.admin_json("/status")["generation"]
        .as_u64()
        .expect("generation");
    gw.signal("HUP");
    gw.wait_generation(generation + 1);
}

/// A reload that adds a Service restarts the watches, but the endpoints
/// of the Services declared before stay while the new lists come (here:
/// never, the API server hangs): no request fails. The new Service's
/// endpoints follow when the server answers again.
#[test]
fn a_reload_that_adds_a_service_keeps_the_others_endpoints() {
    let pods = Pods::start(1, 1);
    let port = pods.port;
    let dir = TempDir::new("kubernetes-reload");
    let (api1, api2) = api_servers(&dir);
    api1.put(
        "endpointslices",
        &endpoint_slice(
            "gateway-demo",
            "web-a",
            "web",
            port,
            "zone-a",
            &ready(&["127.0.1.1"]),
        ),
    );
    api2.put(
        "endpointslices",
        &endpoint_slice(
            "gateway-demo",
            "web-b",
            "web",
            port,
            "zone-b",
            &ready(&["127.0.2.1"]),
        ),
    );
    api1.put(
        "endpointslices",
        &endpoint_slice(
            "shop",
            "cart-a",
            "cart",
            port,
            "zone-a",
            &ready(&["127.0.1.1"]),
        ),
    );
    let listen = listen_addr();
    let admin = free_port();
    let path = dir.write("gw.toml", &config(listen, admin, ""));
    let gw = Gateway::start(&path, listen);
    assert_eq!(gw.pool_endpoints(WEB).len(), 2);
    let load = Load::start(
        gw.addr,
        "example.com",
        "/",
        &[],
        2,
        Duration::from_millis(5),
    );
    std::thread::sleep(Duration::from_millis(300));

    api1.hang(true);
    api2.hang(true);
    reload_adding_service(&gw, &path, "cart");
    assert_eq!(
        gw.pool_endpoints(WEB).len(),
        2,
        "the declared Service's endpoints stay while the lists hang"
    );
    std::thread::sleep(Duration::from_millis(500));
    api1.hang(false);
    api2.hang(false);
    gw.wait_pool_endpoints("shop/cart:80", "the new Service's endpoints", |eps| {
        eps.len() == 1
    });
    // With the servers answering, a reload waits for the new lists: the
    // Service it adds serves from its first generation.
    api2.put(
        "endpointslices",
        &endpoint_slice(
            "shop",
            "till-b",
            "till",
            port,
            "zone-b",
            &ready(&["127.0.2.1"]),
        ),
    );
    reload_adding_service(&gw, &path, "till");
    assert_eq!(
        gw.pool_endpoints("shop/till:80").len(),
        1,
        "the added Service's endpoints are there when the reload serves"
    );
    std::thread::sleep(Duration::from_millis(200));
    let samples = load.stop();
    assert_none_failed(&samples, 100);
    drop(pods);
}

/// A slice that loses its Service label leaves the watch's selection: the
/// server says DELETED, and its endpoints go; labelled again, it is
/// ADDED back.
#[test]
fn a_slice_that_leaves_the_selection_takes_its_endpoints_along() {
    let pods = Pods::start(1, 1);
    let port = pods.port;
    let dir = TempDir::new("kubernetes-selection");
    let (api1, api2) = api_servers(&dir);
    let web_a = endpoint_slice(
        "gateway-demo",
        "web-a",
        "web",
        port,
        "zone-a",
        &ready(&["127.0.1.1"]),
    );
    api1.put("endpointslices", &web_a);
    api2.put(
        "endpointslices",
        &endpoint_slice(
            "gateway-demo",
            "web-b",
            "web",
            port,
            "zone-b",
            &ready(&["127.0.2.1"]),
        ),
    );
    let listen = listen_addr();
    let path = dir.write("gw.toml", &config(listen, free_port(), ""));
    let gw = Gateway::start(&path, listen);
    assert_eq!(gw.pool_endpoints(WEB).len(), 2);
    let mut unlabelled = web_a.clone();
    unlabelled["metadata"]["labels"] = serde_json::json!({});
    api1.put("endpointslices", &unlabelled);
    gw.wait_pool_endpoints(WEB, "the unlabelled slice gone", |eps| {
        eps.len() == 1 && eps.contains_key(&format!("127.0.2.1:{port}"))
    });
    api1.put("endpointslices", &web_a);
    gw.wait_pool_endpoints(WEB, "labelled again", |eps| eps.len() == 2);
    drop(pods);
}
