//! `bare-pingora`: the smallest useful Pingora proxy, the floor the framework
//! allows in the side-by-side benchmarks (`bench/run.sh`).
//!
//! Usage: `bare-pingora [--threads N] LISTEN ORIGIN [ORIGIN...]`, e.g.
//! `bare-pingora 127.0.0.1:8401 127.0.0.1:8501 127.0.0.1:8502`. Every request
//! goes to the next origin in round robin, over Pingora's upstream
//! keep-alive pool. No routing, no headers added, no logging.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_proxy::{ProxyHttp, Session};

/// Proxies every request to one of `origins`, in turn.
struct RoundRobin {
    origins: Vec<SocketAddr>,
    next: AtomicUsize,
}

#[async_trait]
impl ProxyHttp for RoundRobin {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.origins.len();
        Ok(Box::new(HttpPeer::new(
            self.origins[i],
            false,
            String::new(),
        )))
    }
}

fn usage() -> ! {
    eprintln!("usage: bare-pingora [--threads N] LISTEN ORIGIN [ORIGIN...]");
    std::process::exit(2);
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut threads = 1;
    if args.first().map(String::as_str) == Some("--threads") {
        threads = args
            .get(1)
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| usage());
        args.drain(..2);
    }
    if args.len() < 2 {
        usage();
    }
    let listen = args[0].clone();
    let origins: Vec<SocketAddr> = args[1..]
        .iter()
        .map(|a| a.parse().unwrap_or_else(|_| usage()))
        .collect();

    let conf = ServerConf {
        threads,
        pid_file: format!("/tmp/bare-pingora-{}.pid", std::process::id()),
        upgrade_sock: format!("/tmp/bare-pingora-{}.sock", std::process::id()),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let proxy = RoundRobin {
        origins,
        next: AtomicUsize::new(0),
    };
    let mut service = pingora_proxy::http_proxy_service(&Arc::clone(&server.configuration), proxy);
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
