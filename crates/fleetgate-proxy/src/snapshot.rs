//! The routing snapshot: everything a request needs, compiled at load.
//!
//! A [`Snapshot`] is immutable. The proxy reads the current one through an
//! atomic pointer ([`SharedSnapshot`]); a reload compiles a new one off the
//! request path and swaps it in, so a request always sees one whole
//! configuration, never a mix.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use fleetgate_config::{BackendRef, Config, Disposition, Service};
use fleetgate_ingress::{RouteTable, RouteTableBuilder};
use fleetgate_pool::{Endpoint, EndpointPool, HealthRegistry, UpstreamTimeouts};

/// A route's destination: the Ingress that defined it and the Service port.
#[derive(Debug, Clone)]
pub struct Route {
    /// `namespace/name` of the Ingress.
    pub ingress: Arc<str>,
    /// `namespace/service:port`, as referenced.
    pub service: Arc<str>,
    /// Index into [`Snapshot::pools`], or `None` when the Service is unknown
    /// (requests get 503).
    pub pool: Option<usize>,
}

/// What compiling a configuration found, for `check`, logs and status.
#[derive(Debug, Clone, Default)]
pub struct CompileReport {
    /// Served Ingresses (`namespace/name`).
    pub served: Vec<String>,
    /// Ignored Ingresses and why.
    pub ignored: Vec<(String, String)>,
    /// Problems that do not stop the gateway (e.g. a backend Service that is
    /// not declared: its routes answer 503).
    pub warnings: Vec<String>,
}

/// One compiled configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with each reload.
    pub generation: u64,
    /// The route table; targets index [`Snapshot::routes`].
    pub table: RouteTable<u32>,
    /// Route destinations.
    pub routes: Vec<Route>,
    /// One pool per Service port.
    pub pools: Vec<Arc<EndpointPool>>,
    /// What compiling found.
    pub report: CompileReport,
}

/// The current snapshot, swappable under load.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// Timeouts for a Service, from the config model.
fn timeouts(s: &Service) -> UpstreamTimeouts {
    UpstreamTimeouts {
        connect: s.timeouts.connect_timeout,
        read: s.timeouts.read_timeout,
        write: s.timeouts.write_timeout,
        idle: s.timeouts.idle_timeout,
    }
}

/// Builds the endpoints of a Service with their cluster and zone labels.
fn endpoints(config: &Config, s: &Service) -> Vec<Arc<Endpoint>> {
    s.endpoints
        .iter()
        .map(|e| {
            let mut ep = Endpoint::new(e.address, &e.cluster)
                .with_weight(e.weight)
                .with_labels(&e.labels);
            if let Some(zone) = config
                .clusters
                .iter()
                .find(|c| c.id == e.cluster)
                .and_then(|c| c.zone.as_deref())
            {
                ep = ep.with_zone(zone);
            }
            Arc::new(ep)
        })
        .collect()
}

impl Snapshot {
    /// Compiles `config`. Pools whose endpoints and timeouts are unchanged
    /// from `previous` are reused as they are (keeping their state); new ones
    /// join `registry`, so health is shared per address.
    pub fn compile(
        config: &Config,
        generation: u64,
        registry: &Arc<HealthRegistry>,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let mut report = CompileReport::default();
        let reusable: HashMap<&str, &Arc<EndpointPool>> = previous
            .map(|p| p.pools.iter().map(|pool| (pool.name(), pool)).collect())
            .unwrap_or_default();

        let mut pools = Vec::with_capacity(config.services.len());
        let mut pool_index: HashMap<String, usize> = HashMap::new();
        for s in &config.services {
            let key = s.key();
            let eps = endpoints(config, s);
            let t = timeouts(s);
            let pool = match reusable.get(key.as_str()) {
                Some(old) if old.endpoints() == eps.as_slice() && old.timeouts() == t => {
                    Arc::clone(old)
                }
                _ => Arc::new(EndpointPool::new(key.clone(), eps, registry, t)),
            };
            pool_index.insert(key, pools.len());
            pools.push(pool);
        }

        let mut routes: Vec<Route> = Vec::new();
        let mut builder = RouteTableBuilder::new();
        let mut route_for = |ns: &str,
                             ingress: &str,
                             b: &BackendRef,
                             report: &mut CompileReport|
         -> u32 {
            let resolved = config.resolve_service(ns, b);
            let service: Arc<str> = match resolved {
                Some(s) => s.key().into(),
                None => format!("{ns}/{b}").into(),
            };
            let pool = resolved.and_then(|s| pool_index.get(&s.key()).copied());
            if pool.is_none() {
                report.warnings.push(format!(
                    "Ingress {ingress}: backend service {ns}/{b} is not declared; its requests get 503"
                ));
            } else if let Some(i) = pool {
                if pools[i].is_empty() {
                    report.warnings.push(format!(
                        "Ingress {ingress}: backend service {} has no endpoints; its requests get 503",
                        pools[i].name()
                    ));
                }
            }
            routes.push(Route {
                ingress: ingress.into(),
                service,
                pool,
            });
            (routes.len() - 1) as u32
        };

        for ing in &config.ingresses {
            let key = ing.key();
            if let Disposition::Ignored(reason) = &ing.disposition {
                log::info!("Ingress {key} ignored: {reason}");
                report.ignored.push((key, reason.clone()));
                continue;
            }
            report.served.push(key.clone());
            for rule in &ing.rules {
                for p in &rule.paths {
                    let id = route_for(&ing.namespace, &key, &p.backend, &mut report);
                    if builder
                        .add_path(&rule.host, &p.path, p.path_type, id)
                        .is_err()
                    {
                        report.warnings.push(format!(
                            "Ingress {key}: host {} path {} ({}) is already routed by an earlier Ingress; this rule is not used",
                            rule.host, p.path, p.path_type
                        ));
                    }
                }
            }
            if let Some(b) = &ing.default_backend {
                let id = route_for(&ing.namespace, &key, b, &mut report);
                let mut hosts: Vec<_> = ing.rules.iter().map(|r| r.host.clone()).collect();
                if hosts.is_empty() {
                    hosts.push(fleetgate_ingress::HostPattern::Any);
                }
                hosts.dedup();
                for h in hosts {
                    if builder.set_host_default(&h, id).is_err() {
                        report.warnings.push(format!(
                            "Ingress {key}: host {h} already has a default backend from an earlier Ingress"
                        ));
                    }
                }
            }
        }
        if let Some(d) = &config.gateway.default_backend {
            let id = route_for(
                &d.namespace,
                "(gateway default backend)",
                &d.backend,
                &mut report,
            );
            builder.set_global_default(id);
        }
        for w in &report.warnings {
            log::warn!("{w}");
        }
        Snapshot {
            generation,
            table: builder.build(),
            routes,
            pools,
            report,
        }
    }

    /// The pool of a route, if its Service is known.
    pub fn pool(&self, route: &Route) -> Option<&EndpointPool> {
        route.pool.map(|i| self.pools[i].as_ref())
    }
}
