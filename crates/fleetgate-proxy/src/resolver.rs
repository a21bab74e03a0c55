//! Host names of services the gateway calls itself (an external
//! authentication service, a mirror URL), resolved through the system
//! resolver and kept for a while, so that a request does not wait on DNS
//! each time. Endpoints of `[[service]]`s are addresses and never come
//! here.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pingora_core::{Error, ErrorType, Result};

/// How long a resolved address is used.
pub const DNS_TTL: Duration = Duration::from_secs(30);
/// How long a lookup may take.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// How many names are kept (the cache starts over beyond).
const DNS_ENTRIES: usize = 1024;

/// A small cache of resolved names.
#[derive(Debug, Default)]
pub struct Resolver {
    resolved: Mutex<HashMap<(String, u16), (Instant, SocketAddr)>>,
}

impl Resolver {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address of `host`: an IP as written, else the system resolver's
    /// first answer, kept for [`DNS_TTL`]. The lock is never held across
    /// the lookup.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let now = Instant::now();
        {
            let cache = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, addr)) = cache.get(&(host.to_string(), port)) {
                if now.duration_since(*at) < DNS_TTL {
                    return Ok(*addr);
                }
            }
        }
        let lookup = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, port)));
        let addr = lookup
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                Error::explain(ErrorType::ConnectNoRoute, format!("cannot resolve {host}"))
            })?;
        let mut cache = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= DNS_ENTRIES {
            cache.clear();
        }
        cache.insert((host.to_string(), port), (now, addr));
        Ok(addr)
    }
}
