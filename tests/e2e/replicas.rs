//! End to end: two gateway replicas with the same routes behind HAProxy in
//! TCP mode (Debian's), the L4 balancer of a multi-zone deployment. HAProxy
//! health-checks each replica's `/readyz`. A replica drained with SIGTERM
//! (`shutdown_delay`) loses no request: `/readyz` turns 503 and responses
//! close their connections before its listeners close. A replica killed
//! outright loses at most the requests it had in flight.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleetgate_e2e::config::{header_with_admin, host_ingress, listen_addr, manifests, service};
use fleetgate_e2e::{assert_none_failed, free_port, Backend, Gateway, HttpClient, Load, TempDir};

/// HAProxy in TCP mode over two gateways, checking `/readyz` on their
/// admin ports every 100 ms (two failures take a replica out).
struct Haproxy {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Haproxy {
    fn start(dir: &TempDir, gateways: &[(&Gateway, u16)]) -> Haproxy {
        let addr = listen_addr();
        let servers: Vec<String> = gateways
            .iter()
            .enumerate()
            .map(|(i, (gw, admin))| {
                format!(
                    "    server gw{i} {} check port {admin} inter 100 fall 2 rise 2",
                    gw.addr
                )
            })
            .collect();
        let cfg = format!(
            "global\n    maxconn 1000\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n    retries 3\n    option redispatch\nfrontend fe\n    bind {addr}\n    default_backend gateways\nbackend gateways\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n{}\n",
            servers.join("\n")
        );
        let path = dir.write("haproxy.cfg", &cfg);
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy (scripts/setup.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        // Ready when both replicas answer through it.
        loop {
            let ok = HttpClient::new(addr)
                .get("replicas.example", "/")
                .is_ok_and(|r| r.status == 200);
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "haproxy never answered");
            std::thread::sleep(Duration::from_millis(20));
        }
        Haproxy { child, addr }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two replicas of one configuration (their own ports), `shutdown_delay`
/// set; returns them with their admin ports.
fn replicas(dir: &TempDir, backends: &[Backend]) -> Vec<(Gateway, u16)> {
    let ingress = dir.write(
        "ing.yaml",
        &host_ingress("web", "replicas.example", "web", None, &[]),
    );
    (0..2)
        .map(|i| {
            let listen = listen_addr();
            let admin = free_port();
            let config = format!(
                "{}{}{}",
                header_with_admin(listen, admin, "shutdown_delay = \"1s\""),
                service(
                    "web",
                    80,
                    &[("c7fb82a1", &backends[0]), ("cd3007b2", &backends[1])],
                    ""
                ),
                manifests(std::slice::from_ref(&ingress))
            );
            let path = dir.write(&format!("gw{i}.toml"), &config);
            (Gateway::start(&path, listen), admin)
        })
        .collect()
}

#[test]
fn a_drained_replica_loses_no_request_and_a_killed_one_only_its_in_flight() {
    let backends = vec![
        Backend::start("cluster-demo-1"),
        Backend::start("cluster-demo-2"),
    ];
    let dir = TempDir::new("replicas");
    let mut gws = replicas(&dir, &backends);
    let lb = Haproxy::start(&dir, &[(&gws[0].0, gws[0].1), (&gws[1].0, gws[1].1)]);

    // Drain replica 0 under load.
    let load = Load::start(
        lb.addr,
        "replicas.example",
        "/",
        &[],
        4,
        Duration::from_millis(5),
    );
    std::thread::sleep(Duration::from_millis(500));
    let gw0 = &mut gws[0].0;
    gw0.signal("TERM");
    // While it drains, it still serves, closing each connection.
    std::thread::sleep(Duration::from_millis(200));
    let r = HttpClient::new(gw0.addr)
        .get("replicas.example", "/")
        .expect("a draining replica still answers");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    let ready = gw0.admin_get("/readyz", None);
    assert_eq!(ready.status, 503, "{ready:?}");
    gw0.wait_exit(Duration::from_secs(10))
        .expect("replica 0 stopped");
    std::thread::sleep(Duration::from_millis(500));
    let samples = load.stop();
    assert_none_failed(&samples, 201);
    println!("drained replica: {} requests, 0 failed", samples.len());

    // Replica 0 back, then replica 1 killed outright.
    let (config0, listen0) = (dir.path().join("gw0.toml"), gws[0].0.addr);
    gws[0].0 = Gateway::start(&config0, listen0);
    let load = Load::start(
        lb.addr,
        "replicas.example",
        "/",
        &[],
        4,
        Duration::from_millis(5),
    );
    std::thread::sleep(Duration::from_millis(500));
    gws[1].0.signal("KILL");
    std::thread::sleep(Duration::from_millis(1000));
    let samples = load.stop();
    let failed = samples.iter().filter(|s| s.result.is_err()).count();
    assert!(samples.len() > 200, "load too light: {}", samples.len());
    // At most the requests in flight on replica 1: one per client.
    assert!(
        failed <= 4,
        "killed replica: {failed} of {} failed",
        samples.len()
    );
    println!(
        "killed replica: {} requests, {failed} failed",
        samples.len()
    );
}
