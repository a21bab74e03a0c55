//! Building a [`Router`] in code.
//!
//! The builder owns what a configuration loader would otherwise rebuild by
//! hand: pools are created once per name and shared by every route that
//! names them; pools whose endpoints and settings did not change are taken
//! over from the previous router, keeping their connections and health;
//! canaries bind to the route with their exact host, path and path type;
//! and when the router is built, the health checks learn which addresses
//! to probe, each once.
//!
//! ```
//! use std::sync::Arc;
//! use fleetgate_ingress::{HostPattern, PathType};
//! use fleetgate_pool::{Endpoint, HealthChecks};
//! use fleetgate_router::{PoolSpec, Route, RouterBuilder, Target};
//!
//! let checks = HealthChecks::new();
//! let mut builder = RouterBuilder::new(&checks);
//! let endpoints = vec![
//!     Arc::new(Endpoint::new("10.0.0.1:8080".parse().unwrap(), "zone-a")),
//!     Arc::new(Endpoint::new("10.1.0.1:8080".parse().unwrap(), "zone-b")),
//! ];
//! let pool = builder.pool(PoolSpec::new("shop/web:80", endpoints));
//! let host = HostPattern::parse("shop.example.com").unwrap();
//! let route = Route::new("shop/web", Target::whole("shop/web", "shop/web:80", pool));
//! builder.add_path(&host, "/", PathType::Prefix, route).unwrap();
//! let router = builder.build();
//! assert!(router.lookup("shop.example.com", "/cart").is_some());
//! ```

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use fleetgate_canary::{CanaryAnnotations, CanaryConflict, CanaryRouteBuilder, Flavour};
use fleetgate_ingress::{HostPattern, PathType, RegexRouteRefused, RouteTableBuilder};
use fleetgate_pool::{Endpoint, EndpointPool, HealthCheckConfig, HealthChecks, PoolOptions};

use crate::route::{Route, RouteId};
use crate::router::Router;
use crate::service_pool::{PoolId, RequestPolicy, ServicePool};
use crate::target::{Target, TargetId};

/// What a pool is made of.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    /// Its name, unique in the router (e.g. `namespace/service:port`);
    /// listings and logs show it, and a rebuilt router reuses the previous
    /// pool of the same name when nothing else changed.
    pub name: String,
    /// Its endpoints (an address listed twice counts once).
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Timeouts, outlier detection and protocol towards the endpoints.
    pub options: PoolOptions,
    /// Active health checks, if any.
    pub health_check: Option<HealthCheckConfig>,
    /// Retries and limits of the requests sent to it.
    pub policy: RequestPolicy,
}

impl PoolSpec {
    /// A pool over `endpoints` with default options, no active health
    /// checks and the default request policy.
    pub fn new(name: impl Into<String>, endpoints: Vec<Arc<Endpoint>>) -> Self {
        PoolSpec {
            name: name.into(),
            endpoints,
            options: PoolOptions::default(),
            health_check: None,
            policy: RequestPolicy::default(),
        }
    }
}

/// Builds a [`Router`] (see the module docs).
#[derive(Debug)]
pub struct RouterBuilder {
    checks: Arc<HealthChecks>,
    flavour: Flavour,
    reusable: HashMap<String, Arc<ServicePool>>,
    pools: Vec<Arc<ServicePool>>,
    pool_index: HashMap<String, usize>,
    routes: Vec<Route>,
    table: RouteTableBuilder<RouteId>,
    canaries: HashMap<RouteId, CanaryRouteBuilder<Target>>,
}

impl RouterBuilder {
    /// An empty router whose pools share endpoint state, peers and health
    /// checks through `checks` (one per process, kept across rebuilds; run
    /// its [`HealthChecks::supervisor`] as a background service).
    pub fn new(checks: &Arc<HealthChecks>) -> Self {
        RouterBuilder {
            checks: Arc::clone(checks),
            flavour: Flavour::default(),
            reusable: HashMap::new(),
            pools: Vec::new(),
            pool_index: HashMap::new(),
            routes: Vec::new(),
            table: RouteTableBuilder::new(),
            canaries: HashMap::new(),
        }
    }

    /// How canary annotations are read and combined (default: MSE).
    pub fn canary_flavour(mut self, flavour: Flavour) -> Self {
        self.flavour = flavour;
        self
    }

    /// Takes over the pools of `previous` that come back unchanged (same
    /// name, endpoints, options and health checks): their connections and
    /// health carry over.
    pub fn reuse_pools_of(mut self, previous: &Router) -> Self {
        self.reusable = previous
            .pools
            .iter()
            .map(|p| (p.name().to_string(), Arc::clone(p)))
            .collect();
        self
    }

    /// The pool `spec` describes, created on first use of its name; a
    /// second pool of the same name is the first one.
    pub fn pool(&mut self, spec: PoolSpec) -> Arc<ServicePool> {
        if let Some(&i) = self.pool_index.get(&spec.name) {
            return Arc::clone(&self.pools[i]);
        }
        let reused = self.reusable.get(&spec.name).filter(|old| {
            old.endpoints().eq(spec.endpoints.iter())
                && *old.options() == spec.options
                && old.health_check() == spec.health_check.as_ref()
        });
        let pool = match reused {
            Some(old) => Arc::clone(old.endpoint_pool()),
            None => Arc::new(EndpointPool::with_shared_state(
                spec.name.clone(),
                spec.endpoints,
                spec.options,
                spec.health_check
                    .as_ref()
                    .map(|h| self.checks.health_view(h)),
                &self.checks,
            )),
        };
        let id = PoolId(u32::try_from(self.pools.len()).unwrap_or(u32::MAX));
        let pool = Arc::new(ServicePool::new(pool, spec.health_check, spec.policy).with_id(id));
        self.pool_index.insert(spec.name, self.pools.len());
        self.pools.push(Arc::clone(&pool));
        pool
    }

    /// The pool named `name`, if one was added.
    pub fn pool_named(&self, name: &str) -> Option<&Arc<ServicePool>> {
        self.pool_index.get(name).map(|&i| &self.pools[i])
    }

    /// Adds a route for requests to `host` whose path matches `path` by
    /// `path_type` (`path` valid for its type, see
    /// [`fleetgate_ingress::validate_path`]). The first route of a host,
    /// path and type wins: a later one is handed back.
    pub fn add_path(
        &mut self,
        host: &HostPattern,
        path: &str,
        path_type: PathType,
        route: Route,
    ) -> Result<RouteId, Box<Route>> {
        let id = self.next_route_id();
        match self.table.add_path(host, path, path_type, id) {
            Ok(()) => {
                self.routes.push(route);
                Ok(id)
            }
            Err(_) => Err(Box::new(route)),
        }
    }

    /// Adds a route for requests to `host` whose path matches the regular
    /// expression `path` (see
    /// [`fleetgate_ingress::RouteTableBuilder::add_regex_path`]: tried
    /// before the host's other rules, longest first, case-insensitive).
    /// A refused route is handed back with why.
    pub fn add_regex_path(
        &mut self,
        host: &HostPattern,
        path: &str,
        path_type: PathType,
        route: Route,
    ) -> Result<RouteId, (Box<Route>, RegexRouteRefused<()>)> {
        let id = self.next_route_id();
        match self.table.add_regex_path(host, path, path_type, id) {
            Ok(()) => {
                self.routes.push(route);
                Ok(id)
            }
            Err(RegexRouteRefused::Duplicate(_)) => {
                Err((Box::new(route), RegexRouteRefused::Duplicate(())))
            }
            Err(RegexRouteRefused::Invalid(_, why)) => {
                Err((Box::new(route), RegexRouteRefused::Invalid((), why)))
            }
        }
    }

    /// Adds a route that no rule reaches yet, to be made a default with
    /// [`RouterBuilder::set_host_default`] or
    /// [`RouterBuilder::set_global_default`].
    pub fn add_default_route(&mut self, route: Route) -> RouteId {
        let id = self.next_route_id();
        self.routes.push(route);
        id
    }

    /// Makes route `id` the default of `host`: requests to it whose path
    /// matches no rule (an Ingress's `defaultBackend`; for
    /// [`HostPattern::Any`], hosts no rule names). The first default of a
    /// host wins: `Err` when it already has one.
    pub fn set_host_default(&mut self, host: &HostPattern, id: RouteId) -> Result<(), RouteId> {
        if id.index() >= self.routes.len() {
            return Err(id);
        }
        self.table
            .set_host_default(host, id)
            .map_err(|duplicate| duplicate.target)
    }

    /// Makes route `id` the gateway-wide default, for requests nothing
    /// else matches. `Err` when `id` is not one of this builder's routes.
    pub fn set_global_default(&mut self, id: RouteId) -> Result<(), RouteId> {
        if id.index() >= self.routes.len() {
            return Err(id);
        }
        self.table.set_global_default(id);
        Ok(())
    }

    /// The route with exactly this host, path and path type, if one was
    /// added (canaries bind to it).
    pub fn route_at(
        &mut self,
        host: &HostPattern,
        path: &str,
        path_type: PathType,
    ) -> Option<RouteId> {
        self.table.route_mut(host, path, path_type).copied()
    }

    /// Binds the canary Ingress `ingress` to route `id` (one of this
    /// builder's, from [`RouterBuilder::add_path`] or
    /// [`RouterBuilder::route_at`]): requests that meet its `annotations`
    /// (conditions or weight) go to `target`. Canaries are tried in the
    /// order they are added; in the nginx flavour a route takes one, and a
    /// second is a [`CanaryConflict`].
    pub fn add_canary(
        &mut self,
        id: RouteId,
        ingress: &str,
        annotations: &CanaryAnnotations,
        target: Target,
    ) -> Result<(), CanaryConflict> {
        let flavour = self.flavour;
        self.canaries
            .entry(id)
            .or_insert_with(|| CanaryRouteBuilder::new(flavour))
            .add(ingress, annotations, target.as_canary())
    }

    fn next_route_id(&self) -> RouteId {
        RouteId(u32::try_from(self.routes.len()).unwrap_or(u32::MAX))
    }

    /// Finishes the router: binds canaries, numbers targets, and tells the
    /// health checks every address to probe (each once per setting).
    pub fn build(mut self) -> Router {
        for (id, canaries) in self.canaries.drain() {
            if let Some(route) = self.routes.get_mut(id.index()) {
                route.canaries = Some(canaries.build());
            }
        }
        let mut next = 0u32;
        for route in &mut self.routes {
            route.main.set_id(TargetId(next));
            next += 1;
            if let Some(canaries) = &mut route.canaries {
                for target in canaries.targets_mut() {
                    target.set_id(TargetId(next));
                    next += 1;
                }
            }
        }
        register_health(&self.checks, &self.pools);
        Router {
            table: Arc::new(self.table.build()),
            routes: self.routes,
            pools: self.pools,
            target_count: next as usize,
        }
    }
}

/// Tells the health checks which addresses `pools` probe (each once), and
/// lets them forget the state of addresses no pool lists.
pub(crate) fn register_health(checks: &HealthChecks, pools: &[Arc<ServicePool>]) {
    let mut probe: HashMap<HealthCheckConfig, BTreeSet<SocketAddr>> = HashMap::new();
    for pool in pools {
        if let Some(h) = pool.health_check() {
            probe
                .entry(h.clone())
                .or_default()
                .extend(pool.endpoints().map(|e| e.address));
        }
    }
    checks.set_targets(&probe);
    let listed: std::collections::HashSet<SocketAddr> = pools
        .iter()
        .flat_map(|p| p.endpoints().map(|e| e.address))
        .collect();
    checks.retain_addresses(&listed);
}
