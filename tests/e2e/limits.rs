//! The client limits against the real binary, with raw sockets: a request
//! head too large (431) or too slow (408, however steadily it trickles), a
//! body too large (413), a body that stalls (408), and a cap on open
//! connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use fleetgate_e2e::config::{header, service_at};
use fleetgate_e2e::{exchange, Backend, Gateway, TempDir};

/// A gateway whose default backend is `pod`, with `limits` in `[gateway]`.
fn gateway(dir: &TempDir, pod: &Backend, limits: &str) -> Gateway {
    let listen = fleetgate_e2e::config::listen_addr();
    let config = format!(
        "{}{}",
        header(
            listen,
            &format!(
                "{limits}\ndefault_backend = {{ namespace = \"gateway-demo\", service = \"pod\", port = 80 }}"
            )
        ),
        service_at("pod", pod.addr, ""),
    );
    Gateway::start(&dir.write("gw.toml", &config), listen)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One metric's value from the admin API's `/metrics`.
fn metric(gw: &Gateway, line_start: &str) -> f64 {
    let text = gw.admin_get("/metrics", None).body;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
}

/// Waits until `/metrics` shows `want` open client connections.
fn wait_open(gw: &Gateway, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(gw, "fleetgate_client_connections ") != want {
        assert!(Instant::now() < deadline, "never {want} open connections");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn request_heads_are_bounded_in_size_and_time() {
    let pod = Backend::start("pod");
    let dir = TempDir::new("heads");
    let gw = gateway(
        &dir,
        &pod,
        "client_max_header_size = \"4k\"\nclient_header_timeout = \"1s\"",
    );
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(8000)
    );
    let got = exchange(gw.addr, big.as_bytes());
    assert!(got.starts_with("HTTP/1.1 431"), "{got}");
    assert!(got.contains("Connection: close"), "{got}");
    assert!(got.contains("Server: fleetgate"), "{got}");

    // Just under the limit passes, and each request on a kept connection is
    // counted from zero: three 3 KB heads in a row are all served.
    let fits = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Fits: {}\r\n\r\n",
        "b".repeat(3000)
    );
    let mut s = connect(gw.addr);
    for _ in 0..3 {
        s.write_all(fits.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    }
    // ... and the next too-large one on that same connection is refused.
    s.write_all(big.as_bytes()).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 431"), "{got}");

    // Empty lines before the request line do not end the head early (they
    // used to switch the guard off).
    let padded = format!("\r\n\r\n{big}");
    let got = exchange(gw.addr, padded.as_bytes());
    assert!(got.starts_with("HTTP/1.1 431"), "{got}");

    // Pipelined heads split anywhere across writes are each served (the
    // guard must not mistake the middle of one for a request line).
    let mut s = connect(gw.addr);
    let two = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    s.write_all(&two[..35]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(&two[35..]).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let got = String::from_utf8_lossy(&got);
    assert_eq!(got.matches("HTTP/1.1 200").count(), 2, "{got}");

    // A head that trickles one header every 200 ms would reset a per-read
    // timer for ever; the head deadline is total.
    let mut s = connect(gw.addr);
    let started = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
    let mut answer = Vec::new();
    for i in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        if s.write_all(format!("X-Drip-{i}: x\r\n").as_bytes())
            .is_err()
        {
            break;
        }
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 1024];
        if let Ok(n) = s.read(&mut buf) {
            answer.extend_from_slice(&buf[..n]);
            if n > 0 {
                break;
            }
        }
        s.set_nonblocking(false).unwrap();
    }
    s.set_nonblocking(false).unwrap();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused after the 1 s deadline, not kept: {:?}",
        started.elapsed()
    );
    // A client that connects and sends nothing is a slow head too.
    let got = exchange(gw.addr, b"");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    // A kept-alive connection idle between requests is not a slow head
    // (keepalive_timeout bounds that wait): it is served.
    let mut s = connect(gw.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(1500));
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));

    assert_eq!(
        metric(
            &gw,
            "fleetgate_client_refusals_total{reason=\"header_too_large\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &gw,
            "fleetgate_client_refusals_total{reason=\"header_timeout\"}"
        ),
        2.0
    );
}

#[test]
fn request_bodies_are_bounded_in_size_and_time() {
    let pod = Backend::start("pod");
    let dir = TempDir::new("bodies");
    let gw = gateway(
        &dir,
        &pod,
        "client_max_body_size = \"1k\"\nclient_body_timeout = \"1s\"",
    );
    // Declared too large: refused before a byte of it is read.
    let got = exchange(
        gw.addr,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n",
    );
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(got.contains("Connection: close"), "{got}");
    // Chunked, so only counting tells: refused once it passes 1 KiB.
    let chunk = format!("200\r\n{}\r\n", "c".repeat(0x200));
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{}0\r\n\r\n",
        chunk.repeat(4)
    );
    let got = exchange(gw.addr, chunked.as_bytes());
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    // Within the limit, both ways, the body goes through.
    let small = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n{}",
        "d".repeat(1024)
    );
    let got = exchange(gw.addr, small.as_bytes());
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let two_chunks = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}0\r\n\r\n",
        chunk.repeat(2)
    );
    let got = exchange(gw.addr, two_chunks.as_bytes());
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");

    // A body that stops coming: 408 after client_body_timeout.
    let started = Instant::now();
    let got = exchange(
        gw.addr,
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc",
    );
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // None of it was held against the endpoint.
    let services = gw.admin_json("/services");
    for pool in services["pools"].as_array().unwrap() {
        for e in pool["endpoints"].as_array().unwrap() {
            assert_eq!(e["consecutive_failures"], 0, "{pool}");
        }
    }
}

#[test]
fn connections_beyond_max_connections_are_closed_at_once() {
    let pod = Backend::start("pod");
    let dir = TempDir::new("connections");
    let gw = gateway(&dir, &pod, "max_connections = 20");
    wait_open(&gw, 0.0);
    let mut held: Vec<TcpStream> = (0..20).map(|_| connect(gw.addr)).collect();
    wait_open(&gw, 20.0);
    // The 21st is closed without an answer.
    let mut extra = connect(gw.addr);
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut got = Vec::new();
    let started = Instant::now();
    let _ = extra.read_to_end(&mut got);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        metric(
            &gw,
            "fleetgate_client_refusals_total{reason=\"max_connections\"}"
        ) >= 1.0
    );
    // The held ones are served, and a place that frees up is taken again.
    held[0]
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = held[0].read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    held.truncate(10);
    wait_open(&gw, 10.0);
    let got = exchange(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

/// An upstream that reports each request head it receives on the first
/// channel and answers 200 only when a token arrives on the second.
fn held_upstream() -> (
    SocketAddr,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let (arrived_tx, arrived_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Arc::new(std::sync::Mutex::new(release_rx));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let arrived = arrived_tx.clone();
            let release = std::sync::Arc::clone(&release_rx);
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = arrived.send(());
                if release.lock().unwrap().recv().is_ok() {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nheld",
                    );
                }
            });
        }
    });
    (addr, arrived_rx, release_tx)
}

#[test]
fn requests_beyond_max_requests_per_endpoint_wait_for_a_place_then_get_503() {
    let (upstream, arrived, release) = held_upstream();
    let dir = TempDir::new("per-endpoint");
    let listen = fleetgate_e2e::config::listen_addr();
    let ingress = fleetgate_e2e::config::host_ingress("q", "q.test", "q", None, &[])
        + &fleetgate_e2e::config::host_ingress("o", "o.test", "o", None, &[]);
    let config = format!(
        "{}{}{}{}",
        header(listen, ""),
        service_at(
            "q",
            upstream,
            "max_requests_per_endpoint = 2\nqueue_timeout = \"10s\""
        ),
        service_at(
            "o",
            upstream,
            "max_requests_per_endpoint = 2\nqueue_timeout = \"200ms\""
        ),
        fleetgate_e2e::config::manifests(&[dir.write("m.yaml", &ingress)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let send = |host: &'static str| {
        let addr = gw.addr;
        std::thread::spawn(move || {
            exchange(
                addr,
                format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
            )
        })
    };
    // Two requests take the endpoint's two places; a third waits.
    let first: Vec<_> = (0..2).map(|_| send("q.test")).collect();
    for _ in 0..2 {
        arrived
            .recv_timeout(Duration::from_secs(5))
            .expect("a request arrived");
    }
    let third = send("q.test");
    assert!(
        arrived.recv_timeout(Duration::from_millis(300)).is_err(),
        "a third request reached an endpoint that has two in flight"
    );
    // Another Service on the same address counts the same places: with a
    // short queue it gets 503 rather than wait.
    let got = exchange(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: o.test\r\nConnection: close\r\n\r\n",
    );
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    assert!(got.ends_with("at its request limit\n"), "{got}");
    // A place frees up: the waiting request goes through.
    release.send(()).unwrap();
    arrived
        .recv_timeout(Duration::from_secs(5))
        .expect("the waiting request arrived once a place was free");
    release.send(()).unwrap();
    release.send(()).unwrap();
    for t in first.into_iter().chain([third]) {
        let got = t.join().unwrap();
        assert!(
            got.starts_with("HTTP/1.1 200") && got.ends_with("held"),
            "{got}"
        );
    }
    assert_eq!(metric(&gw, "fleetgate_upstream_overflows_total "), 1.0);
}

#[test]
fn with_h2c_on_short_and_silent_http1_clients_are_answered() {
    let pod = Backend::start("pod");
    let dir = TempDir::new("h2c-short");
    let gw = gateway(&dir, &pod, "h2c = true\nclient_header_timeout = \"1s\"");
    // 18 bytes, shorter than the HTTP/2 preface the gateway looks for: it
    // used to wait for the rest of a preface that never comes.
    let got = exchange(gw.addr, b"GET / HTTP/1.0\r\n\r\n");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // A few bytes, then nothing: the head deadline ends the wait.
    let got = exchange(gw.addr, b"GET");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    let got = exchange(gw.addr, b"");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
}
