//! What the live sources (DNS, the Kubernetes API) last said, per cluster
//! and Service, and whether each source is connected.
//!
//! Sources write; one applier reads. Writes are short and never block on
//! the applier: a source replaces one slice, one Service's slices or a
//! whole cluster's (a resync) under a mutex held for a map update, and the
//! version moves. The applier waits for the version to move, takes a
//! [`StoreSnapshot`] (a copy of `Arc`s, no slice is copied) and builds
//! from it at its own pace, so any number of changes that arrive while it
//! builds are folded into its next build: bounded coalescing.
//!
//! Losing a source is not losing endpoints: a source that fails only
//! changes its cluster's [`SourceStatus`]; the data stays until the source
//! replaces it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::slices::Slice;

/// A Service in a cluster: `(cluster, namespace, name)`.
pub type ServiceKey = (String, String, String);

/// One Service's slices in one cluster, by slice name.
pub type ServiceSlices = BTreeMap<String, Arc<Slice>>;

/// How a cluster's source is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    /// Whether the source reaches what it reads now.
    pub connected: bool,
    /// Whether it has delivered a complete view at least once.
    pub synced: bool,
    /// The last error, until it reconnects.
    pub error: Option<String>,
    /// When its data last changed (or was confirmed by a resync).
    pub updated: Option<SystemTime>,
    /// Changes applied since start.
    pub updates: u64,
    /// What is failing now, by part of the source (a namespace's watch, a
    /// DNS name): the cluster is connected only when nothing is.
    pub failing: BTreeMap<String, String>,
}

impl SourceStatus {
    pub(crate) fn new() -> Self {
        SourceStatus {
            connected: false,
            synced: false,
            error: None,
            updated: None,
            updates: 0,
            failing: BTreeMap::new(),
        }
    }

    /// Records what one part of a source did (see
    /// [`EndpointStore::report_part`]); returns whether the source became
    /// synced.
    pub(crate) fn record(&mut self, part: &str, outcome: Result<(), String>, synced: bool) -> bool {
        let was_synced = self.synced;
        match outcome {
            Ok(()) => {
                self.failing.remove(part);
            }
            Err(e) => {
                self.failing.insert(part.to_string(), e);
            }
        }
        self.connected = self.failing.is_empty();
        self.error = (!self.failing.is_empty()).then(|| {
            self.failing
                .values()
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        });
        self.synced |= synced;
        self.synced != was_synced
    }
}

#[derive(Debug, Default)]
struct Inner {
    version: u64,
    services: HashMap<ServiceKey, Arc<ServiceSlices>>,
    /// Which Services each slice is filed under, by (cluster, namespace,
    /// slice name): a watch event names a slice, not its old Service, and
    /// scanning every Service per event would cost a core at 1,000 events
    /// per second over 10,000 Services.
    owners: HashMap<ServiceKey, Vec<String>>,
    status: BTreeMap<String, SourceStatus>,
}

impl Inner {
    /// Files the slices of Service `key` in the owner index.
    fn index(&mut self, key: &ServiceKey, slices: impl Iterator<Item = String>) {
        for slice in slices {
            let owners = self
                .owners
                .entry((key.0.clone(), key.1.clone(), slice))
                .or_default();
            if !owners.contains(&key.2) {
                owners.push(key.2.clone());
            }
        }
    }

    /// Takes slice `slice` of Service `key` out of the owner index.
    fn unindex(&mut self, key: &ServiceKey, slice: &str) {
        let at = (key.0.clone(), key.1.clone(), slice.to_string());
        if let Some(owners) = self.owners.get_mut(&at) {
            owners.retain(|s| *s != key.2);
            if owners.is_empty() {
                self.owners.remove(&at);
            }
        }
    }
}

/// The store (see the module docs). Share it in an `Arc`.
#[derive(Debug, Default)]
pub struct EndpointStore {
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// An immutable view of the store at one version.
#[derive(Debug, Clone, Default)]
pub struct StoreSnapshot {
    /// The version it was taken at.
    pub version: u64,
    services: HashMap<ServiceKey, Arc<ServiceSlices>>,
}

impl StoreSnapshot {
    /// The slices of Service `namespace/name` in `cluster`.
    pub fn slices(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
    ) -> impl Iterator<Item = &Slice> {
        // A borrowed key would need a HashMap keyed by a borrowable type;
        // the build reads each Service once, so one allocation is fine.
        let key = (cluster.to_string(), namespace.to_string(), name.to_string());
        self.services
            .get(&key)
            .into_iter()
            .flat_map(|m| m.values().map(|s| s.as_ref()))
    }

    /// The Services whose slices differ between `before` and this view
    /// (changed, added or gone). Slices are shared between views, so this
    /// compares pointers, not slices.
    pub fn changed_since(&self, before: &StoreSnapshot) -> std::collections::HashSet<ServiceKey> {
        let mut changed: std::collections::HashSet<ServiceKey> = self
            .services
            .iter()
            .filter(|(k, v)| {
                before
                    .services
                    .get(*k)
                    .is_none_or(|old| !Arc::ptr_eq(old, v))
            })
            .map(|(k, _)| k.clone())
            .collect();
        changed.extend(
            before
                .services
                .keys()
                .filter(|k| !self.services.contains_key(*k))
                .cloned(),
        );
        changed
    }

    /// How many Services have slices.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether no Service has slices.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

impl EndpointStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Declares a cluster whose source will report (not connected, not
    /// synced yet).
    pub fn register(&self, cluster: &str) {
        self.lock()
            .status
            .entry(cluster.to_string())
            .or_insert_with(SourceStatus::new);
    }

    /// Marks `cluster`'s source as restarted: not synced until its first
    /// complete answer, its data kept until that answer replaces it.
    pub fn restart_cluster(&self, cluster: &str) {
        let mut inner = self.lock();
        let status = inner
            .status
            .entry(cluster.to_string())
            .or_insert_with(SourceStatus::new);
        status.synced = false;
    }

    /// Forgets everything of `cluster`, data and status: its source was
    /// replaced by one configured differently, which starts afresh (not
    /// synced, not connected) and must not find the old one's data.
    pub fn reset_cluster(&self, cluster: &str) {
        let mut inner = self.lock();
        inner.services.retain(|k, _| k.0 != cluster);
        inner.owners.retain(|k, _| k.0 != cluster);
        inner
            .status
            .insert(cluster.to_string(), SourceStatus::new());
        inner.version += 1;
        self.changed.notify_all();
    }

    /// Removes slice `name` of `namespace` in `cluster`, whichever Service
    /// it was filed under (a deletion that does not say), except under
    /// Service `keep` (a slice that stays with its Service).
    pub fn remove_slice_named(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        keep: Option<&str>,
    ) {
        let mut inner = self.lock();
        let at = (cluster.to_string(), namespace.to_string(), name.to_string());
        let keys: Vec<ServiceKey> = inner
            .owners
            .get(&at)
            .into_iter()
            .flatten()
            .filter(|service| Some(service.as_str()) != keep)
            .map(|service| (cluster.to_string(), namespace.to_string(), service.clone()))
            .collect();
        if keys.is_empty() {
            return;
        }
        for key in keys {
            Self::remove_from(&mut inner, &key, name);
        }
        Self::touched(&mut inner, cluster);
        self.changed.notify_all();
    }

    /// Forgets clusters not in `keep`, with their data (a reload removed
    /// them).
    pub fn retain_clusters(&self, keep: &[&str]) {
        let mut inner = self.lock();
        let before = inner.services.len() + inner.status.len();
        inner.status.retain(|c, _| keep.contains(&c.as_str()));
        inner.services.retain(|k, _| keep.contains(&k.0.as_str()));
        inner.owners.retain(|k, _| keep.contains(&k.0.as_str()));
        if inner.services.len() + inner.status.len() != before {
            inner.version += 1;
            self.changed.notify_all();
        }
    }

    /// Forgets the data of `cluster`'s Services that are not in `keep`
    /// ((namespace, name)); its status stays.
    pub fn retain_services(
        &self,
        cluster: &str,
        keep: &std::collections::HashSet<(String, String)>,
    ) {
        let mut inner = self.lock();
        let before = inner.services.len();
        let wanted = |k: &ServiceKey| k.0 != cluster || keep.contains(&(k.1.clone(), k.2.clone()));
        inner.services.retain(|k, _| wanted(k));
        if inner.services.len() == before {
            return;
        }
        let inner = &mut *inner;
        let services = &inner.services;
        inner.owners = std::mem::take(&mut inner.owners)
            .into_iter()
            .filter_map(|(at, mut names)| {
                names.retain(|n| services.contains_key(&(at.0.clone(), at.1.clone(), n.clone())));
                (!names.is_empty()).then_some((at, names))
            })
            .collect();
        inner.version += 1;
        self.changed.notify_all();
    }

    /// Removes slice `name` of Service `key`, and the Service's entry with
    /// its last slice.
    fn remove_from(inner: &mut Inner, key: &ServiceKey, name: &str) {
        if let Some(entry) = inner.services.get_mut(key) {
            Arc::make_mut(entry).remove(name);
            if entry.is_empty() {
                inner.services.remove(key);
            }
        }
        inner.unindex(key, name);
    }

    fn touched(inner: &mut Inner, cluster: &str) {
        inner.version += 1;
        let status = inner
            .status
            .entry(cluster.to_string())
            .or_insert_with(SourceStatus::new);
        status.updated = Some(SystemTime::now());
        status.updates += 1;
    }

    /// Sets (or, with `None`, removes) one slice of Service
    /// `namespace/name` in `cluster`. No change, no new version.
    pub fn put_slice(
        &self,
        cluster: &str,
        namespace: &str,
        service: &str,
        name: &str,
        slice: Option<Slice>,
    ) {
        let mut inner = self.lock();
        let key = (
            cluster.to_string(),
            namespace.to_string(),
            service.to_string(),
        );
        let current = inner.services.get(&key).and_then(|m| m.get(name));
        if current.map(|s| s.as_ref()) == slice.as_ref() {
            return;
        }
        match slice {
            Some(slice) => {
                inner.index(&key, std::iter::once(name.to_string()));
                let entry = inner.services.entry(key).or_default();
                Arc::make_mut(entry).insert(name.to_string(), Arc::new(slice));
            }
            None => Self::remove_from(&mut inner, &key, name),
        }
        Self::touched(&mut inner, cluster);
        self.changed.notify_all();
    }

    /// Replaces everything known of `cluster` at once (a resync): Services
    /// missing from `services` lose their slices. Marks the cluster synced
    /// and connected.
    pub fn replace_cluster(
        &self,
        cluster: &str,
        services: HashMap<(String, String), ServiceSlices>,
    ) {
        self.replace_where(cluster, None, services);
        let mut inner = self.lock();
        let status = inner
            .status
            .entry(cluster.to_string())
            .or_insert_with(SourceStatus::new);
        status.synced = true;
        status.connected = true;
        status.error = None;
        status.failing.clear();
        self.changed.notify_all();
    }

    /// Replaces everything known of `namespace` in `cluster` at once (a
    /// relist of that namespace). `services` are keyed by (namespace,
    /// name); entries of other namespaces are ignored.
    pub fn replace_scope(
        &self,
        cluster: &str,
        namespace: &str,
        services: HashMap<(String, String), ServiceSlices>,
    ) {
        self.replace_where(cluster, Some(namespace), services);
    }

    fn replace_where(
        &self,
        cluster: &str,
        namespace: Option<&str>,
        services: HashMap<(String, String), ServiceSlices>,
    ) {
        let in_scope = |ns: &str| namespace.is_none_or(|n| n == ns);
        let mut inner = self.lock();
        let fresh: HashMap<ServiceKey, Arc<ServiceSlices>> = services
            .into_iter()
            .filter(|((ns, _), slices)| in_scope(ns) && !slices.is_empty())
            .map(|((ns, name), slices)| ((cluster.to_string(), ns, name), Arc::new(slices)))
            .collect();
        let unchanged = inner
            .services
            .iter()
            .filter(|(k, _)| k.0 == cluster && in_scope(&k.1))
            .count()
            == fresh.len()
            && fresh
                .iter()
                .all(|(k, v)| inner.services.get(k).is_some_and(|old| old == v));
        if unchanged {
            // A resync that confirms what was known: fresher, not changed.
            if let Some(status) = inner.status.get_mut(cluster) {
                status.updated = Some(SystemTime::now());
            }
            return;
        }
        inner
            .services
            .retain(|k, _| !(k.0 == cluster && in_scope(&k.1)));
        inner
            .owners
            .retain(|k, _| !(k.0 == cluster && in_scope(&k.1)));
        for (key, slices) in &fresh {
            inner.index(key, slices.keys().cloned());
        }
        inner.services.extend(fresh);
        Self::touched(&mut inner, cluster);
        self.changed.notify_all();
    }

    /// How many slices `namespace` of `cluster` has now.
    pub fn scope_slice_count(&self, cluster: &str, namespace: &str) -> usize {
        self.lock()
            .services
            .iter()
            .filter(|(k, _)| k.0 == cluster && k.1 == namespace)
            .map(|(_, v)| v.len())
            .sum()
    }

    /// How many slices `cluster` has now, over all its Services.
    pub fn slice_count(&self, cluster: &str) -> usize {
        self.lock()
            .services
            .iter()
            .filter(|(k, _)| k.0 == cluster)
            .map(|(_, v)| v.len())
            .sum()
    }

    /// Records that `cluster`'s source reached its data (`Ok`) or failed
    /// (`Err`, which keeps the data). `synced` marks a complete view.
    pub fn report(&self, cluster: &str, outcome: Result<(), String>, synced: bool) {
        self.report_part(cluster, "", outcome, synced);
    }

    /// Like [`EndpointStore::report`], for one part of the cluster's source
    /// (`part`: a namespace's watch, a DNS name). The cluster is connected
    /// while no part is failing; its error lists those that are, so one
    /// failing namespace is not hidden by another one's success.
    pub fn report_part(
        &self,
        cluster: &str,
        part: &str,
        outcome: Result<(), String>,
        synced: bool,
    ) {
        let mut inner = self.lock();
        let status = inner
            .status
            .entry(cluster.to_string())
            .or_insert_with(SourceStatus::new);
        if status.record(part, outcome, synced) {
            self.changed.notify_all();
        }
    }

    /// Every cluster's source status.
    pub fn status(&self) -> BTreeMap<String, SourceStatus> {
        self.lock().status.clone()
    }

    /// The current version: it moves with every change of data.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// A view of the data now.
    pub fn snapshot(&self) -> StoreSnapshot {
        let inner = self.lock();
        StoreSnapshot {
            version: inner.version,
            services: inner.services.clone(),
        }
    }

    /// Waits until the version differs from `seen` (returns the new one)
    /// or `timeout` passes (returns `None`).
    pub fn wait_change(&self, seen: u64, timeout: Duration) -> Option<u64> {
        let (inner, changed) = wait_for(&self.changed, self.lock(), timeout, |i| i.version != seen);
        changed.then_some(inner.version)
    }

    /// Waits until every registered cluster has synced once, at most
    /// `timeout`; returns the clusters that have not.
    pub fn wait_synced(&self, timeout: Duration) -> Vec<String> {
        let (inner, _) = wait_for(&self.changed, self.lock(), timeout, |i| {
            i.status.values().all(|s| s.synced)
        });
        inner
            .status
            .iter()
            .filter(|(_, s)| !s.synced)
            .map(|(c, _)| c.clone())
            .collect()
    }
}

/// Waits on `changed` until `done` holds for what `guard` guards, at most
/// `timeout`; returns the guard and whether `done` holds.
pub(crate) fn wait_for<'a, T>(
    changed: &Condvar,
    mut guard: MutexGuard<'a, T>,
    timeout: Duration,
    done: impl Fn(&T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if done(&guard) {
            return (guard, true);
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return (guard, false);
        };
        guard = changed
            .wait_timeout(guard, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slices::{AddressFamily, SliceEndpoint, SlicePort};

    fn slice(ip: &str) -> Slice {
        Slice {
            namespace: "ns".into(),
            name: "web-1".into(),
            service: "web".into(),
            family: AddressFamily::Ipv4,
            ports: vec![SlicePort {
                name: String::new(),
                port: 80,
                protocol: "TCP".into(),
            }],
            endpoints: vec![SliceEndpoint {
                address: ip.parse().unwrap(),
                condition: Some(fleetgate_pool::Condition::Ready),
                zone: None,
                zone_hints: Vec::new(),
                node: None,
                weight: 1,
            }],
        }
    }

    #[test]
    fn versions_move_only_with_changes() {
        let store = EndpointStore::new();
        let v0 = store.version();
        store.put_slice("c1", "ns", "web", "web-1", Some(slice("10.0.0.1")));
        let v1 = store.version();
        assert!(v1 > v0);
        store.put_slice("c1", "ns", "web", "web-1", Some(slice("10.0.0.1")));
        assert_eq!(store.version(), v1, "the same slice again is no change");
        let snap = store.snapshot();
        store.put_slice("c1", "ns", "web", "web-1", None);
        assert_eq!(
            snap.slices("c1", "ns", "web").count(),
            1,
            "a snapshot does not move"
        );
        assert_eq!(store.snapshot().slices("c1", "ns", "web").count(), 0);
        assert_eq!(
            store.wait_change(v1, Duration::from_millis(1)),
            Some(store.version())
        );
        assert_eq!(
            store.wait_change(store.version(), Duration::from_millis(1)),
            None
        );
    }

    #[test]
    fn one_failing_part_keeps_the_cluster_disconnected() {
        let store = EndpointStore::new();
        store.report_part("c1", "shop", Err("namespace shop: 403".into()), false);
        store.report_part("c1", "web", Ok(()), false);
        let status = &store.status()["c1"];
        assert!(
            !status.connected,
            "another namespace's success does not hide the failure"
        );
        assert_eq!(status.error.as_deref(), Some("namespace shop: 403"));
        store.report_part("c1", "shop", Ok(()), false);
        let status = &store.status()["c1"];
        assert!(status.connected && status.error.is_none());
    }

    #[test]
    fn slices_are_removed_by_name_and_clusters_reset() {
        let store = EndpointStore::new();
        store.put_slice("c1", "ns", "web", "web-1", Some(slice("10.0.0.1")));
        store.put_slice("c1", "ns", "api", "api-1", Some(slice("10.0.0.2")));
        let v = store.version();
        store.remove_slice_named("c1", "ns", "web-1", Some("web"));
        assert_eq!(store.version(), v, "kept under its own Service: no change");
        store.remove_slice_named("c1", "ns", "web-1", None);
        assert_eq!(store.snapshot().slices("c1", "ns", "web").count(), 0);
        store.report("c1", Ok(()), true);
        store.reset_cluster("c1");
        assert_eq!(store.snapshot().len(), 0);
        let status = &store.status()["c1"];
        assert!(
            !status.synced && !status.connected,
            "a reset source starts afresh"
        );
    }

    #[test]
    fn slices_are_found_by_name_after_every_kind_of_write() {
        let store = EndpointStore::new();
        // Filed by a relist, then moved to another Service by an event.
        let mut fresh = HashMap::new();
        let mut web = ServiceSlices::new();
        web.insert("s-1".into(), Arc::new(slice("10.0.0.1")));
        fresh.insert(("ns".to_string(), "web".to_string()), web);
        store.replace_scope("c1", "ns", fresh);
        store.remove_slice_named("c1", "ns", "s-1", Some("api"));
        store.put_slice("c1", "ns", "api", "s-1", Some(slice("10.0.0.2")));
        let snap = store.snapshot();
        assert_eq!(snap.slices("c1", "ns", "web").count(), 0, "moved out");
        assert_eq!(snap.slices("c1", "ns", "api").count(), 1, "moved in");
        // Deleted by name, not by Service.
        store.remove_slice_named("c1", "ns", "s-1", None);
        assert!(store.snapshot().is_empty());
        // A relist that drops a slice drops it from the index too: a later
        // deletion of the name is no change.
        store.put_slice("c1", "ns", "web", "s-2", Some(slice("10.0.0.3")));
        store.replace_scope("c1", "ns", HashMap::new());
        let v = store.version();
        store.remove_slice_named("c1", "ns", "s-2", None);
        assert_eq!(store.version(), v);
        let owners = store.lock().owners.clone();
        assert!(owners.is_empty(), "{owners:?}");
    }

    #[test]
    fn views_tell_which_services_changed() {
        let store = EndpointStore::new();
        store.put_slice("c1", "ns", "web", "web-1", Some(slice("10.0.0.1")));
        store.put_slice("c1", "ns", "api", "api-1", Some(slice("10.0.0.2")));
        let before = store.snapshot();
        store.put_slice("c1", "ns", "web", "web-1", Some(slice("10.0.0.3")));
        store.put_slice("c1", "ns", "new", "new-1", Some(slice("10.0.0.4")));
        store.remove_slice_named("c1", "ns", "api-1", None);
        let mut changed: Vec<ServiceKey> = store
            .snapshot()
            .changed_since(&before)
            .into_iter()
            .collect();
        changed.sort();
        let key = |n: &str| ("c1".to_string(), "ns".to_string(), n.to_string());
        assert_eq!(changed, vec![key("api"), key("new"), key("web")]);
        assert!(store.snapshot().changed_since(&store.snapshot()).is_empty());
    }

    #[test]
    fn only_the_services_kept_keep_their_data() {
        let store = EndpointStore::new();
        store.put_slice("c1", "ns", "web", "web-1", Some(slice("10.0.0.1")));
        store.put_slice("c1", "ns", "api", "api-1", Some(slice("10.0.0.2")));
        store.put_slice("c2", "ns", "api", "api-1", Some(slice("10.0.0.3")));
        let keep = [("ns".to_string(), "web".to_string())].into();
        let v = store.version();
        store.retain_services("c1", &keep);
        assert_eq!(store.version(), v + 1);
        let snap = store.snapshot();
        assert_eq!(snap.slices("c1", "ns", "web").count(), 1);
        assert_eq!(snap.slices("c1", "ns", "api").count(), 0);
        assert_eq!(
            snap.slices("c2", "ns", "api").count(),
            1,
            "other clusters untouched"
        );
        store.retain_services("c1", &keep);
        assert_eq!(store.version(), v + 1, "nothing more to drop: no change");
        let v = store.version();
        store.remove_slice_named("c1", "ns", "api-1", None);
        assert_eq!(store.version(), v, "the index forgot the dropped slice");
    }

    #[test]
    fn a_failing_source_keeps_its_data_and_a_resync_replaces_it() {
        let store = EndpointStore::new();
        store.register("c1");
        assert_eq!(
            store.wait_synced(Duration::from_millis(1)),
            vec!["c1".to_string()]
        );
        store.put_slice("c1", "ns", "web", "web-1", Some(slice("10.0.0.1")));
        store.put_slice("c1", "ns", "old", "old-1", Some(slice("10.0.0.9")));
        store.report("c1", Err("connection refused".into()), false);
        let status = &store.status()["c1"];
        assert!(!status.connected && status.error.as_deref() == Some("connection refused"));
        assert_eq!(store.snapshot().len(), 2, "data kept");
        let mut fresh = HashMap::new();
        let mut web = ServiceSlices::new();
        web.insert("web-2".into(), Arc::new(slice("10.0.0.2")));
        fresh.insert(("ns".to_string(), "web".to_string()), web);
        store.replace_cluster("c1", fresh);
        let snap = store.snapshot();
        let ips: Vec<String> = snap
            .slices("c1", "ns", "web")
            .map(|s| s.endpoints[0].address.to_string())
            .collect();
        assert_eq!(ips, ["10.0.0.2"]);
        assert_eq!(snap.slices("c1", "ns", "old").count(), 0);
        let status = &store.status()["c1"];
        assert!(status.connected && status.synced && status.error.is_none());
        assert!(store.wait_synced(Duration::from_millis(1)).is_empty());
    }
}
