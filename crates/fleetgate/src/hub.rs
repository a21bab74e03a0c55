//! `[manifests] source = "kubernetes"`: the Ingresses of a hub cluster.
//!
//! The watches run on a thread of their own (a small tokio runtime) and
//! write into a [`HubStore`]. A configuration is built from the TOML and the
//! store's objects as if they were manifest files, with one difference that
//! matters at a hub: objects do not arrive together, and one team's broken
//! Ingress must not stop another team's from serving. So a build that fails
//! (loading or compiling) because of some objects is tried again without
//! them; where the gateway served an older version of such an object, that
//! version stands in for it, and an object that served is never pushed out
//! by another one's change. Errors that are not about a hub object (the
//! TOML, a file) reject the build as a reload's would. Every left-out
//! object is logged once and listed in `/status`.
//!
//! When the objects change, the applier thread rebuilds from the TOML text
//! the serving configuration was loaded from (an edited TOML file is
//! applied by a reload, not by a hub change), with the same spacing rule
//! as endpoint updates.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fleetgate_config::{Config, ConfigErrors, ManifestSource};
use fleetgate_discovery::hub::HubSettings;
use fleetgate_discovery::kube::KubeSettings;
use fleetgate_discovery::objects::{ApiObject, ObjectKey};
use fleetgate_discovery::{Advertised, HubStore};
use fleetgate_proxy::CompileReport;

use crate::state::GatewayState;

/// Shortest time between the starts of two builds caused by hub changes.
pub const MIN_HUB_SPACING: Duration = Duration::from_millis(50);

/// Objects by key.
type Objects = BTreeMap<ObjectKey, Arc<ApiObject>>;

/// An object left out of the serving configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// What is wrong with it.
    pub errors: Vec<String>,
    /// Whether an older version of it serves instead.
    pub previous_serves: bool,
}

/// A configuration built with hub objects, before it serves.
pub struct HubBuild {
    source: Arc<Source>,
    version: u64,
    /// Whether every watch had listed (or been refused) when it was built.
    synced: bool,
    accepted: Objects,
    rejected: BTreeMap<ObjectKey, Rejected>,
}

impl HubBuild {
    /// Whether the hub's watches had all listed once when it was built.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The hub's last error, if it is failing.
    pub fn error(&self) -> Option<String> {
        self.source.store.status().error
    }

    /// The objects left out, and why.
    pub fn rejected(&self) -> &BTreeMap<ObjectKey, Rejected> {
        &self.rejected
    }
}

/// Running watches of one hub, with their store; stopped when dropped.
pub struct Source {
    settings: HubSettings,
    /// The kubeconfig's modification time when they started: a rewritten
    /// file (a rotated token) starts new watches at the next reload.
    stamp: Option<std::time::SystemTime>,
    /// What the watches found.
    pub store: Arc<HubStore>,
    task: crate::background::BackgroundTask,
}

/// The modification time of the kubeconfig `settings` names.
fn kubeconfig_stamp(settings: &HubSettings) -> Option<std::time::SystemTime> {
    let path = settings.kube.kubeconfig.as_ref()?;
    std::fs::metadata(path).ok()?.modified().ok()
}

impl Source {
    /// Starts watches for `settings`, with a store of their own.
    fn start(settings: HubSettings) -> std::io::Result<Source> {
        let store = Arc::new(HubStore::new());
        let stamp = kubeconfig_stamp(&settings);
        let task = crate::background::spawn(
            "fleetgate-hub",
            fleetgate_discovery::hub::run(Arc::clone(&store), settings.clone()),
        )?;
        Ok(Source {
            settings,
            stamp,
            store,
            task,
        })
    }

    /// Whether these watches are what `wanted` asks for, and still run.
    fn serves(&self, wanted: &HubSettings) -> bool {
        self.settings == *wanted
            && self.stamp == kubeconfig_stamp(wanted)
            && !self.task.is_finished()
    }
}

/// The watch settings `source` asks for, if it reads a hub.
fn settings(source: &ManifestSource) -> Option<HubSettings> {
    match source {
        ManifestSource::Files => None,
        ManifestSource::Kubernetes(h) => Some(HubSettings {
            kube: KubeSettings {
                kubeconfig: h.api.kubeconfig.clone(),
                context: h.api.context.clone(),
                timeout: h.api.timeout,
                keep_on_empty_list: h.api.keep_on_empty_list,
            },
            namespaces: h.namespaces.clone(),
        }),
    }
}

/// The hub source of the serving configuration, and what it took from it.
///
/// A reload that names another hub (or other namespaces) starts new
/// watches beside the running ones and builds from them; only when that
/// configuration serves are the old ones stopped, so a rejected reload
/// leaves everything as it was.
#[derive(Default)]
pub struct Hub {
    /// The serving configuration's watches.
    current: Mutex<Option<Arc<Source>>>,
    /// The TOML text of the serving configuration.
    text: Mutex<Option<String>>,
    /// The objects the serving configuration was built from.
    accepted: Mutex<Objects>,
    /// The objects it left out, and why.
    rejected: Mutex<BTreeMap<ObjectKey, Rejected>>,
    /// The store version it was built from.
    built: std::sync::atomic::AtomicU64,
    /// The last build a hub change caused.
    last_build: Mutex<Option<HubBuildRecord>>,
    /// The on-disk cache: what was read from it, what was written.
    cache: Arc<Mutex<CacheState>>,
    /// Hands what to write to the cache writer's thread.
    cache_writer: Mutex<Option<std::sync::mpsc::Sender<(std::path::PathBuf, Objects)>>>,
    /// Never read the cache (`check` and `routes` check the hub as it is).
    without_cache: bool,
}

/// The on-disk cache's state, for `/status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CacheState {
    /// Objects read from it at start, because the hub did not answer.
    pub loaded: Option<usize>,
    /// When the objects read were written.
    pub loaded_written_at: Option<String>,
    /// When it was last written.
    pub written_at: Option<String>,
    /// The last failure to read or write it.
    pub error: Option<String>,
    /// The objects last handed to the writer, and where to.
    #[serde(skip)]
    queued: Option<(std::path::PathBuf, Objects)>,
}

/// A build caused by a hub change, for `/status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HubBuildRecord {
    /// When it finished (RFC 3339).
    pub at: String,
    /// Whether it serves.
    pub ok: bool,
    /// The generation serving after it.
    pub generation: u64,
    /// What it built, or why it was rejected.
    pub message: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    /// A hub source that never reads the cache: for `check` and `routes`,
    /// which check the hub as it is.
    pub fn without_cache() -> Hub {
        Hub {
            without_cache: true,
            ..Hub::default()
        }
    }

    /// The serving configuration's hub store, if it reads a hub.
    pub fn store(&self) -> Option<Arc<HubStore>> {
        lock(&self.current).as_ref().map(|s| Arc::clone(&s.store))
    }

    /// Builds the configuration in `text` (from `path`), with the hub's
    /// objects if it reads a hub, and compiles it with `compile` (see the
    /// module docs: objects that fail either step are left out). With
    /// `configure` (a start or reload), watches for a hub the serving
    /// configuration does not read (or whose kubeconfig changed) are
    /// started and their first answer awaited that long at least; without
    /// (a rebuild on a hub change), the serving watches are used.
    pub fn build<T>(
        &self,
        path: &Path,
        text: &str,
        configure: Option<Duration>,
        mut compile: impl FnMut(&Config) -> Result<T, ConfigErrors>,
    ) -> Result<(Config, T, Option<HubBuild>), ConfigErrors> {
        let source_kind = Config::manifest_source_of(path, text)?;
        let Some(wanted) = settings(&source_kind) else {
            let config = Config::from_toml_str(path, text)?;
            let compiled = compile(&config)?;
            return Ok((config, compiled, None));
        };
        let current = lock(&self.current).clone();
        // The same hub (watches restarted for a rewritten kubeconfig or
        // after they ended): what it served stays the reference, and the
        // new watches start from its objects.
        let same_hub = current.as_ref().is_some_and(|c| c.settings == wanted);
        let source = match current {
            Some(s) if configure.is_none() || s.serves(&wanted) => s,
            old => {
                let started = Arc::new(Source::start(wanted).map_err(|e| {
                    fleetgate_config::ConfigError::new(format!("hub cluster: cannot start: {e}"))
                })?);
                if let Some(old) = old.filter(|_| same_hub) {
                    let (_, objects) = old.store.objects();
                    started
                        .store
                        .seed(objects.into_iter().map(|(k, o)| (k, (*o).clone())));
                }
                let wait = configure.unwrap_or_default().max(hub_wait(&source_kind));
                if !started.store.wait_synced(wait) {
                    let status = started.store.status();
                    log::warn!(
                        "hub cluster: no complete answer yet{}; its Ingresses follow when it answers",
                        status.error.map(|e| format!(" ({e})")).unwrap_or_default()
                    );
                    if let ManifestSource::Kubernetes(h) = &source_kind {
                        self.seed_from_cache(h, &started.store);
                    }
                }
                started
            }
        };
        let (version, objects) = source.store.objects();
        let synced = source.store.status().synced;
        let previous = if same_hub {
            lock(&self.accepted).clone()
        } else {
            Objects::new()
        };
        let built = build_leaving_out(path, text, objects, &previous, &mut compile)?;
        Ok((
            built.config,
            built.compiled,
            Some(HubBuild {
                source,
                version,
                synced,
                accepted: built.accepted,
                rejected: built.rejected,
            }),
        ))
    }

    /// Records that `config`, built from `text` and `build`, serves now
    /// (`report` is what compiling it found): logs newly left-out objects
    /// and sets the status to write back. Watches of a hub it no longer
    /// reads stop.
    pub fn commit(
        &self,
        config: &Config,
        report: &CompileReport,
        text: &str,
        build: Option<HubBuild>,
    ) {
        let Some(build) = build else {
            *lock(&self.current) = None;
            lock(&self.rejected).clear();
            lock(&self.accepted).clear();
            *lock(&self.text) = None;
            return;
        };
        {
            let mut rejected = lock(&self.rejected);
            for (key, r) in &build.rejected {
                if rejected.get(key) != Some(r) {
                    log::error!(
                        "hub cluster: {key} is left out ({}): {}",
                        if r.previous_serves {
                            "its previous version keeps serving"
                        } else {
                            "not served"
                        },
                        r.errors.join("; ")
                    );
                }
            }
            for key in rejected.keys() {
                if !build.rejected.contains_key(key) {
                    log::info!("hub cluster: {key} is accepted again");
                }
            }
            *rejected = build.rejected;
        }
        self.write_cache(config, &build.accepted);
        *lock(&self.accepted) = build.accepted;
        *lock(&self.text) = Some(text.to_string());
        self.built
            .store(build.version, std::sync::atomic::Ordering::Relaxed);
        let addresses: Vec<Advertised> = config
            .gateway
            .advertise
            .iter()
            .map(|a| Advertised::parse(a))
            .collect();
        let served = config
            .served_ingresses()
            .filter(|i| ObjectKey::from_location(&i.origin.file).is_some())
            .filter(|i| !wholly_unbound(i, report))
            .map(|i| (i.namespace.clone(), i.name.clone()))
            .collect();
        build.source.store.set_desired(served, addresses);
        let previous = lock(&self.current).replace(build.source);
        // The old watches stop here, outside the lock.
        drop(previous);
    }

    /// The TOML text of the serving configuration, when it reads a hub.
    pub fn text(&self) -> Option<String> {
        lock(&self.text).clone()
    }

    /// Fills `store` from the cache `hub` names, if any (see
    /// [`crate::hub_cache`]).
    fn seed_from_cache(&self, hub: &fleetgate_config::HubSource, store: &HubStore) {
        let Some(path) = hub.cache.as_ref().filter(|_| !self.without_cache) else {
            return;
        };
        if !path.exists() {
            return;
        }
        let mut state = lock(&self.cache);
        match crate::hub_cache::read(path) {
            Ok((objects, written_at)) => {
                let wanted = |o: &ApiObject| {
                    hub.namespaces.is_empty()
                        || hub
                            .namespaces
                            .iter()
                            .any(|ns| o.metadata().namespace.as_deref() == Some(ns))
                };
                let taken = store.seed(
                    objects
                        .into_iter()
                        .filter(wanted)
                        .map(|o| (o.key(fleetgate_config::DEFAULT_NAMESPACE), o)),
                );
                log::warn!(
                    "hub cluster: serving {taken} object(s) from the cache {} written {written_at}, until the hub answers",
                    path.display()
                );
                state.loaded = Some(taken);
                state.loaded_written_at = Some(written_at.clone());
                // Served as read: not written back until something changes,
                // so the file keeps saying how old its data is.
                let (_, objects) = store.objects();
                state.queued = Some((path.clone(), objects));
                state.written_at = Some(written_at);
            }
            Err(e) => {
                log::error!("hub cluster: the cache cannot be read: {e}");
                state.error = Some(e);
            }
        }
    }

    /// Hands the objects that serve to the cache writer, if `config` names
    /// a cache and they (or the path) changed since the last time. The
    /// writing (JSON, fsync) happens on the writer's thread, never under
    /// the reload lock.
    fn write_cache(&self, config: &Config, accepted: &Objects) {
        let ManifestSource::Kubernetes(hub) = &config.manifest_source else {
            return;
        };
        let Some(path) = &hub.cache else {
            return;
        };
        {
            let mut state = lock(&self.cache);
            if state
                .queued
                .as_ref()
                .is_some_and(|(p, o)| p == path && o == accepted)
            {
                return;
            }
            state.queued = Some((path.clone(), accepted.clone()));
        }
        let mut writer = lock(&self.cache_writer);
        if writer.is_none() {
            match cache_writer(Arc::clone(&self.cache)) {
                Ok(w) => *writer = Some(w),
                Err(e) => {
                    log::warn!("hub cluster: the cache writer cannot start: {e}");
                    return;
                }
            }
        }
        if let Some(w) = writer.as_ref() {
            let _ = w.send((path.clone(), accepted.clone()));
        }
    }

    /// The on-disk cache's state.
    pub fn cache_state(&self) -> CacheState {
        lock(&self.cache).clone()
    }

    /// Records a build a hub change caused.
    pub fn record_build(&self, ok: bool, generation: u64, message: String) {
        *lock(&self.last_build) = Some(HubBuildRecord {
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            ok,
            generation,
            message,
        });
    }

    /// The last build a hub change caused, if any.
    pub fn last_build(&self) -> Option<HubBuildRecord> {
        lock(&self.last_build).clone()
    }

    /// Objects left out of the serving configuration.
    pub fn rejected(&self) -> BTreeMap<ObjectKey, Rejected> {
        lock(&self.rejected).clone()
    }
}

/// Starts the cache writer: it writes the latest objects it is handed (a
/// burst of changes is one write) and records the outcome in `state`.
fn cache_writer(
    state: Arc<Mutex<CacheState>>,
) -> std::io::Result<std::sync::mpsc::Sender<(std::path::PathBuf, Objects)>> {
    let (send, receive) = std::sync::mpsc::channel::<(std::path::PathBuf, Objects)>();
    std::thread::Builder::new()
        .name("fleetgate-hub-cache".into())
        .spawn(move || {
            while let Ok(mut latest) = receive.recv() {
                while let Ok(newer) = receive.try_recv() {
                    latest = newer;
                }
                let (path, objects) = latest;
                let outcome = crate::hub_cache::write(&path, objects.values().map(|o| &**o));
                let mut state = lock(&state);
                match outcome {
                    Ok(()) => {
                        state.written_at = Some(
                            humantime::format_rfc3339_millis(std::time::SystemTime::now())
                                .to_string(),
                        );
                        state.error = None;
                    }
                    Err(e) => {
                        let message = format!("{}: {e}", path.display());
                        log::warn!("hub cluster: the cache is not written: {message}");
                        state.error = Some(message);
                        // Written again at the next change.
                        state.queued = None;
                    }
                }
            }
        })?;
    Ok(send)
}

/// A canary Ingress none of whose rules found a main route: `/ingresses`
/// shows it as not served, and its status says so too.
fn wholly_unbound(ingress: &fleetgate_config::Ingress, report: &CompileReport) -> bool {
    let key = ingress.key();
    let unbound = report.unbound.iter().filter(|(k, _)| *k == key).count();
    let paths: usize = ingress.rules.iter().map(|r| r.paths.len()).sum();
    unbound > 0 && unbound == paths
}

/// What [`build_leaving_out`] built.
struct Built<T> {
    config: Config,
    compiled: T,
    accepted: Objects,
    rejected: BTreeMap<ObjectKey, Rejected>,
}

/// Leaves `key` out of `set`: its version in `previous` stands in if there
/// is one and it is not the version that failed.
fn leave_out(
    set: &mut Objects,
    previous: &Objects,
    rejected: &mut BTreeMap<ObjectKey, Rejected>,
    key: ObjectKey,
    errors: Vec<String>,
) {
    let current = set.get(&key).cloned();
    let fallback = previous
        .get(&key)
        .filter(|p| current.as_ref().is_some_and(|c| **c != ***p))
        .cloned();
    let previous_serves = fallback.is_some();
    match fallback {
        Some(p) => {
            set.insert(key.clone(), p);
        }
        None => {
            set.remove(&key);
        }
    }
    // The first errors (those of the newest version) are the ones to
    // report.
    let entry = rejected.entry(key).or_insert(Rejected {
        errors,
        previous_serves,
    });
    entry.previous_serves = previous_serves;
}

/// Builds and compiles with `objects`. An object that errors is left out
/// (see [`leave_out`]) and the build is tried again. When every object
/// that errors is one that served unchanged before, the error comes from
/// something that changed (a new Ingress that turns a shared host to
/// regex paths, say): then the changed objects are left out instead, so an
/// object that served is never pushed out by another's change. Each object
/// moves at most twice, so this ends.
fn build_leaving_out<T>(
    path: &Path,
    text: &str,
    objects: Objects,
    previous: &Objects,
    compile: &mut impl FnMut(&Config) -> Result<T, ConfigErrors>,
) -> Result<Built<T>, ConfigErrors> {
    let mut set = objects;
    let mut rejected: BTreeMap<ObjectKey, Rejected> = BTreeMap::new();
    loop {
        let attempt = Config::from_toml_str_with_objects(path, text, set.values().map(|o| &**o))
            .and_then(|config| compile(&config).map(|compiled| (config, compiled)));
        let errors = match attempt {
            Ok((config, compiled)) => {
                return Ok(Built {
                    config,
                    compiled,
                    accepted: set,
                    rejected,
                })
            }
            Err(errors) => errors,
        };
        let mut by_object: BTreeMap<ObjectKey, Vec<String>> = BTreeMap::new();
        let mut other = Vec::new();
        for e in errors.0 {
            match e
                .location
                .as_ref()
                .and_then(|l| ObjectKey::from_location(&l.file))
            {
                Some(key) if set.contains_key(&key) => {
                    by_object.entry(key).or_default().push(e.to_string())
                }
                _ => other.push(e),
            }
        }
        if !other.is_empty() || by_object.is_empty() {
            return Err(ConfigErrors(other));
        }
        let unchanged = |key: &ObjectKey| {
            previous
                .get(key)
                .is_some_and(|p| set.get(key).is_some_and(|c| **c == **p))
        };
        let changed: Vec<ObjectKey> = set.keys().filter(|k| !unchanged(k)).cloned().collect();
        if by_object.keys().all(unchanged) && !changed.is_empty() {
            // Which changes cause it: from the set without any change, add
            // them back one at a time, keeping each one that builds.
            let mut base = set.clone();
            for key in &changed {
                match previous.get(key) {
                    Some(p) => base.insert(key.clone(), Arc::clone(p)),
                    None => base.remove(key),
                };
            }
            for key in changed {
                let Some(candidate) = set.get(&key).cloned() else {
                    continue;
                };
                let mut trial = base.clone();
                trial.insert(key.clone(), candidate);
                let built =
                    Config::from_toml_str_with_objects(path, text, trial.values().map(|o| &**o))
                        .and_then(|config| compile(&config).map(|_| ()));
                match built {
                    Ok(()) => base = trial,
                    Err(errors) => {
                        let own = key.location();
                        let (mine, others): (Vec<_>, Vec<_>) = errors
                            .0
                            .iter()
                            .partition(|e| e.location.as_ref().is_some_and(|l| l.file == own));
                        let why: Vec<String> = if mine.is_empty() {
                            vec![format!(
                                "with it, objects that served before fail: {}",
                                others
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            )]
                        } else {
                            mine.iter().map(ToString::to_string).collect()
                        };
                        let previous_serves = base.contains_key(&key);
                        let entry = rejected.entry(key).or_insert(Rejected {
                            errors: why,
                            previous_serves,
                        });
                        entry.previous_serves = previous_serves;
                    }
                }
            }
            set = base;
            continue;
        }
        for (key, errors) in by_object {
            leave_out(&mut set, previous, &mut rejected, key, errors);
        }
    }
}

/// How long a start or reload waits for a new hub's first answer.
pub fn hub_wait(source: &ManifestSource) -> Duration {
    match source {
        ManifestSource::Kubernetes(h) => h.api.timeout.min(Duration::from_secs(10)),
        ManifestSource::Files => Duration::ZERO,
    }
}

/// Rebuilds from the kept TOML text whenever the hub's objects change,
/// on a thread of its own.
pub fn start_applier(state: Arc<GatewayState>, path: std::path::PathBuf) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("fleetgate-hub-apply".into())
        .spawn(move || {
            let mut pacer = crate::background::Pacer::new(MIN_HUB_SPACING);
            loop {
                let Some(store) = state.hub.store() else {
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                };
                let seen = state.hub.built.load(std::sync::atomic::Ordering::Relaxed);
                if store.wait_change(seen, Duration::from_secs(1)).is_none() {
                    continue;
                }
                let started = pacer.start();
                // What this build reads at least; changes after it make the
                // next one.
                let reading = store.version();
                let current = state.hub.store();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::reload::reload_from_hub(&state, &path)
                }));
                pacer.done(started);
                let built = matches!(outcome, Ok(Ok(_)));
                if outcome.is_err() {
                    log::error!("hub change: the build panicked; the serving configuration stays");
                }
                // Not built: try again at the next change, not at once
                // (unless a reload put other watches in place meanwhile).
                let same_store = current.is_some_and(|c| Arc::ptr_eq(&c, &store));
                if !built && same_store {
                    state
                        .hub
                        .built
                        .store(reading, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::Ingress;

    const TOML: &str = r#"
[gateway]
listen = ["127.0.0.1:0"]
ingress_class = "mse"
[manifests]
source = "kubernetes"
[[cluster]]
id = "c1"
[[service]]
namespace = "shop"
name = "web"
port = 80
endpoints = [{ cluster = "c1", address = "127.0.0.1:9" }]
"#;

    fn ingress(name: &str, annotations: &str, yaml_rules: &str) -> (ObjectKey, Arc<ApiObject>) {
        let yaml = format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: shop, annotations: {{ {annotations} }} }}\nspec:\n  ingressClassName: mse\n  rules:\n{yaml_rules}"
        );
        let i: Ingress = serde_yaml_ng::from_str(&yaml).expect("test Ingress");
        let o = ApiObject::ingress(i);
        (o.key("default"), Arc::new(o))
    }

    fn good(name: &str, host: &str) -> (ObjectKey, Arc<ApiObject>) {
        ingress(
            name,
            "",
            &format!("  - host: {host}\n    http:\n      paths:\n      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}\n"),
        )
    }

    fn bad(name: &str) -> (ObjectKey, Arc<ApiObject>) {
        ingress(
            name,
            "nginx.ingress.kubernetes.io/backend-protocol: PIGEON",
            "  - host: bad.example\n    http:\n      paths:\n      - { path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }\n",
        )
    }

    fn no_compile(_: &Config) -> Result<(), ConfigErrors> {
        Ok(())
    }

    #[test]
    fn a_broken_object_is_left_out_and_its_previous_version_serves() {
        let path = Path::new("gw.toml");
        let (k1, a1) = good("a", "a.example");
        let (k2, b_good) = good("b", "b.example");
        let (_, b_bad) = bad("b");
        let previous: Objects = [(k2.clone(), Arc::clone(&b_good))].into();
        let objects: Objects = [(k1.clone(), a1), (k2.clone(), b_bad)].into();
        let built = build_leaving_out(path, TOML, objects.clone(), &previous, &mut no_compile)
            .expect("builds");
        assert_eq!(built.config.served_ingresses().count(), 2);
        assert!(
            Arc::ptr_eq(&built.accepted[&k2], &b_good),
            "b's previous version serves"
        );
        assert!(built.rejected[&k2].previous_serves);
        assert!(
            built.rejected[&k2].errors[0].contains("hub:ingresses/shop/b"),
            "{:?}",
            built.rejected[&k2]
        );
        // Never served before: left out, the others serve.
        let built = build_leaving_out(path, TOML, objects, &Objects::new(), &mut no_compile)
            .expect("builds");
        assert_eq!(built.config.served_ingresses().count(), 1);
        assert!(!built.accepted.contains_key(&k2) && !built.rejected[&k2].previous_serves);
    }

    #[test]
    fn compile_errors_leave_objects_out_too() {
        // As a canary conflict would: found when compiling, named by place.
        let (k1, a1) = good("a", "a.example");
        let (k2, b) = good("b", "b.example");
        let mut compile = |c: &Config| -> Result<(), ConfigErrors> {
            match c.ingresses.iter().find(|i| i.name == "b") {
                Some(i) => Err(ConfigErrors(vec![fleetgate_config::ConfigError::new(
                    "two canaries",
                )
                .at(i.origin.clone())])),
                None => Ok(()),
            }
        };
        let built = build_leaving_out(
            Path::new("gw.toml"),
            TOML,
            [(k1.clone(), a1), (k2.clone(), b)].into(),
            &Objects::new(),
            &mut compile,
        )
        .expect("builds");
        assert!(built.accepted.contains_key(&k1) && !built.accepted.contains_key(&k2));
        assert!(built.rejected[&k2].errors[0].contains("two canaries"));
    }

    /// A compile step in which Ingress b makes Ingress a fail, as a host
    /// b turns to regex paths would.
    fn b_breaks_a(c: &Config) -> Result<(), ConfigErrors> {
        let a = c.ingresses.iter().find(|i| i.name == "a");
        match (a, c.ingresses.iter().any(|i| i.name == "b")) {
            (Some(a), true) => Err(ConfigErrors(vec![fleetgate_config::ConfigError::new(
                "regex paths on a shared host",
            )
            .at(a.origin.clone())])),
            _ => Ok(()),
        }
    }

    #[test]
    fn a_change_never_pushes_out_what_served_before() {
        // a served; b is new. With b, a fails (as a host turned to regex
        // paths by b would make it): b is left out, a keeps serving.
        let (k1, a1) = good("a", "a.example");
        let (k2, b) = good("b", "b.example");
        let previous: Objects = [(k1.clone(), Arc::clone(&a1))].into();
        let mut compile = b_breaks_a;
        let built = build_leaving_out(
            Path::new("gw.toml"),
            TOML,
            [(k1.clone(), a1), (k2.clone(), b)].into(),
            &previous,
            &mut compile,
        )
        .expect("builds");
        assert!(built.accepted.contains_key(&k1), "a keeps serving");
        assert!(!built.accepted.contains_key(&k2), "b is left out");
        assert!(
            built.rejected[&k2].errors[0].contains("objects that served before fail"),
            "{:?}",
            built.rejected[&k2]
        );
        assert!(!built.rejected.contains_key(&k1));
    }

    #[test]
    fn an_innocent_change_beside_the_culprit_is_applied() {
        // a served; b (new) breaks a; c (new) is innocent.
        let (k1, a1) = good("a", "a.example");
        let (k2, b) = good("b", "b.example");
        let (k3, c) = good("c", "c.example");
        let previous: Objects = [(k1.clone(), Arc::clone(&a1))].into();
        let mut compile = b_breaks_a;
        let built = build_leaving_out(
            Path::new("gw.toml"),
            TOML,
            [(k1.clone(), a1), (k2.clone(), b), (k3.clone(), c)].into(),
            &previous,
            &mut compile,
        )
        .expect("builds");
        assert!(built.accepted.contains_key(&k1) && built.accepted.contains_key(&k3));
        assert!(!built.accepted.contains_key(&k2));
        assert_eq!(built.rejected.keys().collect::<Vec<_>>(), vec![&k2]);
    }

    #[test]
    fn a_hub_ingress_named_like_a_toml_one_is_the_one_left_out() {
        let toml = format!(
            "{TOML}\n[[ingress]]\nnamespace = \"shop\"\nname = \"a\"\nclass = \"mse\"\nrules = [{{ host = \"t.example\", paths = [{{ path = \"/\", type = \"Prefix\", service = \"web\", port = 80 }}] }}]\n"
        );
        let (k1, a1) = good("a", "a.example");
        let built = build_leaving_out(
            Path::new("gw.toml"),
            &toml,
            [(k1.clone(), a1)].into(),
            &Objects::new(),
            &mut no_compile,
        )
        .expect("the TOML Ingress serves");
        assert_eq!(built.config.served_ingresses().count(), 1);
        assert!(built.rejected[&k1].errors[0].contains("defined twice"));
    }

    #[test]
    fn a_tls_secret_not_issued_yet_is_a_warning_at_a_hub() {
        let yaml = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: a, namespace: shop }\nspec:\n  ingressClassName: mse\n  tls: [{ hosts: [a.example], secretName: a-tls }]\n  rules:\n  - host: a.example\n    http:\n      paths:\n      - { path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }\n";
        let i: Ingress = serde_yaml_ng::from_str(yaml).expect("test Ingress");
        let o = ApiObject::ingress(i);
        let built = build_leaving_out(
            Path::new("gw.toml"),
            TOML,
            [(o.key("default"), Arc::new(o))].into(),
            &Objects::new(),
            &mut no_compile,
        )
        .expect("builds");
        assert_eq!(built.config.served_ingresses().count(), 1, "served");
        assert!(
            built
                .config
                .warnings
                .iter()
                .any(|w| w.contains("Secret shop/a-tls does not exist (yet)")),
            "{:?}",
            built.config.warnings
        );
    }

    #[test]
    fn errors_outside_the_hub_reject_the_build() {
        let broken = TOML.replace("port = 80", "port = 0");
        let (k1, a1) = good("a", "a.example");
        let err = build_leaving_out(
            Path::new("gw.toml"),
            &broken,
            [(k1, a1)].into(),
            &Objects::new(),
            &mut no_compile,
        )
        .err()
        .map(|e| e.to_string())
        .expect("a TOML error rejects");
        assert!(err.contains("gw.toml"), "{err}");
    }
}
