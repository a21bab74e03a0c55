//! The routing snapshot: everything a request needs, compiled at load.
//!
//! A [`Snapshot`] is immutable. The proxy reads the current one through an
//! atomic pointer ([`SharedSnapshot`]); a reload compiles a new one off the
//! request path and swaps it in, so a request always sees one whole
//! configuration, never a mix.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use fleetgate_config::{BackendRef, Config, Disposition, HealthCheckKind, Service};
use fleetgate_ingress::{RouteTable, RouteTableBuilder};
use fleetgate_pool::{
    Endpoint, EndpointPool, HealthCheckConfig, HealthChecks, OutlierConfig, PoolOptions, Probe,
    UpstreamTimeouts,
};

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
    /// Per pool: its active health-check settings (for reuse decisions).
    pool_health: Vec<Option<HealthCheckConfig>>,
    /// Per pool: extra tries after a failure.
    pub pool_retries: Vec<u32>,
    /// What compiling found.
    pub report: CompileReport,
}

/// The current snapshot, swappable under load.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// Pool settings for a Service, from the config model.
fn pool_options(s: &Service) -> PoolOptions {
    let u = &s.timeouts;
    PoolOptions {
        timeouts: UpstreamTimeouts {
            connect: u.connect_timeout,
            read: u.read_timeout,
            write: u.write_timeout,
            idle: u.idle_timeout,
        },
        outlier: OutlierConfig {
            consecutive_failures: u.outlier.consecutive_failures,
            base_ejection_time: u.outlier.base_ejection_time,
            max_ejection_percent: u.outlier.max_ejection_percent,
            max_ejection_time: u.outlier.max_ejection_time,
        },
    }
}

/// Active health-check settings for a Service, from the config model.
fn health_config(s: &Service) -> Option<HealthCheckConfig> {
    let h = s.health_check.as_ref()?;
    Some(HealthCheckConfig {
        probe: match &h.kind {
            HealthCheckKind::Http { path, host, expect } => Probe::Http {
                path: path.clone(),
                host: host.clone(),
                expect: *expect,
            },
            HealthCheckKind::Tcp => Probe::Tcp,
        },
        interval: h.interval,
        timeout: h.timeout,
        healthy_threshold: h.healthy_threshold,
        unhealthy_threshold: h.unhealthy_threshold,
    })
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
    /// Compiles `config`. Pools whose endpoints and settings are unchanged
    /// from `previous` are reused as they are (keeping their state); new ones
    /// join the health registries of `checks`, so health and outlier state
    /// are shared per address.
    pub fn compile(
        config: &Config,
        generation: u64,
        checks: &Arc<HealthChecks>,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let mut report = CompileReport::default();
        type Reusable<'a> = (&'a Arc<EndpointPool>, &'a Option<HealthCheckConfig>);
        let reusable: HashMap<&str, Reusable> = previous
            .map(|p| {
                p.pools
                    .iter()
                    .zip(&p.pool_health)
                    .map(|(pool, health)| (pool.name(), (pool, health)))
                    .collect()
            })
            .unwrap_or_default();

        let mut pools = Vec::with_capacity(config.services.len());
        let mut pool_health = Vec::with_capacity(config.services.len());
        let mut pool_retries = Vec::with_capacity(config.services.len());
        let mut pool_index: HashMap<String, usize> = HashMap::new();
        for s in &config.services {
            let key = s.key();
            let eps = endpoints(config, s);
            let options = pool_options(s);
            let health = health_config(s);
            let pool = match reusable.get(key.as_str()) {
                Some((old, old_health))
                    if old.endpoints() == eps.as_slice()
                        && old.options() == options
                        && **old_health == health =>
                {
                    Arc::clone(old)
                }
                _ => Arc::new(EndpointPool::with_shared_state(
                    key.clone(),
                    eps,
                    &checks.registry_for(health.as_ref()),
                    options,
                    |addr| checks.endpoint_state(addr),
                )),
            };
            pool_index.insert(key, pools.len());
            pools.push(pool);
            pool_health.push(health);
            pool_retries.push(s.timeouts.retries);
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
            pool_health,
            pool_retries,
            report,
        }
    }

    /// The pool of a route, if its Service is known.
    pub fn pool(&self, route: &Route) -> Option<&EndpointPool> {
        route.pool.map(|i| self.pools[i].as_ref())
    }
}
