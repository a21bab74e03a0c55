//! Active health checks, one probe per endpoint address per interval.
//!
//! Every distinct health-check setting gets one probe view: a
//! `pingora-load-balancing` [`HealthRegistry`] with that check and a single
//! membership of every address that needs it. Pools (Services, subsets,
//! reloaded copies of both) read health from the view ([`HealthView`])
//! instead of registering with it, so an address is probed once per
//! interval however many pools list it, and adding a pool costs nothing
//! the registry has to reconcile. After compiling a configuration the
//! caller hands over the full address list ([`HealthChecks::set_targets`]),
//! one membership update per setting; health of addresses that stay is
//! kept. A single background service ([`HealthSupervisor`]) runs every
//! view's passes on its interval, picking up views added by a reload. Health
//! flips are logged with the address and the new state, so operators can
//! see why traffic moved.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_core::{Error, ErrorType};
use pingora_http::ResponseHeader;
use pingora_load_balancing::discovery::ServiceDiscovery;
use pingora_load_balancing::health_check::{HealthObserve, HttpHealthCheck, TcpHealthCheck};
use pingora_load_balancing::{Backend, Backends, HealthRegistry};

use pingora_core::upstreams::peer::{HttpPeer, PeerOptions};

use crate::cluster::Clusters;
use crate::outlier::{EndpointState, HealthEpoch};
use crate::pool::poll_once;
use crate::protocol::{make_peer, PeerProtocol};
use crate::timeouts::UpstreamTimeouts;

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Probe {
    /// `GET path` with `Host: host`; healthy when the status is within
    /// `expect` (inclusive).
    Http {
        /// Request path.
        path: String,
        /// Host header.
        host: String,
        /// Accepted status range, inclusive.
        expect: (u16, u16),
    },
    /// A TCP connect.
    Tcp,
}

/// Active health-check settings of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheckConfig {
    /// The probe.
    pub probe: Probe,
    /// Time between probes of one address.
    pub interval: Duration,
    /// Connect and response timeout of a probe.
    pub timeout: Duration,
    /// Consecutive successes that make an unhealthy endpoint healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures that make a healthy endpoint unhealthy.
    pub unhealthy_threshold: u32,
    /// The Service's protocol: probes of TLS upstreams handshake (and
    /// verify) as requests do, HTTP probes of HTTP/2 upstreams use HTTP/2.
    pub protocol: PeerProtocol,
}

impl HealthCheckConfig {
    fn describe(&self) -> String {
        match &self.probe {
            Probe::Http { path, expect, .. } => format!(
                "http {path} expecting {}-{} every {:?}",
                expect.0, expect.1, self.interval
            ),
            Probe::Tcp => format!("tcp every {:?}", self.interval),
        }
    }
}

/// Makes a probe's peer template speak the Service's protocol.
fn apply_protocol(
    options: &mut PeerOptions,
    sni: &mut String,
    protocol: &PeerProtocol,
    host: &str,
) {
    let unused = SocketAddr::from(([0, 0, 0, 0], 1));
    let template = make_peer(unused, &UpstreamTimeouts::default(), protocol);
    options.alpn = template.options.alpn;
    options.verify_cert = template.options.verify_cert;
    options.verify_hostname = template.options.verify_hostname;
    options.ca = template.options.ca;
    if let Some(t) = &protocol.tls {
        *sni = if t.sni.is_empty() {
            host.to_string()
        } else {
            t.sni.clone()
        };
    }
}

/// Per-address endpoint state, shared with the flip observers.
type States = Arc<Mutex<HashMap<SocketAddr, Arc<EndpointState>>>>;

/// Logs health flips, counts them, and lifts outlier ejections of endpoints
/// that active checks find healthy again (as Envoy does by default).
struct FlipLogger {
    what: String,
    flips: Arc<AtomicU64>,
    states: States,
    epoch: HealthEpoch,
}

#[async_trait]
impl HealthObserve for FlipLogger {
    async fn observe(&self, target: &Backend, healthy: bool) {
        self.flips.fetch_add(1, Ordering::Relaxed);
        self.epoch.bump();
        if healthy {
            if let Some(addr) = target.addr.as_inet() {
                if let Some(state) = lock(&self.states).get(addr) {
                    state.uneject();
                }
            }
            log::info!(
                "health: endpoint {} is healthy again ({})",
                target.addr,
                self.what
            );
        } else {
            log::warn!(
                "health: endpoint {} is unhealthy ({}): traffic moves away",
                target.addr,
                self.what
            );
        }
    }
}

/// The addresses a probe view checks, replaced wholesale after each compile.
#[derive(Default)]
struct ProbeTargets(Arc<ArcSwap<BTreeSet<Backend>>>);

#[async_trait]
impl ServiceDiscovery for ProbeTargets {
    async fn discover(&self) -> pingora_core::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        Ok((BTreeSet::clone(&self.0.load()), HashMap::new()))
    }
}

/// The probe backend of an address (weight is irrelevant to probing).
fn probe_backend(addr: SocketAddr) -> Backend {
    Backend {
        addr: PingoraAddr::Inet(addr),
        weight: 1,
        ext: Default::default(),
    }
}

/// A registry with active checks, its membership, and its schedule.
struct Checked {
    config: HealthCheckConfig,
    registry: Arc<HealthRegistry>,
    view: Backends,
    targets: Arc<ArcSwap<BTreeSet<Backend>>>,
    running: AtomicBool,
    next_due: Mutex<Instant>,
}

/// Read access to the health of the addresses one health-check setting
/// probes. Cheap to clone; shared by every pool with that setting.
#[derive(Clone)]
pub struct HealthView(Arc<Checked>);

impl std::fmt::Debug for HealthView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HealthView").field(&self.0.config).finish()
    }
}

impl HealthView {
    /// Whether `address` passes the checks. An address the view does not
    /// probe (yet) counts as healthy: probing decides, not membership.
    pub fn is_healthy(&self, address: SocketAddr) -> bool {
        let backend = probe_backend(address);
        if self.0.view.ready(&backend) {
            return true;
        }
        !self.0.targets.load().contains(&backend)
    }

    /// The settings it probes with.
    pub fn config(&self) -> &HealthCheckConfig {
        &self.0.config
    }
}

/// The gateway-wide set of health registries and per-address endpoint
/// state. Create one per process and keep it across reloads.
pub struct HealthChecks {
    peers: Mutex<HashMap<(SocketAddr, UpstreamTimeouts, PeerProtocol), Arc<HttpPeer>>>,
    checked: Mutex<Vec<Arc<Checked>>>,
    states: States,
    flips: Arc<AtomicU64>,
    epoch: HealthEpoch,
    clusters: Clusters,
}

impl std::fmt::Debug for HealthChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecks").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl HealthChecks {
    /// An empty set.
    pub fn new() -> Arc<HealthChecks> {
        let epoch = HealthEpoch::new();
        Arc::new(HealthChecks {
            peers: Mutex::new(HashMap::new()),
            checked: Mutex::new(Vec::new()),
            states: Arc::new(Mutex::new(HashMap::new())),
            flips: Arc::new(AtomicU64::new(0)),
            clusters: Clusters::new(epoch.clone()),
            epoch,
        })
    }

    /// Every cluster's live state (drains, requests in flight), shared by
    /// every pool built over these checks and kept across reloads.
    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    /// The health view for pools with these settings, created on first use
    /// and shared after. It probes nothing until [`HealthChecks::set_targets`]
    /// names its addresses.
    pub fn health_view(&self, config: &HealthCheckConfig) -> HealthView {
        let mut checked = lock(&self.checked);
        if let Some(c) = checked.iter().find(|c| &c.config == config) {
            return HealthView(Arc::clone(c));
        }
        let registry = Arc::new(HealthRegistry::new());
        let logger = FlipLogger {
            what: config.describe(),
            flips: Arc::clone(&self.flips),
            states: Arc::clone(&self.states),
            epoch: self.epoch.clone(),
        };
        match &config.probe {
            Probe::Http { path, host, expect } => {
                let mut hc = HttpHealthCheck::new(host, config.protocol.tls.is_some());
                let template = &mut hc.peer_template;
                apply_protocol(
                    &mut template.options,
                    &mut template.sni,
                    &config.protocol,
                    host,
                );
                hc.consecutive_success = config.healthy_threshold.max(1) as usize;
                hc.consecutive_failure = config.unhealthy_threshold.max(1) as usize;
                hc.peer_template.options.connection_timeout = Some(config.timeout);
                hc.peer_template.options.read_timeout = Some(config.timeout);
                hc.peer_template.options.write_timeout = Some(config.timeout);
                if let Ok(uri) = path.parse() {
                    hc.req.set_uri(uri);
                }
                let (lo, hi) = *expect;
                hc.validator = Some(Box::new(move |resp: &ResponseHeader| {
                    let status = resp.status.as_u16();
                    if (lo..=hi).contains(&status) {
                        Ok(())
                    } else {
                        Error::e_explain(
                            ErrorType::CustomCode("unexpected status", status),
                            "health check",
                        )
                    }
                }));
                hc.health_changed_callback = Some(Box::new(logger));
                registry.set_health_check(Box::new(hc));
            }
            Probe::Tcp => {
                let mut hc = match &config.protocol.tls {
                    Some(t) => TcpHealthCheck::new_tls(&t.sni),
                    None => TcpHealthCheck::new(),
                };
                let template = &mut hc.peer_template;
                apply_protocol(
                    &mut template.options,
                    &mut template.sni,
                    &config.protocol,
                    "",
                );
                hc.consecutive_success = config.healthy_threshold.max(1) as usize;
                hc.consecutive_failure = config.unhealthy_threshold.max(1) as usize;
                hc.peer_template.options.connection_timeout = Some(config.timeout);
                hc.health_changed_callback = Some(Box::new(logger));
                registry.set_health_check(hc);
            }
        }
        let targets = ProbeTargets::default();
        let shared_targets = Arc::clone(&targets.0);
        let view = Backends::new_with_health_registry(Box::new(targets), Arc::clone(&registry));
        let c = Arc::new(Checked {
            config: config.clone(),
            registry,
            view,
            targets: shared_targets,
            running: AtomicBool::new(false),
            next_due: Mutex::new(Instant::now()),
        });
        checked.push(Arc::clone(&c));
        HealthView(c)
    }

    /// Sets the addresses each health-check setting probes, typically every
    /// address of a freshly compiled configuration; settings not named stop
    /// probing. Health of addresses that stay is kept.
    pub fn set_targets(&self, wanted: &HashMap<HealthCheckConfig, BTreeSet<SocketAddr>>) {
        let checked: Vec<Arc<Checked>> = lock(&self.checked).clone();
        for c in checked {
            let addrs: BTreeSet<Backend> = wanted
                .get(&c.config)
                .map(|set| set.iter().map(|a| probe_backend(*a)).collect())
                .unwrap_or_default();
            if **c.targets.load() == addrs {
                continue;
            }
            c.targets.store(Arc::new(addrs));
            // Our discovery answers at once; drive the update in place.
            if !matches!(poll_once(c.view.update(|_| {})), Some(Ok(()))) {
                log::error!("health: probe membership update did not complete at once");
            }
        }
    }

    /// Forgets the peers and endpoint state of addresses not in `keep`
    /// (those no pool of the newest configuration lists), so that pods
    /// that come and go (every rollout brings new addresses) do not
    /// accumulate. Pools that still hold them (requests in flight on an
    /// older configuration) keep their own references; an address that
    /// comes back later starts afresh.
    pub fn retain_addresses(&self, keep: &std::collections::HashSet<SocketAddr>) {
        lock(&self.peers).retain(|(address, _, _), _| keep.contains(address));
        lock(&self.states).retain(|address, _| keep.contains(address));
    }

    /// How many addresses have peers or state kept (for tests and memory
    /// accounting).
    pub fn tracked_addresses(&self) -> usize {
        let mut all: std::collections::HashSet<SocketAddr> =
            lock(&self.states).keys().copied().collect();
        all.extend(lock(&self.peers).keys().map(|(a, _, _)| *a));
        all.len()
    }

    /// The upstream peer for `address` with `timeouts`, one per pair,
    /// shared by every pool (a peer is some 700 bytes; a large
    /// configuration lists the same pods in many pools).
    pub fn peer(
        &self,
        address: SocketAddr,
        timeouts: &UpstreamTimeouts,
        protocol: &PeerProtocol,
    ) -> Arc<HttpPeer> {
        Arc::clone(
            lock(&self.peers)
                .entry((address, *timeouts, protocol.clone()))
                .or_insert_with(|| Arc::new(make_peer(address, timeouts, protocol))),
        )
    }

    /// The shared live state of an endpoint address (outlier detection).
    pub fn endpoint_state(&self, address: SocketAddr) -> Arc<EndpointState> {
        Arc::clone(
            lock(&self.states)
                .entry(address)
                .or_insert_with(|| Arc::new(EndpointState::with_epoch(self.epoch.clone()))),
        )
    }

    /// The epoch that every health flip, ejection and return of these
    /// endpoints moves.
    pub fn epoch(&self) -> &HealthEpoch {
        &self.epoch
    }

    /// Health flips observed so far, over all registries.
    pub fn flips(&self) -> u64 {
        self.flips.load(Ordering::Relaxed)
    }

    /// The background service that runs the checks. Add it to the Pingora
    /// server once.
    pub fn supervisor(self: &Arc<Self>) -> HealthSupervisor {
        HealthSupervisor {
            checks: Arc::clone(self),
        }
    }
}

/// Runs every registry's health-check passes on its interval.
pub struct HealthSupervisor {
    checks: Arc<HealthChecks>,
}

/// A health-check pass in progress: when dropped, normally or while a
/// panic unwinds, it marks the pass over and schedules the next one.
struct RunningPass {
    checked: Arc<Checked>,
    started: Instant,
}

impl Drop for RunningPass {
    fn drop(&mut self) {
        let c = &self.checked;
        let next = self
            .started
            .checked_add(c.config.interval)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        *lock(&c.next_due) = next;
        c.running.store(false, Ordering::Relaxed);
    }
}

/// The text of a panic payload, when it is one.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

/// How often the supervisor looks for due passes and new registries.
const TICK: Duration = Duration::from_millis(25);

#[async_trait]
impl BackgroundService for HealthSupervisor {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let due: Vec<Arc<Checked>> = {
                let now = Instant::now();
                lock(&self.checks.checked)
                    .iter()
                    .filter(|c| !c.running.load(Ordering::Relaxed) && *lock(&c.next_due) <= now)
                    .cloned()
                    .collect()
            };
            for c in due {
                c.running.store(true, Ordering::Relaxed);
                let pass = RunningPass {
                    checked: Arc::clone(&c),
                    started: Instant::now(),
                };
                let handle = tokio::spawn(async move {
                    pass.checked.registry.run_health_check(true).await;
                    drop(pass);
                });
                // A pass that panics must not stop the checks: the pass
                // guard schedules the next one as it unwinds, and this
                // says what happened.
                tokio::spawn(async move {
                    if let Err(e) = handle.await {
                        if e.is_panic() {
                            log::error!(
                                "health: a check pass panicked ({}); the next pass runs on schedule",
                                panic_message(e.into_panic())
                            );
                        }
                    }
                });
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Endpoint, EndpointPool, PoolOptions};
    use std::net::TcpListener;

    fn tcp_config() -> HealthCheckConfig {
        HealthCheckConfig {
            probe: Probe::Tcp,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            healthy_threshold: 1,
            unhealthy_threshold: 1,
            protocol: crate::PeerProtocol::default(),
        }
    }

    /// Three pools list one address (a Service, a subset, a reloaded copy);
    /// one pass connects to it exactly once.
    #[test]
    fn an_address_shared_by_pools_is_probed_once_per_pass() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let shared = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let checks = HealthChecks::new();
        let view = checks.health_view(&tcp_config());
        let pool = |name: &str, weight: u32| {
            EndpointPool::with_shared_state(
                name,
                vec![Arc::new(Endpoint::new(shared, "a").with_weight(weight))],
                PoolOptions::default(),
                Some(view.clone()),
                &checks,
            )
        };
        let pools = [pool("svc", 1), pool("svc[subset]", 3), pool("svc", 1)];
        let mut wanted = HashMap::new();
        wanted.insert(
            tcp_config(),
            pools
                .iter()
                .flat_map(|p| p.endpoints().map(|e| e.address))
                .collect(),
        );
        checks.set_targets(&wanted);

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(view.0.registry.run_health_check(true));
        let mut accepted = 0;
        while listener.accept().is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, 1);
        assert!(pools.iter().all(|p| p.is_healthy(shared)));
    }

    /// An address whose probe fails is unhealthy in every pool that lists it.
    #[test]
    fn a_failed_probe_marks_the_address_down_everywhere() {
        let dead = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let checks = HealthChecks::new();
        let view = checks.health_view(&tcp_config());
        let a = EndpointPool::with_shared_state(
            "a",
            vec![Arc::new(Endpoint::new(dead, "x"))],
            PoolOptions::default(),
            Some(view.clone()),
            &checks,
        );
        let b = EndpointPool::with_shared_state(
            "b",
            vec![Arc::new(Endpoint::new(dead, "x"))],
            PoolOptions::default(),
            Some(view.clone()),
            &checks,
        );
        assert!(a.is_healthy(dead), "not probed yet: healthy");
        let mut wanted = HashMap::new();
        wanted.insert(tcp_config(), BTreeSet::from([dead]));
        checks.set_targets(&wanted);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(view.0.registry.run_health_check(true));
        assert!(!a.is_healthy(dead) && !b.is_healthy(dead));
        assert!(a.select().is_none());
        assert_eq!(checks.flips(), 1);
    }
}
