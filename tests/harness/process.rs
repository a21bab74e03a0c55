//! Spawning and supervising the real binaries.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::client::HttpClient;

/// Path of a workspace binary, next to the test executable's directory.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// Runs `fleetgate <args...>` to completion: its exit code, and its stdout
/// then stderr.
pub fn fleetgate_cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(bin_path("fleetgate"))
        .args(args)
        .output()
        .expect("run fleetgate");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A loopback port that was free a moment ago, for a listener the test
/// configures before the process binds it.
///
/// Ports come from 20000-31999, below the kernel's ephemeral range (32768
/// and up), so a backend bound to port 0 can never take a port handed out
/// here but not yet bound; a counter keeps the tests of one process apart.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = 20_000 + (std::process::id() as usize % 12) * 1_000;
    for _ in 0..1_000 {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 1_000;
        let port = u16::try_from(port).expect("port in range");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {base}-{}", base + 999)
}

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "fleetgate-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `web-demo` backend.
pub struct Backend {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it answers.
    pub name: String,
}

impl Backend {
    /// Starts a backend answering `name` on an ephemeral loopback port.
    pub fn start(name: &str) -> Backend {
        Backend::start_on(name, "127.0.0.1:0")
    }

    /// Starts a backend on a given address.
    pub fn start_on(name: &str, listen: &str) -> Backend {
        let child = Command::new(bin_path("web-demo"))
            .args(["--listen", listen, "--name", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn web-demo");
        Backend::adopt(child, name)
    }

    /// The backend's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes over a spawned web-demo (any flags) whose stdout is piped,
    /// waiting for its readiness line.
    pub fn adopt(mut child: Child, name: &str) -> Backend {
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read readiness line");
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("web-demo did not report its address: {line:?}"));
        Backend {
            child,
            addr,
            name: name.to_string(),
        }
    }

    /// Kills the backend at once (like a pod dying).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `listen` address of the `[admin]` table of a config file.
fn admin_addr(config: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(config).ok()?;
    let admin = text.split("[admin]").nth(1)?;
    let line = admin
        .lines()
        .find(|l| l.trim_start().starts_with("listen"))?;
    line.split('"').nth(1)?.parse().ok()
}

/// A running `fleetgate run`.
pub struct Gateway {
    child: Child,
    /// The first HTTP listener.
    pub addr: SocketAddr,
    /// The admin API listener, when the config names one.
    pub admin: Option<SocketAddr>,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
}

impl Gateway {
    /// Starts `fleetgate run -c config`, listening on `addr` (which the
    /// config must name), and waits until it answers HTTP.
    pub fn start(config: &Path, addr: SocketAddr) -> Gateway {
        Gateway::start_with(config, addr, &[], &[])
    }

    /// Like [`Gateway::start`], with extra arguments to `run` and extra
    /// environment variables.
    pub fn start_with(
        config: &Path,
        addr: SocketAddr,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Gateway {
        Gateway::start_binary(&bin_path("fleetgate"), config, addr, args, env)
    }

    /// Like [`Gateway::start_with`], running the fleetgate binary at
    /// `binary` (a copy, which a test may then replace).
    pub fn start_binary(
        binary: &Path,
        config: &Path,
        addr: SocketAddr,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Gateway {
        let admin = admin_addr(config);
        let log = config.with_extension("log");
        let out = std::fs::File::create(&log).expect("create log");
        let err = out.try_clone().expect("clone log");
        let child = Command::new(binary)
            .args(["run", "-c"])
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn fleetgate");
        let mut gw = Gateway {
            child,
            addr,
            admin,
            log,
        };
        gw.wait_ready();
        gw
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("fleetgate exited early ({status}):\n{}", self.log_text());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                let mut c = HttpClient::new(self.addr);
                // The admin listener is a service of its own, which may
                // come up a moment after the gateway's.
                let admin_up = self.admin.is_none_or(|a| {
                    TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok()
                });
                if admin_up && c.get("fleetgate-readiness.invalid", "/").is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("fleetgate did not become ready:\n{}", self.log_text());
    }

    /// `GET path` on the admin API (with a bearer token if given).
    pub fn admin_get(&self, path: &str, token: Option<&str>) -> crate::client::Response {
        let admin = self.admin.expect("config has an [admin] listen");
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        HttpClient::new(admin)
            .request("GET", "127.0.0.1", path, &headers, "")
            .unwrap_or_else(|e| panic!("admin request {path}: {e}\n{}", self.log_text()))
    }

    /// `GET path` on the admin API (no token), parsed as JSON.
    pub fn admin_json(&self, path: &str) -> serde_json::Value {
        let r = self.admin_get(path, None);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
    }

    /// Waits until `/status` reports `generation` (or later) as serving;
    /// panics after 10 s.
    pub fn wait_generation(&self, generation: u64) {
        self.wait_status(None, &format!("generation {generation}"), |s| {
            s["generation"].as_u64() >= Some(generation)
        });
    }

    /// `/status` (with a bearer token if given) once `done` holds for it;
    /// panics after 10 s, saying it never became `what`.
    pub fn wait_status(
        &self,
        token: Option<&str>,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.admin_get("/status", token);
            if r.status == 200 {
                let status: serde_json::Value = serde_json::from_str(&r.body)
                    .unwrap_or_else(|e| panic!("/status: {e}: {}", r.body));
                if done(&status) {
                    return status;
                }
            }
            assert!(
                Instant::now() < deadline,
                "/status never {what}: {r:?}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The endpoints `/services` lists for pool `pool` (e.g.
    /// `ns/name:80`), by address; empty when there is no such pool.
    pub fn pool_endpoints(
        &self,
        pool: &str,
    ) -> std::collections::BTreeMap<String, serde_json::Value> {
        let services = self.admin_json("/services");
        services["pools"]
            .as_array()
            .and_then(|pools| pools.iter().find(|p| p["name"] == pool))
            .and_then(|p| p["endpoints"].as_array())
            .map(|eps| {
                eps.iter()
                    .map(|e| (e["address"].as_str().unwrap_or("").to_string(), e.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `check` holds of pool `pool`'s endpoints (`what` names
    /// it for the panic after 15 s); returns how long it took.
    pub fn wait_pool_endpoints(
        &self,
        pool: &str,
        what: &str,
        check: impl Fn(&std::collections::BTreeMap<String, serde_json::Value>) -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let eps = self.pool_endpoints(pool);
            if check(&eps) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "never {what}: {eps:?}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The `/status` entry of cluster `id`.
    pub fn cluster_status(&self, id: &str) -> serde_json::Value {
        let status = self.admin_json("/status");
        status["clusters"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("no cluster {id}: {status}"))
    }

    /// Waits until `check` holds of cluster `id`'s `/status` entry (`what`
    /// names it for the panic after 15 s); returns the entry.
    pub fn wait_cluster(
        &self,
        id: &str,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let c = self.cluster_status(id);
            if check(&c) {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "cluster {id} never {what}: {c}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `count` lines containing `needle`; returns
    /// how long that took, or `None` after `limit`.
    pub fn wait_for_log(&self, needle: &str, count: usize, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self
                .log_text()
                .lines()
                .filter(|l| l.contains(needle))
                .count()
                >= count
            {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Sends a signal to the gateway.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the gateway to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
