//! Ingress annotations against the real binary: an access restriction
//! fleetgate does not implement keeps the configuration from loading
//! (unless `unsupported_annotations = "warn"`), other unsupported ones are
//! reported by `check`, `/ingresses` and the log (and fail `check
//! --strict`), and every implemented family does what it says: address
//! lists (also behind a trusted proxy), basic and external authentication
//! (against a real auth service, tests/clients/auth_server.py), limits,
//! header changes, timeouts, CORS, redirects, regex paths and rewrites.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fleetgate_e2e::config::{header, host_ingress, listen_addr, manifests, service};
use fleetgate_e2e::{bin_path, exchange, Backend, Gateway, TempDir};

/// Runs `fleetgate check` with `args`: exit code, stdout, stderr.
fn check(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin_path("fleetgate"))
        .args(["check", "-c"])
        .arg(config)
        .args(args)
        .output()
        .expect("run check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A configuration serving `ingresses` (manifest text) with Service `web`
/// on `backend`; `extra` goes under `[gateway]`.
fn config(dir: &TempDir, backend: &Backend, extra: &str, ingresses: &str) -> (PathBuf, SocketAddr) {
    let listen = listen_addr();
    let text = format!(
        "{}{}{}",
        header(listen, extra),
        service("web", 80, &[("c7fb82a1", backend)], ""),
        manifests(&[dir.write("ingresses.yaml", ingresses)]),
    );
    (dir.write("gw.toml", &text), listen)
}

/// `GET /` on `host` from 127.0.0.1 with extra header lines; the status
/// line.
fn status_of(gw: &Gateway, host: &str, headers: &str) -> String {
    let got = exchange(
        gw.addr,
        format!("GET / HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    );
    got.lines().next().unwrap_or_default().to_string()
}

#[test]
fn an_unimplemented_access_restriction_fails_closed() {
    let web = Backend::start("web");
    let dir = TempDir::new("fail-closed");
    let ingress = host_ingress(
        "guarded",
        "guarded.test",
        "web",
        None,
        &[
            "auth-cache-key: \"$remote_user\"",
            "auth-tls-verify-client: \"on\"",
        ],
    );
    let (path, _) = config(&dir, &web, "", &ingress);
    let (code, _, err) = check(&path, &[]);
    assert_eq!(code, 1, "{err}");
    for needle in [
        "Ingress gateway-demo/guarded",
        "ingresses.yaml:",
        "metadata.annotations[\"nginx.ingress.kubernetes.io/auth-cache-key\"]",
        "metadata.annotations[\"nginx.ingress.kubernetes.io/auth-tls-verify-client\"]",
        "restricts access and is not implemented",
        "unsupported_annotations = \"warn\"",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // `run` refuses it too: nothing is served without the protection.
    let out = Command::new(bin_path("fleetgate"))
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth-cache-key"));

    // On a canary, an access rule it cannot have on its own refuses too.
    let canary = [
        host_ingress("main", "guarded.test", "web", None, &[]),
        host_ingress(
            "canary",
            "guarded.test",
            "web",
            None,
            &[
                "canary: \"true\"",
                "canary-weight: \"100\"",
                "whitelist-source-range: 10.0.0.0/8",
            ],
        ),
    ]
    .concat();
    let (path, _) = config(&dir, &web, "", &canary);
    let (code, _, err) = check(&path, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("a canary Ingress takes its main Ingress's access rules"),
        "{err}"
    );

    // Told to, the gateway serves it without them, and says so.
    let (path, listen) = config(&dir, &web, "unsupported_annotations = \"warn\"", &ingress);
    let (code, out, err) = check(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("warning: Ingress gateway-demo/guarded")
            && out.contains("auth-cache-key\"] restricts access and is not implemented by fleetgate: served WITHOUT it"),
        "{out}"
    );
    let gw = Gateway::start(&path, listen);
    assert!(status_of(&gw, "guarded.test", "").starts_with("HTTP/1.1 200"));
}

#[test]
fn unsupported_annotations_are_reported_and_fail_strict_checks() {
    let web = Backend::start("web");
    let dir = TempDir::new("unsupported");
    let ingress = host_ingress(
        "rewritten",
        "rewritten.test",
        "web",
        None,
        &["proxy-buffering: \"off\"", "made-up-option: \"on\""],
    );
    let (path, listen) = config(&dir, &web, "", &ingress);
    let (code, out, err) = check(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("proxy-buffering\"] is not implemented by fleetgate; ignored"),
        "{out}"
    );
    assert!(
        out.contains("made-up-option\"] is not an annotation fleetgate knows; ignored"),
        "{out}"
    );
    let (code, _, err) = check(&path, &["--strict"]);
    assert_eq!(code, 1);
    assert!(err.contains("--strict treats them as errors"), "{err}");

    // The admin API lists them with the Ingress; the log has them.
    let gw = Gateway::start(&path, listen);
    let list = gw.admin_json("/ingresses");
    let warnings = list["ingresses"][0]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{list}");
    assert!(gw.log_text().contains("proxy-buffering"));
}

#[test]
fn source_ranges_admit_and_refuse_clients() {
    let web = Backend::start("web");
    let dir = TempDir::new("source-ranges");
    let ingresses = [
        host_ingress(
            "local-only",
            "local.test",
            "web",
            None,
            &["whitelist-source-range: \"127.0.0.1/32, ::1\""],
        ),
        host_ingress(
            "office-only",
            "office.test",
            "web",
            None,
            &["allowlist-source-range: 10.0.0.0/8"],
        ),
        host_ingress(
            "not-local",
            "blocked.test",
            "web",
            None,
            &["denylist-source-range: 127.0.0.0/8"],
        ),
        host_ingress("open", "open.test", "web", None, &[]),
    ]
    .concat();
    let (path, listen) = config(&dir, &web, "", &ingresses);
    let gw = Gateway::start(&path, listen);
    assert!(status_of(&gw, "local.test", "").starts_with("HTTP/1.1 200"));
    assert!(status_of(&gw, "office.test", "").starts_with("HTTP/1.1 403"));
    assert!(status_of(&gw, "blocked.test", "").starts_with("HTTP/1.1 403"));
    assert!(status_of(&gw, "open.test", "").starts_with("HTTP/1.1 200"));
    // A client cannot claim another address: the peer is not trusted.
    assert!(
        status_of(&gw, "office.test", "X-Forwarded-For: 10.1.2.3\r\n").starts_with("HTTP/1.1 403")
    );
    // The refusal is the gateway's own answer, logged as 403.
    assert!(gw
        .wait_for_log("status=403", 3, Duration::from_secs(5))
        .is_some());
    let list = gw.admin_json("/ingresses");
    let office = list["ingresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "office-only")
        .unwrap();
    assert_eq!(office["source_ranges"]["allow"][0], "10.0.0.0/8");
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_client_counts() {
    let web = Backend::start("web");
    let dir = TempDir::new("source-ranges-proxy");
    let ingress = host_ingress(
        "office-only",
        "office.test",
        "web",
        None,
        &["whitelist-source-range: 10.0.0.0/8"],
    );
    let (path, listen) = config(
        &dir,
        &web,
        "trusted_proxies = [\"127.0.0.1\", \"192.0.2.0/24\"]",
        &ingress,
    );
    let gw = Gateway::start(&path, listen);
    let xff = |chain: &str| status_of(&gw, "office.test", &format!("X-Forwarded-For: {chain}\r\n"));
    // The proxy (127.0.0.1) reports a client in the list.
    assert!(xff("10.1.2.3").starts_with("HTTP/1.1 200"));
    // Trusted hops are skipped from the right; the first other one is
    // the client.
    assert!(xff("10.1.2.3, 192.0.2.7").starts_with("HTTP/1.1 200"));
    // Whatever the client wrote further left does not count.
    assert!(xff("10.1.2.3, 203.0.113.9").starts_with("HTTP/1.1 403"));
    // Without a forwarded address the proxy itself is the client.
    assert!(status_of(&gw, "office.test", "").starts_with("HTTP/1.1 403"));
    // An unreadable chain is refused.
    assert!(xff("10.1.2.3, not-an-address").starts_with("HTTP/1.1 403"));
}

#[test]
fn a_bad_address_list_is_a_config_error() {
    let web = Backend::start("web");
    let dir = TempDir::new("bad-ranges");
    let ingress = host_ingress(
        "typo",
        "typo.test",
        "web",
        None,
        &["whitelist-source-range: \"10.0.0.0/8, 10.0.0.256\""],
    );
    let (path, _) = config(&dir, &web, "", &ingress);
    let (code, _, err) = check(&path, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Ingress gateway-demo/typo")
            && err.contains("ingresses.yaml:")
            && err.contains("whitelist-source-range\"]")
            && err.contains("\"10.0.0.256\" is not a CIDR"),
        "{err}"
    );
}

#[test]
fn redirects_app_root_and_server_aliases() {
    let web = Backend::start("web");
    let dir = TempDir::new("redirects");
    let ingresses = [
        host_ingress(
            "moved",
            "old.test",
            "web",
            None,
            &["permanent-redirect: https://new.example/landing"],
        ),
        host_ingress(
            "maintenance",
            "busy.test",
            "web",
            None,
            &[
                "temporal-redirect: /maintenance.html",
                "temporal-redirect-code: \"307\"",
            ],
        ),
        host_ingress(
            "app",
            "app.test",
            "web",
            None,
            &[
                "app-root: /app1",
                "server-alias: \"www.app.test, app.example\"",
            ],
        ),
        host_ingress("taken", "app.example", "web", None, &[]),
    ]
    .concat();
    let (path, listen) = config(&dir, &web, "", &ingresses);
    let (code, out, err) = check(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "server-alias app.example is a host of an Ingress rule; the alias is not used"
        ),
        "{out}"
    );
    let gw = Gateway::start(&path, listen);
    let get = |host: &str, target: &str| {
        exchange(
            gw.addr,
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    };
    let moved = get("old.test", "/any/path?q=1");
    assert!(moved.starts_with("HTTP/1.1 301"), "{moved}");
    assert!(
        moved
            .to_ascii_lowercase()
            .contains("\r\nlocation: https://new.example/landing\r\n"),
        "{moved}"
    );
    let busy = get("busy.test", "/");
    assert!(busy.starts_with("HTTP/1.1 307"), "{busy}");
    assert!(
        busy.to_ascii_lowercase()
            .contains("\r\nlocation: /maintenance.html\r\n"),
        "{busy}"
    );
    // app-root: only `/` is redirected, to the same scheme and host.
    let root = get("app.test", "/");
    assert!(root.starts_with("HTTP/1.1 302"), "{root}");
    assert!(
        root.to_ascii_lowercase()
            .contains("\r\nlocation: http://app.test/app1\r\n"),
        "{root}"
    );
    assert!(get("app.test", "/app1").starts_with("HTTP/1.1 200"));
    // The alias serves the same routes (and the same app-root).
    assert!(get("www.app.test", "/app1").starts_with("HTTP/1.1 200"));
    assert!(get("www.app.test", "/")
        .to_ascii_lowercase()
        .contains("\r\nlocation: http://www.app.test/app1\r\n"));
    // A host with its own Ingress keeps it: no app-root there.
    assert!(get("app.example", "/").starts_with("HTTP/1.1 200"));
}

/// Runs `htpasswd` (apache2-utils) with `args`; panics when it fails.
fn htpasswd(args: &[&str]) {
    let out = Command::new("htpasswd")
        .args(args)
        .output()
        .expect("htpasswd (apache2-utils) is installed by scripts/setup.sh");
    assert!(out.status.success(), "htpasswd {args:?}: {out:?}");
}

/// A Secret `gateway-demo/{name}` with `data` (key, bytes), base64-encoded.
fn secret_yaml(name: &str, data: &[(&str, &[u8])]) -> String {
    use base64::Engine as _;
    let lines: Vec<String> = data
        .iter()
        .map(|(k, v)| {
            format!(
                "  {k}: {}\n",
                base64::engine::general_purpose::STANDARD.encode(v)
            )
        })
        .collect();
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: gateway-demo\ntype: Opaque\ndata:\n{}",
        lines.concat()
    )
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn basic_auth_with_files_the_htpasswd_tool_wrote() {
    let web = Backend::start("web");
    let dir = TempDir::new("basic-auth");
    let file = dir.path().join("users");
    let file_s = file.to_str().unwrap();
    // One user per hash the tool writes: bcrypt, MD5 (apr1), SHA1.
    htpasswd(&["-c", "-b", "-B", file_s, "alice", "s3cret"]);
    htpasswd(&["-b", "-m", file_s, "bob", "hunter2"]);
    htpasswd(&["-b", "-s", file_s, "carol", "pa:ss"]);
    let users = std::fs::read(&file).unwrap();
    let ingresses = [
        secret_yaml("shop-users", &[("auth", &users)]),
        secret_yaml("ops-map", &[("dave", b"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=")]),
        host_ingress(
            "shop",
            "shop.test",
            "web",
            None,
            &[
                "auth-type: basic",
                "auth-secret: shop-users",
                "auth-realm: Shop staff",
            ],
        ),
        host_ingress(
            "ops",
            "ops.test",
            "web",
            None,
            &[
                "auth-type: basic",
                "auth-secret: gateway-demo/ops-map",
                "auth-secret-type: auth-map",
            ],
        ),
    ]
    .concat();
    let (path, listen) = config(&dir, &web, "", &ingresses);
    let gw = Gateway::start(&path, listen);
    let none = exchange(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n",
    );
    assert!(none.starts_with("HTTP/1.1 401"), "{none}");
    assert!(
        none.to_ascii_lowercase()
            .contains("\r\nwww-authenticate: basic realm=\"shop staff\"\r\n"),
        "{none}"
    );
    for (user, password) in [("alice", "s3cret"), ("bob", "hunter2"), ("carol", "pa:ss")] {
        let got = status_of(&gw, "shop.test", &basic(user, password));
        assert!(got.starts_with("HTTP/1.1 200"), "{user}: {got}");
        let wrong = status_of(&gw, "shop.test", &basic(user, "wrong"));
        assert!(wrong.starts_with("HTTP/1.1 401"), "{user}: {wrong}");
    }
    assert!(status_of(&gw, "shop.test", &basic("mallory", "s3cret")).starts_with("HTTP/1.1 401"));
    // Two Authorization headers: refused, whatever the first says.
    let two = format!("{}{}", basic("alice", "s3cret"), basic("mallory", "x"));
    assert!(status_of(&gw, "shop.test", &two).starts_with("HTTP/1.1 401"));
    assert!(status_of(&gw, "ops.test", &basic("dave", "password")).starts_with("HTTP/1.1 200"));
    assert!(status_of(&gw, "ops.test", &basic("alice", "s3cret")).starts_with("HTTP/1.1 401"));
}

#[test]
fn basic_auth_that_cannot_work_refuses_the_configuration() {
    let web = Backend::start("web");
    let dir = TempDir::new("basic-auth-broken");
    let file = dir.path().join("users");
    let file_s = file.to_str().unwrap();
    // crypt(3) DES: the tool can still write it; fleetgate does not take it.
    htpasswd(&["-c", "-b", "-d", file_s, "old", "secret"]);
    let users = std::fs::read(&file).unwrap();
    let guarded = |secret: &str| {
        host_ingress(
            "shop",
            "shop.test",
            "web",
            None,
            &["auth-type: basic", &format!("auth-secret: {secret}")],
        )
    };
    let cases = [
        (
            [secret_yaml("weak", &[("auth", &users)]), guarded("weak")].concat(),
            "user \"old\": unsupported hash",
        ),
        (
            guarded("missing"),
            "Secret gateway-demo/missing is not in any manifest file",
        ),
        (
            [secret_yaml("nokey", &[("users", &users)]), guarded("nokey")].concat(),
            "has no key \"auth\"",
        ),
        (
            host_ingress(
                "shop",
                "shop.test",
                "web",
                None,
                &["auth-type: digest", "auth-secret: x"],
            ),
            "only \"basic\" is implemented",
        ),
    ];
    for (manifest, needle) in cases {
        let (path, _) = config(&dir, &web, "", &manifest);
        let (code, _, err) = check(&path, &[]);
        assert_eq!(code, 1, "{needle}: {err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(err.contains("ingresses.yaml:"), "{err}");
    }
}

#[test]
fn rate_limits_per_client_with_a_burst_and_exemptions() {
    let web = Backend::start("web");
    let dir = TempDir::new("rate-limits");
    let ingresses = [
        // 2 per minute, burst 2 x 2 (+ 1, as nginx): in a test far
        // shorter than the 30 s a token takes to come back, exactly 5 pass.
        host_ingress(
            "limited",
            "limited.test",
            "web",
            None,
            &["limit-rpm: \"2\"", "limit-burst-multiplier: \"2\""],
        ),
        host_ingress(
            "exempt",
            "exempt.test",
            "web",
            None,
            &["limit-rpm: \"1\"", "limit-whitelist: 127.0.0.0/8"],
        ),
    ]
    .concat();
    let (path, listen) = config(&dir, &web, "limit_status = 429", &ingresses);
    let gw = Gateway::start(&path, listen);
    let mut passed = 0;
    for _ in 0..10 {
        let got = exchange(
            gw.addr,
            b"GET / HTTP/1.1\r\nHost: limited.test\r\nConnection: close\r\n\r\n",
        );
        if got.starts_with("HTTP/1.1 200") {
            passed += 1;
        } else {
            assert!(got.starts_with("HTTP/1.1 429"), "{got}");
            let retry_after: u64 = got
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("retry-after: ")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("Retry-After: {got}"));
            assert!((1..=30).contains(&retry_after), "{got}");
        }
    }
    assert_eq!(passed, 5);
    for _ in 0..10 {
        assert!(status_of(&gw, "exempt.test", "").starts_with("HTTP/1.1 200"));
    }
}

#[test]
fn one_ingress_shares_its_limits_across_its_paths_and_aliases() {
    let web = Backend::start("web");
    let dir = TempDir::new("rate-limits-shared");
    // 1 per minute, burst 1 x 1 (+ 1): two requests in all, whichever
    // path or host of the Ingress they go to.
    let ingress = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shared
  namespace: gateway-demo
  annotations:
    nginx.ingress.kubernetes.io/limit-rpm: \"1\"
    nginx.ingress.kubernetes.io/limit-burst-multiplier: \"1\"
    nginx.ingress.kubernetes.io/server-alias: alias.test
spec:
  ingressClassName: mse
  defaultBackend: {service: {name: web, port: {number: 80}}}
  rules:
  - host: shared.test
    http:
      paths:
      - {path: /a, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /b, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
";
    let (path, listen) = config(&dir, &web, "", ingress);
    let gw = Gateway::start(&path, listen);
    let get = |host: &str, target: &str| {
        exchange(
            gw.addr,
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
    };
    let statuses: Vec<String> = [
        ("shared.test", "/a"),
        ("shared.test", "/b"),
        ("alias.test", "/a"),
        ("shared.test", "/other"),
    ]
    .iter()
    .map(|(h, t)| get(h, t))
    .collect();
    let passed = statuses
        .iter()
        .filter(|s| s.starts_with("HTTP/1.1 200"))
        .count();
    assert_eq!(passed, 2, "{statuses:?}");
    assert!(
        statuses[2..].iter().all(|s| s.starts_with("HTTP/1.1 503")),
        "{statuses:?}"
    );
}

#[test]
fn a_concurrency_limit_counts_requests_in_progress() {
    use std::io::{Read, Write};
    use std::sync::mpsc;
    // An upstream that holds each request until the test says go.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let (arrived_tx, arrived) = mpsc::channel::<()>();
    let (go, go_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            if head.starts_with(b"GET /held") {
                let _ = arrived_tx.send(());
                if go_rx.recv().is_err() {
                    return;
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    let dir = TempDir::new("concurrency");
    let listen = listen_addr();
    let text = format!(
        "{}{}{}",
        header(listen, ""),
        fleetgate_e2e::config::service_at("slow", upstream, ""),
        manifests(&[dir.write(
            "ingresses.yaml",
            &host_ingress(
                "one-at-a-time",
                "one.test",
                "slow",
                None,
                &["limit-connections: \"1\""]
            ),
        )]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &text), listen);
    let addr = gw.addr;
    let first = std::thread::spawn(move || {
        exchange(
            addr,
            b"GET /held HTTP/1.1\r\nHost: one.test\r\nConnection: close\r\n\r\n",
        )
    });
    arrived
        .recv_timeout(Duration::from_secs(10))
        .expect("the first request reached the upstream");
    // While it is in progress, a second from the same client is refused.
    let second = exchange(
        gw.addr,
        b"GET /other HTTP/1.1\r\nHost: one.test\r\nConnection: close\r\n\r\n",
    );
    assert!(second.starts_with("HTTP/1.1 503"), "{second}");
    assert!(
        second
            .to_ascii_lowercase()
            .contains("\r\nretry-after: 1\r\n"),
        "{second}"
    );
    go.send(()).unwrap();
    assert!(first.join().unwrap().starts_with("HTTP/1.1 200"));
    // Its place is given back when it ends (the request's state goes
    // after its log line): wait for that, then one more passes.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = exchange(
            gw.addr,
            b"GET /other HTTP/1.1\r\nHost: one.test\r\nConnection: close\r\n\r\n",
        );
        if got.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the place never came back: {got}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn header_changes_reach_the_upstream_and_the_client() {
    let (upstream, recorded) = fleetgate_e2e::upstream::recording_upstream(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Powered-By: php\r\nCache-Control: public\r\nConnection: close\r\n\r\nok",
    );
    let dir = TempDir::new("headers");
    let listen = listen_addr();
    let ingress = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: gateway-demo
  annotations:
    nginx.ingress.kubernetes.io/upstream-vhost: internal.shop:8080
    nginx.ingress.kubernetes.io/x-forwarded-prefix: /shop
    mse.ingress.kubernetes.io/request-header-control-add: |
      X-Team shop
      X-Env prod eu
    mse.ingress.kubernetes.io/request-header-control-update: User-Agent fleetgate-test
    mse.ingress.kubernetes.io/request-header-control-remove: X-Debug
    higress.io/response-header-control-add: X-Frame-Options DENY
    higress.io/response-header-control-update: Cache-Control no-store
    higress.io/response-header-control-remove: X-Powered-By
spec:
  ingressClassName: mse
  rules:
  - host: shop.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: rec, port: {number: 80}}}}
";
    let text = format!(
        "{}{}{}",
        header(listen, ""),
        fleetgate_e2e::config::service_at("rec", upstream, ""),
        manifests(&[dir.write("ingresses.yaml", ingress)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &text), listen);
    while recorded.try_recv().is_ok() {}
    let got = exchange(
        gw.addr,
        b"GET /cart HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: curl\r\nX-Debug: 1\r\nConnection: close\r\n\r\n",
    );
    let lower = got.to_ascii_lowercase();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(lower.contains("\r\nx-frame-options: deny\r\n"), "{got}");
    assert!(lower.contains("\r\ncache-control: no-store\r\n"), "{got}");
    assert!(!lower.contains("x-powered-by"), "{got}");
    let saw = recorded
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .to_ascii_lowercase();
    for line in [
        "\r\nhost: internal.shop:8080\r\n",
        "\r\nx-forwarded-prefix: /shop\r\n",
        "\r\nx-team: shop\r\n",
        "\r\nx-env: prod eu\r\n",
        "\r\nuser-agent: fleetgate-test\r\n",
    ] {
        assert!(saw.contains(line), "{line:?} in {saw}");
    }
    assert!(!saw.contains("x-debug"), "{saw}");
    assert!(!saw.contains("user-agent: curl"), "{saw}");
}

#[test]
fn a_route_sets_its_own_upstream_timeouts_and_body_size() {
    // An upstream that reads the request and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let web = Backend::start("web");
    let dir = TempDir::new("route-upstream");
    let listen = listen_addr();
    let ingresses = [
        host_ingress(
            "impatient",
            "impatient.test",
            "silent",
            None,
            &["proxy-read-timeout: \"1\""],
        ),
        host_ingress("small", "small.test", "web", None, &["proxy-body-size: 1k"]),
        host_ingress(
            "large",
            "large.test",
            "web",
            None,
            &["proxy-body-size: \"0\""],
        ),
        host_ingress("default", "default.test", "web", None, &[]),
    ]
    .concat();
    let text = format!(
        "{}{}{}{}",
        // The gateway's own limit is 2k; the Service's read timeout 60 s.
        header(listen, "client_max_body_size = \"2k\""),
        service("web", 80, &[("c7fb82a1", &web)], ""),
        fleetgate_e2e::config::service_at("silent", silent_addr, ""),
        manifests(&[dir.write("ingresses.yaml", &ingresses)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &text), listen);
    let started = std::time::Instant::now();
    let got = status_of(&gw, "impatient.test", "");
    assert!(got.starts_with("HTTP/1.1 504"), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the route's 1 s, not 60 s"
    );

    let post = |host: &str, body: usize| {
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {body}\r\nConnection: close\r\n\r\n"
        );
        let mut request = head.into_bytes();
        request.extend(std::iter::repeat_n(b'x', body));
        let got = exchange(gw.addr, &request);
        got.lines().next().unwrap_or_default().to_string()
    };
    assert!(post("small.test", 512).starts_with("HTTP/1.1 200"));
    assert!(post("small.test", 1500).starts_with("HTTP/1.1 413"));
    // Without a declared length the limit holds while the body streams.
    let chunked = exchange(
        gw.addr,
        format!(
            "POST / HTTP/1.1\r\nHost: small.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n800\r\n{}\r\n0\r\n\r\n",
            "x".repeat(0x800)
        )
        .as_bytes(),
    );
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    // "0" lifts the gateway's limit for that route only.
    assert!(post("large.test", 4096).starts_with("HTTP/1.1 200"));
    assert!(post("default.test", 4096).starts_with("HTTP/1.1 413"));
    assert!(post("default.test", 1500).starts_with("HTTP/1.1 200"));
}

#[test]
fn cors_preflights_and_responses() {
    let web = Backend::start("web");
    let dir = TempDir::new("cors");
    let ingresses = [
        host_ingress(
            "api",
            "api.test",
            "web",
            None,
            &[
                "enable-cors: \"true\"",
                "cors-allow-origin: \"https://app.example.com, https://*.example.org\"",
                "cors-max-age: \"600\"",
                // Preflights come without credentials: CORS answers first.
                "auth-type: basic",
                "auth-secret: users",
            ],
        ),
        host_ingress("open", "open.test", "web", None, &["enable-cors: \"true\""]),
        host_ingress(
            "half",
            "half.test",
            "web",
            None,
            &["cors-allow-origin: https://a.example"],
        ),
        // alice / password.
        secret_yaml(
            "users",
            &[("auth", b"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")],
        ),
    ]
    .concat();
    let (path, listen) = config(&dir, &web, "", &ingresses);
    let (_, out, _) = check(&path, &[]);
    assert!(
        out.contains("cors-allow-origin\"] does nothing without enable-cors"),
        "{out}"
    );
    let gw = Gateway::start(&path, listen);
    let ask = |method: &str, host: &str, headers: &str| {
        exchange(
            gw.addr,
            format!("{method} /v1 HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .to_ascii_lowercase()
    };
    let preflight = ask(
        "OPTIONS",
        "api.test",
        "Origin: https://shop.example.org\r\nAccess-Control-Request-Method: PUT\r\n",
    );
    assert!(preflight.starts_with("http/1.1 204"), "{preflight}");
    for line in [
        "\r\naccess-control-allow-origin: https://shop.example.org\r\n",
        "\r\naccess-control-allow-credentials: true\r\n",
        "\r\naccess-control-allow-methods: get, put, post, delete, patch, options\r\n",
        "\r\naccess-control-max-age: 600\r\n",
        "\r\nvary: origin\r\n",
    ] {
        assert!(preflight.contains(line), "{line:?}: {preflight}");
    }
    assert!(!preflight.contains("content-length"), "{preflight}");
    // An origin not in the list: no CORS answer, and the route's
    // authentication applies.
    let other = ask("OPTIONS", "api.test", "Origin: https://evil.example\r\n");
    assert!(other.starts_with("http/1.1 401"), "{other}");
    assert!(!other.contains("access-control-"), "{other}");
    // A real request from an allowed origin.
    let get = ask(
        "GET",
        "api.test",
        &format!(
            "Origin: https://app.example.com\r\n{}",
            basic("alice", "password")
        ),
    );
    assert!(get.starts_with("http/1.1 200"), "{get}");
    assert!(
        get.contains("\r\naccess-control-allow-origin: https://app.example.com\r\n"),
        "{get}"
    );
    assert!(!get.contains("access-control-max-age"), "{get}");
    // Any origin: `*`.
    let any = ask("GET", "open.test", "Origin: https://whoever.example\r\n");
    assert!(
        any.contains("\r\naccess-control-allow-origin: *\r\n"),
        "{any}"
    );
    // Without enable-cors nothing is added.
    let half = ask("GET", "half.test", "Origin: https://a.example\r\n");
    assert!(
        half.starts_with("http/1.1 200") && !half.contains("access-control-"),
        "{half}"
    );
}

/// The request line an upstream got, from a recording.
fn request_line(recorded: &std::sync::mpsc::Receiver<String>) -> String {
    let raw = recorded
        .recv_timeout(Duration::from_secs(5))
        .expect("the upstream got a request");
    raw.lines().next().unwrap_or_default().to_string()
}

#[test]
fn regex_paths_and_rewrites_reach_the_upstream() {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    let (api, api_got) = fleetgate_e2e::upstream::recording_upstream(OK);
    let (other, other_got) = fleetgate_e2e::upstream::recording_upstream(OK);
    let dir = TempDir::new("rewrites");
    let listen = listen_addr();
    let ingresses = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: api
  namespace: gateway-demo
  annotations:
    nginx.ingress.kubernetes.io/use-regex: "true"
    nginx.ingress.kubernetes.io/rewrite-target: /$2
spec:
  ingressClassName: mse
  rules:
  - host: shop.test
    http:
      paths:
      - {path: /something(/|$)(.*), pathType: ImplementationSpecific, backend: {service: {name: api, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: plain-on-a-regex-host
  namespace: gateway-demo
spec:
  ingressClassName: mse
  rules:
  - host: shop.test
    http:
      paths:
      - {path: /foo/bar, pathType: Prefix, backend: {service: {name: other, port: {number: 80}}}}
  - host: plain.test
    http:
      paths:
      - {path: /foo/bar, pathType: Prefix, backend: {service: {name: other, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: versioned
  namespace: gateway-demo
  annotations:
    higress.io/rewrite-path: /v1
    higress.io/rewrite-host: internal.api
spec:
  ingressClassName: mse
  rules:
  - host: api.test
    http:
      paths:
      - {path: /v1/app, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
"#;
    let text = format!(
        "{}{}{}{}",
        header(listen, ""),
        fleetgate_e2e::config::service_at("api", api, ""),
        fleetgate_e2e::config::service_at("other", other, ""),
        manifests(&[dir.write("ingresses.yaml", ingresses)]),
    );
    let config = dir.write("gw.toml", &text);
    let routes = Command::new(bin_path("fleetgate"))
        .args(["routes", "-c"])
        .arg(&config)
        .output()
        .expect("run routes");
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(
        routes.contains("/something(/|$)(.*)") && routes.contains("ImplementationSpecific (regex)"),
        "{routes}"
    );
    let gw = Gateway::start(&config, listen);
    let get = |host: &str, target: &str| {
        let got = exchange(
            gw.addr,
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        got.lines().next().unwrap_or_default().to_string()
    };

    // rewrite-target with capture groups, the query kept (the examples of
    // ingress-nginx's documentation).
    for (sent, upstream) in [
        ("/something", "GET / HTTP/1.1"),
        ("/something/", "GET / HTTP/1.1"),
        ("/something/new?x=1", "GET /new?x=1 HTTP/1.1"),
        ("/SOMETHING/Case/Kept", "GET /Case/Kept HTTP/1.1"),
        ("/something/./a/../b", "GET /b HTTP/1.1"),
    ] {
        assert!(get("shop.test", sent).starts_with("HTTP/1.1 200"), "{sent}");
        assert_eq!(request_line(&api_got), upstream, "{sent}");
    }
    // Another Ingress's plain path on the same host is a regex too: a
    // case-insensitive string prefix, sent as it came.
    assert!(get("shop.test", "/FOO/barx").starts_with("HTTP/1.1 200"));
    assert_eq!(request_line(&other_got), "GET /FOO/barx HTTP/1.1");
    // On a host without regex paths the same rule is element-wise and
    // case-sensitive.
    assert!(get("plain.test", "/foo/barx").starts_with("HTTP/1.1 404"));
    assert!(get("plain.test", "/foo/bar/x").starts_with("HTTP/1.1 200"));
    assert_eq!(request_line(&other_got), "GET /foo/bar/x HTTP/1.1");

    // rewrite-path replaces the matched prefix; rewrite-host the Host.
    assert!(get("api.test", "/v1/app/users?q=1").starts_with("HTTP/1.1 200"));
    let raw = api_got.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(raw.starts_with("GET /v1/users?q=1 HTTP/1.1\r\n"), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("\r\nhost: internal.api\r\n"),
        "{raw}"
    );
    assert!(get("api.test", "/v1/app").starts_with("HTTP/1.1 200"));
    assert_eq!(request_line(&api_got), "GET /v1 HTTP/1.1");
    assert!(get("api.test", "/v1/application").starts_with("HTTP/1.1 404"));
}

#[test]
fn regex_paths_and_rewrites_that_cannot_work_are_config_errors() {
    let web = Backend::start("web");
    let dir = TempDir::new("bad-regex");
    // The plain Ingress's path becomes a regex because the other Ingress
    // asks for regex paths on the same host: it must compile as one.
    let ingresses = format!(
        "{}{}",
        host_ingress("plain", "shop.test", "web", None, &[]).replace("path: /", "path: /a(b"),
        host_ingress("regex", "shop.test", "web", None, &["use-regex: \"true\""])
            .replace("path: /", "path: /z"),
    );
    let (path, _) = config(&dir, &web, "", &ingresses);
    let (code, _, err) = check(&path, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Ingress gateway-demo/plain")
            && err.contains("spec.rules[0].http.paths[0].path")
            && err.contains("regular expression")
            && err.contains("use-regex or rewrite-target"),
        "{err}"
    );

    let ingress = host_ingress(
        "rewrite",
        "shop.test",
        "web",
        None,
        &["rewrite-target: /$host$1"],
    );
    let (path, _) = config(&dir, &web, "", &ingress);
    let (code, _, err) = check(&path, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("rewrite-target\"]") && err.contains("nginx variables are not supported"),
        "{err}"
    );

    // A longer regex of an open Ingress takes requests written for a
    // guarded Ingress's path on the same host: served, and said.
    let shadowed = [
        host_ingress(
            "guarded",
            "shop.test",
            "web",
            None,
            &["whitelist-source-range: 10.0.0.0/8"],
        )
        .replace("path: /", "path: /foo/bar/bar"),
        host_ingress("open", "shop.test", "web", None, &["use-regex: \"true\""])
            .replace("path: /", "path: /foo/bar/[A-Z0-9]{3}"),
    ]
    .concat();
    let (path, _) = config(&dir, &web, "", &shadowed);
    let (code, out, err) = check(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Ingress gateway-demo/open's path /foo/bar/[A-Z0-9]{3} is tried before Ingress gateway-demo/guarded's path /foo/bar/bar"),
        "{out}"
    );
    assert_eq!(check(&path, &["--strict"]).0, 1);
}

/// The requests the authentication service got, oldest first.
fn auth_log(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn external_authentication_against_a_real_auth_service() {
    let dir = TempDir::new("forward-auth");
    let log = dir.path().join("auth.jsonl");
    let auth = fleetgate_e2e::python::python_server(
        "auth_server.py",
        "auth",
        &["--log", log.to_str().unwrap()],
    );
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    let (upstream, recorded) = fleetgate_e2e::upstream::recording_upstream(OK);
    let closed = fleetgate_e2e::free_port();
    let a = auth.addr;
    let ingresses = format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: gateway-demo
  annotations:
    nginx.ingress.kubernetes.io/auth-url: "http://{a}/oauth2/auth?host=$host"
    nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User, X-Auth-Email
spec:
  ingressClassName: mse
  rules:
  - host: shop.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: rec, port: {{number: 80}}}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: portal
  namespace: gateway-demo
  annotations:
    nginx.ingress.kubernetes.io/auth-url: "http://{a}/check"
    nginx.ingress.kubernetes.io/auth-method: POST
    nginx.ingress.kubernetes.io/auth-signin: "https://login.example.com/start"
spec:
  ingressClassName: mse
  rules:
  - host: portal.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: rec, port: {{number: 80}}}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: down
  namespace: gateway-demo
  annotations:
    nginx.ingress.kubernetes.io/auth-url: "http://127.0.0.1:{closed}/check"
spec:
  ingressClassName: mse
  rules:
  - host: down.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: rec, port: {{number: 80}}}}}}}}
"#
    );
    let listen = listen_addr();
    let text = format!(
        "{}{}{}",
        header(listen, ""),
        fleetgate_e2e::config::service_at("rec", upstream, ""),
        manifests(&[dir.write("ingresses.yaml", &ingresses)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &text), listen);
    let send = |request: String| exchange(gw.addr, request.as_bytes());
    let get = |host: &str, target: &str, extra: &str| {
        send(format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
        ))
    };

    // No credentials: the service's 401 and its challenge; nothing upstream.
    let got = get("shop.test", "/cart?id=1", "");
    assert!(got.starts_with("HTTP/1.1 401"), "{got}");
    assert!(
        got.to_ascii_lowercase()
            .contains("\r\nwww-authenticate: bearer realm=\"shop\"\r\n"),
        "{got}"
    );
    // 403 passes through; any other status is the gateway's 500.
    assert!(get("shop.test", "/", "Authorization: Bearer evil\r\n").starts_with("HTTP/1.1 403"));
    assert!(get("shop.test", "/", "Authorization: Bearer boom\r\n").starts_with("HTTP/1.1 500"));
    assert!(
        recorded.try_recv().is_err(),
        "a refused request reached the upstream"
    );

    // Allowed: the listed headers come from the service, never from the
    // client, and the request body still reaches the upstream.
    let got = send(
        "POST /orders?id=7 HTTP/1.1\r\nHost: shop.test\r\nAuthorization: Bearer good\r\n\
         X-Auth-User: mallory\r\nX_Auth_Email: mallory@evil\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
            .to_string(),
    );
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // The service's cookie reaches the client.
    assert!(
        got.to_ascii_lowercase()
            .contains("\r\nset-cookie: session=refreshed; path=/\r\n"),
        "{got}"
    );
    let saw = recorded.recv_timeout(Duration::from_secs(5)).unwrap();
    let lower = saw.to_ascii_lowercase();
    assert!(saw.starts_with("POST /orders?id=7 HTTP/1.1\r\n"), "{saw}");
    assert!(lower.contains("\r\nx-auth-user: alice\r\n"), "{saw}");
    assert!(
        lower.contains("\r\nx-auth-email: alice@example.com\r\n"),
        "{saw}"
    );
    // Neither the client's copy nor a spelling with `_` gets through.
    assert!(!lower.contains("mallory"), "{saw}");
    assert!(saw.ends_with("\r\n\r\nhello"), "{saw}");

    // What the service got: the client's head without its body, and
    // where the request was going.
    let checks = auth_log(&log);
    let last = checks.last().expect("the service was asked");
    assert_eq!(last["method"], "GET");
    assert_eq!(last["path"], "/oauth2/auth?host=shop.test");
    let h = &last["headers"];
    assert_eq!(h["host"], a.to_string());
    assert_eq!(h["authorization"], "Bearer good");
    assert_eq!(h["x-original-url"], "http://shop.test/orders?id=7");
    assert_eq!(h["x-original-method"], "POST");
    assert_eq!(h["x-sent-from"], "fleetgate");
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert_eq!(h["x-auth-request-redirect"], "/orders?id=7");
    assert!(h.get("content-length").is_none(), "{last}");

    // A sign-in page: browsers are sent there, with the way back.
    let got = get("portal.test", "/a?b=1", "");
    assert!(got.starts_with("HTTP/1.1 302"), "{got}");
    assert!(
        got.contains(
            "\r\nlocation: https://login.example.com/start?rd=http://portal.test%2Fa%3Fb%3D1\r\n"
        ),
        "{got}"
    );
    assert_eq!(auth_log(&log).last().unwrap()["method"], "POST");

    // A service that cannot be reached: 500, nothing upstream.
    let got = get("down.test", "/", "Authorization: Bearer good\r\n");
    assert!(got.starts_with("HTTP/1.1 500"), "{got}");
    assert!(recorded.try_recv().is_err());
    assert!(gw.log_text().contains("external authentication at"));

    // A service that accepts and never answers: 500 once the read
    // timeout (10 s) passes, well before the client's own patience.
    let started = std::time::Instant::now();
    let got = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(gw.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(
            b"GET / HTTP/1.1\r\nHost: shop.test\r\nAuthorization: Bearer slow\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        String::from_utf8_lossy(&got).to_string()
    };
    assert!(got.starts_with("HTTP/1.1 500"), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "{:?}",
        started.elapsed()
    );
    assert!(recorded.try_recv().is_err());

    // `$host` on a rule without a host would let the client choose the
    // server that vouches for it: refused.
    let open_rule = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: any-host
  namespace: gateway-demo
  annotations:
    nginx.ingress.kubernetes.io/auth-url: "https://$host/oauth2/auth"
spec:
  ingressClassName: mse
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: rec, port: {number: 80}}}}
"#;
    dir.write("any-host.yaml", open_rule);
    let bad = dir.write("bad.toml", &text.replace("ingresses.yaml", "any-host.yaml"));
    let (code, _, err) = check(&bad, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the client would choose the server"), "{err}");
    // So is one with only a default backend: it serves every host.
    let default_only = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: default-only
  namespace: gateway-demo
  annotations:
    nginx.ingress.kubernetes.io/auth-url: "https://$host/oauth2/auth"
spec:
  ingressClassName: mse
  defaultBackend: {service: {name: rec, port: {number: 80}}}
"#;
    dir.write("default-only.yaml", default_only);
    let bad = dir.write(
        "bad2.toml",
        &text.replace("ingresses.yaml", "default-only.yaml"),
    );
    let (code, _, err) = check(&bad, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("a rule without a host"), "{err}");
}

/// Requests an upstream recording got so far (waiting a moment for late
/// ones).
fn drain(recorded: &std::sync::mpsc::Receiver<String>) -> usize {
    let mut n = 0;
    while recorded.recv_timeout(Duration::from_millis(200)).is_ok() {
        n += 1;
    }
    n
}

#[test]
fn next_upstream_retries_what_the_route_says() {
    const UNAVAILABLE: &[u8] =
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown";
    let (r1, got1) = fleetgate_e2e::upstream::recording_upstream(UNAVAILABLE);
    let (r2, got2) = fleetgate_e2e::upstream::recording_upstream(UNAVAILABLE);
    let (r3, got3) = fleetgate_e2e::upstream::recording_upstream(UNAVAILABLE);
    let web = Backend::start("web");
    let dir = TempDir::new("next-upstream");
    let listen = listen_addr();
    // Outlier detection off: every try of this test must reach its
    // endpoint, however many 503s came before.
    let service = |name: &str, a: SocketAddr, b: SocketAddr| {
        format!(
            "\n[[service]]\nnamespace = \"gateway-demo\"\nname = \"{name}\"\nport = 80\n\
             endpoints = [{{ cluster = \"c7fb82a1\", address = \"{a}\" }}, {{ cluster = \"cd3007b2\", address = \"{b}\" }}]\n\
             [service.outlier_detection]\nconsecutive_failures = 0\n"
        )
    };
    let ingress = |name: &str, svc: &str, annotations: &[&str]| {
        host_ingress(name, &format!("{name}.test"), svc, None, annotations)
    };
    let ingresses = [
        ingress("plain", "down", &[]),
        ingress(
            "retry",
            "down",
            &["proxy-next-upstream: error timeout http_503"],
        ),
        ingress(
            "anymethod",
            "down",
            &["proxy-next-upstream: http_503 non_idempotent"],
        ),
        ingress(
            "once",
            "down",
            &[
                "proxy-next-upstream: http_503",
                "proxy-next-upstream-tries: \"1\"",
            ],
        ),
        ingress(
            "mixed",
            "mixed",
            &["proxy-next-upstream: error timeout http_503"],
        ),
    ]
    .concat();
    let text = format!(
        "{}{}{}{}",
        header(listen, ""),
        service("down", r1, r2),
        service("mixed", r3, web.addr),
        manifests(&[dir.write("ingresses.yaml", &ingresses)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &text), listen);
    let send = |method: &str, host: &str| {
        let got = exchange(
            gw.addr,
            format!(
                "{method} / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
            )
            .as_bytes(),
        );
        got.lines().next().unwrap_or_default().to_string()
    };
    let tries = || drain(&got1) + drain(&got2);

    // Without the annotation a 503 is an answer: one try.
    assert!(send("GET", "plain.test").starts_with("HTTP/1.1 503"));
    assert_eq!(tries(), 1);
    // http_503: the other endpoint is tried; both answer 503, so the client
    // gets the last one.
    let last = exchange(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: retry.test\r\nConnection: close\r\n\r\n",
    );
    // The endpoint's own answer, not the gateway's: no endpoint was left.
    assert!(
        last.starts_with("HTTP/1.1 503") && last.ends_with("\r\n\r\ndown"),
        "{last}"
    );
    assert_eq!(tries(), 2);
    // A POST is sent once unless the route says non_idempotent.
    assert!(send("POST", "retry.test").starts_with("HTTP/1.1 503"));
    assert_eq!(tries(), 1);
    assert!(send("POST", "anymethod.test").starts_with("HTTP/1.1 503"));
    assert_eq!(tries(), 2);
    // proxy-next-upstream-tries: 1 is one try in all.
    assert!(send("GET", "once.test").starts_with("HTTP/1.1 503"));
    assert_eq!(tries(), 1);

    // One endpoint answering 503: the client never sees it.
    for i in 0..10 {
        let got = send("GET", "mixed.test");
        assert!(got.starts_with("HTTP/1.1 200"), "request {i}: {got}");
    }
    assert!(drain(&got3) >= 1, "the 503 endpoint was never tried");
}

#[test]
fn compression_by_accept_encoding_globally_and_per_ingress() {
    let body = "fleetgate compresses text for clients that ask. ".repeat(40);
    let response: &'static [u8] = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let (page, _recorded) = fleetgate_e2e::upstream::recording_upstream(response);
    let dir = TempDir::new("compression");
    let listen = listen_addr();
    let ingresses = [
        host_ingress("global", "global.test", "page", None, &[]),
        host_ingress("plain", "plain.test", "page", None, &[]).replace(
            "  namespace: gateway-demo\n",
            "  namespace: gateway-demo\n  annotations:\n    fleetgate.io/compression: \"false\"\n",
        ),
    ]
    .concat();
    let text = format!(
        "{}{}{}\n[compression]\nenabled = true\n",
        header(listen, ""),
        fleetgate_e2e::config::service_at("page", page, ""),
        manifests(&[dir.write("ingresses.yaml", &ingresses)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &text), listen);
    // curl (built with zlib and brotli) asks with the given
    // Accept-Encoding and decodes what comes back.
    // `http1.0` stands for global.test asked over HTTP/1.0.
    let fetch = |host: &str, accept: &str| -> (String, String) {
        let (host, version) = match host {
            "http1.0" => ("global.test", "--http1.0"),
            other => (other, "--http1.1"),
        };
        let out = Command::new("curl")
            .args(["-s", version, "--compressed", "-D", "-", "-o"])
            .arg(dir.path().join("body"))
            .args([
                "-H",
                &format!("Host: {host}"),
                "-H",
                &format!("Accept-Encoding: {accept}"),
            ])
            .arg(format!("http://{}/", gw.addr))
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl failed");
        let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        let decoded = std::fs::read_to_string(dir.path().join("body")).unwrap_or_default();
        (headers, decoded)
    };
    for (accept, coding) in [
        ("gzip, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip", "gzip"),
    ] {
        let (headers, decoded) = fetch("global.test", accept);
        assert!(
            headers.contains(&format!("\r\ncontent-encoding: {coding}\r\n")),
            "{accept}: {headers}"
        );
        assert!(
            headers.contains("\r\nvary: accept-encoding\r\n"),
            "{headers}"
        );
        assert!(!headers.contains("content-length: "), "{headers}");
        assert_eq!(decoded, body, "{accept}: the decoded body");
    }
    // Refused codings, no Accept-Encoding, or an Ingress that says no:
    // the body as the upstream sent it.
    for (host, accept) in [
        ("global.test", "gzip;q=0, br;q=0"),
        ("global.test", "identity"),
        ("http1.0", "gzip, br"),
        ("plain.test", "gzip, br"),
    ] {
        let (headers, decoded) = fetch(host, accept);
        assert!(
            !headers.contains("content-encoding"),
            "{host} {accept}: {headers}"
        );
        assert!(
            headers.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{headers}"
        );
        assert_eq!(decoded, body);
    }
    // A level no coder has is a configuration error at its key.
    let bad = dir.write(
        "bad.toml",
        &text.replace("enabled = true", "enabled = true\ngzip_level = 12"),
    );
    let (code, _, err) = check(&bad, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("compression.gzip_level") && err.contains("12 is not a gzip level"),
        "{err}"
    );
}

#[test]
fn hashing_and_cookie_affinity_keep_clients_on_endpoints() {
    let mut pods = [
        Backend::start("pod-a"),
        Backend::start("pod-b"),
        Backend::start("pod-c"),
    ];
    // The cookie client has pods of its own: the hashing checks below
    // take pods away.
    let mut sticky_pods = [Backend::start("pod-d"), Backend::start("pod-e")];
    let dir = TempDir::new("affinity");
    let listen = listen_addr();
    let ingresses = [
        host_ingress(
            "hashed",
            "hashed.test",
            "web",
            None,
            &["upstream-hash-by: $http_x_user"],
        ),
        host_ingress(
            "sticky",
            "sticky.test",
            "sticky-web",
            None,
            &[
                "affinity: cookie",
                "session-cookie-name: route",
                "session-cookie-max-age: \"3600\"",
                "session-cookie-samesite: Lax",
            ],
        ),
    ]
    .concat();
    let text = format!(
        "{}{}{}{}",
        header(listen, ""),
        service(
            "web",
            80,
            &[
                ("c7fb82a1", &pods[0]),
                ("cd3007b2", &pods[1]),
                ("c7fb82a1", &pods[2])
            ],
            "",
        ),
        service(
            "sticky-web",
            80,
            &[("c7fb82a1", &sticky_pods[0]), ("cd3007b2", &sticky_pods[1])],
            "",
        ),
        manifests(&[dir.write("ingresses.yaml", &ingresses)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &text), listen);
    let mut client = fleetgate_e2e::HttpClient::new(gw.addr);
    let served = |client: &mut fleetgate_e2e::HttpClient, user: &str| -> String {
        let r = client
            .request("GET", "hashed.test", "/", &[("X-User", user)], "")
            .expect("request");
        assert_eq!(r.status, 200, "{user}");
        r.body
    };

    // The same key always lands on the same pod, and keys spread.
    let users: Vec<String> = (0..30).map(|i| format!("user-{i}")).collect();
    let first: Vec<String> = users.iter().map(|u| served(&mut client, u)).collect();
    for (u, pod) in users.iter().zip(&first) {
        for _ in 0..3 {
            assert_eq!(&served(&mut client, u), pod, "{u}");
        }
    }
    let spread: std::collections::HashSet<&String> = first.iter().collect();
    assert!(spread.len() >= 2, "{first:?}");

    // A pod dies: its users move (no request fails), the others stay.
    let gone = first[0].clone();
    let index = ["pod-a", "pod-b", "pod-c"]
        .iter()
        .position(|p| gone.contains(p))
        .expect("a pod name in the body");
    pods[index].kill();
    for (u, pod) in users.iter().zip(&first) {
        let now = served(&mut client, u);
        if *pod == gone {
            assert_ne!(now, gone, "{u}");
        } else {
            assert_eq!(&now, pod, "{u} moved without cause");
        }
    }

    // Cookie affinity: the first answer names a pod in the cookie, later
    // requests with it stay there and get no new cookie.
    let r = client.get("sticky.test", "/").expect("request");
    assert_eq!(r.status, 200);
    let set = r
        .header("set-cookie")
        .expect("an affinity cookie")
        .to_string();
    assert!(
        set.starts_with("route=") && set.contains("; Path=/; Max-Age=3600; SameSite=Lax; HttpOnly"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let pod = r.body.clone();
    for _ in 0..6 {
        let r = client
            .request("GET", "sticky.test", "/", &[("Cookie", &cookie)], "")
            .expect("request");
        assert_eq!((r.status, &r.body), (200, &pod));
        assert!(r.header("set-cookie").is_none());
    }
    // Its pod dies: another serves, and the cookie is replaced.
    let index = ["pod-d", "pod-e"]
        .iter()
        .position(|p| pod.contains(p))
        .expect("a pod name in the body");
    sticky_pods[index].kill();
    let r = client
        .request("GET", "sticky.test", "/", &[("Cookie", &cookie)], "")
        .expect("request");
    assert_eq!(r.status, 200);
    assert_ne!(r.body, pod);
    let renewed = r.header("set-cookie").expect("a new cookie");
    assert!(!renewed.starts_with(&cookie), "{renewed}");

    // The whole cluster of the pod that died goes (pod-a and pod-c are
    // c7fb82a1's, pod-b is cd3007b2's): every hashed user is served by
    // the other cluster, without a failed request.
    let survivors: &[&str] = if gone.contains("pod-b") {
        &["pod-a", "pod-c"]
    } else {
        pods[0].kill();
        pods[2].kill();
        &["pod-b"]
    };
    for u in &users {
        let now = served(&mut client, u);
        assert!(survivors.iter().any(|p| now.contains(p)), "{u}: {now}");
    }
}

#[test]
fn mirrors_copy_requests_without_slowing_or_failing_them() {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nmirror";
    let web = Backend::start("web");
    let (shadow, copies) = fleetgate_e2e::upstream::recording_upstream(OK);
    let (half, half_copies) = fleetgate_e2e::upstream::recording_upstream(OK);
    let (by_url, url_copies) = fleetgate_e2e::upstream::recording_upstream(OK);
    // A mirror that accepts and never answers, and one that is not there.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for s in silent.incoming().flatten() {
            open.push(s);
        }
    });
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], fleetgate_e2e::free_port()));
    let dir = TempDir::new("mirror");
    let listen = listen_addr();
    let mirrored = |name: &str, target: &str, extra: &[&str]| {
        let mut annotations = vec![format!("mirror-target-service: {target}")];
        annotations.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = annotations.iter().map(String::as_str).collect();
        host_ingress(name, &format!("{name}.test"), "web", None, &refs).replace(
            "nginx.ingress.kubernetes.io/mirror",
            "mse.ingress.kubernetes.io/mirror",
        )
    };
    let ingresses = [
        mirrored("copied", "shadow:80", &[]),
        mirrored("half", "half", &["mirror-percentage: \"50\""]),
        mirrored("slow", "gateway-demo/silent:80", &[]),
        mirrored("dead", "dead:80", &[]),
        mirrored(
            "guarded",
            "shadow:80",
            &["whitelist-source-range: 10.0.0.0/8"],
        ),
        host_ingress(
            "url",
            "url.test",
            "web",
            None,
            &[
                &format!("mirror-target: http://{by_url}/$request_uri"),
                "mirror-host: shadow.internal",
                "mirror-request-body: \"off\"",
            ],
        ),
    ]
    .concat();
    let text = format!(
        "{}{}{}{}{}{}{}",
        header(listen, ""),
        service("web", 80, &[("c7fb82a1", &web)], ""),
        fleetgate_e2e::config::service_at("shadow", shadow, ""),
        fleetgate_e2e::config::service_at("half", half, ""),
        fleetgate_e2e::config::service_at("silent", silent_addr, ""),
        fleetgate_e2e::config::service_at("dead", dead, ""),
        manifests(&[dir.write("ingresses.yaml", &ingresses)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &text), listen);
    let mut client = fleetgate_e2e::HttpClient::new(gw.addr);

    // Every request is copied, head and body; the client gets the real
    // answer.
    let r = client.get("copied.test", "/cart?id=3").expect("request");
    assert_eq!((r.status, r.body.as_str()), (200, "web"));
    let copy = copies.recv_timeout(Duration::from_secs(5)).expect("a copy");
    assert!(copy.starts_with("GET /cart?id=3 HTTP/1.1\r\n"), "{copy}");
    assert!(
        copy.to_ascii_lowercase()
            .contains("\r\nhost: copied.test\r\n"),
        "{copy}"
    );
    let r = client
        .request("POST", "copied.test", "/orders", &[], "hello")
        .expect("request");
    assert_eq!(r.status, 200);
    let copy = copies.recv_timeout(Duration::from_secs(5)).expect("a copy");
    assert!(copy.starts_with("POST /orders HTTP/1.1\r\n"), "{copy}");
    assert!(
        copy.to_ascii_lowercase()
            .contains("\r\ncontent-length: 5\r\n"),
        "{copy}"
    );
    assert!(copy.ends_with("\r\n\r\nhello"), "{copy}");

    // A request the route's access rules refuse is not copied.
    let r = client.get("guarded.test", "/").expect("request");
    assert_eq!(r.status, 403);
    assert!(
        copies.recv_timeout(Duration::from_millis(500)).is_err(),
        "a refused request was mirrored"
    );

    // nginx's mirror-target: a URL with variables, its own Host, no body.
    let r = client
        .request("POST", "url.test", "/a?b=1", &[], "secret")
        .expect("request");
    assert_eq!(r.status, 200);
    let copy = url_copies
        .recv_timeout(Duration::from_secs(5))
        .expect("a copy");
    assert!(copy.starts_with("POST /a?b=1 HTTP/1.1\r\n"), "{copy}");
    let lower = copy.to_ascii_lowercase();
    assert!(lower.contains("\r\nhost: shadow.internal\r\n"), "{copy}");
    assert!(
        !copy.contains("secret") && !lower.contains("content-length"),
        "{copy}"
    );

    // mirror-percentage 50: every other request.
    for _ in 0..10 {
        assert_eq!(client.get("half.test", "/").expect("request").status, 200);
    }
    let mut n = 0;
    while half_copies.recv_timeout(Duration::from_millis(500)).is_ok() {
        n += 1;
    }
    assert_eq!(n, 5);

    // A mirror that hangs or is gone costs the client nothing.
    for host in ["slow.test", "dead.test"] {
        for _ in 0..5 {
            let started = std::time::Instant::now();
            let r = client.get(host, "/").expect("request");
            assert_eq!((r.status, r.body.as_str()), (200, "web"), "{host}");
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{host}: {:?}",
                started.elapsed()
            );
        }
    }
}

#[test]
fn least_request_steers_away_from_a_slow_endpoint() {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // An endpoint that answers every request after 300 ms.
    let slow = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_addr = slow.local_addr().unwrap();
    let slow_count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&slow_count);
    std::thread::spawn(move || {
        for stream in slow.incoming().flatten() {
            let counted = Arc::clone(&counted);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                counted.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(300));
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow",
                );
            });
        }
    });
    let fast = Backend::start("fast");
    let dir = TempDir::new("least-request");
    let listen = listen_addr();
    let ingress = host_ingress("lr", "lr.test", "mixed", None, &["load-balance: ewma"]);
    let text = format!(
        "{}\n[[service]]\nnamespace = \"gateway-demo\"\nname = \"mixed\"\nport = 80\n\
         endpoints = [{{ cluster = \"c7fb82a1\", address = \"{slow_addr}\" }}, {{ cluster = \"cd3007b2\", address = \"{}\" }}]\n{}",
        header(listen, ""),
        fast.addr,
        manifests(&[dir.write("ingresses.yaml", &ingress)]),
    );
    let gw = Gateway::start(&dir.write("gw.toml", &text), listen);
    // 8 clients, 10 requests each: round robin would send 40 to the slow
    // endpoint; least request sends it a request only while it has none
    // (or fewer than the fast one) in flight.
    let addr = gw.addr;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = fleetgate_e2e::HttpClient::new(addr);
                (0..10)
                    .map(|_| c.get("lr.test", "/").map(|r| r.status).unwrap_or(0))
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|t| t.join().expect("client"))
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let to_slow = slow_count.load(Ordering::Relaxed);
    eprintln!("least request: {to_slow} of 80 requests went to the slow endpoint");
    assert!(
        (1..28).contains(&to_slow),
        "{to_slow} of 80 went to the slow endpoint"
    );
}
