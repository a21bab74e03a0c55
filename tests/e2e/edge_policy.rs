//! What the gateway decides about a request before routing it, against the
//! real binary: paths are normalised before matching (and reach the
//! upstream as sent), client-written forwarding headers are dropped in
//! `overwrite` mode unless the peer is a trusted proxy, and a token-less
//! admin API answers only to local Host names.

use std::net::SocketAddr;
use std::time::Duration;

use fleetgate_e2e::config::{header, listen_addr, manifests, service_at};
use fleetgate_e2e::upstream::recording_upstream;
use fleetgate_e2e::{exchange, Backend, Gateway, HttpClient, TempDir};

/// The recording upstream answering 200 `rec`.
const REC: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nrec";

/// An Ingress for `a.test`: `Exact /admin` to Service `admin`, `Prefix
/// /api` to Service `api`.
const FENCED: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fenced, namespace: gateway-demo}
spec:
  ingressClassName: mse
  rules:
  - host: a.test
    http:
      paths:
      - {path: /admin, pathType: Exact, backend: {service: {name: admin, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
";

fn fenced_gateway(dir: &TempDir, admin: SocketAddr, api: &Backend, extra: &str) -> Gateway {
    let listen = listen_addr();
    let config = format!(
        "{}{}{}{}",
        header(listen, extra),
        service_at("admin", admin, ""),
        service_at("api", api.addr, ""),
        manifests(&[dir.write("m.yaml", FENCED)]),
    );
    Gateway::start(&dir.write("gw.toml", &config), listen)
}

fn get(gw: &Gateway, target: &str) -> String {
    exchange(
        gw.addr,
        format!("GET {target} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn paths_are_normalised_before_matching_and_forwarded_as_sent() {
    let (admin, recorded) = recording_upstream(REC);
    let api = Backend::start("api");
    let dir = TempDir::new("normalise");
    let gw = fenced_gateway(&dir, admin, &api, "");
    for target in [
        "/admin",
        "/x/../admin",
        "/%61dmin",
        "//admin",
        "/api/../admin",
        "/api/%2e%2e/admin",
    ] {
        let got = get(&gw, target);
        assert!(
            got.starts_with("HTTP/1.1 200") && got.ends_with("rec"),
            "{target}: {got}"
        );
        let upstream_saw = recorded.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            upstream_saw.starts_with(&format!("GET {target} HTTP/1.1\r\n")),
            "the upstream gets the path as sent: {upstream_saw}"
        );
    }
    // An absolute-form target is routed by its normalised path and goes
    // upstream in origin-form, as sent otherwise.
    let got = exchange(
        gw.addr,
        b"GET http://a.test/x/../admin HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(got.ends_with("rec"), "{got}");
    let upstream_saw = recorded.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        upstream_saw.starts_with("GET /x/../admin HTTP/1.1\r\n"),
        "{upstream_saw}"
    );
    let got = get(&gw, "/api/v1/../v2");
    assert!(got.ends_with("api"), "{got}");
    for above_root in ["/..", "/api/../../admin", "/%2e%2e/admin"] {
        let got = get(&gw, above_root);
        assert!(got.starts_with("HTTP/1.1 400"), "{above_root}: {got}");
    }
    assert!(recorded.recv_timeout(Duration::from_millis(200)).is_err());

    // A 404 to a request whose body was never read closes the connection
    // (and says so) instead of waiting to drain the body into the next
    // request.
    let started = std::time::Instant::now();
    let got = exchange(
        gw.addr,
        b"POST /nope HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\n",
    );
    assert!(got.starts_with("HTTP/1.1 404"), "{got}");
    assert!(got.contains("Connection: close"), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the connection was kept"
    );

    // With normalisation off, the fence is only as good as the paths as
    // written: these miss Exact /admin (and there is no default backend).
    let dir = TempDir::new("no-normalise");
    let gw = fenced_gateway(&dir, admin, &api, "path_normalization = \"none\"");
    for target in ["/x/../admin", "/%61dmin", "//admin"] {
        let got = get(&gw, target);
        assert!(got.starts_with("HTTP/1.1 404"), "{target}: {got}");
    }
    let got = get(&gw, "/api/../admin");
    assert!(got.ends_with("api"), "{got}");
}

#[test]
fn overwrite_mode_drops_client_forwarding_headers_unless_the_peer_is_trusted() {
    let (upstream, recorded) = recording_upstream(REC);
    let spoofed = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n\
                   X-Forwarded-Host: evil.example\r\nForwarded: for=6.6.6.6\r\n\
                   X-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\n\
                   Connection: close\r\n\r\n";
    let start = |dir: &TempDir, extra: &str| {
        let listen = listen_addr();
        let config = format!(
            "{}{}",
            header(
                listen,
                &format!(
                    "{extra}\ndefault_backend = {{ namespace = \"gateway-demo\", service = \"rec\", port = 80 }}"
                )
            ),
            service_at("rec", upstream, ""),
        );
        let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
        while recorded.try_recv().is_ok() {}
        gw
    };
    let dir = TempDir::new("overwrite");
    let gw = start(&dir, "forwarded_headers = \"overwrite\"");
    assert!(exchange(gw.addr, spoofed.as_bytes()).starts_with("HTTP/1.1 200"));
    let saw = recorded
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .to_ascii_lowercase();
    assert!(saw.contains("x-forwarded-for: 127.0.0.1\r\n"), "{saw}");
    assert!(saw.contains("x-real-ip: 127.0.0.1\r\n"), "{saw}");
    assert!(
        !saw.contains("6.6.6.6") && !saw.contains("evil.example"),
        "{saw}"
    );
    drop(gw);

    // The same from a trusted proxy: its chain is kept and extended.
    let dir = TempDir::new("overwrite-trusted");
    let gw = start(
        &dir,
        "forwarded_headers = \"overwrite\"\ntrusted_proxies = [\"127.0.0.1\"]",
    );
    assert!(exchange(gw.addr, spoofed.as_bytes()).starts_with("HTTP/1.1 200"));
    let saw = recorded
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        saw.contains("x-forwarded-for: 6.6.6.6, 7.7.7.7, 127.0.0.1\r\n"),
        "{saw}"
    );
    assert!(saw.contains("forwarded: for=6.6.6.6"), "{saw}");
    drop(gw);

    // The default, append, keeps what the client sent and appends to it.
    let dir = TempDir::new("append");
    let gw = start(&dir, "");
    assert!(exchange(gw.addr, spoofed.as_bytes()).starts_with("HTTP/1.1 200"));
    let saw = recorded
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        saw.contains("x-forwarded-for: 6.6.6.6, 7.7.7.7, 127.0.0.1\r\n"),
        "{saw}"
    );
}

#[test]
fn a_token_less_admin_api_answers_only_to_local_host_names() {
    let pod = Backend::start("pod");
    let dir = TempDir::new("admin-host");
    let listen = listen_addr();
    let config = format!("{}{}", header(listen, ""), service_at("pod", pod.addr, ""));
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let admin = gw.admin.unwrap();
    for (host, status) in [
        ("127.0.0.1", 200),
        (&admin.to_string()[..], 200),
        ("localhost", 200),
        ("rebound.example", 403),
        ("rebound.example:9901", 403),
    ] {
        let r = HttpClient::new(admin)
            .request("GET", host, "/status", &[], "")
            .unwrap();
        assert_eq!(r.status, status, "Host: {host}: {}", r.body);
    }
    // An absolute-form target names its host too.
    let got = exchange(
        admin,
        b"GET http://rebound.example/status HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(got.starts_with("HTTP/1.1 403"), "{got}");
}

#[test]
fn an_http_1_0_client_gets_a_body_it_can_read() {
    let (upstream, _recorded) = recording_upstream(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nrec\r\n0\r\n\r\n",
    );
    let dir = TempDir::new("http10");
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
    let got = exchange(gw.addr, b"GET / HTTP/1.0\r\nHost: a\r\n\r\n");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        !got.to_ascii_lowercase().contains("transfer-encoding"),
        "{got}"
    );
    assert!(got.ends_with("\r\n\r\nrec"), "no chunk framing: {got}");
    // An HTTP/1.1 client still gets it chunked.
    let got = exchange(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(got.ends_with("3\r\nrec\r\n0\r\n\r\n"), "{got}");
}
