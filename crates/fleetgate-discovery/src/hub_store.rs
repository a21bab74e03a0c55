//! What a hub cluster's watches last said: the routing objects, each
//! Ingress's load-balancer status as the server has it, and the status the
//! gateway wants written back.
//!
//! Watches write; the gateway reads. As in [`crate::EndpointStore`],
//! writes hold the mutex only for a map update, the version moves only
//! when an object really changed (as the gateway reads it, see
//! [`crate::objects`]), and the reader folds every change that arrived
//! while it built into its next build. A failing watch changes only the
//! status: the objects stay until a relist replaces them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::objects::{ApiKind, ApiObject, ObjectKey};
use crate::store::{wait_for, SourceStatus};

/// An address written to an Ingress's `status.loadBalancer.ingress`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Advertised {
    /// `ip:`.
    Ip(String),
    /// `hostname:`.
    Hostname(String),
}

impl Advertised {
    /// An IP address as `ip:`, anything else as `hostname:`.
    pub fn parse(text: &str) -> Advertised {
        match text.parse::<std::net::IpAddr>() {
            Ok(ip) => Advertised::Ip(ip.to_string()),
            Err(_) => Advertised::Hostname(text.to_string()),
        }
    }
}

/// An Ingress: (namespace, name).
pub type IngressName = (String, String);

/// A status write the gateway owes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatusWrite {
    /// The Ingress.
    pub ingress: IngressName,
    /// What its `status.loadBalancer.ingress` should list.
    pub addresses: Vec<Advertised>,
    /// The resourceVersion the write is based on: the server refuses it
    /// (409) if the Ingress changed since, so no other writer's entry is
    /// lost.
    pub resource_version: Option<String>,
    /// Whether the addresses include this gateway's (it serves the
    /// Ingress), for [`HubStore::note_written`].
    pub lists_ours: bool,
}

/// An Ingress's status as the server has it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    addresses: Vec<Advertised>,
    resource_version: Option<String>,
}

/// Status write-back figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusWrites {
    /// Writes that succeeded.
    pub written: u64,
    /// Writes that failed.
    pub failed: u64,
    /// The last failure, until a write succeeds.
    pub error: Option<String>,
}

#[derive(Debug)]
struct Inner {
    version: u64,
    objects: BTreeMap<ObjectKey, Arc<ApiObject>>,
    /// Ingress status as the server has it.
    observed: BTreeMap<IngressName, Observed>,
    /// The Ingresses this gateway serves.
    served: BTreeSet<IngressName>,
    /// The addresses this gateway advertises.
    ours: Vec<Advertised>,
    /// Addresses it advertised before and no longer does: removed
    /// wherever they are listed.
    retired: BTreeSet<Advertised>,
    /// Ingresses this process wrote its addresses to: only from these does
    /// it remove them when it stops serving one, so replicas that
    /// disagree for a moment (one rejects a version the other serves)
    /// never take turns adding and removing the same entries.
    wrote: BTreeSet<IngressName>,
    /// Parts (kind, namespace; `None`: all) that have listed: cached
    /// objects are never seeded into them.
    listed: BTreeSet<(ApiKind, Option<String>)>,
    /// Moves when `observed` or `desired` does.
    status_version: u64,
    writes: StatusWrites,
    source: SourceStatus,
}

/// The store (see the module docs). Share it in an `Arc`.
#[derive(Debug)]
pub struct HubStore {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl Default for HubStore {
    fn default() -> Self {
        HubStore::new()
    }
}

impl HubStore {
    /// An empty store, not synced.
    pub fn new() -> Self {
        HubStore {
            inner: Mutex::new(Inner {
                version: 0,
                objects: BTreeMap::new(),
                observed: BTreeMap::new(),
                served: BTreeSet::new(),
                ours: Vec::new(),
                retired: BTreeSet::new(),
                wrote: BTreeSet::new(),
                listed: BTreeSet::new(),
                status_version: 0,
                writes: StatusWrites::default(),
                source: SourceStatus::new(),
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn touched(&self, inner: &mut Inner) {
        inner.version += 1;
        inner.source.updated = Some(SystemTime::now());
        inner.source.updates += 1;
        self.changed.notify_all();
    }

    /// Sets one object; an equal one already there is no change.
    pub fn put(&self, key: ObjectKey, object: ApiObject) {
        let mut inner = self.lock();
        if inner.objects.get(&key).is_some_and(|o| **o == object) {
            return;
        }
        inner.objects.insert(key, Arc::new(object));
        self.touched(&mut inner);
    }

    /// Removes one object (and, for an Ingress, what is known of its
    /// status).
    pub fn remove(&self, key: &ObjectKey) {
        let mut inner = self.lock();
        if key.kind == ApiKind::Ingress {
            let name = (key.namespace.clone(), key.name.clone());
            inner.observed.remove(&name);
        }
        if inner.objects.remove(key).is_some() {
            self.touched(&mut inner);
        }
    }

    /// Replaces every object of `kind` in `namespace` (`None`: in all
    /// namespaces) with `fresh`, in one step: the result of a relist.
    pub fn replace_scope(
        &self,
        kind: ApiKind,
        namespace: Option<&str>,
        fresh: BTreeMap<ObjectKey, ApiObject>,
    ) {
        let mut inner = self.lock();
        inner.listed.insert((kind, namespace.map(str::to_string)));
        let in_scope =
            |k: &ObjectKey| k.kind == kind && namespace.is_none_or(|ns| k.namespace == ns);
        let same = inner.objects.keys().filter(|k| in_scope(k)).count() == fresh.len()
            && fresh
                .iter()
                .all(|(k, o)| inner.objects.get(k).is_some_and(|old| **old == *o));
        if same {
            // Confirmed, not changed: the data's age starts again.
            inner.source.updated = Some(SystemTime::now());
            return;
        }
        inner.objects.retain(|k, _| !in_scope(k));
        if kind == ApiKind::Ingress {
            // Status of Ingresses the relist no longer has is forgotten.
            inner.observed.retain(|(ns, name), _| {
                namespace.is_some_and(|n| n != ns)
                    || fresh.contains_key(&ObjectKey {
                        kind,
                        namespace: ns.clone(),
                        name: name.clone(),
                    })
            });
        }
        inner
            .objects
            .extend(fresh.into_iter().map(|(k, o)| (k, Arc::new(o))));
        self.touched(&mut inner);
    }

    /// Fills a store whose watches have not listed yet with `objects`
    /// (kept from an earlier run); their first lists replace them. Returns
    /// how many were taken: none once the watches have listed.
    pub fn seed(&self, objects: impl IntoIterator<Item = (ObjectKey, ApiObject)>) -> usize {
        let mut inner = self.lock();
        if inner.source.synced {
            return 0;
        }
        let mut taken = 0;
        for (key, object) in objects {
            let listed = inner.listed.contains(&(key.kind, None))
                || inner
                    .listed
                    .contains(&(key.kind, Some(key.namespace.clone())));
            if listed {
                continue;
            }
            inner.objects.entry(key).or_insert_with(|| {
                taken += 1;
                Arc::new(object)
            });
        }
        if taken > 0 {
            inner.version += 1;
            self.changed.notify_all();
        }
        taken
    }

    /// How many objects of `kind` in `namespace` (`None`: all) there are.
    pub fn count(&self, kind: ApiKind, namespace: Option<&str>) -> usize {
        self.lock()
            .objects
            .keys()
            .filter(|k| k.kind == kind && namespace.is_none_or(|ns| k.namespace == ns))
            .count()
    }

    /// Records an Ingress's status as the server has it, and the
    /// resourceVersion it has it at (`None`: the Ingress is gone).
    pub fn observe_status(
        &self,
        ingress: IngressName,
        status: Option<(Vec<Advertised>, Option<String>)>,
    ) {
        let mut inner = self.lock();
        let changed = match status {
            Some((addresses, resource_version)) => {
                let seen = Observed {
                    addresses,
                    resource_version,
                };
                inner.observed.insert(ingress, seen.clone()) != Some(seen)
            }
            None => inner.observed.remove(&ingress).is_some(),
        };
        if changed {
            inner.status_version += 1;
            self.changed.notify_all();
        }
    }

    /// Sets what the gateway wants: `served`, the Ingresses it serves, to
    /// list `ours` among their addresses, and no other Ingress to list
    /// them. Addresses it advertised before and no longer does are
    /// removed everywhere.
    pub fn set_desired(&self, served: BTreeSet<IngressName>, ours: Vec<Advertised>) {
        let mut inner = self.lock();
        if inner.served == served && inner.ours == ours {
            return;
        }
        let dropped: Vec<Advertised> = inner
            .ours
            .iter()
            .filter(|a| !ours.contains(a))
            .cloned()
            .collect();
        inner.retired.extend(dropped);
        for a in &ours {
            inner.retired.remove(a);
        }
        inner.served = served;
        inner.ours = ours;
        inner.status_version += 1;
        self.changed.notify_all();
    }

    /// The writes owed now. Only this gateway's entries are touched:
    /// another writer's (another gateway fleet, another controller) stay
    /// as they are. A served Ingress gets `ours` added; every Ingress loses
    /// retired addresses, and `ours` where it is not served. Only
    /// Ingresses the watches know are written.
    pub fn status_work(&self) -> Vec<StatusWrite> {
        let inner = self.lock();
        let mut work = Vec::new();
        for (name, seen) in &inner.observed {
            let served = inner.served.contains(name);
            let remove_ours = !served && inner.wrote.contains(name);
            let mut want: Vec<Advertised> = seen
                .addresses
                .iter()
                .filter(|a| {
                    let mine_to_drop =
                        inner.retired.contains(a) || (remove_ours && inner.ours.contains(a));
                    !mine_to_drop
                })
                .cloned()
                .collect();
            if served {
                for a in &inner.ours {
                    if !want.contains(a) {
                        want.push(a.clone());
                    }
                }
            }
            if want != seen.addresses {
                work.push(StatusWrite {
                    ingress: name.clone(),
                    addresses: want,
                    resource_version: seen.resource_version.clone(),
                    lists_ours: served,
                });
            }
        }
        work
    }

    /// Records that this process wrote `ingress`'s status: with its
    /// addresses (`lists_ours`), or without them.
    pub fn note_written(&self, ingress: &IngressName, lists_ours: bool) {
        let mut inner = self.lock();
        if lists_ours {
            inner.wrote.insert(ingress.clone());
        } else {
            inner.wrote.remove(ingress);
        }
    }

    /// The status version: it moves when observed or desired status does.
    pub fn status_version(&self) -> u64 {
        self.lock().status_version
    }

    /// Records the outcome of one status write.
    pub fn record_write(&self, outcome: Result<(), String>) {
        let mut inner = self.lock();
        match outcome {
            Ok(()) => {
                inner.writes.written += 1;
                inner.writes.error = None;
            }
            Err(e) => {
                inner.writes.failed += 1;
                inner.writes.error = Some(e);
            }
        }
    }

    /// Status write-back figures.
    pub fn writes(&self) -> StatusWrites {
        self.lock().writes.clone()
    }

    /// Records that one watch (`part`: kind and namespace) reached the
    /// server (`Ok`) or failed (`Err`, which keeps the objects); `synced`
    /// marks that every watch has listed once.
    pub fn report_part(&self, part: &str, outcome: Result<(), String>, synced: bool) {
        let mut inner = self.lock();
        if inner.source.record(part, outcome, synced) {
            self.changed.notify_all();
        }
    }

    /// How the watches are doing.
    pub fn status(&self) -> SourceStatus {
        self.lock().source.clone()
    }

    /// The version: it moves with every change of objects.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// The objects now, and the version they are at.
    pub fn objects(&self) -> (u64, BTreeMap<ObjectKey, Arc<ApiObject>>) {
        let inner = self.lock();
        (inner.version, inner.objects.clone())
    }

    /// Waits until the version differs from `seen` (returns the new one)
    /// or `timeout` passes (returns `None`).
    pub fn wait_change(&self, seen: u64, timeout: Duration) -> Option<u64> {
        let (inner, changed) = wait_for(&self.changed, self.lock(), timeout, |i| i.version != seen);
        changed.then_some(inner.version)
    }

    /// Waits until every watch has listed once, at most `timeout`; returns
    /// whether they have.
    pub fn wait_synced(&self, timeout: Duration) -> bool {
        wait_for(&self.changed, self.lock(), timeout, |i| i.source.synced).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::Ingress;

    fn ingress(name: &str, class: &str) -> (ObjectKey, ApiObject) {
        let mut i = Ingress::default();
        i.metadata.name = Some(name.into());
        i.metadata.namespace = Some("shop".into());
        i.spec = Some(k8s_openapi::api::networking::v1::IngressSpec {
            ingress_class_name: Some(class.into()),
            ..Default::default()
        });
        let o = ApiObject::ingress(i);
        (o.key("default"), o)
    }

    #[test]
    fn only_real_changes_move_the_version() {
        let store = HubStore::new();
        let (k, o) = ingress("web", "a");
        store.put(k.clone(), o.clone());
        let v = store.version();
        store.put(k.clone(), o.clone());
        assert_eq!(store.version(), v, "the same object again is no change");
        let (_, changed) = ingress("web", "b");
        store.put(k.clone(), changed);
        assert_eq!(store.version(), v + 1);
        let fresh: BTreeMap<_, _> = [ingress("web", "b")].into_iter().collect();
        store.replace_scope(ApiKind::Ingress, Some("shop"), fresh);
        assert_eq!(
            store.version(),
            v + 1,
            "a relist that confirms is no change"
        );
        store.replace_scope(ApiKind::Ingress, Some("other"), BTreeMap::new());
        assert_eq!(
            store.count(ApiKind::Ingress, None),
            1,
            "other namespaces keep theirs"
        );
        store.replace_scope(ApiKind::Ingress, None, BTreeMap::new());
        assert_eq!(store.count(ApiKind::Ingress, None), 0);
        assert_eq!(store.version(), v + 2);
    }

    #[test]
    fn status_work_touches_only_this_gateways_entries() {
        let store = HubStore::new();
        let ours = vec![Advertised::parse("192.0.2.10")];
        let theirs = Advertised::parse("lb.example");
        let name = |n: &str| ("shop".to_string(), n.to_string());
        let seen = |a: Vec<Advertised>| Some((a, Some("7".to_string())));
        store.observe_status(name("web"), seen(vec![theirs.clone()]));
        store.observe_status(name("old"), seen(vec![ours[0].clone(), theirs.clone()]));
        store.observe_status(name("other"), seen(vec![theirs.clone()]));
        store.observe_status(name("replica"), seen(vec![ours[0].clone()]));
        // This process wrote "old"; "replica" was written by another
        // replica that serves it while this one does not: left alone.
        store.note_written(&name("old"), true);
        store.set_desired([name("web")].into(), ours.clone());
        let work = store.status_work();
        assert_eq!(
            work,
            vec![
                StatusWrite {
                    ingress: name("old"),
                    addresses: vec![theirs.clone()],
                    resource_version: Some("7".into()),
                    lists_ours: false,
                },
                StatusWrite {
                    ingress: name("web"),
                    addresses: vec![theirs.clone(), ours[0].clone()],
                    resource_version: Some("7".into()),
                    lists_ours: true,
                },
            ],
            "ours added where served, removed where not; theirs kept"
        );
        for w in work {
            store.note_written(&w.ingress, w.lists_ours);
            store.observe_status(w.ingress, Some((w.addresses, Some("8".into()))));
        }
        assert!(store.status_work().is_empty());
        // A new address replaces the old one everywhere.
        let new = vec![Advertised::parse("192.0.2.11")];
        store.set_desired([name("web")].into(), new.clone());
        let work = store.status_work();
        assert_eq!(work.len(), 2, "{work:?}");
        assert_eq!(work[0].ingress, name("replica"));
        assert!(work[0].addresses.is_empty(), "the retired address goes");
        assert_eq!(work[1].addresses, vec![theirs.clone(), new[0].clone()]);
        assert_eq!(
            Advertised::parse("lb.example"),
            Advertised::Hostname("lb.example".into())
        );
    }

    #[test]
    fn cached_objects_never_return_to_parts_that_listed() {
        let store = HubStore::new();
        store.replace_scope(ApiKind::Service, Some("shop"), BTreeMap::new());
        let (k, o) = ingress("web", "a");
        let mut service = k8s_openapi::api::core::v1::Service::default();
        service.metadata.name = Some("gone".into());
        service.metadata.namespace = Some("shop".into());
        let s = ApiObject::service(service);
        let taken = store.seed([(k, o), (s.key("default"), s)]);
        assert_eq!(taken, 1, "only the Ingress: Services of shop have listed");
        assert_eq!(store.count(ApiKind::Service, None), 0);
    }

    #[test]
    fn a_failing_watch_keeps_the_objects() {
        let store = HubStore::new();
        let (k, o) = ingress("web", "a");
        store.put(k, o);
        store.report_part("ingresses", Ok(()), true);
        assert!(store.wait_synced(Duration::ZERO));
        store.report_part("ingresses", Err("connection refused".into()), false);
        let status = store.status();
        assert!(!status.connected && status.synced);
        assert_eq!(store.count(ApiKind::Ingress, None), 1);
    }
}
