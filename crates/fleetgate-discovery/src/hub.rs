//! The hub cluster as a source of routing: Ingresses, Services and Secrets
//! watched in its API server (kube-rs `runtime::watcher`, with the same
//! retry and relist rules as the endpoint watches), and each served
//! Ingress's `status.loadBalancer.ingress` written back.
//!
//! One watch per kind and namespace (or per kind over all namespaces). The
//! hub counts as synced once every Ingress watch has listed: a Service or
//! Secret watch that fails (RBAC that does not grant it) shows in the
//! status without holding the routes back. Secrets are read only when
//! they can matter to a gateway: a field selector keeps Helm releases,
//! tokens and registry credentials on the server, pages are small, and
//! other types are dropped on arrival.
//!
//! Status write-back is a small reconciler: the gateway says which
//! Ingresses it serves and which addresses are its own
//! ([`HubStore::set_desired`]), the watches say what each Ingress lists,
//! and every difference in the gateway's own entries is patched (a JSON
//! merge patch of the `status` subresource, based on the resourceVersion
//! it was worked out from) until none is left, again after a failure, and
//! again when someone else overwrites it. Other writers' entries are kept.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use crate::hub_store::{Advertised, HubStore};
use crate::kube::{client, KubeSettings, RetryDelay};
use crate::objects::{ApiKind, ApiObject, ObjectKey};

/// Where the hub is and what of it to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// How to reach its API server (`keep_on_empty_list` applies to
    /// Ingress relists).
    pub kube: KubeSettings,
    /// The namespaces to watch; empty: all of them.
    pub namespaces: Vec<String>,
}

/// Field selector that keeps Secrets of types a gateway never uses out of
/// lists and watches.
const SECRET_TYPES_LEFT_OUT: &str = "type!=helm.sh/release.v1,\
type!=kubernetes.io/service-account-token,type!=kubernetes.io/dockerconfigjson,\
type!=kubernetes.io/dockercfg,type!=bootstrap.kubernetes.io/token";

/// Secret types a gateway can use.
fn useful_secret(secret: &Secret) -> bool {
    matches!(
        secret.type_.as_deref(),
        None | Some("" | "Opaque" | "kubernetes.io/tls" | "kubernetes.io/basic-auth")
    )
}

/// An Ingress's status addresses, as the server has them.
fn advertised(ingress: &Ingress) -> Vec<Advertised> {
    ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|list| {
            list.iter()
                .filter_map(|e| match (&e.ip, &e.hostname) {
                    (Some(ip), _) => Some(Advertised::Ip(ip.clone())),
                    (None, Some(h)) => Some(Advertised::Hostname(h.clone())),
                    (None, None) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Watches the hub until the task is dropped, writing to `store`, and
/// writes back the status `store` asks for.
pub async fn run(store: Arc<HubStore>, settings: HubSettings) {
    // A kubeconfig that does not read (yet) is tried again, so that a
    // fixed file is picked up without a restart.
    let mut retry = RetryDelay::new();
    let client = loop {
        match client(&settings.kube).await {
            Ok(c) => break c,
            Err(e) => {
                log::error!("hub cluster: cannot connect: {e}");
                store.report_part("client", Err(e), false);
                tokio::time::sleep(retry.next().unwrap_or(RetryDelay::MOST)).await;
            }
        }
    };
    store.report_part("client", Ok(()), false);
    let scopes: Vec<Option<String>> = if settings.namespaces.is_empty() {
        vec![None]
    } else {
        settings.namespaces.iter().cloned().map(Some).collect()
    };
    // Synced means every watch has listed once, or been refused (401/403:
    // RBAC that does not grant it, which waiting does not mend); a refused
    // watch shows in the status without holding back the routes.
    let pending = Arc::new(AtomicUsize::new(scopes.len() * 3));
    let mut tasks = tokio::task::JoinSet::new();
    for scope in scopes {
        let ingresses = match &scope {
            Some(ns) => Api::<Ingress>::namespaced(client.clone(), ns),
            None => Api::<Ingress>::all(client.clone()),
        };
        let watch = Watch {
            store: Arc::clone(&store),
            settings: settings.kube.clone(),
            namespace: scope.clone(),
            pending: Arc::clone(&pending),
        };
        tasks.spawn(
            watch
                .clone()
                .run(ingresses, ApiKind::Ingress, |i: Ingress| {
                    let status = (advertised(&i), i.metadata.resource_version.clone());
                    Some((ApiObject::ingress(i), Some(status)))
                }),
        );
        let services = match &scope {
            Some(ns) => Api::<Service>::namespaced(client.clone(), ns),
            None => Api::<Service>::all(client.clone()),
        };
        tasks.spawn(watch.clone().run(services, ApiKind::Service, |s: Service| {
            Some((ApiObject::service(s), None))
        }));
        let secrets = match &scope {
            Some(ns) => Api::<Secret>::namespaced(client.clone(), ns),
            None => Api::<Secret>::all(client.clone()),
        };
        tasks.spawn(watch.run(secrets, ApiKind::Secret, |s: Secret| {
            useful_secret(&s).then(|| (ApiObject::secret(s), None))
        }));
    }
    tasks.spawn(write_status(Arc::clone(&store), client));
    while tasks.join_next().await.is_some() {}
}

/// What a watcher can follow: a typed API object.
trait Watched:
    kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + 'static
{
}

impl<K> Watched for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static
{
}

/// One watch: a kind in one namespace, or in all.
#[derive(Clone)]
struct Watch {
    store: Arc<HubStore>,
    settings: KubeSettings,
    namespace: Option<String>,
    pending: Arc<AtomicUsize>,
}

/// An Ingress's status addresses and the resourceVersion they are at.
type SeenStatus = (Vec<Advertised>, Option<String>);

/// What a watch keeps of an object: the object as the gateway reads it,
/// and for Ingresses their status; `None`: not wanted.
type Reader<K> = fn(K) -> Option<(ApiObject, Option<SeenStatus>)>;

impl Watch {
    fn part(&self, kind: ApiKind) -> String {
        match &self.namespace {
            Some(ns) => format!("{} in namespace {ns}", kind.plural()),
            None => format!("{} in all namespaces", kind.plural()),
        }
    }

    fn key(
        &self,
        kind: ApiKind,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: meta
                .namespace
                .clone()
                .or_else(|| self.namespace.clone())
                .unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    async fn run<K>(self, api: Api<K>, kind: ApiKind, read: Reader<K>)
    where
        K: Watched,
    {
        let part = self.part(kind);
        let failing = AtomicBool::new(false);
        // A quiet watch that renews itself produces no event, so after an
        // error only a request of our own can tell that the server is back.
        let probe = async {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if failing.load(Ordering::Relaxed)
                    && api
                        .list_metadata(&ListParams::default().limit(1))
                        .await
                        .is_ok()
                    && failing.swap(false, Ordering::Relaxed)
                {
                    self.store.report_part(&part, Ok(()), false);
                }
            }
        };
        tokio::select! {
            () = self.follow(api.clone(), kind, read, &part, &failing) => {}
            () = probe => {}
        }
    }

    async fn follow<K>(
        &self,
        api: Api<K>,
        kind: ApiKind,
        read: Reader<K>,
        part: &str,
        failing: &AtomicBool,
    ) where
        K: Watched,
    {
        let store = &self.store;
        let watch_seconds = self.settings.timeout.as_secs().saturating_sub(1).max(1);
        let mut config =
            watcher::Config::default().timeout(u32::try_from(watch_seconds).unwrap_or(u32::MAX));
        if kind == ApiKind::Secret {
            // Helm releases (up to 1 MiB each), tokens and registry
            // credentials are filtered out by the server, and pages are
            // small, so a list never holds much of what is dropped.
            config = config.fields(SECRET_TYPES_LEFT_OUT).page_size(50);
        }
        let mut events = watcher::watcher(api, config)
            .backoff(RetryDelay::new())
            .boxed();
        let mut relist: Option<BTreeMap<ObjectKey, ApiObject>> = None;
        let mut statuses = Vec::new();
        let mut listed_once = false;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    let message = format!("{part}: {e}");
                    log::warn!(
                        "hub cluster: watch failed, the last objects keep serving: {message}"
                    );
                    failing.store(true, Ordering::Relaxed);
                    let synced = !listed_once
                        && refused(&e)
                        && self.pending.fetch_sub(1, Ordering::AcqRel) == 1;
                    listed_once |= refused(&e);
                    store.report_part(part, Err(message), synced);
                    continue;
                }
            };
            failing.store(false, Ordering::Relaxed);
            match event {
                Event::Init => {
                    relist = Some(BTreeMap::new());
                    statuses.clear();
                }
                Event::InitApply(object) => {
                    let key = self.key(kind, object.meta());
                    if let (Some(buffer), Some((o, status))) = (relist.as_mut(), read(object)) {
                        buffer.insert(key.clone(), o);
                        if let Some(s) = status {
                            statuses.push((key, s));
                        }
                    }
                }
                Event::InitDone => {
                    let fresh = relist.take().unwrap_or_default();
                    let scope = self.namespace.as_deref();
                    let had = store.count(kind, scope);
                    if fresh.is_empty()
                        && had > 0
                        && kind == ApiKind::Ingress
                        && self.settings.keep_on_empty_list
                    {
                        log::error!(
                            "hub cluster: a relist of {part} returned no Ingress where there were {had}: \
                             keeping them (an RBAC or namespace mistake looks like this; \
                             keep_on_empty_list = false applies such lists)"
                        );
                    } else {
                        if fresh.is_empty() && had > 0 {
                            log::error!("hub cluster: a relist of {part} returned nothing where there were {had}: applied");
                        }
                        store.replace_scope(kind, scope, fresh);
                    }
                    for (key, status) in statuses.drain(..) {
                        store.observe_status((key.namespace, key.name), Some(status));
                    }
                    let synced = !listed_once && self.pending.fetch_sub(1, Ordering::AcqRel) == 1;
                    listed_once = true;
                    store.report_part(part, Ok(()), synced);
                }
                Event::Apply(object) => {
                    let key = self.key(kind, object.meta());
                    match read(object) {
                        Some((o, status)) => {
                            if let Some(s) = status {
                                store.observe_status(
                                    (key.namespace.clone(), key.name.clone()),
                                    Some(s),
                                );
                            }
                            store.put(key, o);
                        }
                        None => store.remove(&key),
                    }
                    store.report_part(part, Ok(()), false);
                }
                Event::Delete(object) => {
                    let key = self.key(kind, object.meta());
                    store.remove(&key);
                    store.report_part(part, Ok(()), false);
                }
            }
        }
    }
}

/// Whether the server refused the watch (401/403): RBAC that does not
/// grant it, which waiting does not mend.
fn refused(e: &watcher::Error) -> bool {
    let status = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s,
        watcher::Error::WatchError(s) => s,
        _ => return false,
    };
    matches!(status.code, 401 | 403)
}

/// The merge patch that sets an Ingress's status addresses, based on
/// `resource_version` (the server refuses it if the Ingress moved on).
fn status_patch(addresses: &[Advertised], resource_version: Option<&str>) -> serde_json::Value {
    let list: Vec<serde_json::Value> = addresses
        .iter()
        .map(|a| match a {
            Advertised::Ip(ip) => serde_json::json!({ "ip": ip }),
            Advertised::Hostname(h) => serde_json::json!({ "hostname": h }),
        })
        .collect();
    let mut patch = serde_json::json!({ "status": { "loadBalancer": { "ingress": list } } });
    if let Some(v) = resource_version {
        patch["metadata"] = serde_json::json!({ "resourceVersion": v });
    }
    patch
}

/// The status reconciler (see the module docs).
async fn write_status(store: Arc<HubStore>, client: kube::Client) {
    let mut retry = RetryDelay::new();
    loop {
        let seen = store.status_version();
        let work = store.status_work();
        let mut failed = false;
        for write in &work {
            let (namespace, name) = &write.ingress;
            let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
            let patch = status_patch(&write.addresses, write.resource_version.as_deref());
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(written) => {
                    let seen = (
                        advertised(&written),
                        written.metadata.resource_version.clone(),
                    );
                    store.observe_status(write.ingress.clone(), Some(seen));
                    store.note_written(&write.ingress, write.lists_ours);
                    store.record_write(Ok(()));
                }
                // Someone else wrote first: the watch brings their version,
                // and the write is worked out again from it.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => {
                    let message = format!("Ingress {namespace}/{name}: status not written: {e}");
                    log::warn!("hub cluster: {message}");
                    store.record_write(Err(message));
                    failed = true;
                }
            }
        }
        if failed {
            tokio::time::sleep(retry.next().unwrap_or(RetryDelay::MOST)).await;
            continue;
        }
        retry.reset();
        // A server that answers a write with another status must not make
        // this loop spin: passes that wrote are spaced.
        if !work.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Wait for the status to move, by the gateway or by the server. The
        // store is shared with threads outside the runtime, so its version
        // is polled rather than awaited.
        while store.status_version() == seen {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_lists_ips_and_hostnames() {
        let patch = status_patch(
            &[
                Advertised::parse("192.0.2.1"),
                Advertised::parse("gw.example.com"),
            ],
            Some("42"),
        );
        assert_eq!(
            patch.to_string(),
            r#"{"metadata":{"resourceVersion":"42"},"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.1"},{"hostname":"gw.example.com"}]}}}"#
        );
        assert_eq!(
            status_patch(&[], None).to_string(),
            r#"{"status":{"loadBalancer":{"ingress":[]}}}"#
        );
    }

    #[test]
    fn only_secrets_a_gateway_can_use_are_kept() {
        let mut s = Secret::default();
        assert!(useful_secret(&s));
        s.type_ = Some("kubernetes.io/tls".into());
        assert!(useful_secret(&s));
        s.type_ = Some("helm.sh/release.v1".into());
        assert!(!useful_secret(&s));
    }
}
