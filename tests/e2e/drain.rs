//! End to end: planned drains of a cluster through the admin API and
//! `fleetgate drain`, with the real binary, real backends and a steady load.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fleetgate_e2e::config::{header, host_ingress, listen_addr, manifests, seed, service};
use fleetgate_e2e::{
    assert_none_failed, exchange, fleetgate_cli, Backend, Gateway, HttpClient, Load, Sample,
    TempDir,
};

const ZONE_A: &str = "c7fb82a1";

/// Who answered, per body, among `samples`.
fn answered<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for s in samples {
        if let Ok(body) = &s.result {
            *out.entry(body.clone()).or_default() += 1;
        }
    }
    out
}

/// Polls `/clusters/<id>` until `done` holds; panics after 10 s.
fn wait_cluster(
    gw: &Gateway,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = gw.admin_json(&format!("/clusters/{id}"));
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "cluster {id} never got there: {v}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A POST to the admin API with extra header lines; the raw response.
fn admin_post(gw: &Gateway, path: &str, headers: &str) -> String {
    let admin = gw.admin.expect("admin listener");
    exchange(
        admin,
        format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// A drain stops new requests to the cluster at once, lets the one in
/// flight there finish, reports draining then drained, holds across a
/// reload, and an undrain brings the traffic back; nothing fails.
#[test]
fn a_drained_cluster_finishes_in_flight_requests_and_takes_no_new_ones() {
    let one = Backend::start("cluster-demo-1");
    let two = Backend::start("cluster-demo-2");
    let listen = listen_addr();
    let dir = TempDir::new("drain");
    let config = format!(
        "{}{}{}",
        header(listen, ""),
        service("web", 80, &[(ZONE_A, &one), ("cd3007b2", &two)], ""),
        manifests(&[dir.write(
            "ing.yaml",
            &host_ingress("web", "drain.example", "web", None, &[])
        )])
    );
    let config_path = dir.write("gw.toml", &config);
    let config_arg = config_path.to_str().unwrap();
    let gw = Gateway::start(&config_path, listen);

    // Two slow requests: round robin over one endpoint per cluster sends
    // one to each, so one is in flight in the cluster to drain.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let addr = gw.addr;
            std::thread::spawn(move || {
                HttpClient::new(addr)
                    .get("drain.example", "/slow/1500")
                    .map(|r| (r.status, r.body))
            })
        })
        .collect();
    wait_cluster(&gw, ZONE_A, |v| v["in_flight"] == 1);

    let load = Load::start(
        gw.addr,
        "drain.example",
        "/",
        &[],
        3,
        Duration::from_millis(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (code, out) = fleetgate_cli(&["drain", "-c", config_arg, ZONE_A]);
    // Requests sent from here on never go to zone A.
    let drained_at = load.elapsed();
    assert_eq!(code, 0, "{out}");
    // The slow request at least is in flight (a load request may be too).
    assert!(
        out.contains(&format!("cluster {ZONE_A}: draining, ")),
        "{out}"
    );
    let status = gw.admin_json("/status");
    let entry = status["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == ZONE_A)
        .unwrap()
        .clone();
    assert_eq!(entry["drain"]["phase"], "draining", "{entry}");

    for t in slow {
        let (status, body) = t.join().unwrap().expect("slow request");
        assert_eq!(status, 200, "the request in flight finishes: {body}");
    }
    let v = wait_cluster(&gw, ZONE_A, |v| v["phase"] == "drained");
    assert_eq!(v["in_flight"], 0);

    // The drain holds across a reload.
    gw.signal("HUP");
    gw.wait_generation(2);
    std::thread::sleep(Duration::from_millis(300));
    let undrain_sent_at = load.elapsed();
    let (code, out) = fleetgate_cli(&["undrain", "-c", config_arg, ZONE_A]);
    let undrained_at = load.elapsed();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("serving"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    let samples = load.stop();
    assert_none_failed(&samples, 100);
    let before = answered(samples.iter().filter(|s| s.at < drained_at));
    assert!(before.contains_key("cluster-demo-1"), "{before:?}");
    // From the moment the drain call returned until the undrain call was
    // made, no request went to zone A.
    let during = answered(
        samples
            .iter()
            .filter(|s| s.at > drained_at && s.at + s.took < undrain_sent_at),
    );
    assert_eq!(
        during.keys().collect::<Vec<_>>(),
        vec!["cluster-demo-2"],
        "{during:?}"
    );
    let after = answered(
        samples
            .iter()
            .filter(|s| s.at > undrained_at + Duration::from_millis(100)),
    );
    assert!(
        after.contains_key("cluster-demo-1"),
        "undrained: traffic is back: {after:?}"
    );

    // Refusals say what and why.
    let r = admin_post(&gw, "/clusters/nope/drain", "");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    assert!(
        r.contains("no cluster \"nope\" in the configuration; clusters: c7fb82a1, cd3007b2"),
        "{r}"
    );
    let r = admin_post(
        &gw,
        &format!("/clusters/{ZONE_A}/drain"),
        "Origin: https://evil.example\r\n",
    );
    assert!(
        r.starts_with("HTTP/1.1 403"),
        "a page of another site cannot drain: {r}"
    );
    assert_eq!(
        gw.admin_get(&format!("/clusters/{ZONE_A}/drain"), None)
            .status,
        405
    );
    assert_eq!(
        gw.admin_json(&format!("/clusters/{ZONE_A}"))["phase"],
        "serving",
        "refusals changed nothing"
    );
    let (code, out) = fleetgate_cli(&["drain", "-c", config_arg, "nope"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no cluster \"nope\""), "{out}");
}

/// With a token, a drain needs it; a route pinned to the drained cluster
/// spills over to the other as if the cluster were down, with no failed
/// request; `drain --wait` returns once it is drained; and the drain file
/// keeps the drain across a restart.
#[test]
fn a_pinned_route_spills_over_and_the_drain_outlives_a_restart() {
    let one = Backend::start("cluster-demo-1");
    let two = Backend::start("cluster-demo-2");
    let listen = listen_addr();
    let dir = TempDir::new("drain-file");
    let token = "drain-test-token-0123456789";
    let drain_file = dir.path().join("state").join("drains.json");
    std::fs::create_dir_all(drain_file.parent().unwrap()).unwrap();
    let admin_keys = format!(
        "[admin]\ntoken = \"{token}\"\ndrain_file = \"{}\"\n",
        drain_file.display()
    );
    let config = format!(
        "{}{}{}",
        header(listen, "").replacen("[admin]\n", &admin_keys, 1),
        service("service1", 80, &[(ZONE_A, &one), ("cd3007b2", &two)], ""),
        manifests(&[seed("ingress-demo-cluster-one.yaml")])
    );
    let config_path = dir.write("gw.toml", &config);
    let config_arg = config_path.to_str().unwrap();
    let mut gw = Gateway::start(&config_path, listen);

    let c = HttpClient::new(gw.addr).tally("example.com", "/service1", &[], 20);
    assert_eq!(
        c.get("cluster-demo-1"),
        Some(&20),
        "pinned to cluster 1: {c:?}"
    );
    let r = admin_post(&gw, &format!("/clusters/{ZONE_A}/drain"), "");
    assert!(r.starts_with("HTTP/1.1 401"), "no token, no drain: {r}");

    let load = Load::start(
        gw.addr,
        "example.com",
        "/service1",
        &[],
        3,
        Duration::from_millis(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (code, out) = fleetgate_cli(&["drain", "--wait", "-c", config_arg, ZONE_A]);
    let drained_at = load.elapsed();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "cluster {ZONE_A}: drained, 0 request(s) in flight"
        )),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let samples = load.stop();
    assert_none_failed(&samples, 50);
    let after = answered(samples.iter().filter(|s| s.at > drained_at));
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        vec!["cluster-demo-2"],
        "spilled over: {after:?}"
    );
    let kept = std::fs::read_to_string(&drain_file).unwrap();
    assert!(kept.contains(ZONE_A), "{kept}");

    // A restart keeps the drain.
    gw.signal("TERM");
    gw.wait_exit(Duration::from_secs(10)).expect("stopped");
    let gw = Gateway::start(&config_path, listen);
    assert!(
        gw.log_text().contains("stay drained: c7fb82a1"),
        "{}",
        gw.log_text()
    );
    let c = HttpClient::new(gw.addr).tally("example.com", "/service1", &[], 20);
    assert_eq!(
        c.get("cluster-demo-2"),
        Some(&20),
        "still drained after the restart: {c:?}"
    );
    let (code, out) = fleetgate_cli(&["undrain", "-c", config_arg, ZONE_A]);
    assert_eq!(code, 0, "{out}");
    let c = HttpClient::new(gw.addr).tally("example.com", "/service1", &[], 20);
    assert_eq!(c.get("cluster-demo-1"), Some(&20), "pinned again: {c:?}");
    assert!(!std::fs::read_to_string(&drain_file)
        .unwrap()
        .contains(ZONE_A));
}

/// What-if, from the CLI and the live admin API: the shares it predicts
/// are the ones requests then follow, once the cluster really is out.
#[test]
fn what_if_predicts_where_traffic_goes_when_a_zone_is_down() {
    let a: Vec<Backend> = (0..3).map(|_| Backend::start("cluster-demo-1")).collect();
    let b = Backend::start("cluster-demo-2");
    let listen = listen_addr();
    let dir = TempDir::new("what-if");
    let mut eps: Vec<(&str, &Backend)> = a.iter().map(|x| (ZONE_A, x)).collect();
    eps.push(("cd3007b2", &b));
    let config = format!(
        "{}{}{}",
        header(listen, ""),
        service("web", 80, &eps, ""),
        manifests(&[dir.write(
            "ing.yaml",
            &host_ingress("web", "whatif.example", "web", None, &[])
        )])
    );
    let config_path = dir.write("gw.toml", &config);
    let config_arg = config_path.to_str().unwrap();

    let (code, out) = fleetgate_cli(&["routes", "-c", config_arg, "--down", "zone-b"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("IF zone-b DOWN"), "{out}");
    assert!(out.contains("c7fb82a1 100%"), "{out}");
    let (code, out) = fleetgate_cli(&["routes", "-c", config_arg, "--down", "zone-a,cd3007b2"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("503 (no endpoint left)"), "{out}");
    let (code, out) = fleetgate_cli(&["routes", "-c", config_arg, "--down", "zone-q"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("--down zone-q: no cluster or zone of that name; clusters: c7fb82a1, cd3007b2; zones: zone-a, zone-b"),
        "{out}"
    );

    let gw = Gateway::start(&config_path, listen);
    let shares = |query: &str| {
        let v = gw.admin_json(&format!("/routes{query}"));
        v["routes"][0]["if_down"].clone()
    };
    assert_eq!(shares(""), serde_json::Value::Null);
    let now = gw.admin_json("/routes?down=");
    assert_eq!(now["routes"][0]["if_down"], serde_json::Value::Null);
    assert_eq!(
        shares("?down=zone-b")["shares"],
        serde_json::json!({ "c7fb82a1": 100.0 })
    );
    let bad = gw.admin_get("/routes?down=zone-q", None);
    assert_eq!(bad.status, 400, "{bad:?}");

    // Today's split is 3:1 by pod count, and requests follow it.
    let c = HttpClient::new(gw.addr).tally("whatif.example", "/", &[], 400);
    assert_eq!(
        (c.get("cluster-demo-1"), c.get("cluster-demo-2")),
        (Some(&300), Some(&100)),
        "{c:?}"
    );
    // Zone B out for real (drained): requests follow the prediction.
    let (code, out) = fleetgate_cli(&["drain", "-c", config_arg, "cd3007b2"]);
    assert_eq!(code, 0, "{out}");
    let c = HttpClient::new(gw.addr).tally("whatif.example", "/", &[], 100);
    assert_eq!(c.get("cluster-demo-1"), Some(&100), "{c:?}");
    // The live what-if starts from the live state: with zone B drained,
    // zone A down leaves nothing.
    assert_eq!(shares("?down=zone-a")["note"], "no endpoint left: 503");
}
