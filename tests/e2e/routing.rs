//! End to end: the real `fleetgate` binary routing real HTTP to real
//! `web-demo` backends on loopback: the `conf/seed/` scenario's split and
//! error reporting, and the Kubernetes Ingress matching rules.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fleetgate_e2e::config::{header, listen_addr, manifests, seed, seed_svc1, service};
use fleetgate_e2e::{bin_path, free_port, Backend, Gateway, HttpClient, TempDir};

#[test]
fn traffic_follows_pod_counts_across_clusters() {
    let c1: Vec<Backend> = (0..9).map(|_| Backend::start("cluster-demo-1")).collect();
    let c2 = Backend::start("cluster-demo-2");
    let mut eps: Vec<(&str, &Backend)> = c1.iter().map(|b| ("c7fb82a1", b)).collect();
    eps.push(("cd3007b2", &c2));
    let listen = listen_addr();
    let dir = TempDir::new("outcome1");
    let config = format!(
        "{}{}{}",
        header(listen, ""),
        service("service1", 80, &eps, ""),
        manifests(&[seed("ingress-demo.yaml")])
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);

    let mut client = HttpClient::new(gw.addr);
    let counts = client.tally("example.com", "/svc1", &[], 1000);
    let one = counts.get("cluster-demo-1").copied().unwrap_or(0);
    let two = counts.get("cluster-demo-2").copied().unwrap_or(0);
    assert_eq!(one + two, 1000, "{counts:?}");
    assert!(
        (850..=950).contains(&one),
        "cluster-demo-1 got {one} of 1000: {counts:?}"
    );

    // Exact path: /svc1/ and /svc1x are not the route.
    assert_eq!(client.get("example.com", "/svc1/").unwrap().status, 404);
    assert_eq!(client.get("example.com", "/svc1x").unwrap().status, 404);
}

#[test]
fn host_path_class_and_default_backend_rules() {
    let names = [
        "exact",
        "prefix",
        "host-default",
        "wild",
        "hostless",
        "global",
        "foreign",
    ];
    let backends: HashMap<&str, Backend> = names.iter().map(|n| (*n, Backend::start(n))).collect();
    let mut services = String::new();
    for n in names {
        services.push_str(&service(
            &format!("svc-{n}"),
            80,
            &[("c7fb82a1", &backends[n])],
            "",
        ));
    }
    let listen = listen_addr();
    let dir = TempDir::new("rules");
    let manifests = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: wild
spec:
  ingressClassName: mse
  rules:
  - host: "*.example.com"
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: svc-wild, port: {number: 80}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: foreign
  annotations:
    kubernetes.io/ingress.class: nginx
spec:
  rules:
  - host: foreign.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: svc-foreign, port: {number: 80}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: classless
spec:
  rules:
  - host: classless.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: svc-foreign, port: {number: 80}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: catch-all
spec:
  ingressClassName: mse
  rules:
  - http:
      paths:
      - path: /static
        pathType: ImplementationSpecific
        backend: {service: {name: svc-hostless, port: {number: 80}}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: skipped
data: {}
"#;
    let yaml = dir.write("ingresses.yaml", manifests);
    let config = format!(
        r#"{header}{services}
[manifests]
namespace = "gateway-demo"
files = ["{yaml}"]

[[ingress]]
name = "precise"
class = "mse"
default_backend = {{ service = "svc-host-default", port = 80 }}
rules = [
  {{ host = "a.example.com", paths = [
    {{ path = "/api", type = "Prefix", service = "svc-prefix", port = 80 }},
    {{ path = "/api", type = "Exact", service = "svc-exact", port = 80 }},
  ] }},
]
"#,
        header = header(
            listen,
            "default_backend = { namespace = \"gateway-demo\", service = \"svc-global\", port = 80 }"
        ),
        yaml = yaml.display()
    );
    let config_path = dir.write("gw.toml", &config);
    let gw = Gateway::start(&config_path, listen);
    let mut c = HttpClient::new(gw.addr);
    let body = |c: &mut HttpClient, host: &str, path: &str| {
        let r = c.get(host, path).expect("request");
        assert_eq!(r.status, 200, "{host}{path}: {r:?}");
        r.body
    };
    // Precise host: Exact beats Prefix on a tie; Prefix is element-wise.
    assert_eq!(body(&mut c, "a.example.com", "/api"), "exact");
    assert_eq!(body(&mut c, "a.example.com", "/api/v1?q=1"), "prefix");
    assert_eq!(body(&mut c, "A.Example.COM:8080", "/api/v1"), "prefix");
    // A known host whose paths do not match: its Ingress's defaultBackend,
    // never the wildcard or host-less rules.
    assert_eq!(body(&mut c, "a.example.com", "/apix"), "host-default");
    assert_eq!(body(&mut c, "a.example.com", "/static"), "host-default");
    // Wildcard: exactly one extra label.
    assert_eq!(body(&mut c, "b.example.com", "/anything"), "wild");
    assert_eq!(
        body(&mut c, "x.b.example.com", "/static/app.js"),
        "hostless"
    );
    // Host-less rules for unknown hosts; ImplementationSpecific is element-wise.
    assert_eq!(body(&mut c, "unknown.test", "/static"), "hostless");
    assert_eq!(body(&mut c, "unknown.test", "/staticx"), "global");
    // Foreign class and class-less Ingresses are ignored (not the default class).
    assert_eq!(body(&mut c, "foreign.test", "/"), "global");
    assert_eq!(body(&mut c, "classless.test", "/"), "global");

    // `routes` shows the compiled table and says what was ignored and why.
    let out = Command::new(bin_path("fleetgate"))
        .args(["routes", "-c"])
        .arg(&config_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("*.example.com"), "{text}");
    assert!(text.contains("gateway-demo/svc-exact:80"), "{text}");
    assert!(
        text.contains("ignored: Ingress gateway-demo/foreign") && text.contains("\"nginx\""),
        "{text}"
    );
    assert!(
        text.contains("ignored: Ingress gateway-demo/classless"),
        "{text}"
    );
}

#[test]
fn unknown_host_gets_a_404_from_the_gateway() {
    let b = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("404");
    let config = seed_svc1(listen, &b);
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let mut c = HttpClient::new(gw.addr);
    let r = c.get("nobody.example.org", "/svc1").unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("server"), Some("fleetgate"));
    assert!(r.body.contains("no route"), "{}", r.body);
    // The connection survives a 404 and the next request routes normally.
    let r = c.get("example.com", "/svc1").unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "cluster-demo-1"));
}

/// A gateway on `listen` (with `extra_gateway` lines) routing every path of
/// example.com (Prefix `/`) to service1, whose one endpoint is `backend`.
fn everything_to_service1(listen: SocketAddr, backend: &Backend, extra_gateway: &str) -> String {
    format!(
        "{}{}\n[[ingress]]\nnamespace = \"gateway-demo\"\nname = \"p\"\nclass = \"mse\"\nrules = [{{ host = \"example.com\", paths = [{{ path = \"/\", type = \"Prefix\", service = \"service1\", port = 80 }}] }}]\n",
        header(listen, extra_gateway),
        service("service1", 80, &[("c7fb82a1", backend)], ""),
    )
}

#[test]
fn request_reaches_upstream_intact_and_response_has_server_header() {
    let b = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("intact");
    let config = everything_to_service1(listen, &b, "");
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let mut c = HttpClient::new(gw.addr);
    let r = c
        .request(
            "POST",
            "example.com:8080",
            "/a/b%20c?x=1&y=two",
            &[],
            "payload",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-echo-method"), Some("POST"));
    assert_eq!(r.header("x-echo-target"), Some("/a/b%20c?x=1&y=two"));
    assert_eq!(r.header("x-echo-host"), Some("example.com:8080"));
    assert_eq!(r.header("x-echo-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(r.header("server"), Some("fleetgate"));
    let r = c.request("HEAD", "example.com", "/h", &[], "").unwrap();
    assert_eq!((r.status, r.header("x-echo-method")), (200, Some("HEAD")));
}

#[test]
fn forwarded_headers_are_added_appended_and_can_be_turned_off() {
    let b = Backend::start("cluster-demo-1");
    let dir = TempDir::new("forwarded");
    let listen = listen_addr();
    let on = everything_to_service1(listen, &b, "");
    let gw = Gateway::start(&dir.write("on.toml", &on), listen);
    let mut c = HttpClient::new(gw.addr);
    let r = c.get("example.com", "/").unwrap();
    assert_eq!(r.header("x-echo-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(r.header("x-echo-real-ip"), Some("127.0.0.1"));
    assert_eq!(r.header("x-echo-forwarded-proto"), Some("http"));
    // A client's chain is appended to; its claimed scheme is not believed
    // (it is no trusted proxy): the scheme is the connection's.
    let prior = [
        ("X-Forwarded-For", "203.0.113.7, 10.0.0.2"),
        ("X-Forwarded-Proto", "https"),
    ];
    let r = c.request("GET", "example.com", "/", &prior, "").unwrap();
    assert_eq!(
        r.header("x-echo-forwarded-for"),
        Some("203.0.113.7, 10.0.0.2, 127.0.0.1")
    );
    assert_eq!(r.header("x-echo-real-ip"), Some("127.0.0.1"));
    assert_eq!(r.header("x-echo-forwarded-proto"), Some("http"));
    drop(gw);

    let listen = listen_addr();
    let off = everything_to_service1(listen, &b, "forwarded_headers = false");
    let gw = Gateway::start(&dir.write("off.toml", &off), listen);
    let mut c = HttpClient::new(gw.addr);
    let r = c.get("example.com", "/").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-echo-forwarded-for"), Some(""));
    assert_eq!(r.header("x-echo-real-ip"), Some(""));
    assert_eq!(r.header("x-echo-forwarded-proto"), Some(""));
}

#[test]
fn service_without_endpoints_is_503_and_dead_endpoint_is_502() {
    let listen = listen_addr();
    let dir = TempDir::new("5xx");
    let dead_port = free_port();
    let config = format!(
        r#"{}
[[service]]
namespace = "gateway-demo"
name = "empty"
port = 80

[[service]]
namespace = "gateway-demo"
name = "dead"
port = 80
endpoints = [{{ cluster = "c7fb82a1", address = "127.0.0.1:{dead_port}" }}]

[[ingress]]
namespace = "gateway-demo"
name = "x"
class = "mse"
rules = [{{ host = "x.test", paths = [
  {{ path = "/empty", type = "Prefix", service = "empty", port = 80 }},
  {{ path = "/dead", type = "Prefix", service = "dead", port = 80 }},
  {{ path = "/undeclared", type = "Prefix", service = "nope", port = 80 }},
] }}]
"#,
        header(listen, "")
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let mut c = HttpClient::new(gw.addr);
    for path in ["/empty", "/undeclared"] {
        let r = c.get("x.test", path).unwrap();
        assert_eq!(r.status, 503, "{path}: {r:?}");
        assert_eq!(r.header("server"), Some("fleetgate"));
        assert!(r.body.contains("no healthy endpoint"), "{}", r.body);
    }
    let r = c.get("x.test", "/dead").unwrap();
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(r.header("server"), Some("fleetgate"));
}

#[test]
fn a_duplicate_key_is_a_clear_error_and_nothing_is_served() {
    let listen = listen_addr();
    let dir = TempDir::new("outcome7");
    let broken = seed("ingress-demo-cluster-gray.yaml");
    let config = format!("{}{}", header(listen, ""), manifests(&[broken]));
    let config_path = dir.write("gw.toml", &config);

    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(&config_path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ingress-demo-cluster-gray.yaml:12:3"),
        "names file, line, column: {err}"
    );
    assert!(
        err.contains("duplicated key \"name\""),
        "names the key: {err}"
    );
    assert!(err.contains("first given at line 11"), "{err}");

    let mut run = Command::new(bin_path("fleetgate"))
        .args(["run", "-c"])
        .arg(&config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run did not refuse the config"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(1));
    assert!(
        std::net::TcpStream::connect(listen).is_err(),
        "nothing may listen"
    );
}

#[test]
fn invalid_objects_are_errors_naming_object_field_and_value() {
    let listen = listen_addr();
    let dir = TempDir::new("invalid");
    let yaml = dir.write(
        "bad.yaml",
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: bad-path
spec:
  ingressClassName: mse
  rules:
  - host: example.com
    http:
      paths:
      - path: /a/../b
        pathType: Prefix
        backend: {service: {name: s, port: {number: 80}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: bad-port
spec:
  ingressClassName: mse
  defaultBackend: {service: {name: s, port: {number: "eighty"}}}
"#,
    );
    let config = format!(
        "{}\nbogus_key = 1\n[manifests]\nfiles = [\"{}\"]\n[[ingress]]\nname = \"bad-host\"\nclass = \"mse\"\nrules = [{{ host = \"Bad_Host.com\", paths = [] }}]\n",
        header(listen, ""),
        yaml.display()
    );
    // The unknown key is reported alone (TOML is parsed before anything else).
    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(dir.write("gw.toml", &config))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("gw.toml:") && err.contains("unknown field `bogus_key`"),
        "{err}"
    );

    let config = config.replace("bogus_key = 1", "");
    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(dir.write("gw2.toml", &config))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "Ingress default/bad-path: spec.rules[0].http.paths[0].path: invalid path \"/a/../b\""
        ),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:21:"),
        "type error with its line: {err}"
    );
    assert!(
        err.contains("Ingress default/bad-host: spec.rules[0].host: invalid host \"Bad_Host.com\""),
        "{err}"
    );
    assert!(err.contains("3 configuration errors"), "{err}");
}

#[test]
fn sigterm_stops_gracefully_within_grace_period() {
    let b = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("sigterm");
    let config = seed_svc1(listen, &b);
    let mut gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    assert_eq!(
        HttpClient::new(listen)
            .get("example.com", "/svc1")
            .unwrap()
            .status,
        200
    );
    gw.signal("TERM");
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .expect("exited within the grace period");
    assert!(status.success(), "{status}: {}", gw.log_text());
    assert!(gw.log_text().contains("drained"), "{}", gw.log_text());
}

#[test]
fn cli_check_routes_and_help() {
    let conf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conf/fleetgate.toml");
    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("configuration OK"), "{text}");
    assert!(
        text.contains("11 endpoint(s) in 2 of 2 cluster(s)"),
        "{text}"
    );

    let out = Command::new(bin_path("fleetgate"))
        .args(["routes", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let row = text
        .lines()
        .find(|l| l.starts_with("example.com"))
        .expect("a route row");
    for cell in [
        "/svc1",
        "Exact",
        "gateway-demo/web-demo",
        "gateway-demo/service1:80",
        "c7fb82a1=9 cd3007b2=1",
    ] {
        assert!(row.contains(cell), "{row}");
    }

    for sub in ["run", "check", "routes"] {
        let out = Command::new(bin_path("fleetgate"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("--config"));
    }
    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml: cannot read"));
}
