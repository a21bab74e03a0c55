//! End to end: the admin status page in a real headless Chromium (Debian's
//! `chromium`, driven over the DevTools protocol by
//! `tests/clients/status_page.py`). With an admin token set, the page asks
//! for it and shows nothing until it is typed in; then it renders the
//! gateway's state, clusters and routes, and shows a cluster going down
//! within one refresh of `/status` saying so. The screenshot is kept in
//! `target/test-artifacts/status-page.png`.

use std::path::PathBuf;

use fleetgate_e2e::config::{header_with_admin, listen_addr, manifests, seed, service};
use fleetgate_e2e::python::python_client;
use fleetgate_e2e::{free_port, Backend, Gateway, HttpClient, TempDir};

#[test]
fn the_status_page_asks_for_the_token_then_shows_a_cluster_going_down_within_one_refresh() {
    let c1 = Backend::start("cluster-demo-1");
    let c2 = Backend::start("cluster-demo-2");
    let listen = listen_addr();
    let admin = free_port();
    let dir = TempDir::new("status-page");
    let checks = "[service.health_check]\nkind = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nunhealthy_threshold = 1\n";
    let token = "page-token-0123456789abcdef";
    let config = format!(
        "{}{}{}",
        header_with_admin(listen, admin, "").replacen(
            &format!("listen = \"127.0.0.1:{admin}\"\n"),
            &format!("listen = \"127.0.0.1:{admin}\"\ntoken = \"{token}\"\n"),
            1
        ),
        service(
            "service1",
            80,
            &[("c7fb82a1", &c1), ("cd3007b2", &c2)],
            checks
        ),
        manifests(&[seed("ingress-demo.yaml")])
    );
    let gw = Gateway::start(&dir.write("gw.toml", &config), listen);
    let mut c = HttpClient::new(gw.addr);
    for _ in 0..20 {
        assert_eq!(c.get("example.com", "/svc1").unwrap().status, 200);
    }
    // The page's files need no token (they hold no data); its data does.
    let page = gw.admin_get("/", None);
    assert_eq!(page.status, 200);
    assert_eq!(gw.admin_get("/ui/page.js", None).status, 200);
    assert_eq!(gw.admin_get("/traffic", None).status, 401);
    assert_eq!(gw.admin_get("/traffic", Some(token)).status, 200);
    assert!(page
        .header("content-security-policy")
        .is_some_and(|p| p.contains("default-src 'none'")));
    let screenshot =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/status-page.png");
    let shown = python_client(
        "status_page.py",
        &[
            "--admin",
            &format!("127.0.0.1:{admin}"),
            "--cluster",
            "cd3007b2",
            "--kill-pid",
            &c2.pid().to_string(),
            "--screenshot",
            screenshot.to_str().unwrap(),
            "--token",
            token,
        ],
    );
    assert_eq!(shown["title"], "fleetgate status", "{shown}");
    assert_eq!(shown["data_hidden_until_token"], true, "{shown}");
    assert_eq!(shown["state"], "Listening", "{shown}");
    assert_eq!(shown["clusters"], 2, "{shown}");
    assert!(shown["routes"].as_u64() >= Some(1), "{shown}");
    // 20 requests, round robin over the two clusters: half each, all main.
    let route = shown["route_row"].as_str().unwrap_or("");
    assert!(
        route.contains("gateway-demo/web-demo")
            && route.contains("100.0 %")
            && route.contains("c7fb82a1 50.0 %, cd3007b2 50.0 %"),
        "{shown}"
    );
    let down = shown["down_row"].as_str().unwrap();
    assert!(
        down.contains("cd3007b2") && down.contains("0/1 down"),
        "{shown}"
    );
    assert!(
        shown["refreshes_after_status"].as_u64() <= Some(1),
        "the page took more than one refresh: {shown}"
    );
    assert!(shown["screenshot_bytes"].as_u64() > Some(10_000), "{shown}");
    assert!(screenshot.exists());
}
