//! TLS at the edge: certificates from Secrets and files chosen by SNI,
//! HTTP/2 by ALPN and h2c, HTTPS redirects that cannot loop, and
//! certificate reloads, all against the real binary with curl, openssl and
//! a Python HTTP/2 client.

use std::process::Command;
use std::time::Duration;

use fleetgate_e2e::config::{header, host_ingress as ingress, listen_addr, manifests, service};
use fleetgate_e2e::python::python_client;
use fleetgate_e2e::tls::{curl, curl_https, handshake, TestCert};
use fleetgate_e2e::{bin_path, free_port, Backend, Gateway, HttpClient, TempDir};

/// A `[[certificate]]` table for `cert`.
fn certificate_table(cert: &TestCert, hosts: &[&str]) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    format!(
        "\n[[certificate]]\nhosts = [{}]\ncert = \"{}\"\nkey = \"{}\"\n",
        hosts.join(", "),
        cert.cert_file.display(),
        cert.key_file.display()
    )
}

/// `default_certificate = {...}` for `[gateway]`.
fn default_certificate(cert: &TestCert) -> String {
    format!(
        "default_certificate = {{ cert = \"{}\", key = \"{}\" }}",
        cert.cert_file.display(),
        cert.key_file.display()
    )
}

/// Runs `fleetgate check` on `config`.
fn check(config: &std::path::Path) -> (i32, String) {
    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(config)
        .output()
        .expect("run fleetgate check");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn each_host_gets_its_certificate_and_other_names_the_default() {
    let app = Backend::start("app");
    let dir = TempDir::new("tls-sni");
    let foo = TestCert::new(&dir, "foo", &["foo.bar.com"]);
    let other = TestCert::new(&dir, "other", &["other.test"]);
    let fallback = TestCert::new(&dir, "default", &["default.test"]);
    let yaml = [
        foo.secret_yaml("gateway-demo", "foo-tls"),
        ingress("foo", "foo.bar.com", "app", Some("foo-tls"), &[]),
        ingress("other", "other.test", "app", None, &[]),
    ]
    .concat();
    let (listen, tls_port) = (listen_addr(), free_port());
    let config = format!(
        "{}{}{}{}",
        header(
            listen,
            &format!(
                "listen_tls = [\"127.0.0.1:{tls_port}\"]\n{}",
                default_certificate(&fallback)
            )
        ),
        service("app", 80, &[("c7fb82a1", &app)], ""),
        manifests(&[dir.write("m.yaml", &yaml)]),
        certificate_table(&other, &["other.test"]),
    );
    let config = dir.write("gw.toml", &config);
    let (code, out) = check(&config);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("certificate: foo.bar.com <- Secret gateway-demo/foo-tls (expires"),
        "{out}"
    );
    assert!(
        out.contains("certificate: other.test <- certificate"),
        "{out}"
    );
    assert!(out.contains("certificate: (default"), "{out}");

    let gw = Gateway::start(&config, listen);
    let status: serde_json::Value =
        serde_json::from_str(&gw.admin_get("/status", None).body).expect("status JSON");
    assert_eq!(status["listeners_tls"][0], format!("127.0.0.1:{tls_port}"));
    let hosts: Vec<&str> = status["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .filter_map(|c| c["host"].as_str())
        .collect();
    assert_eq!(
        hosts,
        ["other.test", "foo.bar.com", "(default)"],
        "{status}"
    );
    assert_eq!(
        status["certificates"][1]["source"], "Secret gateway-demo/foo-tls",
        "{status}"
    );
    // Each client trusts exactly one certificate: success proves which
    // certificate the gateway presented for that name.
    let r = curl_https("foo.bar.com", tls_port, "/a", &foo.cert_file, &[]);
    assert_eq!(
        (r.code, r.status, r.body.as_str()),
        (0, 200, "app"),
        "{r:?}"
    );
    let r = curl_https("other.test", tls_port, "/a", &other.cert_file, &[]);
    assert_eq!(
        (r.code, r.status, r.body.as_str()),
        (0, 200, "app"),
        "{r:?}"
    );
    let r = curl_https("foo.bar.com", tls_port, "/a", &other.cert_file, &[]);
    assert_eq!(
        r.code, 60,
        "foo.bar.com must not get other.test's certificate: {r:?}"
    );

    let tls = format!("127.0.0.1:{tls_port}").parse().unwrap();
    for sni in [Some("unknown.test"), Some("a.foo.bar.com"), None] {
        let h = handshake(tls, sni, &[]);
        assert!(h.completed, "{sni:?}: {}", h.output);
        assert!(
            h.subject
                .as_deref()
                .is_some_and(|s| s.contains("default.test")),
            "{sni:?} must get the default certificate: {:?}",
            h.subject
        );
    }
    // TLS 1.1 and older are refused by the server (the client is allowed
    // to offer them).
    let h = handshake(
        tls,
        Some("foo.bar.com"),
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
    );
    assert!(!h.completed, "{}", h.output);
    // The server's alert (rustls answers handshake_failure, 40).
    assert!(
        h.output.contains("SSL alert number 40") || h.output.contains("SSL alert number 70"),
        "{}",
        h.output
    );
}

#[test]
fn without_a_default_an_unknown_name_fails_the_handshake() {
    let app = Backend::start("app");
    let dir = TempDir::new("tls-nodefault");
    let foo = TestCert::new(&dir, "foo", &["foo.bar.com", "*.wild.test"]);
    let (listen, tls_port) = (listen_addr(), free_port());
    let config = format!(
        "{}{}{}",
        header(listen, &format!("listen_tls = [\"127.0.0.1:{tls_port}\"]")),
        service("app", 80, &[("c7fb82a1", &app)], ""),
        certificate_table(&foo, &["foo.bar.com", "*.wild.test"]),
    );
    let _gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let tls = format!("127.0.0.1:{tls_port}").parse().unwrap();
    for sni in [Some("a.wild.test"), Some("FOO.bar.com")] {
        let h = handshake(tls, sni, &[]);
        assert!(h.completed, "{sni:?}: {}", h.output);
    }
    for sni in [
        Some("unknown.test"),
        Some("a.b.wild.test"),
        Some("wild.test"),
        None,
    ] {
        let h = handshake(tls, sni, &[]);
        assert!(!h.completed, "{sni:?} must fail: {}", h.output);
        assert!(h.output.contains("alert"), "{sni:?}: {}", h.output);
        assert!(h.subject.is_none(), "no certificate for {sni:?}");
    }
}

#[test]
fn bad_certificates_are_config_errors_with_their_place() {
    let dir = TempDir::new("tls-errors");
    let good = TestCert::new(&dir, "good", &["good.test"]);
    let other = TestCert::new(&dir, "other", &["other.test"]);
    let mismatched = TestCert {
        key: other.key.clone(),
        cert: good.cert.clone(),
        cert_file: good.cert_file.clone(),
        key_file: other.key_file.clone(),
    };
    let garbage = TestCert {
        cert: "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n".into(),
        ..TestCert::new(&dir, "garbage", &["garbage.test"])
    };
    let opaque = "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: opaque\n  namespace: gateway-demo\ntype: Opaque\nstringData:\n  tls.crt: x\n";
    let yaml = [
        ingress("missing", "a.test", "app", Some("nope"), &[]),
        opaque.to_string(),
        ingress("wrong-type", "b.test", "app", Some("opaque"), &[]),
        mismatched.secret_yaml("gateway-demo", "mismatched"),
        ingress("mismatch", "c.test", "app", Some("mismatched"), &[]),
        garbage.secret_yaml("gateway-demo", "garbage"),
        ingress("garbage", "d.test", "app", Some("garbage"), &[]),
    ]
    .concat();
    let listen = listen_addr();
    let config = format!(
        "{}{}\n[[certificate]]\ncert = \"missing.pem\"\nkey = \"missing.key\"\n",
        header(listen, ""),
        manifests(&[dir.write("m.yaml", &yaml)]),
    );
    let (code, out) = check(&dir.write("gw.toml", &config));
    assert_eq!(code, 1, "{out}");
    let m = dir.path().join("m.yaml").display().to_string();
    for expected in [
        format!("{m}:2:1: Ingress gateway-demo/missing: spec.tls[0].secretName: Secret gateway-demo/nope is not in any manifest file"),
        format!("{m}:20:1: Secret gateway-demo/opaque: type: type is \"Opaque\", not kubernetes.io/tls"),
        "Secret gateway-demo/mismatched: data[\"tls.key\"]: the private key does not match the certificate".to_string(),
        "Secret gateway-demo/garbage: data[\"tls.crt\"]: malformed PEM in the certificate".to_string(),
        "certificate[0].cert: cannot read".to_string(),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }

    // Dates and coverage only warn.
    let expired = TestCert::expired(&dir, "expired", &["old.test"]);
    let config = format!(
        "{}{}",
        header(listen, ""),
        certificate_table(&expired, &["old.test", "new.test"]),
    );
    let (code, out) = check(&dir.write("warn.toml", &config));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the certificate expired on Jan  1 00:00:00 2020"),
        "{out}"
    );
    assert!(
        out.contains("the certificate does not cover host new.test (it names old.test)"),
        "{out}"
    );
}

#[test]
fn http2_by_alpn_and_h2c_route_like_http1() {
    let main = Backend::start("main");
    let canary = Backend::start("canary");
    let other = Backend::start("other");
    let dir = TempDir::new("tls-h2");
    let foo = TestCert::new(&dir, "foo", &["foo.bar.com", "other.test"]);
    let canary_ingress = ingress(
        "foo-canary",
        "foo.bar.com",
        "canary",
        None,
        &["canary: \"true\"", "canary-by-header: x-canary"],
    );
    let yaml = [
        ingress("foo", "foo.bar.com", "main", None, &[]),
        canary_ingress,
        ingress("other", "other.test", "other", None, &[]),
    ]
    .concat();
    let (listen, tls_port) = (listen_addr(), free_port());
    let config = format!(
        "{}{}{}{}{}{}",
        header(
            listen,
            &format!("listen_tls = [\"127.0.0.1:{tls_port}\"]\nh2c = true")
        ),
        service("main", 80, &[("c7fb82a1", &main)], ""),
        service("canary", 80, &[("c7fb82a1", &canary)], ""),
        service("other", 80, &[("cd3007b2", &other)], ""),
        manifests(&[dir.write("m.yaml", &yaml)]),
        certificate_table(&foo, &["foo.bar.com", "other.test"]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);

    let r = curl_https("foo.bar.com", tls_port, "/", &foo.cert_file, &["--http2"]);
    assert_eq!(
        (r.status, r.http_version.as_str(), r.body.as_str()),
        (200, "2", "main"),
        "{r:?}"
    );
    let r = curl_https("foo.bar.com", tls_port, "/", &foo.cert_file, &["--http1.1"]);
    assert_eq!((r.status, r.http_version.as_str()), (200, "1.1"), "{r:?}");
    let plain = format!("http://{}/", gw.addr);
    let r = curl(
        &plain,
        &["--http2-prior-knowledge", "-H", "Host: other.test"],
    );
    assert_eq!(
        (r.status, r.http_version.as_str(), r.body.as_str()),
        (200, "2", "other"),
        "{r:?}"
    );
    // HTTP/1.1 still works on an h2c listener.
    let mut c = HttpClient::new(gw.addr);
    assert_eq!(c.get("other.test", "/").unwrap().body, "other");

    // 100 concurrent streams on one connection, over TLS and over h2c.
    let port = tls_port.to_string();
    let h2c_port = gw.addr.port().to_string();
    for (connect, tls) in [(&port, true), (&h2c_port, false)] {
        let target = format!("127.0.0.1:{connect}");
        let mut args = vec!["--connect", &target, "--streams", "100"];
        if tls {
            args.extend(["--tls", "--sni", "foo.bar.com"]);
        }
        args.extend([
            "--request",
            "foo.bar.com",
            "/x",
            "--request",
            "other.test",
            "/y",
        ]);
        for (canary_header, expect_foo) in [(false, "main"), (true, "canary")] {
            let mut args = args.clone();
            if canary_header {
                args.extend(["--header", "x-canary", "always"]);
            }
            let out = python_client("h2_client.py", &args);
            assert_eq!(out["errors"], serde_json::json!([]), "{out}");
            let responses = out["responses"].as_array().unwrap();
            assert_eq!(responses.len(), 100, "{out}");
            for r in responses {
                let expected = if r["authority"] == "foo.bar.com" {
                    expect_foo
                } else {
                    "other"
                };
                assert_eq!(r["status"], 200, "{r}");
                assert_eq!(r["body"], expected, "tls={tls} canary={canary_header}: {r}");
            }
            if tls {
                assert_eq!(out["alpn"], "h2");
            }
        }
    }
}

#[test]
fn https_redirects_need_somewhere_to_go_and_trust_only_trusted_proxies() {
    let app = Backend::start("app");
    let dir = TempDir::new("tls-redirect");
    let cert = TestCert::new(
        &dir,
        "cert",
        &["plain.test", "secure.test", "forced.test", "optout.test"],
    );
    let yaml = [
        cert.secret_yaml("gateway-demo", "cert"),
        ingress("tls-only", "plain.test", "app", Some("cert"), &[]),
        ingress(
            "redirect",
            "secure.test",
            "app",
            Some("cert"),
            &["ssl-redirect: \"true\""],
        ),
        ingress(
            "forced",
            "forced.test",
            "app",
            None,
            &["force-ssl-redirect: \"true\""],
        ),
        ingress(
            "optout",
            "optout.test",
            "app",
            Some("cert"),
            &["ssl-redirect: \"false\""],
        ),
    ]
    .concat();
    let m = dir.write("m.yaml", &yaml);
    let start = |extra: &str, tls: bool| {
        let listen = listen_addr();
        let tls_port = free_port();
        let mut gateway = extra.to_string();
        if tls {
            gateway.push_str(&format!("\nlisten_tls = [\"127.0.0.1:{tls_port}\"]"));
        }
        let config = format!(
            "{}{}{}",
            header(listen, &gateway),
            service("app", 80, &[("c7fb82a1", &app)], ""),
            manifests(std::slice::from_ref(&m)),
        );
        let file = dir.write(&format!("gw-{}.toml", listen.port()), &config);
        (Gateway::start(&file, listen), tls_port)
    };
    let get = |gw: &Gateway, host: &str, headers: &[(&str, &str)]| {
        HttpClient::new(gw.addr)
            .request("GET", host, "/a/b?c=1", headers, "")
            .unwrap()
    };

    // No TLS listener and nobody in front: there is no HTTPS to go to.
    let (gw, _) = start("", false);
    for host in ["plain.test", "secure.test", "forced.test"] {
        assert_eq!(get(&gw, host, &[]).status, 200, "{host}");
    }
    drop(gw);

    // A TLS listener: annotated hosts redirect plain HTTP, whatever an
    // untrusted client claims.
    let (gw, tls_port) = start("", true);
    assert_eq!(get(&gw, "plain.test", &[]).status, 200);
    for claim in [&[][..], &[("X-Forwarded-Proto", "https")][..]] {
        let r = get(&gw, "secure.test:8080", claim);
        assert_eq!(r.status, 308, "{claim:?}: {r:?}");
        // The TLS listener's port, not the request's.
        assert_eq!(
            r.header("location"),
            Some(format!("https://secure.test:{tls_port}/a/b?c=1").as_str())
        );
    }
    // No certificate here covers forced.test: a redirect would end in a
    // failed handshake, so it is served.
    assert_eq!(get(&gw, "forced.test", &[]).status, 200);
    // Over HTTPS the same route serves, and says so upstream whatever the
    // client claims.
    let r = curl_https(
        "secure.test",
        tls_port,
        "/",
        &cert.cert_file,
        &["-i", "-H", "X-Forwarded-Proto: http"],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body
            .to_ascii_lowercase()
            .contains("x-echo-forwarded-proto: https"),
        "{r:?}"
    );
    drop(gw);

    // Behind a trusted proxy (loopback here) that terminates TLS.
    let (gw, _) = start("trusted_proxies = [\"127.0.0.0/8\"]", false);
    let r = get(&gw, "secure.test", &[("X-Forwarded-Proto", "https")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-echo-forwarded-proto"), Some("https"));
    for host in ["secure.test", "forced.test"] {
        // A comma-separated chain: the last value is the trusted proxy's.
        let r = get(&gw, host, &[("X-Forwarded-Proto", "https, http")]);
        assert_eq!(r.status, 308, "{host}: {r:?}");
        assert_eq!(
            r.header("location"),
            Some(format!("https://{host}/a/b?c=1").as_str()),
            "the proxy in front listens on 443"
        );
    }
    assert_eq!(
        get(&gw, "secure.test", &[]).status,
        200,
        "no claim, no TLS listener"
    );
    drop(gw);

    // ingress-nginx's default: every spec.tls host redirects unless opted out.
    let (gw, _) = start("ssl_redirect_default = true", true);
    assert_eq!(get(&gw, "plain.test", &[]).status, 308);
    assert_eq!(get(&gw, "optout.test", &[]).status, 200);
}

#[test]
fn certificates_reload_under_load_without_dropping_connections() {
    let app = Backend::start("app");
    let dir = TempDir::new("tls-reload");
    let old = TestCert::new(&dir, "old", &["foo.bar.com"]);
    let new = TestCert::new(&dir, "new", &["foo.bar.com"]);
    let both = dir.write("both.crt", &format!("{}{}", old.cert, new.cert));
    let yaml = |cert: &TestCert| {
        [
            cert.secret_yaml("gateway-demo", "foo-tls"),
            ingress("foo", "foo.bar.com", "app", Some("foo-tls"), &[]),
        ]
        .concat()
    };
    let m = dir.write("m.yaml", &yaml(&old));
    let (listen, tls_port) = (listen_addr(), free_port());
    let config = format!(
        "{}{}{}",
        header(listen, &format!("listen_tls = [\"127.0.0.1:{tls_port}\"]")),
        service("app", 80, &[("c7fb82a1", &app)], ""),
        manifests(std::slice::from_ref(&m)),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);

    // One keep-alive connection making 12 requests over ~3 s, and a loop of
    // new handshakes, while the Secret is replaced and reloaded.
    let url = format!("https://foo.bar.com:{tls_port}/");
    let resolve = format!("foo.bar.com:{tls_port}:127.0.0.1");
    let ca = both.display().to_string();
    let kept = {
        let (url, resolve, ca) = (url.clone(), resolve.clone(), ca.clone());
        std::thread::spawn(move || {
            let mut args = vec![
                "-sS".to_string(),
                "--rate".into(),
                "4/s".into(),
                "--resolve".into(),
                resolve,
                "--cacert".into(),
                ca,
                "-w".into(),
                " %{http_code}/%{num_connects}\n".into(),
            ];
            args.extend(std::iter::repeat_n(url, 12));
            Command::new("curl").args(&args).output().expect("curl")
        })
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fresh = {
        let stop = std::sync::Arc::clone(&stop);
        let ca = both.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = curl_https("foo.bar.com", tls_port, "/", &ca, &[]);
                if r.status == 200 {
                    ok += 1;
                } else {
                    failed.push(r);
                }
            }
            (ok, failed)
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    std::fs::write(&m, yaml(&new)).unwrap();
    gw.signal("HUP");
    gw.wait_generation(2);
    // New handshakes get the new certificate.
    let r = curl_https("foo.bar.com", tls_port, "/", &new.cert_file, &[]);
    assert_eq!((r.code, r.status), (0, 200), "{r:?}\n{}", gw.log_text());
    let r = curl_https("foo.bar.com", tls_port, "/", &old.cert_file, &[]);
    assert_eq!(r.code, 60, "the old certificate must be gone: {r:?}");
    let kept = kept.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = fresh.join().unwrap();
    assert!(failed.is_empty(), "{ok} ok, failed: {failed:?}");
    assert!(ok > 0);
    let lines = String::from_utf8_lossy(&kept.stdout).to_string();
    let answers: Vec<&str> = lines
        .split_whitespace()
        .filter(|w| w.contains('/'))
        .collect();
    assert_eq!(answers.len(), 12, "{lines}");
    assert_eq!(answers[0], "200/1", "{lines}");
    assert!(
        answers[1..].iter().all(|a| *a == "200/0"),
        "every request on the one connection, none failed: {lines}"
    );
    println!("certificate reload: {ok} new handshakes and 12 keep-alive requests, 0 failed");
}
