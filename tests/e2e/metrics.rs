//! End to end: the metrics an operator's dashboards are built on. The
//! build and the process, connections, endpoints split into total and
//! available, and the series of a deleted Ingress gone after the reload
//! that deleted it.

use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fleetgate_e2e::config::{header_with_admin, listen_addr, manifests, seed, service};
use fleetgate_e2e::{fleetgate_cli, free_port, Backend, Gateway, HttpClient, TempDir};

/// The samples of `text` named `name` (with any labels): (labels, value).
fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = match series.split_once('{') {
                Some((n, labels)) if n == name => labels.trim_end_matches('}'),
                None if series == name => "",
                _ => return None,
            };
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

#[test]
fn build_process_connection_and_endpoint_metrics() {
    let c1 = Backend::start("cluster-demo-1");
    let mut c2 = Backend::start("cluster-demo-2");
    let listen = listen_addr();
    let dir = TempDir::new("metrics-list");
    let config = format!(
        "{}{}{}",
        header_with_admin(listen, free_port(), ""),
        service(
            "service1",
            80,
            &[("c7fb82a1", &c1), ("cd3007b2", &c2)],
            "[service.health_check]\nkind = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nunhealthy_threshold = 1\n"
        ),
        manifests(&[seed("ingress-demo.yaml")])
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let text = gw.admin_get("/metrics", None).body;

    let (_, version) = fleetgate_cli(&["--version"]);
    let build = samples(&text, "fleetgate_build_info");
    assert_eq!(build.len(), 1, "{text}");
    let (labels, value) = build[0];
    assert_eq!(value, 1.0);
    let commit = version
        .split("(commit ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no commit in {version}"));
    assert!(
        labels.contains(&format!("commit=\"{commit}\"")),
        "{labels} vs {version}"
    );
    assert!(labels.contains("version=\"0."), "{labels}");
    assert!(labels.contains("features=\"tls=rustls"), "{labels}");

    let one = |name: &str| {
        let s = samples(&text, name);
        assert_eq!(s.len(), 1, "{name}: {text}");
        s[0].1
    };
    // Whole seconds (the collector divides clock ticks): present, maybe 0.
    assert!(one("process_cpu_seconds_total") >= 0.0);
    assert!(one("process_resident_memory_bytes") > 1e6);
    assert!(one("process_open_fds") >= 5.0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = one("process_start_time_seconds");
    assert!(
        now - started < 600.0 && started <= now + 1.0,
        "{started} vs {now}"
    );

    // Connections accepted: the harness's, plus three more.
    let accepted = |gw: &Gateway| {
        samples(
            &gw.admin_get("/metrics", None).body,
            "fleetgate_client_connections_accepted_total",
        )[0]
        .1
    };
    let before = accepted(&gw);
    let conns: Vec<_> = (0..3)
        .map(|_| TcpStream::connect(gw.addr).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepted(&gw) < before + 3.0 {
        assert!(
            Instant::now() < deadline,
            "accepted {} after {before}",
            accepted(&gw)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(conns);

    // Total and available, as separate series.
    let endpoints = |gw: &Gateway, name: &str, cluster: &str| -> f64 {
        samples(&gw.admin_get("/metrics", None).body, name)
            .iter()
            .filter(|(l, _)| l.contains(&format!("cluster=\"{cluster}\"")))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(endpoints(&gw, "fleetgate_endpoints", "cd3007b2"), 1.0);
    assert_eq!(
        endpoints(&gw, "fleetgate_endpoints_available", "cd3007b2"),
        1.0
    );
    c2.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    while endpoints(&gw, "fleetgate_endpoints_available", "cd3007b2") != 0.0 {
        assert!(Instant::now() < deadline, "cluster 2 still available");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(endpoints(&gw, "fleetgate_endpoints", "cd3007b2"), 1.0);
    assert_eq!(
        endpoints(&gw, "fleetgate_endpoints_available", "c7fb82a1"),
        1.0
    );
}

#[test]
fn a_deleted_ingress_leaves_the_metrics_at_the_reload_that_deletes_it() {
    let c1 = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("metrics-forget");
    let head = format!(
        "{}{}",
        header_with_admin(listen, free_port(), ""),
        service("service1", 80, &[("c7fb82a1", &c1)], "")
    );
    let extra = "\n[[ingress]]\nnamespace = \"gateway-demo\"\nname = \"short-lived\"\nclass = \"mse\"\nrules = [{ host = \"gone.example\", paths = [{ path = \"/\", type = \"Prefix\", service = \"service1\", port = 80 }] }]\n";
    let with = format!("{head}{}{extra}", manifests(&[seed("ingress-demo.yaml")]));
    let path = dir.write("gw.toml", &with);
    let gw = Gateway::start(&path, listen);
    let mut c = HttpClient::new(gw.addr);
    assert_eq!(c.get("gone.example", "/").unwrap().status, 200);
    assert_eq!(c.get("example.com", "/svc1").unwrap().status, 200);
    let series = |gw: &Gateway, ingress: &str| {
        samples(
            &gw.admin_get("/metrics", None).body,
            "fleetgate_requests_total",
        )
        .iter()
        .filter(|(l, _)| l.contains(&format!("ingress=\"{ingress}\"")))
        .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while series(&gw, "gateway-demo/short-lived") == 0 {
        assert!(Instant::now() < deadline, "no series for the Ingress");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(
        &path,
        format!("{head}{}", manifests(&[seed("ingress-demo.yaml")])),
    )
    .unwrap();
    gw.signal("HUP");
    gw.wait_generation(2);
    assert_eq!(series(&gw, "gateway-demo/short-lived"), 0);
    assert!(series(&gw, "gateway-demo/web-demo") > 0, "the others stay");
    assert!(gw
        .log_text()
        .contains("metric series of removed Ingresses and Services dropped"));
}

/// Every metric the shipped Grafana dashboard queries is one a running
/// gateway exports (after traffic that makes each labelled series exist).
#[test]
fn the_grafana_dashboard_queries_only_exported_metrics() {
    let c1 = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("dashboard");
    // A second endpoint that refuses connections: some requests retry.
    let closed = fleetgate_e2e::free_port();
    let endpoints = format!(
        "\n[[service]]\nnamespace = \"gateway-demo\"\nname = \"service1\"\nport = 80\nendpoints = [{{ cluster = \"c7fb82a1\", address = \"{}\" }}, {{ cluster = \"cd3007b2\", address = \"127.0.0.1:{closed}\" }}]\n",
        c1.addr
    );
    let config = format!(
        "{}{endpoints}{}",
        header_with_admin(listen, free_port(), ""),
        manifests(&[seed("ingress-demo.yaml")])
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let mut c = HttpClient::new(gw.addr);
    for _ in 0..6 {
        assert_eq!(c.get("example.com", "/svc1").unwrap().status, 200);
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../conf/grafana/fleetgate-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut used = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find(['f', 'p']) {
                let word: String = rest[at..]
                    .chars()
                    .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                    .collect();
                if word.starts_with("fleetgate_") || word.starts_with("process_") {
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| word.strip_suffix(s))
                        .unwrap_or(&word);
                    used.insert(base.to_string());
                }
                rest = &rest[at + word.len().max(1)..];
            }
        }
    }
    assert!(used.len() >= 15, "{used:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = gw.admin_get("/metrics", None).body;
        let missing: Vec<_> = used
            .iter()
            .filter(|name| {
                !text
                    .lines()
                    .any(|l| l.starts_with(&format!("# TYPE {name} ")))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not exported: {missing:?}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
