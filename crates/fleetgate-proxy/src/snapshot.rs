//! The routing snapshot: everything a request needs, compiled at load.
//!
//! A [`Snapshot`] is immutable. The proxy reads the current one through an
//! atomic pointer ([`SharedSnapshot`]); a reload compiles a new one off the
//! request path and swaps it in, so a request always sees one whole
//! configuration, never a mix.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use fleetgate_canary::CanaryRoute;
use fleetgate_config::{Config, ConfigErrors};
use fleetgate_ingress::RouteTable;
use fleetgate_pool::{EndpointPool, HealthCheckConfig, HealthChecks};
use fleetgate_tls::CertStore;

use crate::target::Target;

/// A route: the Ingress that defined it and where its requests go.
#[derive(Debug)]
pub struct Route {
    /// `namespace/name` of the Ingress.
    pub ingress: Arc<str>,
    /// The main destination.
    pub main: Target,
    /// Canary Ingresses bound to this route, if any.
    pub canaries: Option<CanaryRoute<Target>>,
    /// Answer plain HTTP with a 308 to `https://` (`ssl-redirect` on a TLS
    /// host, or `force-ssl-redirect`).
    pub https_redirect: bool,
}

/// What compiling a configuration found, for `check`, logs and status.
#[derive(Debug, Clone, Default)]
pub struct CompileReport {
    /// Served Ingresses (`namespace/name`).
    pub served: Vec<String>,
    /// Ignored Ingresses and why.
    pub ignored: Vec<(String, String)>,
    /// Canary Ingresses (or some of their rules) with no main route to bind
    /// to, and which rule.
    pub unbound: Vec<(String, String)>,
    /// Problems that do not stop the gateway (e.g. a backend Service that is
    /// not declared: its routes answer 503).
    pub warnings: Vec<String>,
}

impl CompileReport {
    /// One human line per ignored Ingress, unbound canary and warning.
    pub fn lines(&self) -> Vec<String> {
        let ignored = self
            .ignored
            .iter()
            .map(|(name, reason)| format!("ignored: Ingress {name}: {reason}"));
        let unbound = self.unbound.iter().map(|(name, what)| {
            format!("unbound canary: Ingress {name}: no main route for {what}")
        });
        let warnings = self.warnings.iter().map(|w| format!("warning: {w}"));
        ignored.chain(unbound).chain(warnings).collect()
    }
}

/// One compiled configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with each reload.
    pub generation: u64,
    /// The route table; targets index [`Snapshot::routes`].
    pub table: RouteTable<u32>,
    /// Route destinations.
    pub routes: Vec<Route>,
    /// One pool per Service port.
    pub pools: Vec<Arc<EndpointPool>>,
    /// Per pool: its active health-check settings (for reuse decisions).
    pub pool_health: Vec<Option<HealthCheckConfig>>,
    /// Per pool: retries and upgraded-connection settings (its protocol is
    /// in the pool's options).
    pub pool_policy: Vec<PoolPolicy>,
    /// The certificates of the TLS listeners.
    pub certificates: Arc<CertStore>,
    /// How requests are judged at the edge (scheme, trusted proxies).
    pub edge: EdgePolicy,
    /// What compiling found.
    pub report: CompileReport,
}

/// What a request needs to know about the pool it was sent to.
#[derive(Debug, Clone)]
pub struct PoolPolicy {
    /// Extra tries after a failure.
    pub retries: u32,
    /// Whether requests with non-idempotent methods are retried after a
    /// failure before any response byte.
    pub retry_non_idempotent: bool,
    /// Idle limit of an upgraded (WebSocket) connection, each direction.
    pub websocket_idle_timeout: Duration,
    /// Most requests in flight to one endpoint (0: no limit).
    pub max_requests_per_endpoint: u32,
    /// How long a request waits for room under that limit before a 503.
    pub queue_timeout: Duration,
}

/// How the gateway judges where a request came from.
#[derive(Debug, Clone, Default)]
pub struct EdgePolicy {
    /// Peers whose `X-Forwarded-Proto` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How request paths are normalised before routing.
    pub path_normalization: fleetgate_config::PathNormalization,
}

impl EdgePolicy {
    /// Whether `peer` is a trusted proxy.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

/// The current snapshot, swappable under load.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

impl Snapshot {
    /// Compiles `config` (see the `compile` module). Errors are configuration
    /// errors only compiling can find (two canaries on one route in the
    /// `nginx` flavour).
    pub fn compile(
        config: &Config,
        generation: u64,
        checks: &Arc<HealthChecks>,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigErrors> {
        crate::compile::compile(config, generation, checks, previous)
    }
}
