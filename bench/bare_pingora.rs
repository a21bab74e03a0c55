//! `bare-pingora`: the smallest useful Pingora proxy, the floor the framework
//! allows in the side-by-side benchmarks (`bench/run.sh`).
//!
//! Usage: `bare-pingora [--threads N] [--tls CERT KEY] LISTEN ORIGIN [ORIGIN...]`,
//! e.g. `bare-pingora 127.0.0.1:8401 127.0.0.1:8501 127.0.0.1:8502`. Every
//! request goes to the next origin in round robin, over Pingora's upstream
//! keep-alive pool. No routing, no headers added, no logging.
//!
//! By default LISTEN is plain TCP (HTTP/1.1). With `--tls CERT KEY` (PEM
//! certificate chain and private key) LISTEN terminates TLS instead, with
//! Pingora's rustls backend (TLS 1.2 and 1.3, its default session cache) and
//! ALPN `h2` then `http/1.1`: the floor for `bench/edge.sh`. Origins are
//! always plain HTTP/1.1.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pingora_core::listeners::tls::TlsSettings;
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
    eprintln!("usage: bare-pingora [--threads N] [--tls CERT KEY] LISTEN ORIGIN [ORIGIN...]");
    std::process::exit(2);
}

/// The command line.
struct Args {
    threads: usize,
    /// PEM certificate chain and private key: terminate TLS on `listen`.
    tls: Option<(String, String)>,
    listen: String,
    origins: Vec<SocketAddr>,
}

/// Parses the command line; prints the usage and exits on a bad one.
fn parse_args() -> Args {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut threads = 1;
    let mut tls = None;
    // Options come first, in any order.
    loop {
        match args.first().map(String::as_str) {
            Some("--threads") => {
                threads = args
                    .get(1)
                    .and_then(|t| t.parse().ok())
                    .unwrap_or_else(|| usage());
                args.drain(..2);
            }
            Some("--tls") => {
                if args.len() < 3 {
                    usage();
                }
                tls = Some((args[1].clone(), args[2].clone()));
                args.drain(..3);
            }
            _ => break,
        }
    }
    if args.len() < 2 {
        usage();
    }
    let origins = args[1..]
        .iter()
        .map(|a| a.parse().unwrap_or_else(|_| usage()))
        .collect();
    Args {
        threads,
        tls,
        listen: args[0].clone(),
        origins,
    }
}

/// TLS settings for the listener: `cert` and `key` as PEM files, HTTP/2 and
/// HTTP/1.1 by ALPN. Exits with a message if either file has no PEM of its
/// kind (Pingora would otherwise panic when the listener starts).
fn tls_settings(cert: &str, key: &str) -> TlsSettings {
    let checked = TlsSettings::intermediate(cert, key).and_then(|mut settings| {
        // `intermediate` only records the paths; these read the files.
        settings.set_certificate_chain_file(cert)?;
        settings.set_private_key_file(key)?;
        Ok(settings)
    });
    let mut settings = checked.unwrap_or_else(|e| {
        eprintln!("bare-pingora: --tls {cert} {key}: {e}");
        std::process::exit(2);
    });
    settings.enable_h2();
    settings
}

fn main() {
    let args = parse_args();
    let conf = ServerConf {
        threads: args.threads,
        pid_file: format!("/tmp/bare-pingora-{}.pid", std::process::id()),
        upgrade_sock: format!("/tmp/bare-pingora-{}.sock", std::process::id()),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let proxy = RoundRobin {
        origins: args.origins,
        next: AtomicUsize::new(0),
    };
    let mut service = pingora_proxy::http_proxy_service(&Arc::clone(&server.configuration), proxy);
    match &args.tls {
        Some((cert, key)) => {
            service.add_tls_with_settings(&args.listen, None, tls_settings(cert, key))
        }
        None => service.add_tcp(&args.listen),
    }
    server.add_service(service);
    server.run_forever();
}
