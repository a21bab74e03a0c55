//! End to end: every key of `[gateway]`, `[admin]` and `[log]` either
//! applies on reload or is refused out loud, naming it. One gateway takes
//! a reload per key (the key changed, everything else as at the start),
//! then a reload back. The test also asks the binary which keys those
//! sections accept, so a new key without a row here fails it.

use fleetgate_e2e::config::{header_with_admin, listen_addr, manifests, seed, service};
use fleetgate_e2e::tls::TestCert;
use fleetgate_e2e::{fleetgate_cli, free_port, Backend, Gateway, TempDir};
use serde_json::Value;

/// What a reload that changes the key must do.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Applies,
    /// Refused; the message names this setting.
    Refused(&'static str),
}
use Outcome::*;

/// `(section, key, the TOML that changes it, outcome)`. `{admin}`,
/// `{port}`, `{cert}`, `{key}` and `{dir}` are filled in.
const CHANGES: &[(&str, &str, &str, Outcome)] = &[
    ("gateway", "name", "name = \"another-name\"", Refused("[gateway] name")),
    ("gateway", "listen", "listen = [\"127.0.0.1:{port}\", \"127.0.0.1:{free}\"]", Refused("[gateway] listen")),
    ("gateway", "listen_tls", "listen_tls = [\"127.0.0.1:{free}\"]\ndefault_certificate = { cert = \"{cert}\", key = \"{key}\" }", Refused("[gateway] listen_tls")),
    ("gateway", "h2c", "h2c = true", Refused("[gateway] h2c")),
    ("gateway", "default_certificate", "default_certificate = { cert = \"{cert}\", key = \"{key}\" }", Applies),
    ("gateway", "ssl_redirect_default", "ssl_redirect_default = true", Applies),
    ("gateway", "trusted_proxies", "trusted_proxies = [\"10.0.0.0/8\"]", Applies),
    ("gateway", "forwarded_headers", "forwarded_headers = \"overwrite\"", Refused("[gateway] forwarded_headers")),
    ("gateway", "request_id", "request_id = false", Applies),
    ("gateway", "limit_status", "limit_status = 429", Applies),
    ("gateway", "unsupported_annotations", "unsupported_annotations = \"warn\"", Applies),
    ("gateway", "keepalive_timeout", "keepalive_timeout = \"10s\"", Refused("[gateway] keepalive_timeout")),
    ("gateway", "keepalive_requests", "keepalive_requests = 10", Refused("[gateway] keepalive_requests")),
    ("gateway", "client_header_timeout", "client_header_timeout = \"5s\"", Refused("[gateway] client limits")),
    ("gateway", "client_body_timeout", "client_body_timeout = \"5s\"", Refused("[gateway] client limits")),
    ("gateway", "client_max_header_size", "client_max_header_size = \"64k\"", Refused("[gateway] client limits")),
    ("gateway", "client_max_body_size", "client_max_body_size = \"1m\"", Refused("[gateway] client limits")),
    ("gateway", "max_connections", "max_connections = 100", Refused("[gateway] client limits")),
    ("gateway", "path_normalization", "path_normalization = \"none\"", Applies),
    ("gateway", "merge_slashes", "merge_slashes = false", Applies),
    ("gateway", "ingress_class", "ingress_class = \"another-class\"", Applies),
    ("gateway", "default_class", "default_class = true", Applies),
    ("gateway", "advertise", "advertise = [\"192.0.2.1\"]", Applies),
    ("gateway", "default_backend", "default_backend = { namespace = \"gateway-demo\", service = \"service1\", port = 80 }", Applies),
    ("gateway", "canary_flavour", "canary_flavour = \"nginx\"", Applies),
    ("gateway", "canary_seed", "canary_seed = 7", Refused("[gateway] canary_seed")),
    ("gateway", "zone", "zone = \"zone-a\"", Applies),
    ("gateway", "threads", "threads = 2", Refused("[gateway] threads")),
    ("gateway", "grace_period", "grace_period = \"3s\"", Refused("[gateway] grace_period")),
    ("gateway", "shutdown_delay", "shutdown_delay = \"1s\"", Refused("[gateway] shutdown_delay")),
    ("gateway", "runtime_dir", "runtime_dir = \"{dir}\"", Refused("[gateway] runtime_dir")),
    ("admin", "listen", "listen = \"127.0.0.1:{free}\"", Refused("[admin] listen")),
    ("admin", "drain_file", "drain_file = \"{dir}/drains.json\"", Applies),
    ("log", "access", "access = \"{dir}/access.log\"", Applies),
    ("log", "format", "format = \"json\"", Applies),
    // Last: from here on the admin API needs the token.
    ("admin", "token", "token = \"reload-token-0123456789abcdef\"", Applies),
];

/// The keys `section` accepts, from the error for an unknown key in it.
fn accepted_keys(dir: &TempDir, section: &str) -> Vec<String> {
    let path = dir.write(
        &format!("probe-{section}.toml"),
        &format!("[{section}]\nzz_not_a_key = 1\n"),
    );
    let (code, text) = fleetgate_cli(&["check", "-c", path.to_str().unwrap()]);
    assert_ne!(code, 0, "{text}");
    // "expected `a`, `b` or `c`" (or "expected `a` or `b`"): every
    // back-quoted word of the rest of the line.
    let list = text
        .split(", expected ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no key list: {text}"));
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Builds the configuration with `changed` (section, TOML) in place of
/// the start's value.
struct Configs {
    listen: std::net::SocketAddr,
    admin: u16,
    body: String,
}

impl Configs {
    fn text(&self, changed: Option<(&str, &str)>) -> String {
        let mut head = header_with_admin(self.listen, self.admin, "");
        let mut log = String::from("[log]\naccess = \"off\"\n");
        if let Some((section, toml)) = changed {
            let key = toml.split(" =").next().unwrap_or_default();
            match section {
                "gateway" => {
                    // Keys the harness's header sets are replaced, others added.
                    let existing = head
                        .lines()
                        .find(|l| l.starts_with(&format!("{key} = ")))
                        .map(str::to_string);
                    head = match existing {
                        Some(line) if head.find("[admin]") > head.find(&line) => {
                            head.replacen(&line, toml, 1)
                        }
                        _ => head.replacen("\n[admin]", &format!("{toml}\n\n[admin]"), 1),
                    };
                }
                "admin" => {
                    let line = format!("listen = \"127.0.0.1:{}\"", self.admin);
                    head = if key == "listen" {
                        head.replacen(&line, toml, 1)
                    } else {
                        head.replacen(&line, &format!("{line}\n{toml}"), 1)
                    };
                }
                _ => {
                    log = if key == "access" {
                        format!("[log]\n{toml}\n")
                    } else {
                        format!("{log}{toml}\n")
                    };
                }
            }
        }
        format!("{head}{}{log}", self.body)
    }
}

/// `/status` once it records `reloads` reloads in all.
fn after_reloads(gw: &Gateway, token: Option<&str>, reloads: u64) -> Value {
    gw.wait_status(token, &format!("{reloads} reload(s)"), |s| {
        s["reloads"]["ok"].as_u64().unwrap_or(0) + s["reloads"]["failed"].as_u64().unwrap_or(0)
            >= reloads
    })
}

#[test]
fn every_gateway_admin_and_log_key_applies_on_reload_or_is_refused_by_name() {
    let a = Backend::start("cluster-demo-1");
    let listen = listen_addr();
    let admin = free_port();
    let dir = TempDir::new("reload-keys");
    let cert = TestCert::new(&dir, "reload", &["reload.test"]);
    let configs = Configs {
        listen,
        admin,
        body: format!(
            "{}{}",
            service("service1", 80, &[("c7fb82a1", &a)], ""),
            manifests(&[seed("ingress-demo.yaml")])
        ),
    };
    let path = dir.write("gw.toml", &configs.text(None));
    let gw = Gateway::start(&path, listen);

    for section in ["gateway", "admin", "log"] {
        for key in accepted_keys(&dir, section) {
            assert!(
                CHANGES
                    .iter()
                    .any(|(s, k, _, _)| *s == section && *k == key),
                "[{section}] {key} has no reload row in this test"
            );
        }
    }

    let mut reloads = 0;
    let mut token: Option<&str> = None;
    let fill = |toml: &str| {
        toml.replace("{port}", &listen.port().to_string())
            .replace("{free}", &free_port().to_string())
            .replace("{cert}", &cert.cert_file.display().to_string())
            .replace("{key}", &cert.key_file.display().to_string())
            .replace("{dir}", &dir.path().display().to_string())
    };
    for (section, key, toml, outcome) in CHANGES {
        let toml = fill(toml);
        std::fs::write(&path, configs.text(Some((section, &toml)))).unwrap();
        gw.signal("HUP");
        reloads += 1;
        if *key == "token" {
            token = Some("reload-token-0123456789abcdef");
        }
        let status = after_reloads(&gw, token, reloads);
        let last = &status["last_reload"];
        match outcome {
            Applies => assert_eq!(last["ok"], true, "[{section}] {key}: {last}"),
            Refused(name) => {
                assert_eq!(last["ok"], false, "[{section}] {key}: {last}");
                let message = last["message"].as_str().unwrap_or("");
                assert!(
                    message.contains(name) && message.contains("nothing was applied"),
                    "[{section}] {key}: {message}"
                );
            }
        }
        if *key == "token" {
            break;
        }
        // Back to the start's settings, which must reload.
        std::fs::write(&path, configs.text(None)).unwrap();
        gw.signal("HUP");
        reloads += 1;
        let status = after_reloads(&gw, token, reloads);
        assert_eq!(
            status["last_reload"]["ok"], true,
            "back from {key}: {status}"
        );
    }
}
