//! Ingress annotations against the real binary: an access restriction
//! fleetgate does not implement keeps the configuration from loading
//! (unless `unsupported_annotations = "warn"`), other unsupported ones are
//! reported by `check`, `/ingresses` and the log (and fail `check
//! --strict`), and the source address lists admit and refuse clients,
//! also behind a trusted proxy.

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
        &["auth-url: http://auth.internal/check", "limit-rps: \"10\""],
    );
    let (path, _) = config(&dir, &web, "", &ingress);
    let (code, _, err) = check(&path, &[]);
    assert_eq!(code, 1, "{err}");
    for needle in [
        "Ingress gateway-demo/guarded",
        "ingresses.yaml:",
        "metadata.annotations[\"nginx.ingress.kubernetes.io/auth-url\"]",
        "metadata.annotations[\"nginx.ingress.kubernetes.io/limit-rps\"]",
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
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth-url"));

    // Told to, the gateway serves it without them, and says so.
    let (path, listen) = config(&dir, &web, "unsupported_annotations = \"warn\"", &ingress);
    let (code, out, err) = check(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("warning: Ingress gateway-demo/guarded")
            && out.contains("auth-url\"] restricts access and is not implemented by fleetgate: served WITHOUT it"),
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
        &["rewrite-target: /$2", "made-up-option: \"on\""],
    );
    let (path, listen) = config(&dir, &web, "", &ingress);
    let (code, out, err) = check(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rewrite-target\"] is not implemented by fleetgate; ignored"),
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
    assert!(gw.log_text().contains("rewrite-target"));
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
