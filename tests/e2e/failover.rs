//! End to end: subsets, health checks, outlier detection and retries with
//! real processes (the `conf/seed/` scenario's zone loss, subsets and pinned routes).

use std::collections::HashMap;
use std::time::Duration;

use fleetgate_e2e::config::{header, listen_addr, manifests, seed, service};
use fleetgate_e2e::{Backend, Gateway, HttpClient, Load, Sample, TempDir};

/// Health checks as the scenario runs them: every 500 ms, one failure
/// marks an endpoint down, one success brings it back.
const FAST_HEALTH: &str = r#"
[service.health_check]
kind = "http"
path = "/healthz"
interval = "500ms"
timeout = "300ms"
healthy_threshold = 1
unhealthy_threshold = 1
"#;

fn counts<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for s in samples {
        let key = match &s.result {
            Ok(body) => body.clone(),
            Err(e) => format!("ERROR {e}"),
        };
        *out.entry(key).or_default() += 1;
    }
    out
}

fn failures(samples: &[Sample]) -> Vec<&Sample> {
    samples.iter().filter(|s| s.result.is_err()).collect()
}

/// The route pinned to cluster 1 sends everything
/// there, and fails over to cluster 2 under load with no failed request.
#[test]
fn pinned_route_fails_over_to_the_other_cluster() {
    let mut one = Backend::start("cluster-demo-1");
    let two = Backend::start("cluster-demo-2");
    let listen = listen_addr();
    let dir = TempDir::new("primary");
    let config = format!(
        "{}{}{}",
        header(listen, ""),
        service(
            "service1",
            80,
            &[("c7fb82a1", &one), ("cd3007b2", &two)],
            FAST_HEALTH
        ),
        manifests(&[seed("ingress-demo-cluster-one.yaml")])
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);

    // Outcome 4.
    let c = HttpClient::new(gw.addr).tally("example.com", "/service1", &[], 100);
    assert_eq!(c.get("cluster-demo-1"), Some(&100), "{c:?}");

    // Outcome 6, under a steady load of about 250 requests/s for 10 s.
    let load = Load::start(
        gw.addr,
        "example.com",
        "/service1",
        &[],
        5,
        Duration::from_millis(20),
    );
    std::thread::sleep(Duration::from_secs(3));
    let killed_at = load.elapsed();
    one.kill();
    let shifted = gw
        .wait_for_log("is unhealthy", 1, Duration::from_secs(5))
        .expect("cluster 1 marked unhealthy");
    std::thread::sleep(Duration::from_secs(7).saturating_sub(shifted));
    let samples = load.stop();
    assert!(samples.len() >= 2000, "load too light: {}", samples.len());
    assert!(
        failures(&samples).is_empty(),
        "failed requests: {:?}",
        failures(&samples)
    );
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at > killed_at + shifted + Duration::from_millis(200))
        .collect();
    let c = counts(after.iter().copied());
    assert_eq!(c.len(), 1, "after the shift only cluster 2 answers: {c:?}");
    assert!(c.contains_key("cluster-demo-2"), "{c:?}");
    println!(
        "pinned route failover: {} requests, detection took {shifted:?}, 0 failed",
        samples.len()
    );
}

/// Zone loss: 9 pods in cluster 1, 1 in cluster 2; every cluster-1 pod
/// is SIGKILLed under load; no request fails, cluster 2 takes everything
/// within two health intervals, and cluster 1 gets its share back once it
/// is healthy again.
#[test]
fn zone_loss_under_load_loses_no_request() {
    let mut c1: Vec<Backend> = (0..9).map(|_| Backend::start("cluster-demo-1")).collect();
    let c2 = Backend::start("cluster-demo-2");
    let mut eps: Vec<(&str, &Backend)> = c1.iter().map(|b| ("c7fb82a1", b)).collect();
    eps.push(("cd3007b2", &c2));
    let listen = listen_addr();
    let dir = TempDir::new("zone-loss");
    let config = format!(
        "{}{}{}",
        header(listen, ""),
        service("service1", 80, &eps, FAST_HEALTH),
        manifests(&[seed("ingress-demo.yaml")])
    );
    let mut gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let addrs: Vec<String> = c1.iter().map(|b| b.addr.to_string()).collect();

    // 8 clients x 40 requests/s = 320 requests/s for about 10 s.
    let load = Load::start(
        gw.addr,
        "example.com",
        "/svc1",
        &[],
        8,
        Duration::from_millis(25),
    );
    std::thread::sleep(Duration::from_secs(3));
    let killed_at = load.elapsed();
    for b in &mut c1 {
        b.kill();
    }
    let shift = gw
        .wait_for_log("is unhealthy", 9, Duration::from_secs(5))
        .expect("all 9 cluster-1 endpoints marked unhealthy");
    assert!(
        shift <= Duration::from_secs(1) + Duration::from_millis(500),
        "full shift took {shift:?}, more than two health intervals"
    );
    std::thread::sleep(Duration::from_secs(3));
    let restarted_at = load.elapsed();
    let c1: Vec<Backend> = addrs
        .iter()
        .map(|a| Backend::start_on("cluster-demo-1", a))
        .collect();
    let back = gw
        .wait_for_log("is healthy again", 9, Duration::from_secs(5))
        .expect("cluster 1 healthy again");
    std::thread::sleep(Duration::from_secs(2));
    let samples = load.stop();

    let total = samples.len();
    assert!(total >= 2000, "load too light: {total} requests");
    assert!(
        failures(&samples).is_empty(),
        "failed requests: {:?}",
        failures(&samples)
    );
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at > killed_at + shift && s.at < restarted_at)
        .collect();
    let c = counts(during.iter().copied());
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        vec!["cluster-demo-2"],
        "{c:?}"
    );
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at > restarted_at + back + Duration::from_millis(200))
        .collect();
    let c = counts(after.iter().copied());
    let ones = c.get("cluster-demo-1").copied().unwrap_or(0);
    assert!(
        ones * 100 >= after.len() * 80,
        "cluster 1 should take its ~90% share back: {c:?}"
    );
    drop(c1);

    gw.signal("TERM");
    gw.wait_exit(Duration::from_secs(10));
    let log = gw.log_text();
    let summary = log.lines().find(|l| l.contains("served ")).unwrap_or("");
    println!(
        "zone loss: {total} requests, 0 failed, shift {shift:?}, recovery {back:?}; {summary}"
    );
}

/// A zone whose pods accept connections and never answer: requests still
/// succeed through the other cluster within the timeouts, and the silent
/// endpoint is ejected by outlier detection (TCP health checks pass).
#[test]
fn blackholed_zone_is_retried_within_timeouts_and_ejected() {
    let listen = listen_addr();
    let dir = TempDir::new("blackhole");
    let hole = {
        // A web-demo in blackhole mode.
        let child = std::process::Command::new(fleetgate_e2e::bin_path("web-demo"))
            .args(["--listen", "127.0.0.1:0", "--name", "hole", "--blackhole"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        fleetgate_e2e::process::Backend::adopt(child, "hole")
    };
    let good = Backend::start("cluster-demo-2");
    let extra = r#"
read_timeout = "400ms"
[service.health_check]
kind = "tcp"
interval = "500ms"
timeout = "300ms"
[service.outlier_detection]
consecutive_failures = 2
base_ejection_time = "30s"
"#;
    let config = format!(
        "{}{}{}",
        header(listen, ""),
        service(
            "service1",
            80,
            &[("c7fb82a1", &hole), ("cd3007b2", &good)],
            extra
        ),
        manifests(&[seed("ingress-demo.yaml")])
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let mut c = HttpClient::new(gw.addr);
    let mut slow = 0;
    for _ in 0..40 {
        let started = std::time::Instant::now();
        let r = c.get("example.com", "/svc1").expect("request");
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "cluster-demo-2"),
            "{r:?}"
        );
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "took {took:?}");
        if took >= Duration::from_millis(300) {
            slow += 1;
        }
    }
    assert!(
        slow <= 2,
        "{slow} requests waited on the blackhole: ejection should stop that"
    );
    gw.wait_for_log("ejected", 1, Duration::from_secs(2))
        .unwrap_or_else(|| panic!("no ejection logged:\n{}", gw.log_text()));
}

/// Envoy's spill-over: a subset with 10 endpoints of which 5 are down keeps
/// 70% of the traffic (health 50% x 1.4) and sends 30% to the rest.
#[test]
fn half_dead_subset_spills_thirty_percent() {
    let mut v1: Vec<Backend> = (0..10).map(|_| Backend::start("v1")).collect();
    let v2: Vec<Backend> = (0..10).map(|_| Backend::start("v2")).collect();
    let listen = listen_addr();
    let dir = TempDir::new("spill");
    let eps: Vec<String> = v1
        .iter()
        .map(|b| {
            format!(
                "{{ cluster = \"c7fb82a1\", address = \"{}\", labels = {{ version = \"v1\" }} }}",
                b.addr
            )
        })
        .chain(v2.iter().map(|b| {
            format!(
                "{{ cluster = \"cd3007b2\", address = \"{}\", labels = {{ version = \"v2\" }} }}",
                b.addr
            )
        }))
        .collect();
    let yaml = dir.write(
        "subset.yaml",
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: pinned-v1
  annotations:
    mse.ingress.kubernetes.io/service-subset: v1
    mse.ingress.kubernetes.io/subset-labels: |
      version v1
spec:
  ingressClassName: mse
  rules:
  - host: example.com
    http:
      paths:
      - path: /app
        pathType: Prefix
        backend: {service: {name: app, port: {number: 80}}}
"#,
    );
    let config = format!(
        "{}\n[[service]]\nnamespace = \"gateway-demo\"\nname = \"app\"\nport = 80\nendpoints = [{}]\n{FAST_HEALTH}{}",
        header(listen, ""),
        eps.join(", "),
        manifests(&[yaml])
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let c = HttpClient::new(gw.addr).tally("example.com", "/app", &[], 100);
    assert_eq!(
        c.get("v1"),
        Some(&100),
        "healthy subset takes everything: {c:?}"
    );

    for b in v1.iter_mut().take(5) {
        b.kill();
    }
    gw.wait_for_log("is unhealthy", 5, Duration::from_secs(5))
        .expect("5 endpoints marked unhealthy");
    std::thread::sleep(Duration::from_millis(100));
    let n = 2000;
    let c = HttpClient::new(gw.addr).tally("example.com", "/app", &[], n);
    let subset = c.get("v1").copied().unwrap_or(0);
    assert_eq!(subset + c.get("v2").copied().unwrap_or(0), n, "{c:?}");
    let share = subset * 100 / n;
    println!("spill-over: subset at 50% health kept {subset} of {n} requests ({share}%)");
    assert!(
        (65..=75).contains(&share),
        "subset share {share}% (expected 70 +- 5): {c:?}"
    );
    drop(v2);
}
