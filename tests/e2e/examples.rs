//! The embedding examples, built by CI and run here as real processes in
//! front of real web-demo backends: a plain Pingora proxy around the
//! router (`embed`), the gateway with modules of its own
//! (`custom_module`) and with an endpoint picker of its own
//! (`custom_picker`).

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleetgate_e2e::{bin_path, free_port, Backend, HttpClient};

/// A running example, killed on drop.
struct Example {
    child: Child,
    addr: SocketAddr,
}

impl Example {
    /// Starts `examples/<name>` listening on a free port with `args` after
    /// the address, and waits until it accepts connections.
    fn start(name: &str, args: &[String]) -> Example {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(bin_path(&format!("examples/{name}")))
            .arg(addr.to_string())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn example {name}: {e}"));
        let mut example = Example { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = example.child.try_wait() {
                panic!("example {name} exited early: {status}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return example;
            }
            assert!(Instant::now() < deadline, "example {name} never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn addrs(backends: &[&Backend]) -> Vec<String> {
    backends.iter().map(|b| b.addr.to_string()).collect()
}

#[test]
fn the_embedded_router_matches_plans_picks_and_fails_over() {
    let mut zone_a = Backend::start("zone-a-pod");
    let zone_b = Backend::start("zone-b-pod");
    let canary = Backend::start("canary-pod");
    let example = Example::start("embed", &addrs(&[&zone_a, &zone_b, &canary]));
    let mut client = HttpClient::new(example.addr);

    let main = client.tally("shop.example.com", "/cart", &[], 20);
    assert_eq!(
        main.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["zone-a-pod".to_string(), "zone-b-pod".to_string()]),
        "both clusters serve the main route: {main:?}"
    );
    let canaried = client.tally("shop.example.com", "/cart", &[("x-canary", "always")], 10);
    assert_eq!(canaried, HashMap::from([("canary-pod".to_string(), 10)]));
    assert_eq!(client.get("other.example.com", "/").unwrap().status, 404);

    // A dead endpoint: every request is retried on the other cluster.
    zone_a.kill();
    let after = client.tally("shop.example.com", "/cart", &[], 20);
    assert_eq!(after, HashMap::from([("zone-b-pod".to_string(), 20)]));
}

#[test]
fn a_route_module_answers_401_and_a_gateway_module_stamps_responses() {
    // A body of 20 bytes or more: Pingora does not compress shorter ones.
    let backend = Backend::start("api-pod-answering-at-some-length");
    let example = Example::start(
        "custom_module",
        &[backend.addr.to_string(), "k3y-for-tests".to_string()],
    );
    let mut client = HttpClient::new(example.addr);

    let denied = client.get("api.example.com", "/private").unwrap();
    assert_eq!(denied.status, 401);
    assert_eq!(denied.body, "401 Unauthorized: send x-api-key\n");
    assert_eq!(denied.header("www-authenticate"), Some("ApiKey"));
    assert_eq!(denied.header("server"), Some("fleetgate"));
    assert_eq!(
        denied.header("x-stamped-by"),
        None,
        "the gateway's own answer"
    );

    let allowed = client
        .request(
            "GET",
            "api.example.com",
            "/private",
            &[("x-api-key", "k3y-for-tests")],
            "",
        )
        .unwrap();
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.body.trim(), "api-pod-answering-at-some-length");
    assert_eq!(allowed.header("x-stamped-by"), Some("custom_module"));
    assert_eq!(
        allowed.header("server"),
        Some("fleetgate"),
        "built-ins still run"
    );

    let public = client.get("api.example.com", "/public").unwrap();
    assert_eq!(public.status, 200, "the key guards one route only");
    assert_eq!(public.header("x-stamped-by"), Some("custom_module"));
    assert_eq!(public.header("content-encoding"), None);

    // The Pingora compression module the example hands to the gateway.
    let gzipped = client
        .request(
            "GET",
            "api.example.com",
            "/public",
            &[("accept-encoding", "gzip")],
            "",
        )
        .unwrap();
    assert_eq!(gzipped.status, 200);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_ne!(
        gzipped.body.trim(),
        "api-pod-answering-at-some-length",
        "the body is compressed"
    );
}

#[test]
fn a_user_picker_keeps_each_user_on_one_backend_and_moves_them_when_it_dies() {
    let mut backends: Vec<Backend> = (0..3)
        .map(|i| Backend::start(&format!("pod-{i}")))
        .collect();
    let args: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    let example = Example::start("custom_picker", &args);
    let mut client = HttpClient::new(example.addr);

    let users: Vec<String> = (0..30).map(|i| format!("user-{i}")).collect();
    let mut home: HashMap<String, String> = HashMap::new();
    for user in &users {
        let seen = client.tally("app.example.com", "/", &[("x-user", user)], 5);
        assert_eq!(seen.len(), 1, "{user} sticks to one backend: {seen:?}");
        home.insert(user.clone(), seen.into_keys().next().unwrap());
    }
    let used: BTreeSet<&String> = home.values().collect();
    assert!(
        used.len() >= 2,
        "30 users spread over the backends: {used:?}"
    );

    let victim = home["user-0"].trim().to_string();
    let index = backends.iter().position(|b| b.name == victim).unwrap();
    backends[index].kill();
    for user in &users {
        let seen = client.tally("app.example.com", "/", &[("x-user", user)], 3);
        assert_eq!(
            seen.len(),
            1,
            "{user}: no failed request, one backend: {seen:?}"
        );
        let now = seen.into_keys().next().unwrap();
        if home[user].trim() == victim {
            assert_ne!(now.trim(), victim, "{user} moved off the dead backend");
        } else {
            assert_eq!(now, home[user], "{user} stays where it was");
        }
    }
}
