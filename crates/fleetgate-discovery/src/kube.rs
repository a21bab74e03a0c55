//! The `kubernetes` source: the EndpointSlices of the Services a
//! configuration routes to, watched in a member cluster's API server with
//! kube-rs (`runtime::watcher`: list, then watch from the list's
//! resourceVersion, resume after a dropped stream, list again after
//! `410 Gone`, back off on errors: 0.5 s doubling to 10 s).
//!
//! One watch per namespace that holds a declared Service, with the label
//! selector `kubernetes.io/service-name` (only slices that belong to a
//! Service); slices of Services the configuration does not declare are
//! dropped on arrival, so memory follows the configuration, not the
//! cluster.
//!
//! A relist (the first list, and every one after `410 Gone` or a
//! reconnect that lost its place) replaces the namespace's data in one
//! step, so a reader never sees half of the old list and half of the new.
//! One exception, on purpose: a relist that returns **no slice at all** for
//! a namespace where the declared Services had slices is far more often an
//! RBAC or namespace mistake than a real state (a Service scaled to zero
//! keeps its slices, with no endpoints in them), so by default the old data
//! is kept and the event is logged as an error (`keep_on_empty_list =
//! false` applies it).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use crate::slices::{Slice, SERVICE_NAME_LABEL};
use crate::store::{EndpointStore, ServiceSlices};

/// How to reach one member cluster's API server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KubeSettings {
    /// A kubeconfig file; `None`: in-cluster credentials (the Pod's
    /// ServiceAccount).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `None`: its current context.
    pub context: Option<String>,
    /// Bounds connecting and every read; a watch is renewed just before
    /// it, so that a server that stops answering is noticed within it.
    pub timeout: Duration,
    /// Keep the old data when a relist of a namespace returns no slice
    /// where there were some (see the module docs).
    pub keep_on_empty_list: bool,
}

/// A client for the API server `settings` names.
pub(crate) async fn client(settings: &KubeSettings) -> Result<kube::Client, String> {
    let mut config = match &settings.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
            let options = KubeConfigOptions {
                context: settings.context.clone(),
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::incluster().map_err(|e| format!("in-cluster credentials: {e}"))?,
    };
    config.connect_timeout = Some(settings.timeout);
    config.read_timeout = Some(settings.timeout);
    config.write_timeout = Some(settings.timeout);
    kube::Client::try_from(config).map_err(|e| format!("API client: {e}"))
}

/// Watches the slices of `services` (namespace, name) in `cluster` until
/// the task is dropped, writing them to `store`. The cluster is synced
/// once every namespace has been listed.
pub async fn run(
    store: Arc<EndpointStore>,
    cluster: String,
    settings: KubeSettings,
    services: Vec<(String, String)>,
) {
    store.register(&cluster);
    let client = match client(&settings).await {
        Ok(c) => c,
        Err(e) => {
            log::error!("cluster {cluster}: Kubernetes source cannot start: {e}");
            store.report(&cluster, Err(e), false);
            return;
        }
    };
    let mut by_namespace: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (namespace, name) in services {
        by_namespace.entry(namespace).or_default().insert(name);
    }
    if by_namespace.is_empty() {
        store.report(&cluster, Ok(()), true);
        return;
    }
    let pending = Arc::new(std::sync::atomic::AtomicUsize::new(by_namespace.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for (namespace, names) in by_namespace {
        tasks.spawn(watch_namespace(
            Arc::clone(&store),
            cluster.clone(),
            settings.clone(),
            client.clone(),
            namespace,
            names,
            Arc::clone(&pending),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// The watch of one namespace.
async fn watch_namespace(
    store: Arc<EndpointStore>,
    cluster: String,
    settings: KubeSettings,
    client: kube::Client,
    namespace: String,
    names: BTreeSet<String>,
    pending: Arc<std::sync::atomic::AtomicUsize>,
) {
    let api: Api<EndpointSlice> = Api::namespaced(client, &namespace);
    let failing = std::sync::atomic::AtomicBool::new(false);
    // A quiet watch that renews itself produces no event, so after an
    // error only a request of our own can tell that the server is back.
    let probe = async {
        let params = kube::api::ListParams::default()
            .labels(SERVICE_NAME_LABEL)
            .limit(1);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if failing.load(std::sync::atomic::Ordering::Relaxed)
                && api.list_metadata(&params).await.is_ok()
                && failing.swap(false, std::sync::atomic::Ordering::Relaxed)
            {
                store.report_part(&cluster, &namespace, Ok(()), false);
            }
        }
    };
    let events = follow(
        &store,
        &cluster,
        &settings,
        api.clone(),
        &namespace,
        &names,
        &pending,
        &failing,
    );
    tokio::select! {
        () = events => {}
        () = probe => {}
    }
}

/// Applies one namespace's watch events to the store until the stream
/// ends; `failing` is set while the last thing that happened was an error.
#[allow(clippy::too_many_arguments)]
async fn follow(
    store: &EndpointStore,
    cluster: &str,
    settings: &KubeSettings,
    api: Api<EndpointSlice>,
    namespace: &str,
    names: &BTreeSet<String>,
    pending: &std::sync::atomic::AtomicUsize,
    failing: &std::sync::atomic::AtomicBool,
) {
    // The server ends a watch a little before the client's read timeout
    // would, so a quiet watch is renewed, never mistaken for a hung one.
    let watch_seconds = settings.timeout.as_secs().saturating_sub(1).max(1);
    let config = watcher::Config::default()
        .labels(SERVICE_NAME_LABEL)
        .timeout(u32::try_from(watch_seconds).unwrap_or(u32::MAX));
    let mut events = watcher::watcher(api, config)
        .backoff(RetryDelay::new())
        .boxed();
    let mut relist: Option<HashMap<(String, String), ServiceSlices>> = None;
    let mut listed_once = false;
    let wanted = |slice: &Slice| names.contains(&slice.service);
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                let message = format!("namespace {namespace}: {e}");
                log::warn!(
                    "cluster {cluster}: Kubernetes watch failed, the last endpoints keep serving: {message}"
                );
                failing.store(true, std::sync::atomic::Ordering::Relaxed);
                store.report_part(cluster, namespace, Err(message), false);
                continue;
            }
        };
        failing.store(false, std::sync::atomic::Ordering::Relaxed);
        match event {
            Event::Init => relist = Some(HashMap::new()),
            Event::InitApply(object) => {
                if let (Some(buffer), Some(slice)) =
                    (relist.as_mut(), read(object, namespace, cluster))
                {
                    if wanted(&slice) {
                        buffer
                            .entry((slice.namespace.clone(), slice.service.clone()))
                            .or_default()
                            .insert(slice.name.clone(), Arc::new(slice));
                    }
                }
            }
            Event::InitDone => {
                let fresh = relist.take().unwrap_or_default();
                let had = store.scope_slice_count(cluster, namespace);
                if fresh.is_empty() && had > 0 && settings.keep_on_empty_list {
                    log::error!(
                        "cluster {cluster}: a relist of namespace {namespace} returned no EndpointSlice for any declared Service, \
                         where there were {had}: keeping the old endpoints (an RBAC or namespace mistake looks like this; \
                         keep_on_empty_list = false applies such lists)"
                    );
                    store.report_part(cluster, namespace, Ok(()), false);
                } else {
                    if fresh.is_empty() && had > 0 {
                        log::error!(
                            "cluster {cluster}: a relist of namespace {namespace} returned no EndpointSlice for any declared Service, \
                             where there were {had}: applied (keep_on_empty_list = false)"
                        );
                    }
                    store.replace_scope(cluster, namespace, fresh);
                }
                let synced =
                    !listed_once && pending.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1;
                listed_once = true;
                store.report_part(cluster, namespace, Ok(()), synced);
            }
            Event::Apply(object) => {
                let name = object.metadata.name.clone().unwrap_or_default();
                match read(object, namespace, cluster) {
                    Some(slice) if wanted(&slice) => {
                        let service = slice.service.clone();
                        // A slice moved to another Service (its label
                        // changed) leaves the old one.
                        store.remove_slice_named(cluster, namespace, &name, Some(&service));
                        store.put_slice(cluster, namespace, &service, &name, Some(slice));
                    }
                    // Unreadable, or no longer a declared Service's: its
                    // old version must not keep serving.
                    _ => store.remove_slice_named(cluster, namespace, &name, None),
                }
                store.report_part(cluster, namespace, Ok(()), false);
            }
            Event::Delete(object) => {
                let name = object.metadata.name.clone().unwrap_or_default();
                store.remove_slice_named(cluster, namespace, &name, None);
                store.report_part(cluster, namespace, Ok(()), false);
            }
        }
    }
}

/// How long a failed watch waits before it tries again: from 0.5 s,
/// doubling to at most 10 s, with ±25 % jitter so that gateways do not
/// retry in step; back to 0.5 s as soon as anything succeeds. (kube-rs's
/// default keeps its 30 s ceiling for two minutes after an error, which
/// would leave a gateway on stale endpoints long after its API server is
/// back.)
pub(crate) struct RetryDelay {
    next: Duration,
    seed: u64,
}

impl RetryDelay {
    const FIRST: Duration = Duration::from_millis(500);
    pub(crate) const MOST: Duration = Duration::from_secs(10);

    pub(crate) fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        RetryDelay {
            next: Self::FIRST,
            seed,
        }
    }
}

impl Iterator for RetryDelay {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // xorshift: jitter needs no more than this.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = 0.75 + (self.seed % 1000) as f64 / 2000.0;
        let delay = self.next.mul_f64(jitter);
        self.next = (self.next * 2).min(Self::MOST);
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for RetryDelay {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// A slice as the rules read it; one that does not read is logged and
/// left out (the others still serve).
fn read(object: EndpointSlice, namespace: &str, cluster: &str) -> Option<Slice> {
    let name = object.metadata.name.clone().unwrap_or_default();
    match Slice::from_endpoint_slice(object, namespace) {
        Ok(slice) => slice,
        Err(e) => {
            log::warn!("cluster {cluster}: EndpointSlice {namespace}/{name} is left out: {e}");
            None
        }
    }
}
