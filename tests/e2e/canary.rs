//! End to end: canary Ingresses with the real binary and backends
//! (the `conf/seed/` scenario's header canary and cluster-level canary).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;

use fleetgate_e2e::config::{header, listen_addr, manifests, seed, service};
use fleetgate_e2e::{bin_path, Backend, Gateway, HttpClient, TempDir};

fn get_many(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> HashMap<String, usize> {
    HttpClient::new(addr).tally("example.com", path, headers, n)
}

/// A canary Ingress on example.com `path` (Exact) for `service` with the
/// given annotations (without prefix: `nginx.ingress.kubernetes.io/` is added).
fn canary_yaml(name: &str, path: &str, service: &str, annotations: &[(&str, &str)]) -> String {
    let mut ann = String::from("    nginx.ingress.kubernetes.io/canary: \"true\"\n");
    for (k, v) in annotations {
        if k.contains('/') {
            ann.push_str(&format!("    {k}: \"{v}\"\n"));
        } else {
            ann.push_str(&format!("    nginx.ingress.kubernetes.io/{k}: \"{v}\"\n"));
        }
    }
    ingress_yaml(name, path, service, &ann)
}

/// A main (non-canary) Ingress on example.com `path` (Exact) for `service`.
fn main_yaml(name: &str, path: &str, service: &str) -> String {
    ingress_yaml(name, path, service, "")
}

/// An Ingress on example.com `path` (Exact) for `service`; `annotations`
/// is the indented body of `metadata.annotations`, or empty for none.
fn ingress_yaml(name: &str, path: &str, service: &str, annotations: &str) -> String {
    let annotations = if annotations.is_empty() {
        String::new()
    } else {
        format!("  annotations:\n{annotations}")
    };
    format!(
        r#"---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
{annotations}spec:
  ingressClassName: mse
  rules:
  - host: example.com
    http:
      paths:
      - path: {path}
        pathType: Exact
        backend: {{service: {{name: {service}, port: {{number: 80}}}}}}
"#
    )
}

/// The header canary of new-ingress.yaml, unchanged.
#[test]
fn header_canary_of_the_seed_manifests() {
    let c1 = Backend::start("cluster-demo-1");
    let c2 = Backend::start("cluster-demo-2");
    let canary = Backend::start("cluster-demo-1-canary");
    let listen = listen_addr();
    let dir = TempDir::new("outcome3");
    let config = format!(
        "{}{}{}{}",
        header(listen, ""),
        service("service1", 80, &[("c7fb82a1", &c1), ("cd3007b2", &c2)], ""),
        service("service1-canary-1", 80, &[("c7fb82a1", &canary)], ""),
        manifests(&[seed("ingress-demo.yaml"), seed("new-ingress.yaml")])
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let with = get_many(gw.addr, "/svc1", &[("canary-dest", "cluster1")], 100);
    assert_eq!(with.get("cluster-demo-1-canary"), Some(&100), "{with:?}");
    let without = get_many(gw.addr, "/svc1", &[], 100);
    assert_eq!(without.get("cluster-demo-1-canary"), None, "{without:?}");
    assert_eq!(without.values().sum::<usize>(), 100);
    let other_value = get_many(gw.addr, "/svc1", &[("canary-dest", "cluster2")], 50);
    assert_eq!(
        other_value.get("cluster-demo-1-canary"),
        None,
        "{other_value:?}"
    );
}

/// A cluster-level canary (header + subset) sends the gray
/// header's requests to cluster 2 while the route itself is pinned to
/// cluster 1.
#[test]
fn cluster_level_canary_sends_gray_to_the_other_cluster() {
    let c1 = Backend::start("cluster-demo-1");
    let c2 = Backend::start("cluster-demo-2");
    let listen = listen_addr();
    let dir = TempDir::new("outcome5");
    let config = format!(
        "{}{}{}",
        header(listen, ""),
        service("service1", 80, &[("c7fb82a1", &c1), ("cd3007b2", &c2)], ""),
        manifests(&[
            seed("ingress-demo-cluster-one.yaml"),
            seed("ingress-demo-cluster-gray.fixed.yaml")
        ])
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let gray = get_many(
        gw.addr,
        "/service1",
        &[("app-web-demo-version", "gray")],
        100,
    );
    assert_eq!(gray.get("cluster-demo-2"), Some(&100), "{gray:?}");
    let plain = get_many(gw.addr, "/service1", &[], 100);
    assert_eq!(plain.get("cluster-demo-1"), Some(&100), "{plain:?}");
}

/// A 20% weight canary, a cookie canary, and both fallbacks.
#[test]
fn weight_cookie_and_fallback() {
    let main = Backend::start("main");
    let weighted = Backend::start("weighted");
    let cookie = Backend::start("cookie");
    let listen = listen_addr();
    let dir = TempDir::new("weights");
    let yaml = [
        main_yaml("w-main", "/w", "main"),
        canary_yaml("w-canary", "/w", "weighted", &[("canary-weight", "20")]),
        main_yaml("c-main", "/c", "main"),
        canary_yaml("c-canary", "/c", "cookie", &[("canary-by-cookie", "beta")]),
        // The canary's Service has no endpoints: requests stay on main.
        main_yaml("f-main", "/f", "main"),
        canary_yaml(
            "f-canary",
            "/f",
            "empty",
            &[("canary-by-header", "x-canary")],
        ),
        // The main Service has no endpoints: the canary still works.
        main_yaml("g-main", "/g", "empty"),
        canary_yaml(
            "g-canary",
            "/g",
            "cookie",
            &[("canary-by-header", "x-canary")],
        ),
    ]
    .concat();
    let config = format!(
        "{}{}{}{}{}{}",
        header(listen, ""),
        service("main", 80, &[("c7fb82a1", &main)], ""),
        service("weighted", 80, &[("c7fb82a1", &weighted)], ""),
        service("cookie", 80, &[("cd3007b2", &cookie)], ""),
        "\n[[service]]\nnamespace = \"gateway-demo\"\nname = \"empty\"\nport = 80\n",
        manifests(&[dir.write("canaries.yaml", &yaml)])
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);

    let n = 2000;
    let w = get_many(gw.addr, "/w", &[], n);
    let share = w.get("weighted").copied().unwrap_or(0) as f64 * 100.0 / n as f64;
    assert_eq!(w.values().sum::<usize>(), n, "{w:?}");
    println!("weight 20: {share:.2}% of {n} requests went to the canary");
    assert!(
        (17.0..=23.0).contains(&share),
        "weight 20 gave {share:.1}%: {w:?}"
    );

    let c = get_many(gw.addr, "/c", &[("Cookie", "session=1; beta=always")], 20);
    assert_eq!(c.get("cookie"), Some(&20), "{c:?}");
    let c = get_many(gw.addr, "/c", &[("Cookie", "beta=never")], 20);
    assert_eq!(c.get("main"), Some(&20), "{c:?}");

    let f = get_many(gw.addr, "/f", &[("x-canary", "always")], 20);
    assert_eq!(
        f.get("main"),
        Some(&20),
        "canary without endpoints falls back: {f:?}"
    );
    let g = get_many(gw.addr, "/g", &[("x-canary", "always")], 20);
    assert_eq!(
        g.get("cookie"),
        Some(&20),
        "main without endpoints keeps its canary: {g:?}"
    );
    let g = get_many(gw.addr, "/g", &[], 5);
    assert_eq!(g.get("status 503"), Some(&5), "{g:?}");
}

fn check(config: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(config)
        .output()
        .expect("run check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Config errors and reports: nginx's one-canary rule, invalid values,
/// unbound canaries, and the canary listing of `routes`.
#[test]
fn canary_config_errors_and_reports() {
    let listen = listen_addr();
    let dir = TempDir::new("canary-errors");
    let main = Backend::start("main");
    let services = format!(
        "{}{}",
        service("main", 80, &[("c7fb82a1", &main)], ""),
        service("other", 80, &[("c7fb82a1", &main)], "")
    );
    let two = [
        main_yaml("m", "/x", "main"),
        canary_yaml("first", "/x", "other", &[("canary-weight", "10")]),
        canary_yaml("second", "/x", "other", &[("canary-by-header", "h")]),
    ]
    .concat();
    let yaml = dir.write("two.yaml", &two);

    // nginx flavour: the second canary is an error naming both.
    let config = format!(
        "{}{services}{}",
        header(listen, "canary_flavour = \"nginx\""),
        manifests(std::slice::from_ref(&yaml))
    );
    let (code, _, err) = check(&dir.write("nginx.toml", &config));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("gateway-demo/first") && err.contains("gateway-demo/second"),
        "{err}"
    );

    // mse flavour (default): both are fine, and routes lists them.
    let config = format!("{}{services}{}", header(listen, ""), manifests(&[yaml]));
    let path = dir.write("mse.toml", &config);
    let (code, out, err) = check(&path);
    assert_eq!(code, 0, "{out}{err}");
    let out = Command::new(bin_path("fleetgate"))
        .args(["routes", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("canary:") && text.contains("gateway-demo/first"),
        "{text}"
    );
    assert!(text.contains("gateway-demo/second"), "{text}");

    // Invalid values and canary keys without canary: "true".
    let bad = [
        main_yaml("m", "/x", "main"),
        canary_yaml("bad-weight", "/x", "other", &[("canary-weight", "abc")]),
        canary_yaml("bad-regex", "/x", "other", &[("canary-by-header", "h"), ("canary-by-header-pattern", "(")]),
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: not-canary\n  annotations:\n    nginx.ingress.kubernetes.io/canary-weight: \"5\"\nspec:\n  ingressClassName: mse\n  rules:\n  - host: example.com\n    http:\n      paths:\n      - path: /y\n        pathType: Exact\n        backend: {service: {name: main, port: {number: 80}}}\n".to_string(),
    ]
    .concat();
    let config = format!(
        "{}{services}{}",
        header(listen, ""),
        manifests(&[dir.write("bad.yaml", &bad)])
    );
    let (code, _, err) = check(&dir.write("bad.toml", &config));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Ingress gateway-demo/bad-weight")
            && err.contains("canary-weight")
            && err.contains("abc"),
        "{err}"
    );
    assert!(
        err.contains("Ingress gateway-demo/bad-regex") && err.contains("canary-by-header-pattern"),
        "{err}"
    );
    assert!(
        err.contains("Ingress gateway-demo/not-canary") && err.contains("canary-weight"),
        "{err}"
    );

    // A canary with no main route binds nowhere and is reported.
    let lonely = canary_yaml("lonely", "/nowhere", "other", &[("canary-weight", "50")]);
    let config = format!(
        "{}{services}{}",
        header(listen, ""),
        manifests(&[dir.write("lonely.yaml", &lonely)])
    );
    let (code, out, err) = check(&dir.write("lonely.toml", &config));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("unbound canary: Ingress gateway-demo/lonely"),
        "{out}"
    );
}
