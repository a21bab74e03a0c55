//! The `files` endpoint source: EndpointSlice and Endpoints manifests per
//! cluster, and the errors a wrong one gets.

use std::path::{Path, PathBuf};

use fleetgate_config::{Config, EndpointSource};
use fleetgate_pool::Condition;

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("fleetgate-slices-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(toml: &str, dir: &Path) -> Result<Config, String> {
    Config::from_toml_str(&dir.join("gw.toml"), toml).map_err(|e| e.to_string())
}

const SLICES: &str = r#"
apiVersion: v1
kind: List
items:
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: web-v4
      namespace: shop
      labels: { kubernetes.io/service-name: web }
    addressType: IPv4
    ports: [{ name: http, port: 8080 }, { name: admin, port: 9000 }]
    endpoints:
      - { addresses: [10.1.0.1], zone: zone-a1 }
      - { addresses: [10.1.0.2], conditions: { ready: false, serving: true, terminating: true } }
      - { addresses: [10.1.0.3], conditions: { ready: false } }
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: other
      namespace: shop
      labels: { kubernetes.io/service-name: not-declared }
    addressType: IPv4
    endpoints: [{ addresses: [10.1.9.9] }]
---
apiVersion: v1
kind: Endpoints
metadata: { name: legacy, namespace: shop }
subsets:
  - addresses: [{ ip: 10.1.1.1 }]
    ports: [{ port: 7000 }]
"#;

fn config(extra_cluster: &str, extra: &str) -> String {
    format!(
        r#"
[gateway]
listen = ["127.0.0.1:8080"]

[[cluster]]
id = "c1"
zone = "zone-a"
endpoint_slices = ["slices-*.yaml"]
{extra_cluster}

[[cluster]]
id = "c2"

[[service]]
namespace = "shop"
name = "web"
port = 80
port_name = "http"
endpoints = [{{ cluster = "c2", address = "10.2.0.1:8080" }}]

[[service]]
namespace = "shop"
name = "legacy"
port = 7000
{extra}
"#
    )
}

#[test]
fn slices_become_endpoints_by_kubernetes_rules() {
    let dir = Scratch::new("rules");
    dir.write("slices-a.yaml", SLICES);
    let c = load(&config("", ""), &dir.0).unwrap_or_else(|e| panic!("{e}"));
    let EndpointSource::Files { files, .. } = &c.clusters[0].source else {
        panic!("c1 reads files: {:?}", c.clusters[0].source);
    };
    assert_eq!(files.len(), 1);
    assert_eq!(c.clusters[1].source, EndpointSource::Static);
    let web = c.services.iter().find(|s| s.name == "web").expect("web");
    let got: Vec<(String, &str, Option<&str>, Condition)> = web
        .endpoints
        .iter()
        .map(|e| {
            (
                e.address.to_string(),
                e.cluster.as_str(),
                e.zone.as_deref(),
                e.condition,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("10.2.0.1:8080".into(), "c2", None, Condition::Ready),
            (
                "10.1.0.1:8080".into(),
                "c1",
                Some("zone-a1"),
                Condition::Ready
            ),
            ("10.1.0.2:8080".into(), "c1", None, Condition::Terminating),
        ]
    );
    let legacy = c
        .services
        .iter()
        .find(|s| s.name == "legacy")
        .expect("legacy");
    assert_eq!(legacy.endpoints[0].address.to_string(), "10.1.1.1:7000");
}

#[test]
fn wrong_sources_say_where_and_why() {
    let dir = Scratch::new("errors");
    dir.write("slices-a.yaml", SLICES);
    let err = load(&config("source = \"static\"", ""), &dir.0).unwrap_err();
    assert!(err.contains("cluster.endpoint_slices: cluster \"c1\": endpoint_slices are read only with source = \"files\""), "{err}");
    let err = load(&config("source = \"consul\"", ""), &dir.0).unwrap_err();
    assert!(err.contains("source \"consul\" is not"), "{err}");
    let err = load(&config("ip_family = \"ipv5\"", ""), &dir.0).unwrap_err();
    assert!(
        err.contains("\"ipv5\" is not \"ipv4\" or \"ipv6\""),
        "{err}"
    );
    let missing = config("", "").replace("slices-*.yaml", "nothing-*.yaml");
    let err = load(&missing, &dir.0).unwrap_err();
    assert!(
        err.contains("cluster \"c1\": cluster.endpoint_slices: \"nothing-*.yaml\" matches no file"),
        "{err}"
    );
    let both = config(
        "",
        "endpoints = [{ cluster = \"c1\", address = \"10.9.9.9:7000\" }]",
    );
    let err = load(&both, &dir.0).unwrap_err();
    assert!(err.contains("Service shop/legacy:7000 has endpoints in [[service]] and EndpointSlices for cluster \"c1\""), "{err}");
    let unnamed = config("", "").replace("port_name = \"http\"\n", "");
    let err = load(&unnamed, &dir.0).unwrap_err();
    assert!(
        err.contains("slices-a.yaml:") && err.contains("Service shop/web:80: no port of its EndpointSlices in cluster \"c1\" is unnamed; they have \"admin\", \"http\""),
        "{err}"
    );
}

#[test]
fn slices_in_manifest_files_are_not_used_and_said_so() {
    let dir = Scratch::new("manifests");
    dir.write("slices-a.yaml", SLICES);
    let toml = format!(
        "{}\n[manifests]\nfiles = [\"slices-a.yaml\"]\n",
        config("", "")
    );
    let c = load(&toml, &dir.0).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        c.warnings.iter().any(|w| w.contains(
            "EndpointSlice(s) are not used: endpoints are read from [[cluster]] endpoint_slices"
        )),
        "{:?}",
        c.warnings
    );
}

#[test]
fn kubernetes_and_dns_sources_are_checked_where_they_are_written() {
    let dir = Scratch::new("live");
    dir.write("zone-a.kubeconfig", "apiVersion: v1\nkind: Config\n");
    let base = |cluster: &str, service: &str| {
        format!(
            "[gateway]\nlisten = [\"127.0.0.1:8080\"]\n\n[[cluster]]\nid = \"a\"\n{cluster}\n\n[[service]]\nname = \"web\"\nport = 80\n{service}\n"
        )
    };
    let c = load(
        &base(
            "source = \"kubernetes\"\nkubeconfig = \"zone-a.kubeconfig\"\ncontext = \"zone-a\"\napi_timeout = \"5s\"",
            "",
        ),
        &dir.0,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let EndpointSource::Kubernetes(k) = &c.clusters[0].source else {
        panic!("{:?}", c.clusters[0].source);
    };
    assert!(k
        .kubeconfig
        .as_ref()
        .is_some_and(|p| p.ends_with("zone-a.kubeconfig")));
    assert_eq!(
        (k.context.as_deref(), k.keep_on_empty_list),
        (Some("zone-a"), true)
    );
    assert!(c.clusters[0].source.is_live());

    let err = load(
        &base(
            "source = \"kubernetes\"\nkubeconfig = \"missing.kubeconfig\"",
            "",
        ),
        &dir.0,
    )
    .unwrap_err();
    assert!(
        err.contains("cluster.kubeconfig: cluster \"a\": kubeconfig")
            && err.contains("missing.kubeconfig is not a readable file"),
        "{err}"
    );
    let err = load(&base("kubeconfig = \"zone-a.kubeconfig\"", ""), &dir.0).unwrap_err();
    assert!(
        err.contains("apply to source = \"kubernetes\" only"),
        "{err}"
    );
    let err = load(
        &base(
            "source = \"kubernetes\"",
            "endpoints = [{ cluster = \"a\", address = \"10.0.0.1:80\" }]",
        ),
        &dir.0,
    )
    .unwrap_err();
    assert!(
        err.contains("takes its endpoints from its Kubernetes API server: remove this entry"),
        "{err}"
    );

    let dns = "source = \"dns\"\ndns_server = \"127.0.0.1:5353\"";
    let c = load(
        &base(dns, "endpoints = [{ cluster = \"a\", dns = \"web.zone-a.example:8080\" }, { cluster = \"a\", dns_srv = \"_http._tcp.web.zone-a.example\" }]"),
        &dir.0,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<(&str, Option<u16>)> = c.services[0]
        .dns
        .iter()
        .map(|d| (d.name.as_str(), d.port))
        .collect();
    assert_eq!(
        names,
        [
            ("web.zone-a.example", Some(8080)),
            ("_http._tcp.web.zone-a.example", None)
        ]
    );
    for (entry, expected) in [
        ("{ cluster = \"a\", dns = \"web.example\" }", "needs a port"),
        (
            "{ cluster = \"a\", dns = \"10.0.0.1:80\" }",
            "is an IP address",
        ),
        (
            "{ cluster = \"a\", dns = \"web example:80\" }",
            "is not a DNS name",
        ),
        (
            "{ cluster = \"a\", dns = \"web.example:0\" }",
            "port \"0\" is not 1-65535",
        ),
        (
            "{ cluster = \"a\", address = \"10.0.0.1:80\" }",
            "takes its endpoints from DNS",
        ),
        (
            "{ cluster = \"a\", dns = \"a.example:80\", dns_srv = \"_x._tcp.example\" }",
            "give one of address, dns and dns_srv",
        ),
    ] {
        let err = load(&base(dns, &format!("endpoints = [{entry}]")), &dir.0).unwrap_err();
        assert!(err.contains(expected), "{entry}: {err}");
    }
    let err = load(
        &base(
            "",
            "endpoints = [{ cluster = \"a\", dns = \"web.example:80\" }]",
        ),
        &dir.0,
    )
    .unwrap_err();
    assert!(
        err.contains(
            "dns and dns_srv need a cluster with source = \"dns\"; cluster \"a\" is static"
        ),
        "{err}"
    );
    let err = load(&base("dns_server = \"127.0.0.1:53\"", ""), &dir.0).unwrap_err();
    assert!(err.contains("apply to source = \"dns\" only"), "{err}");
    let err = load(
        &base(
            "source = \"dns\"\ndns_min_ttl = \"10s\"\ndns_max_ttl = \"1s\"",
            "",
        ),
        &dir.0,
    )
    .unwrap_err();
    assert!(err.contains("dns_max_ttl at least dns_min_ttl"), "{err}");
}
