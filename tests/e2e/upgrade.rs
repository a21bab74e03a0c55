//! End to end: binary upgrades that cannot take the service down. SIGUSR2
//! starts the new process from inside the old one and hands over under
//! load with no request reset; SIGQUIT with nobody waiting, and a new
//! process that cannot start, leave the old one serving and say why.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fleetgate_e2e::config::{header_with_admin, listen_addr, manifests, seed, service};
use fleetgate_e2e::{assert_none_failed, free_port, Backend, Gateway, HttpClient, Load, TempDir};

/// A gateway config for service1 behind the seed's Ingresses, with a
/// 2 s grace period and its runtime files in `dir`.
fn config(listen: std::net::SocketAddr, admin: u16, dir: &Path, backend: &Backend) -> String {
    format!(
        "{}{}{}[log]\naccess = \"off\"\n",
        header_with_admin(
            listen,
            admin,
            &format!("runtime_dir = \"{}\"", dir.display())
        )
        .replace("grace_period = \"5s\"", "grace_period = \"2s\""),
        service("service1", 80, &[("c7fb82a1", backend)], ""),
        manifests(&[seed("ingress-demo.yaml")])
    )
}

/// The pid the pid file names, once it names one other than `not`.
fn wait_pid_file(path: &Path, not: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        if let Some(pid) = pid.filter(|&p| p != not) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "pid file {} still names {not}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a process the harness did not start (the new one), when dropped.
struct Reaper(u32);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

#[test]
fn sigusr2_upgrades_in_place_under_load_with_no_request_reset() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let admin = free_port();
    let dir = TempDir::new("upgrade-usr2");
    let path = dir.write("gw.toml", &config(listen, admin, dir.path(), &a));
    let mut old = Gateway::start(&path, listen);
    let pid_file = dir
        .path()
        .join(format!("fleetgate-test-{}.pid", listen.port()));
    assert_eq!(wait_pid_file(&pid_file, 0), old.pid());
    // Strict clients: a request reset on a kept-alive connection fails.
    let load = Load::start_strict(
        old.addr,
        "example.com",
        "/svc1",
        &[],
        4,
        Duration::from_millis(5),
    );
    std::thread::sleep(Duration::from_millis(300));
    old.signal("USR2");
    let asked = Instant::now();
    let new_pid = wait_pid_file(&pid_file, old.pid());
    let _reaper = Reaper(new_pid);
    // Both processes answer on the shared admin listener during the
    // hand-over: neither tells a balancer to take the node out.
    let admin_addr: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    for _ in 0..20 {
        let r = HttpClient::new(admin_addr)
            .get("127.0.0.1", "/readyz")
            .unwrap();
        assert_eq!(r.status, 200, "{r:?}");
    }
    let exited = old.wait_exit(Duration::from_secs(20));
    let gone_after = asked.elapsed();
    assert!(
        exited.is_some_and(|s| s.success()),
        "old: {exited:?}\n{}",
        old.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    let samples = load.stop();
    assert_none_failed(&samples, 201);
    eprintln!(
        "{} requests across the hand-over, none failed; the old process left {gone_after:?} after SIGUSR2",
        samples.len()
    );
    let r = HttpClient::new(listen).get("example.com", "/svc1").unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "cluster-demo-1"));
    let log = old.log_text();
    assert!(
        log.contains(&format!(
            "SIGUSR2: handing the listening sockets to pid {new_pid}"
        )),
        "{log}"
    );
    assert!(
        log.contains("drained in"),
        "the old process left once idle: {log}"
    );
    // The new process serves the admin API too.
    let status = HttpClient::new(format!("127.0.0.1:{admin}").parse().unwrap())
        .get("127.0.0.1", "/status")
        .unwrap();
    assert_eq!(status.status, 200);
}

#[test]
fn sigquit_with_no_new_process_keeps_serving_and_says_so() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let admin = free_port();
    let dir = TempDir::new("upgrade-nobody");
    let path = dir.write("gw.toml", &config(listen, admin, dir.path(), &a));
    let mut gw = Gateway::start(&path, listen);
    gw.signal("QUIT");
    assert!(
        gw.wait_for_log("no new process waits on", 1, Duration::from_secs(10))
            .is_some(),
        "{}",
        gw.log_text()
    );
    let status = gw.admin_json("/status");
    assert_eq!(status["last_upgrade"]["handed_over"], false, "{status}");
    // Pingora would have closed the listeners about five seconds on;
    // nothing of the hand-over started, so nothing closes.
    let deadline = Instant::now() + Duration::from_secs(7);
    while Instant::now() < deadline {
        let r = HttpClient::new(listen).get("example.com", "/svc1").unwrap();
        assert_eq!(r.status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gw.wait_exit(Duration::ZERO).is_none(), "still running");
    assert_eq!(gw.admin_get("/readyz", None).status, 200);
}

#[test]
fn a_new_process_that_cannot_start_leaves_the_old_one_serving() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let admin = free_port();
    let dir = TempDir::new("upgrade-broken");
    let good = config(listen, admin, dir.path(), &a);
    let path: PathBuf = dir.write("gw.toml", &good);
    let mut gw = Gateway::start(&path, listen);
    let pid_file = dir
        .path()
        .join(format!("fleetgate-test-{}.pid", listen.port()));
    assert_eq!(wait_pid_file(&pid_file, 0), gw.pid());
    // The new process loads the file as it is now: broken.
    std::fs::write(&path, format!("{good}\n[gateway.nonsense]\n")).unwrap();
    gw.signal("USR2");
    assert!(
        gw.wait_for_log("before it took the sockets", 1, Duration::from_secs(20))
            .is_some(),
        "{}",
        gw.log_text()
    );
    let status = gw.admin_json("/status");
    let message = status["last_upgrade"]["message"].as_str().unwrap_or("");
    assert!(message.contains("exited with exit status: 1"), "{status}");
    assert!(message.contains("still serving"), "{status}");
    let r = HttpClient::new(listen).get("example.com", "/svc1").unwrap();
    assert_eq!(r.status, 200);
    assert!(
        gw.wait_exit(Duration::from_millis(200)).is_none(),
        "still running"
    );
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        gw.pid().to_string()
    );
}

/// SIGTERM while SIGUSR2's new process is still starting: the old process
/// shuts down as SIGTERM asks, and takes the half-started one with it.
#[test]
fn sigterm_while_the_new_process_starts_stops_both() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let admin = free_port();
    let dir = TempDir::new("upgrade-term");
    let path = dir.write("gw.toml", &config(listen, admin, dir.path(), &a));
    // The gateway runs from a copy of the binary; the "new binary"
    // installed at that path starts and never gets ready.
    let binary = dir.path().join("fleetgate");
    std::fs::copy(fleetgate_e2e::bin_path("fleetgate"), &binary).unwrap();
    let mut gw = Gateway::start_binary(&binary, &path, listen, &[], &[]);
    let marker = dir.path().join("new-process.pid");
    let slow = format!(
        "#!/bin/sh\necho $$ > {}\nexec sleep 300\n",
        marker.display()
    );
    std::fs::remove_file(&binary).unwrap();
    std::fs::write(&binary, slow).unwrap();
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    gw.signal("USR2");
    let deadline = Instant::now() + Duration::from_secs(10);
    let child: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the new process did not start");
        std::thread::sleep(Duration::from_millis(10));
    };
    let _reaper = Reaper(child);
    // Still serving while the new process starts.
    let r = HttpClient::new(listen).get("example.com", "/svc1").unwrap();
    assert_eq!(r.status, 200);
    let asked = Instant::now();
    gw.signal("TERM");
    let exited = gw.wait_exit(Duration::from_secs(10));
    assert!(
        exited.is_some_and(|s| s.success()),
        "{exited:?}\n{}",
        gw.log_text()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let child_alive = std::path::Path::new(&format!("/proc/{child}")).exists()
        && !std::fs::read_to_string(format!("/proc/{child}/stat"))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!child_alive, "the half-started process was stopped");
    assert!(gw
        .log_text()
        .contains("SIGTERM came before the new process was ready"));
}
