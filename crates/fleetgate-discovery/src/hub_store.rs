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

use std::collections::BTreeMap;
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

/// A status write the gateway owes: the Ingress and what its
/// `status.loadBalancer.ingress` should list (empty: clear it).
pub type StatusWrite = (IngressName, Vec<Advertised>);

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
    observed: BTreeMap<IngressName, Vec<Advertised>>,
    /// Ingress status as the gateway wants it.
    desired: BTreeMap<IngressName, Vec<Advertised>>,
    /// The addresses this gateway advertises: an Ingress that lists exactly
    /// these and is no longer served is cleared.
    ours: Vec<Advertised>,
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
                desired: BTreeMap::new(),
                ours: Vec::new(),
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

    /// How many objects of `kind` in `namespace` (`None`: all) there are.
    pub fn count(&self, kind: ApiKind, namespace: Option<&str>) -> usize {
        self.lock()
            .objects
            .keys()
            .filter(|k| k.kind == kind && namespace.is_none_or(|ns| k.namespace == ns))
            .count()
    }

    /// Records an Ingress's status as the server has it (`None`: the
    /// Ingress is gone, or its status was reset by a relist).
    pub fn observe_status(&self, ingress: IngressName, status: Option<Vec<Advertised>>) {
        let mut inner = self.lock();
        let changed = match status {
            Some(s) => inner.observed.insert(ingress, s.clone()) != Some(s),
            None => inner.observed.remove(&ingress).is_some(),
        };
        if changed {
            inner.status_version += 1;
            self.changed.notify_all();
        }
    }

    /// Sets what the gateway wants written: `desired` for the Ingresses
    /// it serves, `ours` the addresses it advertises.
    pub fn set_desired(
        &self,
        desired: BTreeMap<IngressName, Vec<Advertised>>,
        ours: Vec<Advertised>,
    ) {
        let mut inner = self.lock();
        if inner.desired == desired && inner.ours == ours {
            return;
        }
        inner.desired = desired;
        inner.ours = ours;
        inner.status_version += 1;
        self.changed.notify_all();
    }

    /// The writes owed now: each served Ingress whose status differs from
    /// what it should be, and each Ingress that lists exactly this
    /// gateway's addresses but is no longer served (cleared). Only
    /// Ingresses the watches know are written.
    pub fn status_work(&self) -> Vec<StatusWrite> {
        let inner = self.lock();
        let mut work = Vec::new();
        for (name, want) in &inner.desired {
            if let Some(have) = inner.observed.get(name) {
                if have != want {
                    work.push((name.clone(), want.clone()));
                }
            }
        }
        if !inner.ours.is_empty() {
            for (name, have) in &inner.observed {
                if *have == inner.ours && !inner.desired.contains_key(name) {
                    work.push((name.clone(), Vec::new()));
                }
            }
        }
        work
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
    fn status_work_writes_served_ingresses_and_clears_abandoned_ones() {
        let store = HubStore::new();
        let ours = vec![Advertised::parse("192.0.2.10")];
        let web = ("shop".to_string(), "web".to_string());
        let old = ("shop".to_string(), "old".to_string());
        let other = ("shop".to_string(), "other".to_string());
        store.observe_status(web.clone(), Some(Vec::new()));
        store.observe_status(old.clone(), Some(ours.clone()));
        store.observe_status(other.clone(), Some(vec![Advertised::parse("lb.example")]));
        store.set_desired([(web.clone(), ours.clone())].into(), ours.clone());
        let mut work = store.status_work();
        work.sort();
        assert_eq!(
            work,
            vec![(old.clone(), Vec::new()), (web.clone(), ours.clone())],
            "another controller's status is left alone"
        );
        store.observe_status(web.clone(), Some(ours.clone()));
        store.observe_status(old, Some(Vec::new()));
        assert!(store.status_work().is_empty());
        assert_eq!(
            Advertised::parse("lb.example"),
            Advertised::Hostname("lb.example".into())
        );
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
