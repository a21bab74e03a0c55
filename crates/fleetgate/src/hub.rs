//! `[manifests] source = "kubernetes"`: the Ingresses of a hub cluster.
//!
//! The watches run on a thread of their own (a small tokio runtime) and
//! write into a [`HubStore`]. A configuration is built from the TOML and the
//! store's objects as if they were manifest files, with one difference that
//! matters at a hub: objects do not arrive together, and one team's broken
//! Ingress must not stop another team's from serving. So a build that fails
//! because of some objects is tried again without them; where the gateway
//! served an older version of such an object, that version stands in for
//! it. Errors that are not about a hub object (the TOML, a file) reject
//! the build as a reload's would. Every left-out object is logged once and
//! listed in `/status`.
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
    accepted: Objects,
    rejected: BTreeMap<ObjectKey, Rejected>,
}

impl HubBuild {
    /// Whether the hub's watches had all listed once when it was built.
    pub fn synced(&self) -> bool {
        self.source.store.status().synced
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
    /// What the watches found.
    pub store: Arc<HubStore>,
    _task: crate::background::BackgroundTask,
}

impl Source {
    /// Starts watches for `settings`, with a store of their own.
    fn start(settings: HubSettings) -> std::io::Result<Source> {
        let store = Arc::new(HubStore::new());
        let task = crate::background::spawn(
            "fleetgate-hub",
            fleetgate_discovery::hub::run(Arc::clone(&store), settings.clone()),
        )?;
        Ok(Source {
            settings,
            store,
            _task: task,
        })
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
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    /// The serving configuration's hub store, if it reads a hub.
    pub fn store(&self) -> Option<Arc<HubStore>> {
        lock(&self.current).as_ref().map(|s| Arc::clone(&s.store))
    }

    /// Builds the configuration in `text` (from `path`), with the hub's
    /// objects if it reads a hub (see the module docs). With `configure`
    /// (a start or reload), watches for a hub the serving configuration
    /// does not read are started, and their first answer awaited that
    /// long at least; without (a rebuild on a hub change), the serving
    /// watches are used.
    pub fn build(
        &self,
        path: &Path,
        text: &str,
        configure: Option<Duration>,
    ) -> Result<(Config, Option<HubBuild>), ConfigErrors> {
        let base = Config::from_toml_str(path, text)?;
        let Some(wanted) = settings(&base.manifest_source) else {
            return Ok((base, None));
        };
        let current = lock(&self.current).clone();
        let source = match current {
            Some(s) if s.settings == wanted => s,
            _ if configure.is_none() => {
                return Err(ConfigErrors(vec![fleetgate_config::ConfigError::new(
                    "the hub cluster changed: reload to read it",
                )]))
            }
            _ => Arc::new(Source::start(wanted).map_err(|e| {
                fleetgate_config::ConfigError::new(format!("hub cluster: cannot start: {e}"))
            })?),
        };
        if let Some(wait) = configure {
            if !source.store.wait_synced(wait.max(initial_wait(&base))) {
                let status = source.store.status();
                log::warn!(
                    "hub cluster: no complete answer yet{}; its Ingresses follow when it answers",
                    status.error.map(|e| format!(" ({e})")).unwrap_or_default()
                );
            }
        }
        let (version, objects) = source.store.objects();
        let same_hub = lock(&self.current)
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &source));
        let previous = if same_hub {
            lock(&self.accepted).clone()
        } else {
            Objects::new()
        };
        let (config, accepted, rejected) = build_leaving_out(path, text, objects, &previous)?;
        Ok((
            config,
            Some(HubBuild {
                source,
                version,
                accepted,
                rejected,
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
        let desired = if addresses.is_empty() {
            BTreeMap::new()
        } else {
            config
                .served_ingresses()
                .filter(|i| ObjectKey::from_location(&i.origin.file).is_some())
                .filter(|i| !wholly_unbound(i, report))
                .map(|i| ((i.namespace.clone(), i.name.clone()), addresses.clone()))
                .collect()
        };
        build.source.store.set_desired(desired, addresses);
        let previous = lock(&self.current).replace(build.source);
        // The old watches stop here, outside the lock.
        drop(previous);
    }

    /// The TOML text of the serving configuration, when it reads a hub.
    pub fn text(&self) -> Option<String> {
        lock(&self.text).clone()
    }

    /// Objects left out of the serving configuration.
    pub fn rejected(&self) -> BTreeMap<ObjectKey, Rejected> {
        lock(&self.rejected).clone()
    }
}

/// A canary Ingress none of whose rules found a main route: `/ingresses`
/// shows it as not served, and its status says so too.
fn wholly_unbound(ingress: &fleetgate_config::Ingress, report: &CompileReport) -> bool {
    let key = ingress.key();
    let unbound = report.unbound.iter().filter(|(k, _)| *k == key).count();
    let paths: usize = ingress.rules.iter().map(|r| r.paths.len()).sum();
    unbound > 0 && unbound == paths
}

/// Builds with `objects`; an object that errors is replaced by its
/// version in `previous` (if that differs) or left out, and the build is
/// tried again. Each object moves at most twice, so this ends.
fn build_leaving_out(
    path: &Path,
    text: &str,
    objects: Objects,
    previous: &Objects,
) -> Result<(Config, Objects, BTreeMap<ObjectKey, Rejected>), ConfigErrors> {
    let mut set = objects;
    let mut rejected: BTreeMap<ObjectKey, Rejected> = BTreeMap::new();
    loop {
        let errors =
            match Config::from_toml_str_with_objects(path, text, set.values().map(|o| &**o)) {
                Ok(config) => return Ok((config, set, rejected)),
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
        if !other.is_empty() {
            return Err(ConfigErrors(other));
        }
        for (key, errors) in by_object {
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
            // The first errors (those of the newest version) are the ones
            // to report.
            let entry = rejected.entry(key).or_insert(Rejected {
                errors,
                previous_serves,
            });
            entry.previous_serves = previous_serves;
        }
    }
}

/// How long a start or reload waits for the hub's first answer.
pub fn initial_wait(config: &Config) -> Duration {
    match &config.manifest_source {
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
                let outcome = crate::reload::reload_from_hub(&state, &path);
                pacer.done(started);
                if outcome.is_err() {
                    // Not built: try again at the next change, not at once.
                    state
                        .hub
                        .built
                        .store(store.version(), std::sync::atomic::Ordering::Relaxed);
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

    #[test]
    fn a_broken_object_is_left_out_and_its_previous_version_serves() {
        let path = Path::new("gw.toml");
        let (k1, a1) = good("a", "a.example");
        let (k2, b_good) = good("b", "b.example");
        let (_, b_bad) = bad("b");
        let previous: Objects = [(k2.clone(), Arc::clone(&b_good))].into();
        let objects: Objects = [(k1.clone(), a1), (k2.clone(), b_bad)].into();
        let (config, accepted, rejected) =
            build_leaving_out(path, TOML, objects.clone(), &previous).expect("builds");
        assert_eq!(config.served_ingresses().count(), 2);
        assert!(
            Arc::ptr_eq(&accepted[&k2], &b_good),
            "b's previous version serves"
        );
        assert!(rejected[&k2].previous_serves);
        assert!(
            rejected[&k2].errors[0].contains("hub:ingresses/shop/b"),
            "{:?}",
            rejected[&k2]
        );
        // Never served before: left out, the others serve.
        let (config, accepted, rejected) =
            build_leaving_out(path, TOML, objects, &Objects::new()).expect("builds");
        assert_eq!(config.served_ingresses().count(), 1);
        assert!(!accepted.contains_key(&k2) && !rejected[&k2].previous_serves);
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
        )
        .expect_err("a TOML error rejects");
        assert!(err.to_string().contains("gw.toml"), "{err}");
    }
}
