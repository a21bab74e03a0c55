//! Live endpoint sources (`dns` and `kubernetes` clusters) and applying
//! what they find.
//!
//! The sources run on a thread of their own (a small tokio runtime) and
//! write into an [`EndpointStore`]. One applier thread waits for the store
//! to change and builds a new snapshot from the configuration it keeps (the
//! one serving) and the store's data, swapping it in like a reload does:
//! pools whose endpoints did not change are kept, and state lives per
//! address, so unchanged endpoints keep their health, ejections and
//! connections.
//!
//! Coalescing: a build starts when the store changes, but never sooner than
//! [`MIN_APPLY_SPACING`] (or three times the last build's time, if longer)
//! after the previous build started; every change that arrives meanwhile
//! goes into that one build. A storm of changes therefore takes at most
//! about a third of one core for builds and never touches the request
//! path, which only ever loads the current snapshot.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use fleetgate_config::{Config, EndpointSource};
use fleetgate_discovery::dns::{DnsQuery, DnsSettings, DnsTarget};
use fleetgate_discovery::kube::KubeSettings;
use fleetgate_discovery::{EndpointStore, SourceStatus, StoreSnapshot};
use fleetgate_proxy::Snapshot;

use crate::state::GatewayState;

/// Shortest time between the starts of two endpoint builds.
pub const MIN_APPLY_SPACING: Duration = Duration::from_millis(10);

/// One cluster's live source, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClusterSpec {
    Dns {
        cluster: String,
        settings: DnsSettings,
        targets: Vec<DnsTarget>,
    },
    Kubernetes {
        cluster: String,
        settings: KubeSettings,
        /// (namespace, name) of every declared Service.
        services: Vec<(String, String)>,
    },
}

impl ClusterSpec {
    fn cluster(&self) -> &str {
        match self {
            ClusterSpec::Dns { cluster, .. } | ClusterSpec::Kubernetes { cluster, .. } => cluster,
        }
    }

    /// The Services (namespace, name as stored) whose data a source
    /// configured as `self` would find just as `before` found it: same
    /// server and credentials, and for DNS the same names asked.
    /// `None` when the source itself changed (another server, other
    /// credentials): nothing of the old one's data may stay.
    fn unchanged_services(
        &self,
        before: &ClusterSpec,
    ) -> Option<std::collections::HashSet<(String, String)>> {
        match (self, before) {
            (
                ClusterSpec::Kubernetes {
                    settings, services, ..
                },
                ClusterSpec::Kubernetes {
                    settings: old_settings,
                    services: old_services,
                    ..
                },
            ) if settings == old_settings => Some(
                services
                    .iter()
                    .filter(|s| old_services.contains(s))
                    .cloned()
                    .collect(),
            ),
            (
                ClusterSpec::Dns {
                    settings, targets, ..
                },
                ClusterSpec::Dns {
                    settings: old_settings,
                    targets: old_targets,
                    ..
                },
            ) if settings == old_settings => {
                let asked = |list: &[DnsTarget], ns: &str, service: &str| -> Vec<DnsTarget> {
                    list.iter()
                        .filter(|t| t.namespace == ns && t.service == service)
                        .cloned()
                        .collect()
                };
                Some(
                    targets
                        .iter()
                        .filter(|t| {
                            asked(targets, &t.namespace, &t.service)
                                == asked(old_targets, &t.namespace, &t.service)
                        })
                        .map(|t| (t.namespace.clone(), t.service.clone()))
                        .collect(),
                )
            }
            _ => None,
        }
    }
}

/// The live sources of `config`.
fn specs(config: &Config) -> Vec<ClusterSpec> {
    config
        .clusters
        .iter()
        .filter_map(|c| {
            let d = match &c.source {
                EndpointSource::Dns(d) => d,
                EndpointSource::Kubernetes(k) => {
                    let mut services: Vec<(String, String)> = config
                        .services
                        .iter()
                        .map(|s| (s.namespace.clone(), s.name.clone()))
                        .collect();
                    services.sort();
                    services.dedup();
                    return Some(ClusterSpec::Kubernetes {
                        cluster: c.id.clone(),
                        settings: KubeSettings {
                            kubeconfig: k.kubeconfig.clone(),
                            context: k.context.clone(),
                            timeout: k.timeout,
                            keep_on_empty_list: k.keep_on_empty_list,
                        },
                        services,
                    });
                }
                _ => return None,
            };
            let targets = config
                .services
                .iter()
                .flat_map(|s| {
                    s.dns
                        .iter()
                        .filter(|d| d.cluster == c.id)
                        .map(move |d| DnsTarget {
                            cluster: c.id.clone(),
                            namespace: s.namespace.clone(),
                            service: fleetgate::compile::dns_service_name(s),
                            port_name: s.port_name.clone(),
                            query: match d.port {
                                Some(port) => DnsQuery::Address {
                                    name: d.name.clone(),
                                    port,
                                },
                                None => DnsQuery::Srv {
                                    name: d.name.clone(),
                                },
                            },
                        })
                })
                .collect();
            Some(ClusterSpec::Dns {
                cluster: c.id.clone(),
                settings: DnsSettings {
                    resolver: d.server,
                    min_ttl: d.min_ttl,
                    max_ttl: d.max_ttl,
                    timeout: d.timeout,
                },
                targets,
            })
        })
        .collect()
}

/// The sources' thread, stopped when dropped.
struct Running {
    specs: Vec<ClusterSpec>,
    _task: crate::background::BackgroundTask,
}

fn spawn(store: &Arc<EndpointStore>, specs: Vec<ClusterSpec>) -> std::io::Result<Running> {
    let store = Arc::clone(store);
    let work = specs.clone();
    let task = crate::background::spawn("fleetgate-discovery", async move {
        let mut tasks = tokio::task::JoinSet::new();
        for spec in work {
            match spec {
                ClusterSpec::Dns {
                    cluster,
                    settings,
                    targets,
                } => {
                    tasks.spawn(fleetgate_discovery::dns::run(
                        Arc::clone(&store),
                        cluster,
                        settings,
                        targets,
                    ));
                }
                ClusterSpec::Kubernetes {
                    cluster,
                    settings,
                    services,
                } => {
                    tasks.spawn(fleetgate_discovery::kube::run(
                        Arc::clone(&store),
                        cluster,
                        settings,
                        services,
                    ));
                }
            }
        }
        // Sources that end (a source with nothing to do) leave the others
        // running; the set is dropped, and its tasks aborted, at stop.
        while tasks.join_next().await.is_some() {}
        std::future::pending::<()>().await;
    })?;
    Ok(Running { specs, _task: task })
}

/// Live sources, their store, and the configuration they complete.
pub struct Discovery {
    /// What the sources found.
    pub store: Arc<EndpointStore>,
    /// The serving configuration, kept while it has live clusters (the
    /// applier builds from it).
    config: ArcSwapOption<Config>,
    running: Mutex<Option<Running>>,
    applies: std::sync::atomic::AtomicU64,
    /// The live sources' view the serving snapshot was built from: an
    /// endpoint update patches what changed since (see
    /// [`fleetgate::patch`]). `None`: unknown, or no live cluster.
    built_from: Mutex<Option<StoreSnapshot>>,
    /// Endpoint updates applied as patches, not builds.
    patches: std::sync::atomic::AtomicU64,
    /// Replaced snapshots still pinned by requests in flight. Holding one
    /// reference here means the last reference is never a request's: a
    /// snapshot of 100,000 endpoints is freed on the applier's thread
    /// ([`Discovery::reap`]), not on a worker thread between requests.
    retired: Mutex<Vec<Arc<Snapshot>>>,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            store: Arc::new(EndpointStore::new()),
            config: ArcSwapOption::empty(),
            running: Mutex::new(None),
            applies: std::sync::atomic::AtomicU64::new(0),
            built_from: Mutex::new(None),
            patches: std::sync::atomic::AtomicU64::new(0),
            retired: Mutex::new(Vec::new()),
        }
    }
}

impl Discovery {
    /// Starts (or restarts) the sources `config` asks for; with no live
    /// cluster, stops them. Data of clusters that stay is kept: a restarted
    /// source overwrites it with its first answers. Waits up to `wait` for
    /// every live cluster's first complete answer and returns those that
    /// had none.
    pub fn configure(&self, config: Option<&Config>, wait: Duration) -> Vec<String> {
        let wanted = config.map(specs).unwrap_or_default();
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let same = running.as_ref().is_some_and(|r| r.specs == wanted)
            || (running.is_none() && wanted.is_empty());
        if !same {
            let before: Vec<ClusterSpec> = running
                .as_ref()
                .map(|r| r.specs.clone())
                .unwrap_or_default();
            *running = None;
            let keep: Vec<&str> = wanted.iter().map(ClusterSpec::cluster).collect();
            self.store.retain_clusters(&keep);
            for spec in &wanted {
                let kept = before
                    .iter()
                    .find(|b| b.cluster() == spec.cluster())
                    .and_then(|b| spec.unchanged_services(b));
                match kept {
                    // The same server: the data of Services asked for as
                    // before stays until the restarted source's answers
                    // replace it, so a reload that adds a Service never
                    // leaves the others without endpoints meanwhile (the
                    // reload still waits, as long as a start would, for
                    // the new answers); the rest is dropped.
                    Some(keep) => {
                        self.store.restart_cluster(spec.cluster());
                        self.store.retain_services(spec.cluster(), &keep);
                    }
                    // Another server or credentials: nothing of the old
                    // source may linger.
                    None => self.store.reset_cluster(spec.cluster()),
                }
            }
            if !wanted.is_empty() {
                match spawn(&self.store, wanted) {
                    Ok(r) => *running = Some(r),
                    Err(e) => log::error!("endpoint discovery cannot start: {e}"),
                }
            }
        }
        drop(running);
        if same {
            return Vec::new();
        }
        self.store.wait_synced(wait)
    }

    /// Keeps `config` for the applier if it has live clusters.
    pub fn keep(&self, config: Arc<Config>) {
        let live = config.clusters.iter().any(|c| c.source.is_live());
        self.config.store(live.then_some(config));
    }

    /// A view of what the sources found, for building `config` (`None`
    /// when it has no live cluster).
    pub fn snapshot_for(&self, config: &Config) -> Option<StoreSnapshot> {
        config
            .clusters
            .iter()
            .any(|c| c.source.is_live())
            .then(|| self.store.snapshot())
    }

    /// The configuration kept for the applier, if any.
    pub fn kept(&self) -> Option<Arc<Config>> {
        self.config.load_full()
    }

    /// Every live cluster's source status.
    pub fn status(&self) -> BTreeMap<String, SourceStatus> {
        self.store.status()
    }

    /// Keeps a replaced snapshot until no request holds it (see
    /// `retired`).
    pub fn retire(&self, snapshot: Arc<Snapshot>) {
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(snapshot);
    }

    /// Frees the retired snapshots no request holds any more, here.
    pub fn reap(&self) {
        let free: Vec<Arc<Snapshot>> = {
            let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
            let (free, pinned) = std::mem::take(&mut *retired)
                .into_iter()
                .partition(|s| Arc::strong_count(s) == 1);
            *retired = pinned;
            free
        };
        if !free.is_empty() {
            drop(free);
            crate::memory::release_free_memory();
        }
    }

    /// Records the live sources' view the serving snapshot was built from
    /// (a start or reload).
    pub fn set_built_from(&self, view: Option<StoreSnapshot>) {
        *self
            .built_from
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = view;
    }

    /// Endpoint updates applied as patches since start.
    pub fn patches(&self) -> u64 {
        self.patches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Endpoint builds applied since start.
    pub fn applies(&self) -> u64 {
        self.applies.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// How long a start or reload waits for live sources' first answers.
pub fn initial_wait(config: &Config) -> Duration {
    config
        .clusters
        .iter()
        .filter_map(|c| match &c.source {
            EndpointSource::Dns(d) => Some(d.timeout * 3),
            EndpointSource::Kubernetes(k) => Some(k.timeout.min(Duration::from_secs(10))),
            _ => None,
        })
        .max()
        .unwrap_or_default()
}

/// How an endpoint update was applied.
enum Applied {
    /// The serving snapshot already had these endpoints.
    Unchanged,
    /// The changed pools were replaced in a copy of the serving snapshot.
    Patched(usize),
    /// The kept configuration was compiled again.
    Built,
}

/// Brings the serving snapshot to the store's data: a patch of the pools
/// that changed where one is right, else a build from the kept
/// configuration. Serialised with reloads. Returns the store version
/// applied.
fn apply(state: &GatewayState) -> Option<(u64, Applied)> {
    let _serial = state
        .reload_lock
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let config = state.discovery.config.load_full()?;
    let discovered = state.discovery.store.snapshot();
    let generation = state.generation() + 1;
    let previous = state.snapshot.load_full();
    let before = state
        .discovery
        .built_from
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let patch = match &before {
        Some(before) => fleetgate::patch::patch_endpoints(
            &config,
            generation,
            &state.checks,
            &previous,
            before,
            &discovered,
        ),
        None => fleetgate::patch::Patch::Rebuild,
    };
    let snapshot = match patch {
        fleetgate::patch::Patch::Unchanged => {
            let version = discovered.version;
            state.discovery.set_built_from(Some(discovered));
            return Some((version, Applied::Unchanged));
        }
        fleetgate::patch::Patch::Patched(snapshot, services) => {
            state
                .discovery
                .patches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (*snapshot, Applied::Patched(services))
        }
        fleetgate::patch::Patch::Rebuild => match fleetgate::compile::compile_with(
            &config,
            generation,
            &state.checks,
            Some(&previous),
            Some(&discovered),
        ) {
            Ok(snapshot) => (snapshot, Applied::Built),
            Err(e) => {
                // The same configuration compiled before: only a bug gets here.
                log::error!("endpoint update not applied: {e}");
                return None;
            }
        },
    };
    let (snapshot, applied) = snapshot;
    state.snapshot.store(Arc::new(snapshot));
    let version = discovered.version;
    state.discovery.set_built_from(Some(discovered));
    state.discovery.retire(previous);
    state.advance_generation(generation);
    state
        .discovery
        .applies
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some((version, applied))
}

/// Runs the applier (see the module docs) on a thread of its own.
/// `built` is the store version the serving snapshot was built from: a
/// change since then is applied at once.
pub fn start_applier(state: Arc<GatewayState>, built: u64) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("fleetgate-endpoints".into())
        .spawn(move || {
            let mut seen = built;
            let mut pacer = crate::background::Pacer::new(MIN_APPLY_SPACING);
            loop {
                // Wake at least every second to free retired snapshots.
                let changed = state
                    .discovery
                    .store
                    .wait_change(seen, Duration::from_secs(1));
                state.discovery.reap();
                if changed.is_none() {
                    continue;
                }
                let started = pacer.start();
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| apply(&state)));
                let took = pacer.done(started);
                match outcome {
                    Ok(Some((version, applied))) => {
                        match applied {
                            Applied::Unchanged => {}
                            Applied::Patched(services) => log::info!(
                                "endpoint update: generation {} serving (discovery version {version}, {services} Service(s) patched in {took:?})",
                                state.generation()
                            ),
                            Applied::Built => log::info!(
                                "endpoint update: generation {} serving (discovery version {version}, built in {took:?})",
                                state.generation()
                            ),
                        }
                        seen = version;
                    }
                    Ok(None) => seen = state.discovery.store.version(),
                    Err(_) => {
                        log::error!(
                            "endpoint update panicked; the previous endpoints keep serving"
                        );
                        seen = state.discovery.store.version();
                    }
                }
            }
        })?;
    Ok(())
}
