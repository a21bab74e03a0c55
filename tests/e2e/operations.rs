//! End to end: running fleetgate as an operator does: hot reload under
//! load, the admin API and its states, metrics, the access log and
//! systemd's readiness protocol.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use fleetgate_e2e::config::{
    header, header_with_admin, listen_addr, manifests, seed, seed_svc1, service,
};
use fleetgate_e2e::{assert_none_failed, bin_path, Backend, Gateway, HttpClient, Load, TempDir};
use serde_json::Value;

fn json(gw: &Gateway, path: &str) -> Value {
    gw.admin_json(path)
}

fn wait_generation(gw: &Gateway, generation: u64) {
    gw.wait_generation(generation);
}

/// Waits until `/status` reports `state`; panics after 10 s.
fn wait_state(gw: &Gateway, state: &str) -> Value {
    gw.wait_status(None, state, |s| s["state"] == state)
}

/// Waits until a reload has been recorded whose count of failures reaches `n`.
fn wait_failed_reloads(gw: &Gateway, n: u64) -> Value {
    gw.wait_status(None, &format!("{n} failed reload(s)"), |s| {
        s["reloads"]["failed"].as_u64() >= Some(n)
    })
}

/// Ingress routing example.com/svc1 (Exact) to `service`.
fn svc1_to(service: &str) -> String {
    format!(
        "\n[[ingress]]\nnamespace = \"gateway-demo\"\nname = \"web-demo\"\nclass = \"mse\"\nrules = [{{ host = \"example.com\", paths = [{{ path = \"/svc1\", type = \"Exact\", service = \"{service}\", port = 80 }}] }}]\n"
    )
}

/// 50 reloads under a steady load, alternating two configurations that route
/// /svc1 to different Services: no request fails, and every generation
/// serves its own routes.
#[test]
fn fifty_reloads_under_load_lose_no_request() {
    let a = Backend::start("service-a");
    let b = Backend::start("service-b");
    let listen = listen_addr();
    let dir = TempDir::new("reloads");
    let base = format!(
        "{}{}{}[log]\naccess = \"off\"\n",
        header(listen, ""),
        service("svc-a", 80, &[("c7fb82a1", &a)], ""),
        service("svc-b", 80, &[("cd3007b2", &b)], "")
    );
    let configs = [
        format!("{base}{}", svc1_to("svc-a")),
        format!("{base}{}", svc1_to("svc-b")),
    ];
    let path = dir.write("gw.toml", &configs[0]);
    let gw = Gateway::start(&path, listen);
    let load = Load::start(
        gw.addr,
        "example.com",
        "/svc1",
        &[],
        6,
        Duration::from_millis(10),
    );
    let mut probe = HttpClient::new(gw.addr);
    for i in 1..=50u64 {
        let which = (i % 2) as usize;
        std::fs::write(&path, &configs[which]).unwrap();
        gw.signal("HUP");
        wait_generation(&gw, i + 1);
        let expected = if which == 0 { "service-a" } else { "service-b" };
        let r = probe.get("example.com", "/svc1").unwrap();
        assert_eq!(
            r.body,
            expected,
            "generation {} serves its own route",
            i + 1
        );
        // Let the load run across each generation.
        std::thread::sleep(Duration::from_millis(40));
    }
    let samples = load.stop();
    assert_none_failed(&samples, 301);
    let both = samples
        .iter()
        .filter(|s| s.result.as_deref() == Ok("service-a"))
        .count()
        > 0
        && samples
            .iter()
            .filter(|s| s.result.as_deref() == Ok("service-b"))
            .count()
            > 0;
    assert!(both, "responses switched with the generations");
    let status = json(&gw, "/status");
    assert_eq!(status["generation"], 51);
    assert_eq!(status["reloads"]["ok"], 50);
    println!(
        "50 reloads: {} requests, 0 failed; last reload {}",
        samples.len(),
        status["last_reload"]
    );
}

/// A broken configuration written during load (and picked up by --watch):
/// rejected with the same error `check` gives, old routes keep serving, the
/// error is in /status and the log, and no request fails.
#[test]
fn broken_config_under_load_keeps_old_routes() {
    let a = Backend::start("service-a");
    let listen = listen_addr();
    let dir = TempDir::new("broken");
    let good = format!(
        "{}{}{}",
        header(listen, ""),
        service("service1", 80, &[("c7fb82a1", &a)], ""),
        manifests(&[dir.write(
            "ingress.yaml",
            &std::fs::read_to_string(seed("ingress-demo.yaml")).unwrap()
        )])
    );
    let path = dir.write("gw.toml", &good);
    let gw = Gateway::start_with(&path, listen, &["--watch"], &[]);
    let load = Load::start(
        gw.addr,
        "example.com",
        "/svc1",
        &[],
        4,
        Duration::from_millis(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    // The seed's broken manifest replaces the good one.
    std::fs::write(
        dir.path().join("ingress.yaml"),
        std::fs::read_to_string(seed("ingress-demo-cluster-gray.yaml")).unwrap(),
    )
    .unwrap();
    let status = wait_failed_reloads(&gw, 1);
    std::thread::sleep(Duration::from_millis(300));
    let samples = load.stop();
    let failed: Vec<_> = samples.iter().filter(|s| s.result.is_err()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(samples
        .iter()
        .all(|s| s.result.as_deref() == Ok("service-a")));
    assert_eq!(status["generation"], 1, "{status}");
    assert_eq!(status["last_reload"]["ok"], false, "{status}");
    let message = status["last_reload"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("ingress.yaml:12:3") && message.contains("duplicated key \"name\""),
        "{message}"
    );
    assert!(
        gw.log_text()
            .contains("reload rejected, generation 1 keeps serving"),
        "{}",
        gw.log_text()
    );
    // Same text as `check`.
    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(message.lines().nth(1).unwrap_or("-").trim())
    );
}

/// Admin API: states, Ingress report, services, routes, probes, token.
#[test]
fn admin_api_states_reports_and_token() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("admin");
    let foreign = dir.write(
        "foreign.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: theirs\nspec:\n  ingressClassName: nginx\n  rules:\n  - host: other.test\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend: {service: {name: service1, port: {number: 80}}}\n",
    );
    // First no served Ingress: Running; then a reload adds one: Listening.
    let svc = service("service1", 80, &[("c7fb82a1", &a)], "");
    let admin = fleetgate_e2e::free_port();
    let head = header_with_admin(listen, admin, "advertise = [\"192.0.2.10\"]");
    let path = dir.write(
        "gw.toml",
        &format!("{head}{svc}{}", manifests(std::slice::from_ref(&foreign))),
    );
    let gw = Gateway::start(&path, listen);
    // Pending until the readiness watcher sees the listeners accept.
    let status = wait_state(&gw, "Running");
    assert_eq!(status["ingresses"]["served"], 0, "{status}");
    assert_eq!(gw.admin_get("/readyz", None).status, 200);
    assert_eq!(gw.admin_get("/healthz", None).status, 200);
    std::fs::write(
        &path,
        format!(
            "{head}{svc}{}",
            manifests(&[foreign, seed("ingress-demo.yaml")])
        ),
    )
    .unwrap();
    gw.signal("HUP");
    wait_generation(&gw, 2);
    let status = json(&gw, "/status");
    assert_eq!(status["state"], "Listening", "{status}");
    let log = gw.log_text();
    let states: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("gateway state:"))
        .collect();
    assert!(
        states.iter().any(|l| l.contains("Pending -> Running")),
        "{states:?}"
    );
    assert!(
        states.iter().any(|l| l.contains("Running -> Listening")),
        "{states:?}"
    );
    let c1 = &status["clusters"][0];
    assert_eq!(c1["id"], "c7fb82a1");
    assert_eq!(c1["endpoints"]["healthy"], 1);
    assert_eq!(c1["endpoints"]["total"], 1);

    let ingresses = json(&gw, "/ingresses");
    let list = ingresses["ingresses"].as_array().unwrap();
    let theirs = list.iter().find(|i| i["name"] == "theirs").unwrap();
    assert_eq!(theirs["served"], false);
    assert!(
        theirs["reason"].as_str().unwrap().contains("\"nginx\""),
        "{theirs}"
    );
    let ours = list.iter().find(|i| i["name"] == "web-demo").unwrap();
    assert_eq!(ours["served"], true);
    assert_eq!(
        ours["status"]["loadBalancer"]["ingress"][0]["ip"],
        "192.0.2.10"
    );

    let services = json(&gw, "/services");
    let pool = &services["pools"][0];
    assert_eq!(pool["endpoints"][0]["cluster"], "c7fb82a1");
    assert_eq!(
        pool["endpoints"][0]["labels"]["topology.istio.io/cluster"],
        "c7fb82a1"
    );
    assert_eq!(
        pool["endpoints"][0]["labels"]["topology.kubernetes.io/zone"],
        "zone-a"
    );
    assert_eq!(pool["endpoints"][0]["healthy"], true);
    let routes = json(&gw, "/routes");
    assert_eq!(routes["routes"][0]["path"], "/svc1");
    assert_eq!(gw.admin_get("/nope", None).status, 404);
}

#[test]
fn admin_token_and_exposure_rules() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("token");
    let token = "s3cret-s3cret-s3cret";
    let config =
        seed_svc1(listen, &a).replace("[admin]\n", &format!("[admin]\ntoken = \"{token}\"\n"));
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    assert_eq!(gw.admin_get("/status", None).status, 401);
    assert_eq!(gw.admin_get("/status", Some("wrong")).status, 401);
    assert_eq!(gw.admin_get("/status", Some(&token[1..])).status, 401);
    assert_eq!(gw.admin_get("/status", Some(token)).status, 200);
    let admin = gw.admin.unwrap();
    let lower = fleetgate_e2e::HttpClient::new(admin)
        .request(
            "GET",
            "127.0.0.1",
            "/status",
            &[("Authorization", &format!("bearer {token}"))],
            "",
        )
        .unwrap();
    assert_eq!(lower.status, 200, "the scheme is case-insensitive");
    // Probes answer without the token; nothing else does.
    assert_eq!(gw.admin_get("/healthz", None).status, 200);
    // Ready a moment after the listeners answer: 200 or 503, never 401.
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.admin_get("/readyz", None).status != 200 {
        assert_ne!(gw.admin_get("/readyz", None).status, 401);
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(gw.admin_get("/metrics", None).status, 401);
    assert_eq!(gw.admin_get("/readyz?x=/status", None).status, 200);
    assert_eq!(gw.admin_get("/readyz/../status", None).status, 401);

    // Short or spaced tokens are refused at load.
    for bad in ["short", "has space in the middle of it"] {
        let out = Command::new(bin_path("fleetgate"))
            .args(["check", "-c"])
            .arg(dir.write("bad-token.toml", &config.replace(token, bad)))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert!(err.contains("admin.token"), "{err}");
    }

    // A non-loopback admin address without a token is refused at start.
    let admin = fleetgate_e2e::free_port();
    let exposed = format!(
        "{}{}",
        header_with_admin(listen_addr(), admin, ""),
        service("service1", 80, &[("c7fb82a1", &a)], "")
    )
    .replace(
        &format!("listen = \"127.0.0.1:{admin}\""),
        "listen = \"0.0.0.0:9\"",
    );
    let out = Command::new(bin_path("fleetgate"))
        .args(["run", "-c"])
        .arg(dir.write("exposed.toml", &exposed))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("admin.listen") && err.contains("token"),
        "{err}"
    );
}

/// Prometheus text that parses, with requests counted per cluster, and
/// access-log lines for them.
#[test]
fn metrics_and_access_log_count_what_was_sent() {
    let c1 = Backend::start("cluster-demo-1");
    let c2 = Backend::start("cluster-demo-2");
    let listen = listen_addr();
    let dir = TempDir::new("metrics");
    let access = dir.path().join("access.log");
    let config = format!(
        "{}{}{}[log]\naccess = \"{}\"\n",
        header(listen, ""),
        service("service1", 80, &[("c7fb82a1", &c1), ("cd3007b2", &c2)], ""),
        manifests(&[seed("ingress-demo.yaml")]),
        access.display()
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let mut c = HttpClient::new(gw.addr);
    for _ in 0..40 {
        assert_eq!(c.get("example.com", "/svc1").unwrap().status, 200);
    }
    for _ in 0..3 {
        assert_eq!(c.get("example.com", "/missing").unwrap().status, 404);
    }
    // A request is counted when it is logged, which can come a moment
    // after its response reached the client: read until the counts settle.
    let count_in = |samples: &[(String, String, f64)], cluster: &str, code: &str| -> f64 {
        samples
            .iter()
            .filter(|(name, labels, _)| {
                name == "fleetgate_requests_total"
                    && labels.contains(&format!("cluster=\"{cluster}\""))
                    && labels.contains(&format!("code=\"{code}\""))
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let (r, samples) = loop {
        let r = gw.admin_get("/metrics", None);
        assert_eq!(r.status, 200);
        let samples = parse_prometheus(&r.body);
        let settled = count_in(&samples, "-", "4xx") >= 4.0
            && count_in(&samples, "c7fb82a1", "2xx") + count_in(&samples, "cd3007b2", "2xx")
                >= 40.0;
        if settled || Instant::now() > deadline {
            break (r, samples);
        }
        std::thread::yield_now();
    };
    let count = |cluster: &str, code: &str| count_in(&samples, cluster, code);
    assert_eq!(count("c7fb82a1", "2xx"), 20.0, "{}", r.body);
    assert_eq!(count("cd3007b2", "2xx"), 20.0, "{}", r.body);
    // Three 404s of ours plus the harness's readiness probe.
    assert_eq!(count("-", "4xx"), 4.0, "{}", r.body);
    assert!(samples
        .iter()
        .any(|(n, _, _)| n == "fleetgate_upstream_latency_seconds_count"));
    assert!(samples.iter().any(|(n, _, _)| n == "fleetgate_endpoints"));

    // The access log is written off the request path: wait for the lines.
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let text = std::fs::read_to_string(&access).unwrap_or_default();
        if text.lines().count() >= 44 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(lines.lines().count(), 44, "{lines}");
    let first = lines
        .lines()
        .find(|l| l.contains("host=example.com"))
        .unwrap();
    for field in [
        "client=127.0.0.1:",
        "host=example.com",
        "method=GET",
        "path=/svc1",
        "status=200",
        "bytes=14",
        "ingress=gateway-demo/web-demo",
        "service=gateway-demo/service1:80",
        "cluster=c",
        "endpoint=127.0.0.1:",
        "target=main",
        "retries=0",
        "duration_ms=",
    ] {
        assert!(first.contains(field), "{field} missing in {first}");
    }
    assert_eq!(
        lines
            .lines()
            .filter(|l| l.contains("path=/missing")
                && l.contains("status=404")
                && l.contains("ingress=-"))
            .count(),
        3
    );
}

/// Every sample of a Prometheus text exposition: (name, labels, value).
/// Panics on a line that is not valid exposition format.
fn parse_prometheus(text: &str) -> Vec<(String, String, f64)> {
    let mut typed = std::collections::HashSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let name = parts.next().expect("type name");
            let kind = parts.next().expect("type kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                assert!(l.ends_with('}'), "bad labels in {line:?}");
                (n, l.trim_end_matches('}'))
            }
            None => (series, ""),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name {name:?}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| typed.contains(*f))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample {name} without # TYPE");
        out.push((name.to_string(), labels.to_string(), value));
    }
    out
}

/// systemd's protocol on a real NOTIFY_SOCKET: READY=1 once listening,
/// RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 on SIGTERM.
#[test]
fn sd_notify_ready_reloading_stopping() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("notify");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let config = seed_svc1(listen, &a);
    let mut gw = Gateway::start_with(
        &dir.write("gw.toml", &config),
        listen,
        &[],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    // Status lines come whenever the state changes; these assertions are
    // about the life-cycle messages.
    let recv = |socket: &UnixDatagram| -> String {
        let mut buf = [0u8; 256];
        loop {
            let n = socket.recv(&mut buf).expect("a notification");
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !message.starts_with("STATUS=") {
                return message;
            }
        }
    };
    // The first READY names the main process (after a binary upgrade,
    // the new one).
    assert_eq!(recv(&socket), format!("MAINPID={}\nREADY=1", gw.pid()));
    gw.signal("HUP");
    let reloading = recv(&socket);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    assert_eq!(recv(&socket), "READY=1");
    gw.signal("TERM");
    assert_eq!(recv(&socket), "STOPPING=1");
    assert!(gw
        .wait_exit(Duration::from_secs(5))
        .is_some_and(|s| s.success()));
}

/// With `WatchdogSec=` systemd passes `WATCHDOG_USEC`: the gateway pings at
/// half of it, and keeps the status line (state, generation, routes,
/// endpoints) current, also across a reload.
#[test]
fn systemd_watchdog_pings_and_status_lines() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("watchdog");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let config = seed_svc1(listen, &a);
    let gw = Gateway::start_with(
        &dir.write("gw.toml", &config),
        listen,
        &[],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut buf = [0u8; 512];
    let mut recv = || {
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    // Pings every 200 ms; the status line once serving.
    let started = Instant::now();
    let (mut pings, mut status) = (0, String::new());
    while pings < 5 || !status.contains("Listening") {
        let m = recv();
        pings += usize::from(m.starts_with("WATCHDOG=1"));
        if let Some(line) = m.lines().find_map(|l| l.strip_prefix("STATUS=")) {
            status = line.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{pings} pings, {status:?}"
        );
    }
    assert!(
        status.starts_with("Listening: generation 1, ")
            && status.ends_with("1/1 endpoint(s) available"),
        "{status}"
    );
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = recv();
        if m.contains("STATUS=Listening: generation 2, ") {
            break;
        }
        assert!(Instant::now() < deadline, "no status line for generation 2");
    }
}

/// Graceful binary upgrade: a second `run --upgrade` takes over the sockets
/// when the first gets SIGQUIT; no request fails across the hand-over.
#[test]
fn graceful_upgrade_hands_over_sockets_without_failures() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("upgrade");
    let config = format!(
        "{}{}{}[log]\naccess = \"off\"\n",
        header(listen, "").replace("grace_period = \"5s\"", "grace_period = \"1s\""),
        service("service1", 80, &[("c7fb82a1", &a)], ""),
        manifests(&[seed("ingress-demo.yaml")])
    );
    let path = dir.write("gw.toml", &config);
    let mut old = Gateway::start(&path, listen);
    let load = Load::start(
        old.addr,
        "example.com",
        "/svc1",
        &[],
        4,
        Duration::from_millis(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    let new = Gateway::start_with(
        &dir.write("gw-new.toml", &config),
        listen,
        &["--upgrade"],
        &[],
    );
    // The new process waits for the sockets on its upgrade socket; once that
    // exists, the old one sends them on SIGQUIT.
    let sock = std::path::PathBuf::from(format!(
        "/tmp/fleetgate-test-{}.upgrade.sock",
        listen.port()
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "no upgrade socket: {}",
            new.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    old.signal("QUIT");
    let exited = old.wait_exit(Duration::from_secs(10));
    assert!(
        exited.is_some(),
        "old process did not exit: {}",
        old.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    let samples = load.stop();
    assert_none_failed(&samples, 1);
    let r = HttpClient::new(listen).get("example.com", "/svc1").unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "cluster-demo-1"));
    assert!(
        new.log_text().contains("gateway state:"),
        "{}",
        new.log_text()
    );
}

/// Rotation as logrotate does it: the log is moved away under load, then
/// SIGUSR1 (or SIGHUP) makes the gateway open the path again. No line is
/// lost, and none goes to the moved file after the signal. Without the
/// handler, SIGUSR1 would have killed the process.
#[test]
fn access_log_rotation_with_mv_and_sigusr1_loses_no_line() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("rotate");
    let log = dir.path().join("access.log");
    let config = format!(
        "{}\n[log]\naccess = \"{}\"\n",
        seed_svc1(listen, &a),
        log.display()
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let lines = |path: &std::path::Path| -> usize {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("host=example.com"))
            .count()
    };
    let load = Load::start(
        gw.addr,
        "example.com",
        "/svc1",
        &[],
        3,
        Duration::from_millis(5),
    );
    std::thread::sleep(Duration::from_millis(400));
    let moved = dir.path().join("access.log.1");
    std::fs::rename(&log, &moved).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    gw.signal("USR1");
    // The new file appears with the next line.
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines(&log) == 0 {
        assert!(Instant::now() < deadline, "no new access.log");
        std::thread::sleep(Duration::from_millis(10));
    }
    let old_after_signal = lines(&moved);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lines(&moved),
        old_after_signal,
        "nothing more goes to the moved file"
    );
    // SIGHUP reopens too (and reloads).
    std::fs::rename(&log, dir.path().join("access.log.2")).unwrap();
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines(&log) == 0 {
        assert!(Instant::now() < deadline, "no access.log after SIGHUP");
        std::thread::sleep(Duration::from_millis(10));
    }
    let samples = load.stop();
    assert_none_failed(&samples, 100);
    // Every request's line is in one of the three files, once.
    std::thread::sleep(Duration::from_millis(300));
    let total = lines(&moved) + lines(&dir.path().join("access.log.2")) + lines(&log);
    assert_eq!(total, samples.len(), "one line per request, none lost");
    assert!(
        gw.log_text().contains("access log reopened"),
        "{}",
        gw.log_text()
    );
}

/// A reload that changes a setting read only at start (here a listener)
/// is refused whole and says which: the status never lists a listener
/// that is not bound, and the rest of the file (a new access log path, a
/// new Ingress) is not half-applied. A reloadable change then applies.
#[test]
fn a_reload_changing_start_only_settings_is_refused_whole() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("start-only");
    let config = seed_svc1(listen, &a);
    let path = dir.write("gw.toml", &config);
    let gw = Gateway::start(&path, listen);
    let other = listen_addr();
    let log = dir.path().join("access.log");
    let changed = format!(
        "{}\n[log]\naccess = \"{}\"\n",
        config.replacen(&format!("listen = [\"{listen}\"]"), &format!("listen = [\"{listen}\", \"{other}\"]"), 1),
        log.display()
    )
    // A reloadable change in the same file must not apply either.
    + NEW_INGRESS;
    std::fs::write(&path, &changed).unwrap();
    gw.signal("HUP");
    let status = wait_failed_reloads(&gw, 1);
    let message = status["last_reload"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("[gateway] listen changed: these take effect only at a restart"),
        "{message}"
    );
    assert_eq!(status["generation"], 1, "{status}");
    assert_eq!(
        status["listeners"],
        serde_json::json!([listen.to_string()]),
        "{status}"
    );
    assert!(
        std::net::TcpStream::connect(other).is_err(),
        "nothing listens on {other}"
    );
    assert!(!log.exists(), "the new log was not opened");
    let c = HttpClient::new(gw.addr).tally("new.example", "/", &[], 3);
    assert_eq!(
        c.get("status 404"),
        Some(&3),
        "the new Ingress was not applied: {c:?}"
    );
    let c = HttpClient::new(gw.addr).tally("example.com", "/svc1", &[], 5);
    assert_eq!(
        c.get("cluster-demo-1"),
        Some(&5),
        "the old routes serve: {c:?}"
    );
    // Back to the start-only settings: the reloadable change applies.
    std::fs::write(&path, format!("{config}{NEW_INGRESS}")).unwrap();
    gw.signal("HUP");
    gw.wait_generation(2);
    let c = HttpClient::new(gw.addr).tally("new.example", "/", &[], 5);
    assert_eq!(c.get("cluster-demo-1"), Some(&5), "{c:?}");
}

/// A TOML Ingress for new.example, every path to service1.
const NEW_INGRESS: &str = "\n[[ingress]]\nnamespace = \"gateway-demo\"\nname = \"new\"\nclass = \"mse\"\nrules = [{ host = \"new.example\", paths = [{ path = \"/\", type = \"Prefix\", service = \"service1\", port = 80 }] }]\n";
