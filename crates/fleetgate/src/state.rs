//! The running gateway's state, shared by the proxy, reloads and the admin API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use arc_swap::ArcSwap;
use fleetgate_config::{Cluster, Config, Disposition};
use fleetgate_pool::HealthChecks;
use fleetgate_proxy::{GatewayStats, Metrics, SharedSnapshot};
use fleetgate_tls::SniResolver;
use serde::Serialize;

/// What the running gateway keeps of its configuration once compiled: the
/// parts the admin API, reloads and file watching read. The full model
/// (every annotation, rule and path) lives on in the snapshot as compiled
/// routes; keeping it too would double the memory of a large configuration.
#[derive(Debug, Clone)]
pub struct ConfigView {
    /// The TOML file.
    pub source: PathBuf,
    /// `[gateway] name`.
    pub name: String,
    /// Gateway listeners.
    pub listen: Vec<SocketAddr>,
    /// TLS listeners.
    pub listen_tls: Vec<SocketAddr>,
    /// `[admin] drain_file`: where drains are kept across restarts.
    pub drain_file: Option<PathBuf>,
    /// Addresses reported in Ingress status.
    pub advertise: Vec<String>,
    /// Clusters.
    pub clusters: Vec<Cluster>,
    /// `namespace/name:port` of every Service port (the names of their pools).
    pub service_keys: HashSet<String>,
    /// Manifest files read.
    pub manifest_files: Vec<PathBuf>,
    /// EndpointSlice files read (`files` clusters).
    pub endpoint_files: Vec<PathBuf>,
    /// Every Ingress read.
    pub ingresses: Vec<IngressView>,
}

/// One Ingress, as the admin API reports it.
#[derive(Debug, Clone)]
pub struct IngressView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Class, if any.
    pub class: Option<String>,
    /// Served or ignored.
    pub disposition: Disposition,
    /// Whether it is a canary.
    pub canary: bool,
    /// Its subset, displayed.
    pub subset: Option<String>,
    /// How many path rules it has.
    pub paths: usize,
    /// Where it was defined.
    pub origin: String,
    /// Its source address lists, displayed: `(allow, deny)`.
    pub source_ranges: Option<(Vec<String>, Vec<String>)>,
    /// What the review of its annotations reported.
    pub warnings: Vec<String>,
}

impl IngressView {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl From<&Config> for ConfigView {
    fn from(c: &Config) -> Self {
        ConfigView {
            source: c.source.clone(),
            name: c.gateway.name.clone(),
            listen: c.gateway.listen.clone(),
            listen_tls: c.gateway.listen_tls.clone(),
            drain_file: c.admin.drain_file.clone(),
            advertise: c.gateway.advertise.clone(),
            clusters: c.clusters.clone(),
            service_keys: c.services.iter().map(|s| s.key()).collect(),
            manifest_files: c.manifest_files.clone(),
            endpoint_files: fleetgate_config::slice_files(&c.clusters)
                .map(Into::into)
                .collect(),
            ingresses: c
                .ingresses
                .iter()
                .map(|i| IngressView {
                    namespace: i.namespace.clone(),
                    name: i.name.clone(),
                    class: i.class.clone(),
                    disposition: i.disposition.clone(),
                    canary: i.canary.is_some(),
                    subset: i.subset.as_ref().map(|s| s.to_string()),
                    paths: i.rules.iter().map(|r| r.paths.len()).sum(),
                    origin: i.origin.to_string(),
                    source_ranges: i.source_ranges.as_ref().map(|r| {
                        let text = |nets: &[_]| nets.iter().map(ToString::to_string).collect();
                        (text(&r.allow), text(&r.deny))
                    }),
                    warnings: i.warnings.clone(),
                })
                .collect(),
        }
    }
}

/// Lifecycle of the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "message")]
pub enum Phase {
    /// Starting: listeners not answering yet.
    Pending,
    /// Listeners up, no Ingress served.
    Running,
    /// Listeners up and at least one Ingress served.
    Listening,
    /// Something prevents serving.
    Failed(String),
}

impl Phase {
    /// The state name.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Listening => "Listening",
            Phase::Failed(_) => "Failed",
        }
    }
}

/// The outcome of the last reload.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadRecord {
    /// When it happened (RFC 3339).
    pub at: String,
    /// Whether the new configuration is serving.
    pub ok: bool,
    /// The generation serving after it.
    pub generation: u64,
    /// What happened: counts, or the errors.
    pub message: String,
    /// How long loading and compiling took, in milliseconds.
    pub duration_ms: f64,
}

/// The settings read once, at start: what every reload is compared with
/// (see `reload::start_only_changes`).
pub struct StartSettings {
    /// `[gateway]`.
    pub gateway: fleetgate_config::Gateway,
    /// `[admin]`.
    pub admin: fleetgate_config::Admin,
}

impl StartSettings {
    /// What `config` starts with.
    pub fn of(config: &Config) -> Self {
        StartSettings {
            gateway: config.gateway.clone(),
            admin: config.admin.clone(),
        }
    }
}

/// Everything the admin API and reloads share.
pub struct GatewayState {
    /// What is kept of the current configuration (matches the snapshot).
    pub config: ArcSwap<ConfigView>,
    /// Current routing snapshot.
    pub snapshot: SharedSnapshot,
    /// Health registries and endpoint state, kept across reloads.
    pub checks: Arc<HealthChecks>,
    /// Request counters.
    pub stats: Arc<GatewayStats>,
    /// Request-path metrics.
    pub metrics: Metrics,
    /// The TLS listeners' certificate selection; a reload swaps its store.
    pub certificates: SniResolver,
    phase: Mutex<Phase>,
    generation: AtomicU64,
    last_reload: Mutex<Option<ReloadRecord>>,
    /// The last [`RECENT_RELOADS`] reloads, oldest first.
    recent_reloads: Mutex<std::collections::VecDeque<ReloadRecord>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    /// Serialises reloads (SIGHUP and file watching may race) and
    /// endpoint updates.
    pub reload_lock: Mutex<()>,
    /// Serialises drains, so that the drain file and the flags agree.
    pub drain_lock: Mutex<()>,
    /// Live endpoint sources and what they found.
    pub discovery: crate::discovery::Discovery,
    /// The hub cluster the Ingresses come from, if any.
    pub hub: crate::hub::Hub,
    /// The settings the process started with.
    pub started_with: StartSettings,
    /// The admin token and log settings, which reloads apply in place.
    pub live: crate::live_settings::LiveSettings,
    /// Binary upgrades: starts the new process, keeps the last attempt.
    pub upgrader: Arc<crate::upgrade::Upgrader>,
}

/// Reloads kept for `/status` and the status page.
const RECENT_RELOADS: usize = 10;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GatewayState {
    /// State for generation 1.
    // Each argument is one shared part made at start; bundling them into
    // another struct would only move the list.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: ConfigView,
        snapshot: SharedSnapshot,
        checks: Arc<HealthChecks>,
        stats: Arc<GatewayStats>,
        metrics: Metrics,
        discovery: crate::discovery::Discovery,
        hub: crate::hub::Hub,
        started_with: StartSettings,
        live: crate::live_settings::LiveSettings,
        upgrader: Arc<crate::upgrade::Upgrader>,
    ) -> Arc<GatewayState> {
        let certificates = SniResolver::new(Arc::clone(&snapshot.load().certificates));
        Arc::new(GatewayState {
            certificates,
            config: ArcSwap::from_pointee(config),
            snapshot,
            checks,
            stats,
            metrics,
            phase: Mutex::new(Phase::Pending),
            generation: AtomicU64::new(1),
            last_reload: Mutex::new(None),
            recent_reloads: Mutex::new(std::collections::VecDeque::new()),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            reload_lock: Mutex::new(()),
            drain_lock: Mutex::new(()),
            discovery,
            hub,
            started_with,
            live,
            upgrader,
        })
    }

    /// The lifecycle phase.
    pub fn phase(&self) -> Phase {
        lock(&self.phase).clone()
    }

    /// Sets the phase, logging a change.
    pub fn set_phase(&self, phase: Phase) {
        let mut p = lock(&self.phase);
        if *p != phase {
            log::info!("gateway state: {} -> {}", p.name(), phase.name());
            *p = phase;
        }
    }

    /// Running or Listening, from whether any Ingress is served now; leaves
    /// Pending and Failed alone.
    pub fn refresh_phase(&self) {
        let served = !self.snapshot.load().report.served.is_empty();
        let current = self.phase();
        if matches!(current, Phase::Running | Phase::Listening) {
            self.set_phase(if served {
                Phase::Listening
            } else {
                Phase::Running
            });
        }
    }

    /// Marks the listeners up.
    pub fn listeners_up(&self) {
        let served = !self.snapshot.load().report.served.is_empty();
        self.set_phase(if served {
            Phase::Listening
        } else {
            Phase::Running
        });
    }

    /// The serving configuration generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Records a reload.
    pub fn record_reload(&self, ok: bool, generation: u64, message: String, took: Duration) {
        if ok {
            self.generation.store(generation, Ordering::Relaxed);
            self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reloads_failed.fetch_add(1, Ordering::Relaxed);
        }
        let record = ReloadRecord {
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            ok,
            generation: self.generation(),
            message,
            duration_ms: took.as_secs_f64() * 1000.0,
        };
        {
            let mut recent = lock(&self.recent_reloads);
            if recent.len() == RECENT_RELOADS {
                recent.pop_front();
            }
            recent.push_back(record.clone());
        }
        *lock(&self.last_reload) = Some(record);
    }

    /// The last few reloads, newest first.
    pub fn recent_reloads(&self) -> Vec<ReloadRecord> {
        lock(&self.recent_reloads).iter().rev().cloned().collect()
    }

    /// Records that generation `generation` serves after an endpoint
    /// update (not a reload).
    pub fn advance_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::Relaxed);
    }

    /// The last reload, if any.
    pub fn last_reload(&self) -> Option<ReloadRecord> {
        lock(&self.last_reload).clone()
    }

    /// (successful, failed) reloads.
    pub fn reload_counts(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }
}
