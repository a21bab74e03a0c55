//! Attacks and failures that must not get through, reproduced with raw
//! sockets against the real binary: a client that stalls its request body
//! cannot get a healthy endpoint ejected, timeouts answer 504, and the
//! gateway's own error answers tell the truth about the connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use fleetgate_e2e::config::{header, host_ingress, listen_addr, manifests, service_at};
use fleetgate_e2e::upstream::recording_upstream;
use fleetgate_e2e::{bin_path, exchange, free_port, Backend, Gateway, HttpClient, TempDir};

#[test]
fn a_client_that_stalls_its_body_cannot_eject_a_healthy_endpoint() {
    let pod = Backend::start("pod");
    let dir = TempDir::new("stall");
    let yaml = [
        host_ingress("a", "a.test", "a", None, &[]),
        host_ingress("b", "b.test", "b", None, &[]),
    ]
    .concat();
    let listen = listen_addr();
    // Service A waits 500 ms for the endpoint, and ejects after 2 failures;
    // Service B lists the same pod as its only endpoint.
    let config = format!(
        "{}{}{}{}",
        header(listen, ""),
        service_at(
            "a",
            pod.addr,
            "read_timeout = \"500ms\"\n[service.outlier_detection]\nconsecutive_failures = 2"
        ),
        service_at("b", pod.addr, ""),
        manifests(&[dir.write("m.yaml", &yaml)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let stalled: Vec<_> = (0..10)
        .map(|_| {
            let addr = gw.addr;
            std::thread::spawn(move || {
                exchange(
                    addr,
                    b"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100\r\n\r\nabc",
                )
            })
        })
        .collect();
    for t in stalled {
        let got = t.join().unwrap();
        assert!(got.starts_with("HTTP/1.1 408"), "{got}");
        assert!(
            got.to_ascii_lowercase().contains("connection: close"),
            "{got}"
        );
    }
    let mut c = HttpClient::new(gw.addr);
    assert_eq!(c.get("b.test", "/").unwrap().status, 200);
    assert_eq!(c.get("a.test", "/").unwrap().status, 200);
    let services: serde_json::Value = gw.admin_json("/services");
    for pool in services["pools"].as_array().unwrap() {
        for e in pool["endpoints"].as_array().unwrap() {
            assert_eq!(e["ejections"], 0, "{pool}");
            assert_eq!(e["consecutive_failures"], 0, "{pool}");
        }
    }
    let log = gw.log_text();
    let stalled_lines: Vec<&str> = log.lines().filter(|l| l.contains("path=/upload")).collect();
    assert_eq!(stalled_lines.len(), 10, "{log}");
    assert!(
        stalled_lines
            .iter()
            .all(|l| l.contains("status=408") && l.contains("retries=0")),
        "{stalled_lines:#?}"
    );
}

#[test]
fn timeouts_answer_504_and_error_answers_say_whether_the_connection_stays() {
    let hole = {
        let child = Command::new(bin_path("web-demo"))
            .args(["--listen", "127.0.0.1:0", "--name", "hole", "--blackhole"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn web-demo --blackhole");
        Backend::adopt(child, "hole")
    };
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dir = TempDir::new("timeouts");
    let yaml = [
        host_ingress("slow", "slow.test", "slow", None, &[]),
        host_ingress("dead", "dead.test", "dead", None, &[]),
    ]
    .concat();
    let listen = listen_addr();
    let config = format!(
        "{}{}{}{}",
        header(listen, ""),
        service_at("slow", hole.addr, "read_timeout = \"300ms\"\nretries = 1"),
        service_at("dead", dead, ""),
        manifests(&[dir.write("m.yaml", &yaml)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let mut c = HttpClient::new(gw.addr);
    // A single endpoint that never answers: a timeout is 504, not 502.
    let r = c.get("slow.test", "/").unwrap();
    assert_eq!(r.status, 504, "{r:?}");
    // The gateway's own error answers close the connection, and say so
    // (they used to say keep-alive, and the client's next request was lost).
    for request in [
        &b"GET / HTTP/1.1\r\nHost: dead.test\r\n\r\n"[..],
        &b"POST / HTTP/1.1\r\nHost: dead.test\r\nContent-Length: 10\r\n\r\n0123456789"[..],
        &b"GET / HTTP/1.1\r\nHost: slow.test\r\n\r\n"[..],
    ] {
        let got = exchange(gw.addr, request);
        assert!(
            got.starts_with("HTTP/1.1 502") || got.starts_with("HTTP/1.1 504"),
            "{got}"
        );
        assert!(
            got.to_ascii_lowercase().contains("connection: close"),
            "{got}"
        );
        // exchange() read until the gateway closed: one response, no more.
        assert_eq!(got.matches("HTTP/1.1 ").count(), 1, "{got}");
    }
}

#[test]
fn requests_rfc_9112_forbids_are_refused_before_routing() {
    let pod = Backend::start("pod");
    let dir = TempDir::new("refused");
    let listen = listen_addr();
    // A default backend: without the checks these would all reach it.
    let pod_a = Backend::start("pod-a");
    let config = format!(
        "{}{}{}{}",
        header(
            listen,
            "default_backend = { namespace = \"gateway-demo\", service = \"fallback\", port = 80 }"
        ),
        service_at("fallback", pod.addr, ""),
        service_at("a", pod_a.addr, ""),
        manifests(&[dir.write("m.yaml", &host_ingress("a", "a.test", "a", None, &[]))]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    for (request, status) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], "400"),
        (&b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"[..], "400"),
        (&b"GET / HTTP/1.1\r\nHost: a/x\r\n\r\n"[..], "400"),
        (&b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"[..], "400"),
        (&b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n"[..], "405"),
        (&b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n"[..], "400"),
        (&b"GET x HTTP/1.1\r\nHost: a\r\n\r\n"[..], "400"),
        (&b"GET x/../admin HTTP/1.1\r\nHost: a\r\n\r\n"[..], "400"),
        (&b"GET ftp://a/admin HTTP/1.1\r\nHost: a\r\n\r\n"[..], "400"),
        (&b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n"[..], "400"),
        (&b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"[..], "400"),
        (
            &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"[..],
            "501",
        ),
        (
            &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            "501",
        ),
    ] {
        let got = exchange(gw.addr, request);
        let shown = String::from_utf8_lossy(request);
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status}")),
            "{shown:?}: {got}"
        );
        assert!(
            got.to_ascii_lowercase().contains("connection: close"),
            "{got}"
        );
    }
    // The same requests, well formed, reach the backend.
    let got = exchange(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("pod"),
        "{got}"
    );
    let got = exchange(gw.addr, b"GET / HTTP/1.0\r\n\r\n");
    assert!(
        got.starts_with("HTTP/1.1 200"),
        "HTTP/1.0 may omit Host: {got}"
    );
    let got = exchange(
        gw.addr,
        b"GET http://a.test/ HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("pod-a"),
        "absolute-form names its host, and routes by it: {got}"
    );
}

#[test]
fn keep_alive_connections_are_bounded_and_pipelined_requests_all_answered() {
    let pod = Backend::start("pod");
    let dir = TempDir::new("keepalive");
    let listen = listen_addr();
    let config = format!(
        "{}{}",
        header(
            listen,
            "keepalive_timeout = \"1s\"\nkeepalive_requests = 3\n\
             default_backend = { namespace = \"gateway-demo\", service = \"pod\", port = 80 }"
        ),
        service_at("pod", pod.addr, ""),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

    // Three requests in one write (pipelined): three answers, in order, and
    // the third, the connection's last (keepalive_requests), says close.
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&[&get[..], &get[..], &get[..]].concat())
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let got = String::from_utf8_lossy(&got);
    assert_eq!(got.matches("HTTP/1.1 200").count(), 3, "{got}");
    let heads: Vec<&str> = got.split("HTTP/1.1 ").skip(1).collect();
    assert!(
        heads[..2]
            .iter()
            .all(|h| h.to_ascii_lowercase().contains("keep-alive")),
        "{got}"
    );
    assert!(
        heads[2].to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );

    // An idle kept-alive connection is closed after keepalive_timeout.
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(get).unwrap();
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let idle = started.elapsed();
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(
        idle < Duration::from_secs(5),
        "closed after the 1 s idle limit, not kept: {idle:?}"
    );
}

#[test]
fn a_content_length_that_could_be_read_two_ways_is_made_one_or_refused() {
    // It closes each connection, and says so: a pooled connection it
    // closed would fail the next POST, which is not retried.
    let (upstream, recorded) =
        recording_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    let dir = TempDir::new("content-length");
    let listen = listen_addr();
    let config = format!(
        "{}{}",
        header(
            listen,
            "default_backend = { namespace = \"gateway-demo\", service = \"rec\", port = 80 }"
        ),
        service_at("rec", upstream, ""),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    // The readiness probe of the harness went to the upstream too.
    while recorded.try_recv().is_ok() {}
    for lengths in [
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",
    ] {
        let request =
            format!("POST / HTTP/1.1\r\nHost: a\r\n{lengths}Connection: close\r\n\r\nhello");
        let got = exchange(gw.addr, request.as_bytes());
        assert!(got.starts_with("HTTP/1.1 200"), "{lengths:?}: {got}");
        let upstream_saw = recorded
            .recv_timeout(Duration::from_secs(5))
            .expect("the upstream got the request")
            .to_ascii_lowercase();
        assert_eq!(
            upstream_saw.matches("content-length").count(),
            1,
            "{upstream_saw}"
        );
        assert!(
            upstream_saw.contains("content-length: 5\r\n"),
            "{upstream_saw}"
        );
        assert!(upstream_saw.ends_with("\r\n\r\nhello"), "{upstream_saw}");
    }
    for lengths in [
        "Content-Length: 5, 6\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 9223372036854775808\r\n",
    ] {
        let request = format!("POST / HTTP/1.1\r\nHost: a\r\n{lengths}\r\nhello");
        let got = exchange(gw.addr, request.as_bytes());
        assert!(got.starts_with("HTTP/1.1 400"), "{lengths:?}: {got}");
    }
    assert!(
        recorded.recv_timeout(Duration::from_millis(300)).is_err(),
        "a refused request never reaches the upstream"
    );
}

#[test]
fn configurations_past_the_input_bounds_are_refused_with_the_bound_named() {
    let dir = TempDir::new("bounds");
    let listen = listen_addr();
    // 2 MB of nested brackets: quadratic to scan, minutes of a pinned
    // thread if it reached the YAML parser.
    let nested = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\ndata: {}\n",
        "[".repeat(2_000_000)
    );
    let huge = dir.path().join("huge.yaml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    let config = format!(
        "{}{}",
        header(listen, ""),
        manifests(&[dir.write("nested.yaml", &nested), huge]),
    );
    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(dir.write("gw.toml", &config))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("nested.yaml:4:1") && err.contains("nest deeper than 64 levels"),
        "{err}"
    );
    assert!(
        err.contains("huge.yaml") && err.contains("at most 64 MiB"),
        "{err}"
    );
}

#[test]
fn a_manifest_emptied_before_a_reload_is_reported_not_silently_unrouted() {
    let pod = Backend::start("pod");
    let dir = TempDir::new("emptied");
    let listen = listen_addr();
    let manifest = dir.write("m.yaml", &host_ingress("a", "a.test", "a", None, &[]));
    let config = format!(
        "{}{}{}",
        header(listen, ""),
        service_at("a", pod.addr, ""),
        manifests(std::slice::from_ref(&manifest)),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let mut c = HttpClient::new(gw.addr);
    assert_eq!(c.get("a.test", "/").unwrap().status, 200);
    let before = gw.admin_json("/status");
    assert!(
        before["warnings"].as_array().unwrap().is_empty(),
        "{before}"
    );
    // A failed write leaves the file empty (a comment at most).
    std::fs::write(&manifest, "# nothing here\n").unwrap();
    gw.signal("HUP");
    gw.wait_generation(2);
    assert_eq!(c.get("a.test", "/").unwrap().status, 404);
    let status = gw.admin_json("/status");
    let warnings = status["warnings"].to_string();
    assert!(warnings.contains("m.yaml holds no objects"), "{status}");
    assert!(gw.log_text().contains("m.yaml holds no objects"));
}
