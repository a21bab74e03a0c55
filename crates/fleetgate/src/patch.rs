//! Applying endpoint changes to the serving snapshot without rebuilding it.
//!
//! When a live source changes some Services' endpoints and nothing else,
//! the configuration is the one the serving snapshot was built from: its
//! routes, targets and route table are still right, only the pools of
//! those Services are not. [`patch_endpoints`] builds their new pools
//! (endpoint state is shared per address, so unchanged endpoints keep
//! health, ejections and connections) and a router that is the old one
//! with those pools replaced, the route table shared. Its cost follows the
//! Services that changed, not the size of the configuration.
//!
//! It declines (and the caller compiles the whole configuration) where a
//! patch could be wrong: a changed Service that is split into subset tiers
//! or mirrored to, whose endpoints appear or all go (warnings and
//! `/status` say so), or whose sources have something to warn about.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fleetgate_config::Config;
use fleetgate_discovery::StoreSnapshot;
use fleetgate_pool::HealthChecks;
use fleetgate_proxy::Snapshot;

use crate::compile::{dns_service_name, endpoint_specs, endpoints, Interned};

/// What [`patch_endpoints`] found.
pub enum Patch {
    /// No pool's endpoints changed: the serving snapshot stays.
    Unchanged,
    /// The serving snapshot with the changed pools replaced, and how many
    /// Services changed.
    Patched(Box<Snapshot>, usize),
    /// Only a full build is right (see the module docs).
    Rebuild,
}

/// `previous` (built from `config` and the live sources' view `before`)
/// brought to the endpoints of `now` (see the module docs).
pub fn patch_endpoints(
    config: &Config,
    generation: u64,
    checks: &Arc<HealthChecks>,
    previous: &Snapshot,
    before: &StoreSnapshot,
    now: &StoreSnapshot,
) -> Patch {
    let changed = now.changed_since(before);
    // (namespace, name as stored) of every changed Service, any cluster.
    let touched: HashSet<(&str, &str)> = changed
        .iter()
        .map(|(_, ns, name)| (ns.as_str(), name.as_str()))
        .collect();
    let mirrored: HashSet<(&str, &str)> = config
        .ingresses
        .iter()
        .filter_map(|i| i.mirror.as_ref())
        .filter_map(|m| match &m.target {
            fleetgate_config::MirrorTarget::Service {
                namespace, name, ..
            } => Some((namespace.as_str(), name.as_str())),
            fleetgate_config::MirrorTarget::Url(_) => None,
        })
        .collect();
    // Each Service's pools, by the Service key their names start with:
    // its own, one per protocol an Ingress overrides it with
    // (`key[grpc]`), and subset tiers (`key[subset …]`).
    let mut pools: HashMap<&str, Vec<&Arc<fleetgate_router::ServicePool>>> = HashMap::new();
    for p in previous.router.pools() {
        let name = p.name();
        let key = name.find('[').map_or(name, |i| &name[..i]);
        pools.entry(key).or_default().push(p);
    }
    let mut replacements = Vec::new();
    let mut services = 0;
    // DNS sources file a Service port under `name:port`.
    let dns = config
        .clusters
        .iter()
        .any(|c| matches!(c.source, fleetgate_config::EndpointSource::Dns(_)));
    for service in &config.services {
        let ns = service.namespace.as_str();
        let hit = touched.contains(&(ns, service.name.as_str()))
            || (dns && touched.contains(&(ns, dns_service_name(service).as_str())));
        if !hit {
            continue;
        }
        if mirrored.contains(&(ns, service.name.as_str())) {
            return Patch::Rebuild;
        }
        let key = service.key();
        // Subset tiers cannot be patched.
        let Some(own) = pools.get(key.as_str()) else {
            return Patch::Rebuild;
        };
        if own
            .iter()
            .any(|p| p.name().contains("[subset ") || p.name().contains("[outside subset "))
        {
            return Patch::Rebuild;
        }
        let mut warnings = Vec::new();
        let specs = endpoint_specs(config, service, Some(now), Some(&mut warnings));
        if !warnings.is_empty() {
            return Patch::Rebuild;
        }
        let Some(old) = own.iter().find(|p| p.name() == key) else {
            return Patch::Rebuild;
        };
        let mut interned: Interned = HashMap::new();
        for e in old.endpoints() {
            interned.entry(e.address).or_default().push(Arc::clone(e));
        }
        let eps = endpoints(config, &specs, &mut interned);
        if eps.is_empty() != (old.endpoints().len() == 0) {
            return Patch::Rebuild;
        }
        if old.endpoints().eq(eps.iter()) {
            continue;
        }
        services += 1;
        for pool in own {
            replacements.push(Arc::new(pool.with_endpoints(eps.clone(), checks)));
        }
    }
    if replacements.is_empty() {
        return Patch::Unchanged;
    }
    match previous.router.with_pools_replaced(replacements, checks) {
        Some(router) => Patch::Patched(Box::new(previous.patched(generation, router)), services),
        None => Patch::Rebuild,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_discovery::{AddressFamily, EndpointStore, Slice, SliceEndpoint, SlicePort};

    const TOML: &str = r#"
[gateway]
listen = ["127.0.0.1:0"]
ingress_class = "mse"
[[cluster]]
id = "c1"
source = "kubernetes"
[[service]]
namespace = "shop"
name = "web"
port = 80
[[service]]
namespace = "shop"
name = "api"
port = 80
[[ingress]]
namespace = "shop"
name = "web"
class = "mse"
rules = [
  { host = "web.example", paths = [{ path = "/", type = "Prefix", service = "web", port = 80 }] },
  { host = "api.example", paths = [{ path = "/", type = "Prefix", service = "api", port = 80 }] },
]
"#;

    fn slice(service: &str, ips: &[&str]) -> Slice {
        Slice {
            namespace: "shop".into(),
            name: format!("{service}-1"),
            service: service.into(),
            family: AddressFamily::Ipv4,
            ports: vec![SlicePort {
                name: String::new(),
                port: 8080,
                protocol: "TCP".into(),
            }],
            endpoints: ips
                .iter()
                .map(|ip| SliceEndpoint {
                    address: ip.parse().expect("test address"),
                    condition: Some(fleetgate_pool::Condition::Ready),
                    zone: None,
                    zone_hints: Vec::new(),
                    node: None,
                    weight: 1,
                })
                .collect(),
        }
    }

    fn put(store: &EndpointStore, service: &str, ips: &[&str]) {
        store.put_slice(
            "c1",
            "shop",
            service,
            &format!("{service}-1"),
            Some(slice(service, ips)),
        );
    }

    fn addresses(snapshot: &Snapshot, pool: &str) -> Vec<String> {
        let pool = snapshot
            .router
            .pools()
            .iter()
            .find(|p| p.name() == pool)
            .expect("pool");
        pool.endpoints().map(|e| e.address.to_string()).collect()
    }

    #[test]
    fn a_patch_serves_what_a_build_would_and_keeps_the_rest() {
        let config = Config::from_toml_str("gw.toml".as_ref(), TOML).expect("config");
        let checks = HealthChecks::new();
        let store = EndpointStore::new();
        put(&store, "web", &["10.0.0.1", "10.0.0.2"]);
        put(&store, "api", &["10.0.1.1"]);
        let before = store.snapshot();
        let first = crate::compile::compile_with(&config, 1, &checks, None, Some(&before))
            .expect("compiles");
        assert!(matches!(
            patch_endpoints(&config, 2, &checks, &first, &before, &before),
            Patch::Unchanged
        ));

        put(&store, "web", &["10.0.0.2", "10.0.0.3"]);
        let now = store.snapshot();
        let Patch::Patched(patched, services) =
            patch_endpoints(&config, 2, &checks, &first, &before, &now)
        else {
            panic!("a change of endpoints only is patched");
        };
        assert_eq!(services, 1);
        let built = crate::compile::compile_with(&config, 2, &checks, Some(&first), Some(&now))
            .expect("compiles");
        assert_eq!(
            addresses(&patched, "shop/web:80"),
            addresses(&built, "shop/web:80")
        );
        assert_eq!(
            addresses(&patched, "shop/web:80"),
            ["10.0.0.2:8080", "10.0.0.3:8080"]
        );
        // Routes lead to the new pool; the unchanged pool is the same object.
        let route = patched.router.lookup("web.example", "/").expect("route");
        let target = &patched.router.route(route).main;
        let eps: Vec<String> = target
            .service_pools()
            .flat_map(|p| p.endpoints().map(|e| e.address.to_string()))
            .collect();
        assert_eq!(eps, ["10.0.0.2:8080", "10.0.0.3:8080"]);
        let same = |s: &Snapshot| {
            Arc::clone(
                s.router
                    .pools()
                    .iter()
                    .find(|p| p.name() == "shop/api:80")
                    .expect("api"),
            )
        };
        assert!(Arc::ptr_eq(&same(&first), &same(&patched)));
        assert_eq!(patched.router.routes().len(), first.router.routes().len());

        // A Service whose endpoints all go needs a build (its warnings).
        put(&store, "api", &[]);
        let gone = store.snapshot();
        assert!(matches!(
            patch_endpoints(&config, 3, &checks, &patched, &now, &gone),
            Patch::Rebuild
        ));
    }
}
