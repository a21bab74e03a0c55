//! A Kubernetes API server for tests: `tests/clients/kube_api_server.py`,
//! which speaks the list/watch wire protocol (lists with resourceVersion,
//! chunked watch streams, BOOKMARK, 410 Expired, Status errors) and knows
//! nothing of fleetgate. See the script's docs for what it does; this is
//! its remote control.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::client::HttpClient;
use crate::process::Backend;
use crate::python::client_script;

/// A running test API server.
pub struct KubeApi {
    server: Backend,
    /// Where it listens (plain HTTP).
    pub addr: SocketAddr,
    token: String,
}

fn spawn(listen: &str, token: &str, start_version: u64) -> Backend {
    let child = Command::new("python3")
        .arg(client_script("kube_api_server.py"))
        .args(["--listen", listen, "--token", token])
        .args(["--start-version", &start_version.to_string()])
        .args(["--bookmark-seconds", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kube_api_server.py");
    Backend::adopt(child, "kube-api")
}

impl KubeApi {
    /// Starts a server that requires `Bearer token`.
    pub fn start(token: &str) -> KubeApi {
        let server = spawn("127.0.0.1:0", token, 1000);
        KubeApi {
            addr: server.addr,
            server,
            token: token.to_string(),
        }
    }

    /// Writes a kubeconfig for it (context `test`, this token) into `dir`.
    pub fn kubeconfig(&self, dir: &Path, name: &str) -> PathBuf {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: http://{}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\ncurrent-context: test\nusers:\n- name: test\n  user:\n    token: {}\n",
            self.addr, self.token
        );
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    fn control(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let r = HttpClient::new(self.addr)
            .request(
                method,
                "127.0.0.1",
                path,
                &[("Content-Type", "application/json")],
                body,
            )
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
    }

    /// Creates or replaces an object of resource `plural`.
    pub fn put(&self, plural: &str, object: &serde_json::Value) {
        self.control(
            "PUT",
            &format!("/_control/objects/{plural}"),
            &object.to_string(),
        );
    }

    /// Deletes an object.
    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        self.control(
            "DELETE",
            &format!("/_control/objects/{plural}/{namespace}/{name}"),
            "",
        );
    }

    /// Forgets the event history: resuming watches get 410 Expired.
    pub fn compact(&self) {
        self.control("POST", "/_control/compact", "");
    }

    /// Cuts every open watch stream.
    pub fn drop_watches(&self) {
        self.control("POST", "/_control/drop", "");
    }

    /// While on, requests are never answered.
    pub fn hang(&self, on: bool) {
        self.control("POST", &format!("/_control/hang?on={}", u8::from(on)), "");
    }

    /// Answers API requests normally (`ok`), or with 401 or 403.
    pub fn auth(&self, mode: &str) {
        self.control("POST", &format!("/_control/auth?mode={mode}"), "");
    }

    /// Like [`KubeApi::auth`], for requests on resource `plural` only (403:
    /// RBAC that does not grant it).
    pub fn auth_for(&self, plural: &str, mode: &str) {
        self.control(
            "POST",
            &format!("/_control/auth?mode={mode}&plural={plural}"),
            "",
        );
    }

    /// One object, read through the API as a client would (`api_path`,
    /// e.g. `/apis/networking.k8s.io/v1/namespaces/NS/ingresses/NAME`);
    /// `None` when there is no such object.
    pub fn object(&self, api_path: &str) -> Option<serde_json::Value> {
        let auth = format!("Bearer {}", self.token);
        let r = HttpClient::new(self.addr)
            .request(
                "GET",
                "127.0.0.1",
                api_path,
                &[("Authorization", &auth)],
                "",
            )
            .unwrap_or_else(|e| panic!("GET {api_path}: {e}"));
        (r.status == 200).then(|| {
            serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{api_path}: {e}: {}", r.body))
        })
    }

    /// While on, status patches fail with 500.
    pub fn fail_status_writes(&self, on: bool) {
        self.control(
            "POST",
            &format!("/_control/status?fail={}", u8::from(on)),
            "",
        );
    }

    /// Requests seen: `list`, `watch`, `get`, `patch`, and per path.
    pub fn stats(&self) -> serde_json::Value {
        self.control("GET", "/_control/stats", "")
    }

    /// Kills it (an API server that dies).
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts it again on the same address, empty, its versions starting
    /// at `start_version` (a restored or rebuilt server).
    pub fn restart(&mut self, start_version: u64) {
        self.server.kill();
        self.server = spawn(&self.addr.to_string(), &self.token, start_version);
    }
}

/// An Ingress `namespace/name` of class `class`: `host` / (Prefix) to
/// Service `service`, its port given by name; `annotations` as given.
pub fn ingress(
    namespace: &str,
    name: &str,
    class: &str,
    host: &str,
    service: &str,
    port_name: &str,
    annotations: &[(&str, &str)],
) -> serde_json::Value {
    let annotations: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": { "name": name, "namespace": namespace, "annotations": annotations },
        "spec": {
            "ingressClassName": class,
            "rules": [{
                "host": host,
                "http": { "paths": [{
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": { "service": { "name": service, "port": { "name": port_name } } },
                }] },
            }],
        },
    })
}

/// A Service `namespace/name` with one port, `port`, named `port_name`.
pub fn service(namespace: &str, name: &str, port: u16, port_name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "ports": [{ "name": port_name, "port": port, "protocol": "TCP" }] },
    })
}

/// An EndpointSlice of Service `namespace/service`: one unnamed TCP port,
/// `pods` as (address, ready, terminating), all in `zone`.
pub fn endpoint_slice(
    namespace: &str,
    name: &str,
    service: &str,
    port: u16,
    zone: &str,
    pods: &[(&str, bool, bool)],
) -> serde_json::Value {
    let endpoints: Vec<serde_json::Value> = pods
        .iter()
        .map(|(ip, ready, terminating)| {
            serde_json::json!({
                "addresses": [ip],
                "conditions": { "ready": ready, "serving": *ready || *terminating, "terminating": terminating },
                "zone": zone,
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { "kubernetes.io/service-name": service },
        },
        "addressType": "IPv4",
        "ports": [{ "port": port, "protocol": "TCP" }],
        "endpoints": endpoints,
    })
}
