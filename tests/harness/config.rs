//! Building gateway configurations for tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::process::{free_port, Backend};

/// A file of the seed scenario, as copied into `conf/seed/`.
pub fn seed(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conf/seed")
        .join(file)
}

/// A loopback address that was free a moment ago.
pub fn listen_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("loopback address")
}

/// `[gateway]` (class `mse`) with `extra_gateway` lines, `[admin]` on a free
/// loopback port, and the seed's two
/// clusters: `c7fb82a1` (cluster-demo-1, zone-a) and `cd3007b2`
/// (cluster-demo-2, zone-b).
pub fn header(listen: SocketAddr, extra_gateway: &str) -> String {
    header_with_admin(listen, free_port(), extra_gateway)
}

/// Like [`header`], with the admin API on `admin` (to keep it across reloads).
pub fn header_with_admin(listen: SocketAddr, admin: u16, extra_gateway: &str) -> String {
    format!(
        r#"
[gateway]
name = "test-{port}"
listen = ["{listen}"]
ingress_class = "mse"
grace_period = "5s"
{extra_gateway}

[admin]
listen = "127.0.0.1:{admin}"

[[cluster]]
id = "c7fb82a1"
name = "cluster-demo-1"
zone = "zone-a"

[[cluster]]
id = "cd3007b2"
name = "cluster-demo-2"
zone = "zone-b"
"#,
        port = listen.port(),
    )
}

/// A `[[service]]` in namespace gateway-demo whose endpoints are the given
/// backends, each `(cluster id, backend)`; `extra` is appended inside the
/// service (e.g. `[service.health_check]` lines).
pub fn service(name: &str, port: u16, endpoints: &[(&str, &Backend)], extra: &str) -> String {
    let eps: Vec<(&str, SocketAddr)> = endpoints.iter().map(|(c, b)| (*c, b.addr)).collect();
    service_with(name, port, &eps, extra)
}

/// A `[[service]]` `name` port 80 in namespace gateway-demo with one
/// endpoint at `at` in cluster c7fb82a1 (an address that is no web-demo:
/// a Python server, a dead port, a test's own listener).
pub fn service_at(name: &str, at: SocketAddr, extra: &str) -> String {
    service_with(name, 80, &[("c7fb82a1", at)], extra)
}

fn service_with(name: &str, port: u16, endpoints: &[(&str, SocketAddr)], extra: &str) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|(cluster, addr)| format!("{{ cluster = \"{cluster}\", address = \"{addr}\" }}"))
        .collect();
    format!(
        "\n[[service]]\nnamespace = \"gateway-demo\"\nname = \"{name}\"\nport = {port}\nendpoints = [{}]\n{extra}\n",
        eps.join(", ")
    )
}

/// `[manifests]` in namespace gateway-demo naming `files`.
pub fn manifests(files: &[PathBuf]) -> String {
    let list: Vec<String> = files
        .iter()
        .map(|f| format!("\"{}\"", f.display()))
        .collect();
    format!(
        "\n[manifests]\nnamespace = \"gateway-demo\"\nfiles = [{}]\n",
        list.join(", ")
    )
}

/// The seed's active/active configuration in its smallest form: `[gateway]`
/// on `listen`, service1 with `backend` in cluster c7fb82a1, and the seed's
/// `ingress-demo.yaml` (example.com/svc1, Exact).
pub fn seed_svc1(listen: SocketAddr, backend: &Backend) -> String {
    format!(
        "{}{}{}",
        header(listen, ""),
        service("service1", 80, &[("c7fb82a1", backend)], ""),
        manifests(&[seed("ingress-demo.yaml")])
    )
}

/// An Ingress `gateway-demo/{name}` (class mse) routing every path of `host`
/// to Service `svc` port 80, with `spec.tls` naming Secret `secret` when
/// given, and `annotations` (`key: value` lines under the
/// `nginx.ingress.kubernetes.io/` prefix).
pub fn host_ingress(
    name: &str,
    host: &str,
    svc: &str,
    secret: Option<&str>,
    annotations: &[&str],
) -> String {
    let ann = if annotations.is_empty() {
        String::new()
    } else {
        let lines: Vec<String> = annotations
            .iter()
            .map(|a| format!("    nginx.ingress.kubernetes.io/{a}\n"))
            .collect();
        format!("  annotations:\n{}", lines.concat())
    };
    let tls = secret
        .map(|s| format!("  tls:\n  - hosts: [{host}]\n    secretName: {s}\n"))
        .unwrap_or_default();
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: gateway-demo\n{ann}spec:\n  ingressClassName: mse\n{tls}  rules:\n  - host: {host}\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend: {{service: {{name: {svc}, port: {{number: 80}}}}}}\n"
    )
}
