//! A real DNS server for tests: dnsmasq from Debian (`dnsmasq-base`),
//! answering on a loopback port from a hosts directory the test rewrites.
//!
//! Names under `.test` that no hosts file lists get NXDOMAIN (dnsmasq is
//! authoritative for the domain, with no upstream), answers carry a TTL of
//! one second, and a hosts file written into the directory is read again
//! at once (dnsmasq watches it).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::free_port;

/// A running dnsmasq.
pub struct Dnsmasq {
    child: Child,
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    hosts: PathBuf,
    args: Vec<String>,
}

fn binary() -> &'static str {
    if Path::new("/usr/sbin/dnsmasq").exists() {
        "/usr/sbin/dnsmasq"
    } else {
        "dnsmasq"
    }
}

impl Dnsmasq {
    /// Starts dnsmasq on a free loopback port, answering from the hosts
    /// files in `hosts_dir`, plus `extra` options (e.g. `--srv-host=...`).
    pub fn start(hosts_dir: &Path, extra: &[&str]) -> Dnsmasq {
        let port = free_port();
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = spawn(port, hosts_dir, &args);
        let d = Dnsmasq {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            hosts: hosts_dir.to_path_buf(),
            args,
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_err() {
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not start on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops it at once (a DNS server dying).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and hosts directory.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.addr.port(), &self.hosts, &self.args);
        self.wait_ready();
    }

    /// Replaces hosts file `name` in its directory in one step.
    pub fn write_hosts(&self, name: &str, text: &str) {
        let aside = self.hosts.join(format!(".{name}.tmp"));
        std::fs::write(&aside, text).expect("write hosts file");
        std::fs::rename(&aside, self.hosts.join(name)).expect("rename hosts file");
    }
}

fn spawn(port: u16, hosts_dir: &Path, extra: &[String]) -> Child {
    Command::new(binary())
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=root",
            "--local=/test/",
            "--local-ttl=1",
            "--log-facility=-",
            "--pid-file=",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--hostsdir={}", hosts_dir.display()))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dnsmasq (Debian package dnsmasq-base)")
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.kill();
    }
}
