//! Loading whole configurations: TOML plus manifests, both sources, and the
//! errors users see.

use std::path::{Path, PathBuf};

use fleetgate_config::{Config, Disposition, PortRef};
use fleetgate_ingress::{HostPattern, PathType};

fn seed(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conf/seed")
        .join(file)
}

/// A scratch directory for manifest files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("fleetgate-config-{tag}-{}", std::process::id()));
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

const BASE: &str = r#"
[gateway]
listen = ["127.0.0.1:8080"]
ingress_class = "mse"

[[cluster]]
id = "c7fb82a1"
zone = "zone-a"

[[cluster]]
id = "cd3007b2"
"#;

fn load(toml: &str, dir: &Path) -> Result<Config, String> {
    Config::from_toml_str(&dir.join("gw.toml"), toml).map_err(|e| e.to_string())
}

#[test]
fn seed_manifests_load_unchanged() {
    let dir = Scratch::new("seed");
    let files: Vec<String> = [
        "ingress-demo.yaml",
        "new-ingress.yaml",
        "ingress-demo-cluster-one.yaml",
        "ingress-demo-cluster-gray.fixed.yaml",
    ]
    .iter()
    .map(|f| format!("\"{}\"", seed(f).display()))
    .collect();
    let toml = format!(
        "{BASE}\n[manifests]\nnamespace = \"gateway-demo\"\nfiles = [{}]\n",
        files.join(", ")
    );
    let config = load(&toml, &dir.0).unwrap();
    assert_eq!(config.ingresses.len(), 4);
    assert!(config
        .ingresses
        .iter()
        .all(|i| i.namespace == "gateway-demo"));
    assert!(config
        .ingresses
        .iter()
        .all(|i| i.disposition == Disposition::Served));
    let canary = config
        .ingresses
        .iter()
        .find(|i| i.name == "web-demo-canary-1")
        .unwrap();
    let c = canary.canary.as_ref().expect("a canary");
    assert_eq!(c.header.as_deref(), Some("canary-dest"));
    assert_eq!(c.header_value.as_deref(), Some("cluster1"));
    let gray = config
        .ingresses
        .iter()
        .find(|i| i.name == "web-demo-cluster-gray")
        .unwrap();
    assert_eq!(gray.subset.as_ref().unwrap().name(), "cluster-demo-2");
    assert!(gray.canary.is_some());
    let one = config
        .ingresses
        .iter()
        .find(|i| i.name == "web-demo-cluster-one")
        .unwrap();
    assert_eq!(one.rules[0].host, HostPattern::Exact("example.com".into()));
    assert_eq!(one.rules[0].paths[0].path_type, PathType::Exact);
    assert_eq!(one.rules[0].paths[0].backend.port, PortRef::Number(80));
}

#[test]
fn named_ports_come_from_service_manifests() {
    let dir = Scratch::new("named");
    let yaml = dir.write(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: by-name\nspec:\n  ingressClassName: mse\n  defaultBackend:\n    service: {name: web, port: {name: http}}\n",
    );
    let toml = format!(
        "{BASE}\n[[service]]\nname = \"web\"\nport = 80\nendpoints = [{{ cluster = \"c7fb82a1\", address = \"127.0.0.1:1\" }}]\n[manifests]\nfiles = [\"{}\"]\n",
        yaml.display()
    );
    let config = load(&toml, &dir.0).unwrap();
    let ing = &config.ingresses[0];
    assert_eq!(ing.namespace, "default");
    let backend = ing.default_backend.as_ref().unwrap();
    let svc = config
        .resolve_service(&ing.namespace, backend)
        .expect("resolved by name");
    assert_eq!((svc.port, svc.port_name.as_deref()), (80, Some("http")));
    assert_eq!(svc.endpoints.len(), 1);
}

#[test]
fn every_error_is_reported_at_once() {
    let dir = Scratch::new("errors");
    let yaml = dir.write(
        "bad.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: twice\nspec:\n  ingressClassName: mse\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: twice\nspec:\n  ingressClassName: mse\n---\napiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: old\n---\nkind: Thing\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: subset\n  annotations:\n    mse.ingress.kubernetes.io/subset-labels: \"a b\"\nspec:\n  ingressClassName: mse\n",
    );
    let toml = format!(
        "{BASE}\n[[service]]\nname = \"s\"\nport = 80\nendpoints = [{{ cluster = \"nowhere\", address = \"127.0.0.1:1\" }}, {{ cluster = \"c7fb82a1\", address = \"not-an-address\" }}]\n[manifests]\nfiles = [\"{}\", \"missing/*.yaml\"]\n",
        yaml.display()
    );
    let err = load(&toml, &dir.0).unwrap_err();
    for needle in [
        "Ingress default/twice: defined twice; first definition at",
        "bad.yaml:15:1: Ingress apiVersion \"extensions/v1beta1\" is not supported",
        "bad.yaml:20:1: not a Kubernetes object",
        "Ingress default/subset: metadata.annotations[\"mse.ingress.kubernetes.io/subset-labels\"]",
        "cluster \"nowhere\" is not declared in [[cluster]]",
        "address \"not-an-address\" is not IP:port",
        "\"missing/*.yaml\" matches no file",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(err.starts_with("7 configuration errors"), "{err}");
}

#[test]
fn classless_ingress_served_only_by_the_default_class() {
    let dir = Scratch::new("class");
    let toml = |default: bool| {
        format!(
            "{}\n[[ingress]]\nname = \"nameless\"\nrules = [{{ host = \"a.test\", paths = [{{ path = \"/\", type = \"Prefix\", service = \"s\", port = 80 }}] }}]\n",
            BASE.replace("ingress_class = \"mse\"", &format!("ingress_class = \"mse\"\ndefault_class = {default}"))
        )
    };
    let c = load(&toml(false), &dir.0).unwrap();
    assert!(
        matches!(&c.ingresses[0].disposition, Disposition::Ignored(r) if r.contains("not the default class"))
    );
    let c = load(&toml(true), &dir.0).unwrap();
    assert_eq!(c.ingresses[0].disposition, Disposition::Served);
}

#[test]
fn durations_and_unknown_keys() {
    let dir = Scratch::new("durations");
    let err = load(
        &BASE.replace(
            "ingress_class = \"mse\"",
            "ingress_class = \"mse\"\ngrace_period = \"soon\"",
        ),
        &dir.0,
    )
    .unwrap_err();
    assert!(
        err.contains("gw.toml:") && err.contains("invalid duration \"soon\""),
        "{err}"
    );
    let c = load(
        &BASE.replace(
            "ingress_class = \"mse\"",
            "ingress_class = \"mse\"\ngrace_period = \"1500ms\"",
        ),
        &dir.0,
    )
    .unwrap();
    assert_eq!(c.gateway.grace_period.as_millis(), 1500);
    let err = load(
        &format!("{BASE}\n[[cluster]]\nid = \"x\"\nregion = \"eu\"\n"),
        &dir.0,
    )
    .unwrap_err();
    assert!(err.contains("unknown field `region`"), "{err}");
}

#[test]
fn edge_settings_are_validated_at_their_place() {
    let dir = Scratch::new("edge");
    let tls_only = BASE.replace(
        "listen = [\"127.0.0.1:8080\"]",
        "listen_tls = [\"127.0.0.1:8443\"]\nh2c = true\nssl_redirect_default = true\n\
         trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]",
    );
    let c = load(&tls_only, &dir.0).unwrap();
    assert!(c.gateway.listen.is_empty());
    assert_eq!(c.gateway.listen_tls.len(), 1);
    assert!(c.gateway.h2c && c.gateway.ssl_redirect_default);
    let trusted: Vec<String> = c
        .gateway
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(trusted, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
    assert_eq!(c.upstream.websocket_idle_timeout.as_secs(), 3600);
    assert!(!c.upstream.retry_non_idempotent);

    let err = load(
        &BASE.replace(
            "listen = [\"127.0.0.1:8080\"]",
            "listen = [\"127.0.0.1:8080\"]\nlisten_tls = [\"127.0.0.1:8080\"]\n\
             trusted_proxies = [\"10.0.0.0/33\"]",
        ),
        &dir.0,
    )
    .unwrap_err();
    assert!(
        err.contains("gw.toml:4:15: gateway.listen_tls: 127.0.0.1:8080 is also a plain listener"),
        "{err}"
    );
    assert!(
        err.contains("gateway.trusted_proxies: \"10.0.0.0/33\" is not a CIDR"),
        "{err}"
    );
    let err = load(
        &BASE.replace("listen = [\"127.0.0.1:8080\"]", "listen = []"),
        &dir.0,
    )
    .unwrap_err();
    assert!(
        err.contains("at least one listener (listen or listen_tls)"),
        "{err}"
    );
}

#[test]
fn service_protocols_and_upstream_tls() {
    let dir = Scratch::new("protocols");
    let svc = |extra: &str| {
        format!(
            "{BASE}\n[[service]]\nname = \"api\"\nport = 443\n{extra}\n\
             endpoints = [{{ cluster = \"c7fb82a1\", address = \"127.0.0.1:9443\" }}]\n"
        )
    };
    let c = load(
        &svc("protocol = \"GRPCS\"\nretry_non_idempotent = true"),
        &dir.0,
    )
    .unwrap();
    let s = &c.services[0];
    assert_eq!(s.protocol, fleetgate_config::UpstreamProtocol::Grpcs);
    assert!(s.tls.verify, "verification is on by default");
    assert!(s.timeouts.retry_non_idempotent);

    let err = load(&svc("protocol = \"spdy\""), &dir.0).unwrap_err();
    assert!(
        err.contains("service.protocol: default/api:443: \"SPDY\" is not a supported protocol"),
        "{err}"
    );
    let ca = dir.write("ca.pem", "not a certificate");
    let with_tls = format!(
        "{}[service.tls]\nverify = false\nca_file = \"{}\"\n",
        svc("protocol = \"https\""),
        ca.display()
    );
    let err = load(&with_tls, &dir.0).unwrap_err();
    assert!(
        err.contains("service.tls.ca_file: default/api:443:")
            && err.contains("no PEM CERTIFICATE section"),
        "{err}"
    );
}

#[test]
fn durations_too_long_for_a_clock_are_refused() {
    let dir = Scratch::new("huge");
    let svc = format!(
        "{BASE}\n[[service]]\nname = \"api\"\nport = 80\n\
         endpoints = [{{ cluster = \"c7fb82a1\", address = \"127.0.0.1:9080\" }}]\n\
         [service.health_check]\nkind = \"tcp\"\ninterval = \"18446744073709551615s\"\n"
    );
    let err = load(&svc, &dir.0).unwrap_err();
    assert!(
        err.contains("gw.toml:") && err.contains("is too long (at most 365 days)"),
        "{err}"
    );
    assert!(load(&svc.replace("18446744073709551615s", "365days"), &dir.0).is_ok());
}

#[test]
fn advertised_addresses_are_ips_or_host_names() {
    let dir = Scratch::new("advertise");
    let ok = BASE.replace(
        "ingress_class = \"mse\"",
        "ingress_class = \"mse\"\nadvertise = [\"192.0.2.10\", \"2001:db8::1\", \"gw.example.net\"]",
    );
    assert!(load(&ok, &dir.0).is_ok());
    for bad in ["gw.example.net:443", "[2001:db8::1]", "", "a..b"] {
        let toml = BASE.replace(
            "ingress_class = \"mse\"",
            &format!("ingress_class = \"mse\"\nadvertise = [\"{bad}\"]"),
        );
        let err = load(&toml, &dir.0).expect_err(bad);
        assert!(
            err.contains("gateway.advertise")
                && err.contains("neither an IP address nor a host name"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn udp_ports_of_a_service_manifest_are_not_backends() {
    let dir = Scratch::new("udp-ports");
    std::fs::write(
        dir.0.join("dns.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: { name: kube-dns, namespace: kube-system }\nspec:\n  ports:\n  - { name: dns, port: 53, protocol: UDP }\n  - { name: dns-tcp, port: 53, protocol: TCP }\n",
    )
    .unwrap();
    let toml = format!("{BASE}\n[manifests]\nfiles = [\"dns.yaml\"]\n");
    let config = load(&toml, &dir.0).unwrap();
    let ports: Vec<_> = config
        .services
        .iter()
        .map(|s| (s.port, s.port_name.clone()))
        .collect();
    assert_eq!(ports, vec![(53, Some("dns-tcp".to_string()))]);
}
