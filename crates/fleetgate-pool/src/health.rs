//! Active health checks, one probe per endpoint address per interval.
//!
//! Pools (Services, subsets, reloaded copies of both) that use the same
//! health-check settings share one [`HealthRegistry`], keyed by address, so
//! an address is probed once per interval however many pools list it. A
//! single background service ([`HealthSupervisor`]) runs every registry's
//! passes on its own interval; registries added by a reload are picked up
//! without restarting anything. Health flips are logged with the address
//! and the new state, so operators can see why traffic moved.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_core::{Error, ErrorType};
use pingora_http::ResponseHeader;
use pingora_load_balancing::health_check::{HealthObserve, HttpHealthCheck, TcpHealthCheck};
use pingora_load_balancing::{Backend, HealthRegistry};

use crate::outlier::EndpointState;
use crate::pool::new_health_registry;

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

/// Per-address endpoint state, shared with the flip observers.
type States = Arc<Mutex<HashMap<SocketAddr, Arc<EndpointState>>>>;

/// Logs health flips, counts them, and lifts outlier ejections of endpoints
/// that active checks find healthy again (as Envoy does by default).
struct FlipLogger {
    what: String,
    flips: Arc<AtomicU64>,
    states: States,
}

#[async_trait]
impl HealthObserve for FlipLogger {
    async fn observe(&self, target: &Backend, healthy: bool) {
        self.flips.fetch_add(1, Ordering::Relaxed);
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

/// A registry with active checks, and its schedule.
struct Checked {
    config: HealthCheckConfig,
    registry: Arc<HealthRegistry>,
    running: AtomicBool,
    next_due: Mutex<Instant>,
}

/// The gateway-wide set of health registries and per-address endpoint
/// state. Create one per process and keep it across reloads.
pub struct HealthChecks {
    unchecked: Arc<HealthRegistry>,
    checked: Mutex<Vec<Arc<Checked>>>,
    states: States,
    flips: Arc<AtomicU64>,
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
        Arc::new(HealthChecks {
            unchecked: new_health_registry(),
            checked: Mutex::new(Vec::new()),
            states: Arc::new(Mutex::new(HashMap::new())),
            flips: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The registry for pools with these settings (`None`: no active checks,
    /// endpoints count as healthy unless ejected). Registries are created on
    /// first use and shared after.
    pub fn registry_for(&self, config: Option<&HealthCheckConfig>) -> Arc<HealthRegistry> {
        let Some(config) = config else {
            return Arc::clone(&self.unchecked);
        };
        let mut checked = lock(&self.checked);
        if let Some(c) = checked.iter().find(|c| &c.config == config) {
            return Arc::clone(&c.registry);
        }
        let registry = new_health_registry();
        let logger = FlipLogger {
            what: config.describe(),
            flips: Arc::clone(&self.flips),
            states: Arc::clone(&self.states),
        };
        match &config.probe {
            Probe::Http { path, host, expect } => {
                let mut hc = HttpHealthCheck::new(host, false);
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
                let mut hc = TcpHealthCheck::new();
                hc.consecutive_success = config.healthy_threshold.max(1) as usize;
                hc.consecutive_failure = config.unhealthy_threshold.max(1) as usize;
                hc.peer_template.options.connection_timeout = Some(config.timeout);
                hc.health_changed_callback = Some(Box::new(logger));
                registry.set_health_check(hc);
            }
        }
        checked.push(Arc::new(Checked {
            config: config.clone(),
            registry: Arc::clone(&registry),
            running: AtomicBool::new(false),
            next_due: Mutex::new(Instant::now()),
        }));
        registry
    }

    /// The shared live state of an endpoint address (outlier detection).
    pub fn endpoint_state(&self, address: SocketAddr) -> Arc<EndpointState> {
        Arc::clone(lock(&self.states).entry(address).or_default())
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
                tokio::spawn(async move {
                    let started = Instant::now();
                    c.registry.run_health_check(true).await;
                    *lock(&c.next_due) = started + c.config.interval;
                    c.running.store(false, Ordering::Relaxed);
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
    use pingora_load_balancing::health_check::HealthCheck;

    /// Counts probes per address.
    struct Counting(Arc<Mutex<HashMap<String, usize>>>);

    #[async_trait]
    impl HealthCheck for Counting {
        async fn check(&self, target: &Backend) -> pingora_core::Result<()> {
            *lock(&self.0).entry(target.addr.to_string()).or_default() += 1;
            Ok(())
        }

        fn health_threshold(&self, _success: bool) -> usize {
            1
        }
    }

    #[test]
    fn an_address_shared_by_pools_is_probed_once_per_pass() {
        let registry = new_health_registry();
        let counts = Arc::new(Mutex::new(HashMap::new()));
        registry.set_health_check(Box::new(Counting(Arc::clone(&counts))));
        let shared: std::net::SocketAddr = "127.0.0.1:18001".parse().unwrap();
        let other: std::net::SocketAddr = "127.0.0.1:18002".parse().unwrap();
        // A Service pool, a subset pool with a different weight, and a copy
        // kept by a reload: three views of the same address.
        let whole = EndpointPool::new(
            "svc",
            vec![
                Arc::new(Endpoint::new(shared, "a")),
                Arc::new(Endpoint::new(other, "b")),
            ],
            &registry,
            PoolOptions::default(),
        );
        let subset = EndpointPool::new(
            "svc[subset]",
            vec![Arc::new(Endpoint::new(shared, "a").with_weight(3))],
            &registry,
            PoolOptions::default(),
        );
        let reloaded = EndpointPool::new(
            "svc",
            vec![Arc::new(Endpoint::new(shared, "a"))],
            &registry,
            PoolOptions::default(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(registry.run_health_check(true));
        let counts = lock(&counts).clone();
        assert_eq!(counts.get(&shared.to_string()), Some(&1), "{counts:?}");
        assert_eq!(counts.get(&other.to_string()), Some(&1), "{counts:?}");
        drop((whole, subset, reloaded));
    }
}
