//! End to end: Ingresses, Services and Secrets watched in a hub cluster's
//! API server (`[manifests] source = "kubernetes"`), and each served
//! Ingress's status written back.
//!
//! No kube-apiserver can be installed here, so the hub is
//! `tests/clients/kube_api_server.py`, which speaks the list/watch wire
//! protocol and merge-patches the status subresource (see its docs);
//! fleetgate talks to it with the real kube-rs client, through a
//! kubeconfig, with a bearer token.

use std::process::Command;
use std::time::{Duration, Instant};

use fleetgate_e2e::config::listen_addr;
use fleetgate_e2e::kube_api::{ingress, service, KubeApi};
use fleetgate_e2e::{
    assert_none_failed, bin_path, free_port, Backend, Gateway, HttpClient, Load, TempDir,
};

const NS: &str = "gateway-demo";

/// Services web and api (static endpoints), Ingresses from the hub.
fn config(listen: std::net::SocketAddr, admin: u16, web: &Backend, api: &Backend) -> String {
    format!(
        r#"
[gateway]
name = "hub"
listen = ["{listen}"]
ingress_class = "mse"
advertise = ["192.0.2.10", "gw.example.net"]

[admin]
listen = "127.0.0.1:{admin}"

[log]
access = "off"

[manifests]
source = "kubernetes"
kubeconfig = "hub.kubeconfig"
namespaces = ["{NS}"]
api_timeout = "2s"

[[cluster]]
id = "c1"

[[service]]
namespace = "{NS}"
name = "web"
port = 80
endpoints = [{{ cluster = "c1", address = "{}" }}]

[[service]]
namespace = "{NS}"
name = "api"
port = 80
endpoints = [{{ cluster = "c1", address = "{}" }}]
"#,
        web.addr, api.addr
    )
}

/// What `host` / answers now: the backend's name, or the status code.
fn answer(gw: &Gateway, host: &str) -> String {
    match HttpClient::new(gw.addr).get(host, "/") {
        Ok(r) if r.status == 200 => r.body,
        Ok(r) => r.status.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// Waits (at most 10 s) until `check` holds; returns how long it took.
fn wait_until(what: &str, mut check: impl FnMut() -> Result<(), String>) -> Duration {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return start.elapsed(),
            Err(last) if start.elapsed() > Duration::from_secs(10) => {
                panic!("{what}: not within 10 s; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Runs `fleetgate check`: whether it passed, and its stderr.
fn check(path: &std::path::Path) -> (bool, String) {
    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(path)
        .output()
        .expect("run check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ingress_status(hub: &KubeApi, name: &str) -> serde_json::Value {
    hub.object(&format!(
        "/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/{name}"
    ))
    .map(|o| o["status"]["loadBalancer"]["ingress"].clone())
    .unwrap_or_default()
}

/// The hub's Ingresses serve, follow additions, changes and deletions
/// under load with no failed request; a broken version of one Ingress is
/// left out (its previous version keeps serving, the others are not
/// touched, `/status` and `check` say why); served Ingresses get the
/// advertised addresses in their status, and lose them when the gateway
/// stops serving them; a dead hub leaves the routes in place.
#[test]
fn ingresses_follow_the_hub_cluster() {
    let web = Backend::start("web");
    let api = Backend::start("api");
    let dir = TempDir::new("hub");
    let mut hub = KubeApi::start("hub-token");
    hub.kubeconfig(dir.path(), "hub.kubeconfig");
    // The port is named in the hub's Service only: the Ingress uses the name.
    hub.put("services", &service(NS, "web", 80, "http"));
    hub.put("services", &service(NS, "api", 80, "http"));
    // Another writer (another gateway fleet) already lists its address.
    let mut web_ingress = ingress(NS, "web", "mse", "example.com", "web", "http", &[]);
    web_ingress["status"] =
        serde_json::json!({ "loadBalancer": { "ingress": [{ "hostname": "other-lb.example" }] } });
    hub.put("ingresses", &web_ingress);
    // Another class's Ingress, broken: not this gateway's business.
    hub.put(
        "ingresses",
        &ingress(
            NS,
            "foreign",
            "nginx",
            "foreign.example",
            "web",
            "http",
            &[("nginx.ingress.kubernetes.io/backend-protocol", "PIGEON")],
        ),
    );
    // A Helm release Secret is dropped on arrival; an Opaque one is kept.
    for (name, kind) in [("release", "helm.sh/release.v1"), ("auth", "Opaque")] {
        hub.put(
            "secrets",
            &serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "type": kind,
                "metadata": { "name": name, "namespace": NS },
                "data": { "k": "dg==" },
            }),
        );
    }
    let listen = listen_addr();
    let path = dir.write("gw.toml", &config(listen, free_port(), &web, &api));
    let gw = Gateway::start(&path, listen);

    assert_eq!(answer(&gw, "example.com"), "web");
    let status = gw.admin_json("/status");
    let h = &status["hub"];
    assert_eq!(
        (h["connected"].as_bool(), h["synced"].as_bool()),
        (Some(true), Some(true)),
        "{h}"
    );
    assert_eq!(
        h["objects"],
        serde_json::json!({ "ingresses": 2, "services": 2, "secrets": 1 }),
        "{h}"
    );
    assert_eq!(h["rejected"], serde_json::json!([]), "{h}");
    // The served Ingress gets the advertised addresses beside the other
    // writer's; the foreign one gets nothing.
    let want = serde_json::json!([
        { "hostname": "other-lb.example" },
        { "ip": "192.0.2.10" },
        { "hostname": "gw.example.net" }
    ]);
    wait_until("status written back", || {
        let s = ingress_status(&hub, "web");
        (s == want).then_some(()).ok_or_else(|| s.to_string())
    });
    assert_eq!(ingress_status(&hub, "foreign"), serde_json::Value::Null);

    let load = Load::start(
        gw.addr,
        "example.com",
        "/",
        &[],
        4,
        Duration::from_millis(5),
    );
    std::thread::sleep(Duration::from_millis(300));

    // A new Ingress serves.
    hub.put(
        "ingresses",
        &ingress(NS, "api", "mse", "api.example.com", "api", "http", &[]),
    );
    let added = wait_until("new Ingress served", || {
        let a = answer(&gw, "api.example.com");
        (a == "api").then_some(()).ok_or(a)
    });

    // A broken version of web: left out, its previous version serves.
    hub.put(
        "ingresses",
        &ingress(
            NS,
            "web",
            "mse",
            "example.com",
            "web",
            "http",
            &[("nginx.ingress.kubernetes.io/backend-protocol", "PIGEON")],
        ),
    );
    wait_until("broken Ingress reported", || {
        let r = gw.admin_json("/status")["hub"]["rejected"].clone();
        let ok = r[0]["object"] == "Ingress gateway-demo/web"
            && r[0]["serving"] == "previous version"
            && r[0]["errors"][0].as_str().is_some_and(|e| {
                e.contains("hub:ingresses/gateway-demo/web") && e.contains("backend-protocol")
            });
        ok.then_some(()).ok_or_else(|| r.to_string())
    });
    assert!(gw
        .wait_for_log(
            "Ingress gateway-demo/web is left out",
            1,
            Duration::from_secs(5)
        )
        .is_some());
    assert_eq!(answer(&gw, "example.com"), "web");
    assert_eq!(
        answer(&gw, "api.example.com"),
        "api",
        "the others are untouched"
    );
    let (ok, stderr) = check(&path);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("hub cluster: Ingress gateway-demo/web is left out"),
        "{stderr}"
    );

    // Fixed, and pointed at api: the new version serves.
    hub.put(
        "ingresses",
        &ingress(NS, "web", "mse", "example.com", "api", "http", &[]),
    );
    let changed = wait_until("changed Ingress served", || {
        let a = answer(&gw, "example.com");
        (a == "api").then_some(()).ok_or(a)
    });
    assert_eq!(
        gw.admin_json("/status")["hub"]["rejected"],
        serde_json::json!([])
    );
    std::thread::sleep(Duration::from_millis(200));
    let samples = load.stop();
    assert_none_failed(&samples, 201);

    // Deleted: no longer served.
    hub.delete("ingresses", NS, "api");
    wait_until("deleted Ingress gone", || {
        let a = answer(&gw, "api.example.com");
        (a == "404").then_some(()).ok_or(a)
    });

    // Moved to another class: no longer served, its status cleared.
    hub.put(
        "ingresses",
        &ingress(NS, "web", "nginx", "example.com", "api", "http", &[]),
    );
    wait_until("our status entries removed", || {
        let s = ingress_status(&hub, "web");
        (s == serde_json::json!([{ "hostname": "other-lb.example" }]))
            .then_some(())
            .ok_or_else(|| s.to_string())
    });
    assert_eq!(answer(&gw, "example.com"), "404");
    hub.put(
        "ingresses",
        &ingress(NS, "web", "mse", "example.com", "web", "http", &[]),
    );
    wait_until("served again", || {
        let a = answer(&gw, "example.com");
        (a == "web").then_some(()).ok_or(a)
    });

    // A reload with the same hub keeps its watches (no new list) and its
    // objects; a hub change is not a reload.
    let lists = hub.stats()["list"].clone();
    let generation = gw.admin_json("/status")["generation"]
        .as_u64()
        .expect("generation");
    let status = gw.admin_json("/status");
    assert!(
        status["last_reload"].is_null() && status["hub"]["last_build"]["ok"] == true,
        "{status}"
    );
    gw.signal("HUP");
    gw.wait_generation(generation + 1);
    assert_eq!(answer(&gw, "example.com"), "web");
    assert_eq!(hub.stats()["list"], lists, "the watches were kept");
    assert_eq!(gw.admin_json("/status")["last_reload"]["ok"], true);

    // The hub dies: the routes stay, /status says so, check fails.
    hub.kill();
    wait_until("hub disconnected", || {
        let h = gw.admin_json("/status")["hub"].clone();
        (h["connected"] == false && h["error"].is_string())
            .then_some(())
            .ok_or_else(|| h.to_string())
    });
    assert_eq!(answer(&gw, "example.com"), "web");
    let (ok, stderr) = check(&path);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("hub cluster: no complete answer within 2s"),
        "{stderr}"
    );
    println!(
        "hub: new Ingress served in {added:?}, changed in {changed:?}; {} requests, 0 failed",
        samples.len()
    );
}

/// Status writes that fail are retried until they succeed, and counted.
#[test]
fn failed_status_writes_are_retried() {
    let web = Backend::start("web");
    let api = Backend::start("api");
    let dir = TempDir::new("hub-status");
    let hub = KubeApi::start("hub-token");
    hub.kubeconfig(dir.path(), "hub.kubeconfig");
    hub.put("services", &service(NS, "web", 80, "http"));
    hub.fail_status_writes(true);
    hub.put(
        "ingresses",
        &ingress(NS, "web", "mse", "example.com", "web", "http", &[]),
    );
    let listen = listen_addr();
    let path = dir.write("gw.toml", &config(listen, free_port(), &web, &api));
    let gw = Gateway::start(&path, listen);
    assert_eq!(answer(&gw, "example.com"), "web");
    wait_until("failures counted", || {
        let w = gw.admin_json("/status")["hub"]["status_writes"].clone();
        (w["failed"].as_u64() >= Some(2) && w["error"].is_string())
            .then_some(())
            .ok_or_else(|| w.to_string())
    });
    hub.fail_status_writes(false);
    wait_until("written after the failures", || {
        let s = ingress_status(&hub, "web");
        (s == serde_json::json!([{ "ip": "192.0.2.10" }, { "hostname": "gw.example.net" }]))
            .then_some(())
            .ok_or_else(|| s.to_string())
    });
    let metrics = gw.admin_get("/metrics", None).body;
    assert!(
        metrics.contains("fleetgate_hub_status_writes_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("fleetgate_hub_connected 1"), "{metrics}");
}

/// RBAC that does not grant Secrets: the Ingresses still serve (the start
/// is not held back), and the status names what is failing.
#[test]
fn a_forbidden_kind_does_not_hold_back_the_routes() {
    let web = Backend::start("web");
    let api = Backend::start("api");
    let dir = TempDir::new("hub-forbidden");
    let hub = KubeApi::start("hub-token");
    hub.kubeconfig(dir.path(), "hub.kubeconfig");
    hub.auth_for("secrets", "403");
    hub.put("services", &service(NS, "web", 80, "http"));
    hub.put(
        "ingresses",
        &ingress(NS, "web", "mse", "example.com", "web", "http", &[]),
    );
    let listen = listen_addr();
    let path = dir.write("gw.toml", &config(listen, free_port(), &web, &api));
    let started = Instant::now();
    let gw = Gateway::start(&path, listen);
    let took = started.elapsed();
    assert_eq!(answer(&gw, "example.com"), "web");
    assert!(took < Duration::from_secs(8), "start waited {took:?}");
    let h = gw.admin_json("/status")["hub"].clone();
    assert_eq!(h["synced"], true, "{h}");
    wait_until("the failing watch shows", || {
        let h = gw.admin_json("/status")["hub"].clone();
        (h["connected"] == false
            && h["error"]
                .as_str()
                .is_some_and(|e| e.contains("secrets") && e.contains("403")))
        .then_some(())
        .ok_or_else(|| h.to_string())
    });
    let (ok, stderr) = check(&path);
    assert!(ok, "check serves without the Secrets: {stderr}");
    // Granted again: the watch recovers.
    hub.auth_for("secrets", "ok");
    wait_until("reconnected", || {
        let h = gw.admin_json("/status")["hub"].clone();
        (h["connected"] == true)
            .then_some(())
            .ok_or_else(|| h.to_string())
    });
}

/// A hub that is down when the gateway starts: the gateway starts anyway
/// (after at most `api_timeout`) with the TOML's Ingresses only, and
/// serves the hub's as soon as it answers. Then the hub forgets its
/// history and cuts the watches: the gateway lists again (410 Expired)
/// and follows a change made meanwhile. Status writes never make a new
/// generation.
#[test]
fn a_hub_down_at_start_is_followed_when_it_answers() {
    let web = Backend::start("web");
    let api = Backend::start("api");
    let dir = TempDir::new("hub-late");
    let mut hub = KubeApi::start("hub-token");
    hub.kubeconfig(dir.path(), "hub.kubeconfig");
    hub.kill();
    let listen = listen_addr();
    let path = dir.write("gw.toml", &config(listen, free_port(), &web, &api));
    let started = Instant::now();
    let gw = Gateway::start(&path, listen);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer(&gw, "example.com"), "404");
    let h = gw.admin_json("/status")["hub"].clone();
    assert_eq!(
        (h["synced"].as_bool(), h["connected"].as_bool()),
        (Some(false), Some(false)),
        "{h}"
    );

    hub.restart(5000);
    hub.put("services", &service(NS, "web", 80, "http"));
    hub.put("services", &service(NS, "api", 80, "http"));
    hub.put(
        "ingresses",
        &ingress(NS, "web", "mse", "example.com", "web", "http", &[]),
    );
    wait_until("served once the hub answers", || {
        let a = answer(&gw, "example.com");
        (a == "web").then_some(()).ok_or(a)
    });
    wait_until("status written", || {
        let s = ingress_status(&hub, "web");
        (s.as_array().is_some_and(|a| a.len() == 2))
            .then_some(())
            .ok_or_else(|| s.to_string())
    });
    // The write's own watch event is no change: the generation stays.
    let generation = gw.admin_json("/status")["generation"].clone();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(gw.admin_json("/status")["generation"], generation);

    // A change made while the watches hear nothing, then history
    // forgotten and the watches cut: they get 410 Expired, list again, and
    // the list brings the change.
    let lists = hub.stats()["list"].as_u64().unwrap_or_default();
    hub.hang(true);
    hub.put(
        "ingresses",
        &ingress(NS, "web", "mse", "example.com", "api", "http", &[]),
    );
    hub.compact();
    hub.drop_watches();
    hub.hang(false);
    wait_until("change found by the relist", || {
        let a = answer(&gw, "example.com");
        (a == "api").then_some(()).ok_or(a)
    });
    assert!(
        hub.stats()["list"].as_u64().unwrap_or_default() > lists,
        "listed again"
    );
    wait_until("connected again", || {
        let h = gw.admin_json("/status")["hub"].clone();
        (h["connected"] == true)
            .then_some(())
            .ok_or_else(|| h.to_string())
    });
}

/// With `cache`, a gateway that starts while its hub is down serves the
/// objects the last one served, until the hub answers and its lists
/// replace them. The cache holds Secrets: only its owner reads it.
#[test]
fn a_cache_serves_a_start_without_the_hub() {
    use std::os::unix::fs::PermissionsExt;
    let web = Backend::start("web");
    let api = Backend::start("api");
    let dir = TempDir::new("hub-cache");
    let mut hub = KubeApi::start("hub-token");
    hub.kubeconfig(dir.path(), "hub.kubeconfig");
    hub.put("services", &service(NS, "web", 80, "http"));
    hub.put("services", &service(NS, "api", 80, "http"));
    hub.put(
        "ingresses",
        &ingress(NS, "web", "mse", "example.com", "web", "http", &[]),
    );
    let with_cache = |listen| {
        config(listen, free_port(), &web, &api).replace(
            "api_timeout = \"2s\"",
            "api_timeout = \"2s\"\ncache = \"hub-cache.json\"",
        )
    };
    let listen = listen_addr();
    let path = dir.write("gw.toml", &with_cache(listen));
    let gw = Gateway::start(&path, listen);
    assert_eq!(answer(&gw, "example.com"), "web");
    let cache = dir.path().join("hub-cache.json");
    let mode = std::fs::metadata(&cache)
        .expect("cache written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(gw.admin_json("/status")["hub"]["cache"]["written_at"].is_string());
    drop(gw);

    // The hub is down: the new gateway serves from the cache.
    hub.kill();
    let listen = listen_addr();
    let path = dir.write("gw.toml", &with_cache(listen));
    let gw = Gateway::start(&path, listen);
    assert_eq!(answer(&gw, "example.com"), "web");
    let h = gw.admin_json("/status")["hub"].clone();
    assert_eq!(h["cache"]["loaded"], 3, "2 Services and 1 Ingress: {h}");
    assert_eq!(h["connected"], false, "{h}");

    // The hub answers, with the Ingress changed meanwhile: its lists win.
    hub.restart(9000);
    hub.put("services", &service(NS, "web", 80, "http"));
    hub.put("services", &service(NS, "api", 80, "http"));
    hub.put(
        "ingresses",
        &ingress(NS, "web", "mse", "example.com", "api", "http", &[]),
    );
    wait_until("the hub's version replaces the cached one", || {
        let a = answer(&gw, "example.com");
        (a == "api").then_some(()).ok_or(a)
    });
}
