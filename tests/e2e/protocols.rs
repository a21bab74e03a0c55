//! Upstream protocols and upgraded connections through the real binary:
//! gRPC (grpcio client and server) over h2c and TLS, GRPCS and HTTPS
//! upstreams with verification, the gateway's own answers to gRPC calls,
//! failover under gRPC load, and WebSockets that idle without a byte
//! injected.

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fleetgate_e2e::config::{header, host_ingress, listen_addr, manifests, service, service_at};
use fleetgate_e2e::python::{client_script, python_client, python_server};
use fleetgate_e2e::tls::{curl, TestCert};
use fleetgate_e2e::{free_port, Gateway, TempDir};
use serde_json::Value;

/// An Ingress for `host` → Service `svc` (no TLS section).
fn ingress(name: &str, host: &str, svc: &str, annotations: &[&str]) -> String {
    host_ingress(name, host, svc, None, annotations)
}

/// Runs grpc_client.py against the gateway's `addr` for `authority`.
fn grpc(addr: SocketAddr, authority: &str, extra: &[&str]) -> Value {
    let target = addr.to_string();
    let mut args = vec!["--target", target.as_str(), "--authority", authority];
    args.extend_from_slice(extra);
    python_client("grpc_client.py", &args)
}

#[test]
fn grpc_calls_pass_through_with_status_and_trailers() {
    let g = python_server("grpc_server.py", "g1", &[]);
    let dir = TempDir::new("grpc");
    let cert = TestCert::new(&dir, "grpc", &["grpc.test"]);
    let yaml = ingress("grpc", "grpc.test", "echo", &["backend-protocol: \"GRPC\""]);
    let (listen, tls_port) = (listen_addr(), free_port());
    let config = format!(
        "{}{}{}\n[[certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
        header(
            listen,
            &format!("h2c = true\nlisten_tls = [\"127.0.0.1:{tls_port}\"]")
        ),
        service("echo", 80, &[("c7fb82a1", &g)], ""),
        manifests(&[dir.write("m.yaml", &yaml)]),
        cert.cert_file.display(),
        cert.key_file.display(),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let tls: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    let ca = cert.cert_file.display().to_string();
    for (addr, tls_args) in [(gw.addr, vec![]), (tls, vec!["--tls", ca.as_str()])] {
        let with = |mode: &[&str]| {
            let mut args = tls_args.clone();
            args.extend_from_slice(mode);
            grpc(addr, "grpc.test", &args)
        };
        let out = with(&["unary", "--count", "5"]);
        assert_eq!(out["ok"], 5, "{out}\n{}", gw.log_text());
        assert_eq!(out["served_by"]["g1"], 5, "{out}");
        assert_eq!(out["trailers"]["x-served-by"], "g1", "trailers pass: {out}");
        let out = with(&["stream", "--count", "3"]);
        assert_eq!(
            out["messages"],
            serde_json::json!(["g1:0", "g1:1", "g1:2"]),
            "{out}"
        );
        let out = with(&["fail", "--code", "5"]);
        assert_eq!(out["codes"]["NOT_FOUND"], 1, "{out}");
        assert_eq!(out["details"], "failed on purpose", "{out}");
        assert_eq!(out["trailers"]["x-served-by"], "g1", "{out}");
    }
}

#[test]
fn the_gateways_own_answers_to_grpc_calls_are_grpc_statuses() {
    let dir = TempDir::new("grpc-errors");
    let yaml = [
        ingress(
            "empty",
            "empty.test",
            "empty",
            &["backend-protocol: \"GRPC\""],
        ),
        ingress("dead", "dead.test", "dead", &["backend-protocol: \"GRPC\""]),
    ]
    .concat();
    let listen = listen_addr();
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = format!(
        "{}\n[[service]]\nnamespace = \"gateway-demo\"\nname = \"empty\"\nport = 80\n{}{}",
        header(listen, "h2c = true"),
        service_at("dead", dead, ""),
        manifests(&[dir.write("m.yaml", &yaml)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    for (authority, code, details) in [
        (
            "unknown.test",
            "UNIMPLEMENTED",
            "no route for this service and method",
        ),
        (
            "empty.test",
            "UNAVAILABLE",
            "no healthy endpoint for this route",
        ),
        ("dead.test", "UNAVAILABLE", "the upstream endpoint failed"),
    ] {
        let out = grpc(gw.addr, authority, &["unary", "--count", "1"]);
        assert_eq!(out["codes"][code], 1, "{authority}: {out}");
        assert_eq!(out["details"], details, "{authority}: {out}");
    }
    // Logs and metrics count them by what happened, not as the HTTP 200
    // they travel in.
    for (host, status) in [
        ("unknown.test", "404"),
        ("empty.test", "503"),
        ("dead.test", "502"),
    ] {
        let line =
            format!("host={host} method=POST path=/fleetgate.test.Echo/Unary status={status}");
        assert!(
            gw.wait_for_log(&line, 1, Duration::from_secs(5)).is_some(),
            "{line}\n{}",
            gw.log_text()
        );
    }
}

#[test]
fn grpc_failover_loses_no_call_when_a_cluster_dies() {
    let mut zone_a = vec![
        python_server("grpc_server.py", "a1", &[]),
        python_server("grpc_server.py", "a2", &[]),
    ];
    let b = python_server("grpc_server.py", "b1", &[]);
    let dir = TempDir::new("grpc-failover");
    let yaml = ingress("grpc", "grpc.test", "echo", &[]);
    let listen = listen_addr();
    let config = format!(
        "{}{}{}",
        header(listen, "h2c = true"),
        service(
            "echo",
            80,
            &[
                ("c7fb82a1", &zone_a[0]),
                ("c7fb82a1", &zone_a[1]),
                ("cd3007b2", &b)
            ],
            "protocol = \"grpc\"\nretry_non_idempotent = true\n\
             [service.health_check]\nkind = \"tcp\"\ninterval = \"200ms\"\ntimeout = \"200ms\"",
        ),
        manifests(&[dir.write("m.yaml", &yaml)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let load = Command::new("python3")
        .arg(client_script("grpc_client.py"))
        .args(["--target", &gw.addr.to_string(), "--authority", "grpc.test"])
        .args(["load", "--duration", "4", "--concurrency", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn grpc load");
    // Let traffic reach every server, then take zone a down mid-load.
    let started = Instant::now();
    while gw.log_text().matches("cluster=c7fb82a1").count() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            gw.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for s in &mut zone_a {
        s.kill();
    }
    let out = load.wait_with_output().expect("grpc load");
    let out: Value = serde_json::from_slice(&out.stdout).expect("grpc load JSON");
    assert_eq!(out["failed"], 0, "{out}\n{}", gw.log_text());
    assert!(out["ok"].as_u64().unwrap() > 100, "{out}");
    assert!(out["served_by"]["b1"].as_u64().unwrap() > 0, "{out}");
    println!("gRPC failover: {out}");
}

/// A child process killed when dropped, so a failing test leaves none.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `openssl s_server -www` (an HTTPS server answering GETs with a
/// status page) with `cert`, and waits until it accepts.
fn https_upstream(cert: &TestCert) -> (KillOnDrop, SocketAddr) {
    let port = free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-www", "-quiet", "-accept"])
        .arg(port.to_string())
        .arg("-cert")
        .arg(&cert.cert_file)
        .arg("-key")
        .arg(&cert.key_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl s_server");
    let child = KillOnDrop(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "s_server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, addr)
}

#[test]
fn tls_upstreams_are_verified_unless_told_not_to() {
    let dir = TempDir::new("upstream-tls");
    let upstream_cert = TestCert::new(&dir, "upstream", &["secure-upstream.test"]);
    let stranger = TestCert::new(&dir, "stranger", &["stranger.test"]);
    let (_https, addr) = https_upstream(&upstream_cert);
    let g = python_server(
        "grpc_server.py",
        "gs",
        &[
            "--tls",
            &upstream_cert.cert_file.display().to_string(),
            &upstream_cert.key_file.display().to_string(),
        ],
    );
    let yaml = [
        ingress(
            "https",
            "secure-upstream.test",
            "verified",
            &["backend-protocol: \"HTTPS\""],
        ),
        ingress("wrong-ca", "wrong-ca.test", "wrong-ca", &[]),
        ingress("insecure", "insecure.test", "insecure", &[]),
        ingress("grpcs", "grpcs.test", "grpcs", &[]),
        ingress("checked-good", "checked-good.test", "checked-good", &[]),
        ingress("checked-bad", "checked-bad.test", "checked-bad", &[]),
        ingress(
            "wrong-name",
            "wrong-name.test",
            "verified",
            &["backend-protocol: \"HTTPS\""],
        ),
    ]
    .concat();
    let listen = listen_addr();
    let ca = |c: &TestCert| format!("[service.tls]\nca_file = \"{}\"", c.cert_file.display());
    let checked = |c: &TestCert| {
        format!(
            "protocol = \"https\"\n[service.health_check]\nkind = \"http\"\nhost = \"secure-upstream.test\"\n\
             interval = \"200ms\"\n{}\nsni = \"secure-upstream.test\"",
            ca(c)
        )
    };
    let config = format!(
        "{}{}{}{}{}{}{}{}",
        header(listen, "h2c = true"),
        service_at("checked-good", addr, &checked(&upstream_cert)),
        service_at("checked-bad", addr, &checked(&stranger)),
        service_at("verified", addr, &ca(&upstream_cert)),
        service_at(
            "wrong-ca",
            addr,
            &format!(
                "protocol = \"https\"\n{}\nsni = \"secure-upstream.test\"",
                ca(&stranger)
            )
        ),
        service_at(
            "insecure",
            addr,
            "protocol = \"https\"\n[service.tls]\nverify = false"
        ),
        service_at(
            "grpcs",
            g.addr,
            &format!(
                "protocol = \"grpcs\"\n{}\nsni = \"secure-upstream.test\"",
                ca(&upstream_cert)
            )
        ),
        manifests(&[dir.write("m.yaml", &yaml)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let get = |host: &str| {
        curl(
            &format!("http://{}/", gw.addr),
            &["-H", &format!("Host: {host}")],
        )
    };
    // SNI is the request's host; the upstream's name and chain are checked.
    let r = get("secure-upstream.test");
    assert_eq!(r.status, 200, "{r:?}\n{}", gw.log_text());
    assert!(r.body.contains("s_server"), "{r:?}");
    let r = get("wrong-ca.test");
    assert_eq!(r.status, 502, "an unverifiable upstream is refused: {r:?}");
    let r = get("insecure.test");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        gw.log_text().contains("verify = false"),
        "turning verification off is logged loudly"
    );
    let out = grpc(gw.addr, "grpcs.test", &["unary", "--count", "3"]);
    assert_eq!(out["ok"], 3, "{out}\n{}", gw.log_text());
    // HTTPS health checks handshake and verify like requests: the one that
    // cannot verify marks the endpoint down for its Service only.
    assert!(
        gw.wait_for_log("is unhealthy", 1, Duration::from_secs(10))
            .is_some(),
        "{}",
        gw.log_text()
    );
    assert_eq!(get("checked-bad.test").status, 503);
    assert_eq!(get("checked-good.test").status, 200);
    // The right CA but another name: refused too.
    assert_eq!(get("wrong-name.test").status, 502);
}

#[test]
fn websockets_idle_past_the_read_timeout_with_no_bytes_injected() {
    let ws = python_server("ws_server.py", "ws1", &[]);
    let dir = TempDir::new("websocket");
    let yaml = ingress("ws", "ws.test", "ws", &[]);
    let listen = listen_addr();
    let svc = |name: &str, extra: &str| service_at(name, ws.addr, extra);
    let config = format!(
        "{}{}{}",
        header(listen, ""),
        svc("ws", "read_timeout = \"1s\""),
        manifests(&[dir.write("m.yaml", &yaml)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let url = format!("ws://{}/chat", gw.addr);
    let out = python_client(
        "ws_client.py",
        &[
            "--url",
            &url,
            "--host",
            "ws.test",
            "--idle",
            "3",
            "--close-code",
            "4001",
        ],
    );
    assert_eq!(out["echo_ok"], true, "{out}");
    assert_eq!(
        out["after_idle_ok"], true,
        "3 s idle past a 1 s read timeout: {out}"
    );
    assert_eq!(out["close_code"], 4001, "close codes pass: {out}");
    assert_eq!(out["close_reason"], "bye", "{out}");
    assert_eq!(out["error"], Value::Null, "{out}");
    drop(gw);

    // [upstream] websocket_idle_timeout: past it the gateway closes the
    // connection, without writing into it.
    let listen = listen_addr();
    let config = format!(
        "{}{}{}\n[upstream]\nwebsocket_idle_timeout = \"1s\"\n",
        header(listen, ""),
        svc("short", ""),
        manifests(&[dir.write("m2.yaml", &ingress("short", "short.test", "short", &[]))]),
    );
    let gw = Gateway::start(&dir.write("gw2.toml", &config), listen);
    let url = format!("ws://{}/chat", gw.addr);
    let out = python_client(
        "ws_client.py",
        &["--url", &url, "--host", "short.test", "--idle", "3"],
    );
    assert_eq!(out["echo_ok"], true, "{out}");
    assert_eq!(
        out["after_idle_ok"], false,
        "the idle limit closes it: {out}"
    );
    let error = out["error"].as_str().unwrap_or_default();
    assert!(
        !error.contains("1002") && !error.contains("invalid"),
        "closed, never written into: {out}"
    );
}

/// An upstream that starts a chunked response, sends one chunk and dies.
fn dying_upstream() -> SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
            let _ = stream.flush();
            std::thread::sleep(Duration::from_millis(100));
            // Dropped: the connection closes mid-body.
        }
    });
    addr
}

#[test]
fn a_response_cut_short_upstream_is_cut_short_for_the_client() {
    use std::io::{Read, Write};
    let upstream = dying_upstream();
    let dir = TempDir::new("truncated");
    let yaml = ingress("dies", "dies.test", "dies", &[]);
    let listen = listen_addr();
    let config = format!(
        "{}{}{}",
        header(listen, "h2c = true"),
        service_at("dies", upstream, ""),
        manifests(&[dir.write("m.yaml", &yaml)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);

    // HTTP/1.1: the body starts, then the connection closes without the
    // last chunk and without any text of the gateway's.
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: dies.test\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("hello"), "{got}");
    assert!(!got.contains("0\r\n\r\n"), "no terminating chunk: {got:?}");
    assert!(
        !got.contains("502") && !got.contains("Bad Gateway"),
        "{got:?}"
    );

    // HTTP/2: the stream is reset, so the client knows.
    let r = curl(
        &format!("http://{}/", gw.addr),
        &["--http2-prior-knowledge", "-H", "Host: dies.test"],
    );
    assert_ne!(r.code, 0, "curl must see the truncation: {r:?}");
    assert!(!r.body.contains("Bad Gateway"), "{r:?}");
    assert!(
        gw.wait_for_log("cut short", 2, Duration::from_secs(5))
            .is_some(),
        "{}",
        gw.log_text()
    );
    // ... and counted.
    let metrics = gw.admin_get("/metrics", None).body;
    assert!(
        metrics
            .lines()
            .any(|l| l == "fleetgate_responses_truncated_total 2"),
        "{metrics}"
    );
}
