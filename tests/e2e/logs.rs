//! End to end: the access log as an operator reads it. JSON lines with
//! every field, the request id sent upstream, responses the gateway wrote
//! itself (also those Pingora writes before any hook runs) logged and
//! counted, TLS version and server name, and a reload that moves the log
//! and changes the admin token.

use std::time::{Duration, Instant};

use fleetgate_e2e::client::exchange;
use fleetgate_e2e::config::{header, header_with_admin, listen_addr, manifests, seed, service};
use fleetgate_e2e::tls::{curl_https, TestCert};
use fleetgate_e2e::{free_port, Backend, Gateway, HttpClient, TempDir};
use serde_json::Value;

/// The JSON lines of `path`, once at least `n` are there (the log is
/// written off the request path); panics after 5 s.
fn json_lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
        }
        assert!(Instant::now() < deadline, "fewer than {n} lines:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The value of a Prometheus sample `name{labels}` in `text` (0 if none).
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[test]
fn json_lines_carry_every_field_and_the_gateways_own_responses_are_logged_and_counted() {
    let c1 = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let admin = free_port();
    let dir = TempDir::new("json-log");
    let access = dir.path().join("access.log");
    let config = format!(
        "{}{}{}[log]\naccess = \"{}\"\nformat = \"json\"\n",
        header_with_admin(listen, admin, ""),
        service("service1", 80, &[("c7fb82a1", &c1)], ""),
        manifests(&[seed("ingress-demo.yaml")]),
        access.display()
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let mut c = HttpClient::new(gw.addr);
    let r = c
        .request(
            "GET",
            "example.com",
            "/svc1?a=b",
            &[
                ("User-Agent", "test-agent/1.0 (e2e)"),
                ("Referer", "https://from.example/page"),
                ("X-Request-Id", "chosen-by-the-client"),
                ("traceparent", TRACEPARENT),
            ],
            "",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    // An untrusted client's id is replaced, once; traceparent passes.
    let id = r.header("x-echo-request-id").unwrap().to_string();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(r.header("x-echo-traceparent"), Some(TRACEPARENT));
    let r = c
        .request("POST", "example.com", "/svc1", &[], "hello")
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(c.get("example.com", "/missing").unwrap().status, 404);
    // Refused before the gateway's hooks: by Pingora (a header line
    // without a colon, CONNECT, an HTTP/2 preface without h2c) and by the
    // connection guard (a control byte in the target).
    for (request, status) in [
        (
            &b"GET /bad HTTP/1.1\r\nHost: example.com\r\nno colon\r\n\r\n"[..],
            "400",
        ),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            "405",
        ),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "400"),
        (b"GET /a\x01b HTTP/1.1\r\nHost: example.com\r\n\r\n", "400"),
    ] {
        let answer = exchange(gw.addr, request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{}: {answer}",
            String::from_utf8_lossy(request)
        );
    }
    // The readiness probe's 404, 3 requests, 4 refusals.
    let lines = json_lines(&access, 8);
    assert_eq!(lines.len(), 8, "{lines:#?}");
    let get = lines
        .iter()
        .find(|l| l["path"] == "/svc1?a=b")
        .expect("the GET");
    for (key, want) in [
        ("host", "example.com"),
        ("method", "GET"),
        ("protocol", "HTTP/1.1"),
        ("ingress", "gateway-demo/web-demo"),
        ("service", "gateway-demo/service1:80"),
        ("cluster", "c7fb82a1"),
        ("target", "main"),
        ("source", "upstream"),
        ("user_agent", "test-agent/1.0 (e2e)"),
        ("referer", "https://from.example/page"),
        ("request_id", id.as_str()),
    ] {
        assert_eq!(get[key], want, "{key} in {get}");
    }
    assert_eq!(get["status"], 200, "{get}");
    assert_eq!(get["bytes"], 14, "{get}");
    assert_eq!(get["retries"], 0, "{get}");
    assert!(
        get["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{get}"
    );
    assert!(get["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(get["endpoint"], c1.addr.to_string().as_str(), "{get}");
    for key in ["duration_ms", "upstream_connect_ms", "upstream_response_ms"] {
        assert!(
            get[key].as_f64().is_some_and(|v| v >= 0.0),
            "{key} in {get}"
        );
    }
    assert!(
        get["tls_version"].is_null() && get["sni"].is_null(),
        "{get}"
    );
    let post = lines.iter().find(|l| l["method"] == "POST").unwrap();
    assert_eq!(post["bytes_in"], 5, "{post}");
    let missing = lines.iter().find(|l| l["path"] == "/missing").unwrap();
    assert_eq!(missing["status"], 404, "{missing}");
    assert_eq!(missing["source"], "gateway", "{missing}");
    assert!(missing["target"].is_null(), "{missing}");
    assert_eq!(missing["request_id"].as_str().map(str::len), Some(32));
    for (method, path, status) in [
        ("GET", "/bad", 400),
        ("CONNECT", "example.com:443", 405),
        ("PRI", "*", 400),
        ("GET", "/a", 400),
    ] {
        let line = lines
            .iter()
            .find(|l| l["method"] == method && l["path"] == path)
            .unwrap_or_else(|| panic!("no line for {method} {path}: {lines:#?}"));
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["source"], "gateway", "{line}");
        assert!(line["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
    let metrics = gw.admin_get("/metrics", None).body;
    assert_eq!(
        sample(&metrics, "fleetgate_gateway_responses_total{code=\"400\"}"),
        3.0,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "fleetgate_gateway_responses_total{code=\"405\"}"),
        1.0
    );
    assert_eq!(
        sample(&metrics, "fleetgate_gateway_responses_total{code=\"404\"}"),
        2.0
    );
    assert_eq!(
        sample(&metrics, "fleetgate_request_duration_seconds_count"),
        4.0
    );
    assert_eq!(sample(&metrics, "fleetgate_access_log_dropped_total"), 0.0);
    assert!(metrics.contains("fleetgate_access_log_dropped_total"));
}

/// A refusal on a connection that served a request before is not logged
/// with that request's line.
#[test]
fn a_refusal_after_a_request_on_one_connection_does_not_borrow_its_line() {
    let c1 = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let dir = TempDir::new("refusal-line");
    let access = dir.path().join("access.log");
    let config = format!(
        "{}{}{}[log]\naccess = \"{}\"\nformat = \"json\"\n",
        header(listen, ""),
        service("service1", 80, &[("c7fb82a1", &c1)], ""),
        manifests(&[seed("ingress-demo.yaml")]),
        access.display()
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let answer = exchange(
        gw.addr,
        b"GET /svc1 HTTP/1.1\r\nHost: example.com\r\n\r\n\x01garbage\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("HTTP/1.1 400 "), "{answer}");
    // The readiness probe's 404, the GET, the refusal.
    let lines = json_lines(&access, 3);
    let refusal = lines.iter().find(|l| l["status"] == 400).expect("the 400");
    assert!(
        refusal["method"].is_null() && refusal["path"].is_null(),
        "{refusal}"
    );
    assert_eq!(refusal["source"], "gateway");
}

#[test]
fn a_trusted_proxy_keeps_its_request_id_and_a_reload_can_turn_ids_off() {
    let c1 = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let admin = free_port();
    let dir = TempDir::new("request-id");
    let body = format!(
        "{}{}",
        service("service1", 80, &[("c7fb82a1", &c1)], ""),
        manifests(&[seed("ingress-demo.yaml")])
    );
    let trusted = "trusted_proxies = [\"127.0.0.1\"]";
    let path = dir.write(
        "gw.toml",
        &format!("{}{body}", header_with_admin(listen, admin, trusted)),
    );
    let gw = Gateway::start(&path, listen);
    let echo = |id: Option<&str>| {
        let headers: Vec<(&str, &str)> = id.iter().map(|v| ("X-Request-Id", *v)).collect();
        let r = HttpClient::new(gw.addr)
            .request("GET", "example.com", "/svc1", &headers, "")
            .unwrap();
        r.header("x-echo-request-id").unwrap_or("").to_string()
    };
    assert_eq!(echo(Some("from-the-proxy-42")), "from-the-proxy-42");
    // Unusable ids are replaced even from a trusted proxy.
    assert_eq!(echo(Some("has space")).len(), 32);
    assert_eq!(echo(None).len(), 32);
    let off = format!("{trusted}\nrequest_id = false");
    std::fs::write(
        &path,
        format!("{}{body}", header_with_admin(listen, admin, &off)),
    )
    .unwrap();
    gw.signal("HUP");
    gw.wait_generation(2);
    assert_eq!(echo(None), "", "no id is made up");
    assert_eq!(echo(Some("passes-through")), "passes-through");
}

#[test]
fn tls_version_and_server_name_are_logged() {
    let app = Backend::start("app");
    let dir = TempDir::new("tls-log");
    let cert = TestCert::new(&dir, "app", &["app.test"]);
    let (listen, tls_port) = (listen_addr(), free_port());
    let access = dir.path().join("access.log");
    let ingress = "\n[[ingress]]\nnamespace = \"gateway-demo\"\nname = \"app\"\nclass = \"mse\"\nrules = [{ host = \"app.test\", paths = [{ path = \"/\", type = \"Prefix\", service = \"app\", port = 80 }] }]\n";
    let config = format!(
        "{}{}\n[[certificate]]\nhosts = [\"app.test\"]\ncert = \"{}\"\nkey = \"{}\"\n{ingress}\n[log]\naccess = \"{}\"\nformat = \"json\"\n",
        header(listen, &format!("listen_tls = [\"127.0.0.1:{tls_port}\"]")),
        service("app", 80, &[("c7fb82a1", &app)], ""),
        cert.cert_file.display(),
        cert.key_file.display(),
        access.display()
    );
    let _gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    for (version, flags) in [("TLSv1.3", "--tlsv1.3"), ("TLSv1.2", "--tls-max")] {
        let mut args = vec![flags];
        if flags == "--tls-max" {
            args.push("1.2");
        }
        let r = curl_https("app.test", tls_port, "/x", &cert.cert_file, &args);
        assert_eq!(r.status, 200, "{version}: {r:?}");
    }
    let lines = json_lines(&access, 3);
    let tls: Vec<_> = lines.iter().filter(|l| l["path"] == "/x").collect();
    assert_eq!(tls.len(), 2, "{lines:#?}");
    assert_eq!(tls[0]["tls_version"], "TLSv1.3", "{}", tls[0]);
    assert_eq!(tls[1]["tls_version"], "TLSv1.2", "{}", tls[1]);
    for line in tls {
        assert_eq!(line["sni"], "app.test", "{line}");
        assert!(
            line["host"].as_str().unwrap().starts_with("app.test"),
            "{line}"
        );
    }
}

#[test]
fn a_reload_applies_the_admin_token_and_the_log_path_and_format() {
    let c1 = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let admin = free_port();
    let dir = TempDir::new("reload-log");
    let (first, second) = (dir.path().join("first.log"), dir.path().join("second.log"));
    let config = |token: &str, log: &std::path::Path, format: &str| {
        let head = header_with_admin(listen, admin, "").replacen(
            &format!("listen = \"127.0.0.1:{admin}\"\n"),
            &format!("listen = \"127.0.0.1:{admin}\"\ntoken = \"{token}\"\n"),
            1,
        );
        format!(
            "{head}{}{}[log]\naccess = \"{}\"\nformat = \"{format}\"\n",
            service("service1", 80, &[("c7fb82a1", &c1)], ""),
            manifests(&[seed("ingress-demo.yaml")]),
            log.display()
        )
    };
    let (old, new) = ("old-token-0123456789abcdef", "new-token-0123456789abcdef");
    let path = dir.write("gw.toml", &config(old, &first, "text"));
    let gw = Gateway::start(&path, listen);
    let get = || {
        HttpClient::new(gw.addr)
            .get("example.com", "/svc1")
            .unwrap()
    };
    assert_eq!(get().status, 200);
    assert_eq!(gw.admin_get("/status", Some(old)).status, 200);

    std::fs::write(&path, config(new, &second, "json")).unwrap();
    gw.signal("HUP");
    gw.wait_status(Some(new), "generation 2", |s| {
        s["generation"].as_u64() >= Some(2)
    });
    assert_eq!(gw.admin_get("/status", Some(old)).status, 401);
    assert_eq!(get().status, 200);
    let lines = json_lines(&second, 1);
    assert_eq!(lines[0]["path"], "/svc1", "{lines:#?}");
    let before = std::fs::read_to_string(&first).unwrap();
    assert!(
        before.lines().all(|l| l.contains(" client=")),
        "text lines only: {before}"
    );

    // A log that cannot be opened rejects the whole reload.
    let nowhere = dir.path().join("no-such-dir").join("x.log");
    std::fs::write(
        &path,
        config("third-token-0123456789abcd", &nowhere, "text"),
    )
    .unwrap();
    gw.signal("HUP");
    let status = gw.wait_status(Some(new), "a rejected reload", |s| {
        s["generation"].as_u64() >= Some(2) && s["last_reload"]["ok"] == false
    });
    let message = status["last_reload"]["message"].as_str().unwrap();
    assert!(
        message.contains("[log] access: cannot open") && message.contains("no-such-dir"),
        "{message}"
    );
    assert_eq!(status["generation"], 2, "{status}");
    assert_eq!(get().status, 200);
    assert_eq!(
        json_lines(&second, 2).len(),
        2,
        "still the second log, in JSON"
    );
    assert_eq!(std::fs::read_to_string(&first).unwrap(), before);
}
