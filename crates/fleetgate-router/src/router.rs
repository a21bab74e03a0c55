//! The router: a request head in, a plan and a peer per try out.

use std::net::SocketAddr;
use std::sync::Arc;

use fleetgate_canary::RequestView;
use fleetgate_ingress::RouteTable;

use crate::attempts::{Attempt, Attempts, EndpointRef};
use crate::picker::{EndpointPicker, WeightedRoundRobin};
use crate::route::{Plan, Route, RouteId};
use crate::service_pool::{PoolId, ServicePool};
use crate::target::Target;

/// Everything routing needs, immutable once built (see
/// [`crate::RouterBuilder`]). Share it behind an `Arc` (or an `ArcSwap`, to
/// replace it on reload): a request holds on to the router it started with.
///
/// Per request:
/// 1. [`Router::lookup`]: the route for a host and path;
/// 2. [`Router::plan`]: main or a canary, once, on the first try;
/// 3. [`Router::next_peer`]: an endpoint for the first try and for every
///    retry (never one that failed this request; out of a cluster that
///    looks down; across subset tiers by their health);
/// 4. [`Attempts::report`]: each try's outcome, back to outlier detection.
#[derive(Debug)]
pub struct Router {
    /// Shared by routers that differ only in their pools' endpoints.
    pub(crate) table: Arc<RouteTable<RouteId>>,
    pub(crate) routes: Vec<Route>,
    pub(crate) pools: Vec<Arc<ServicePool>>,
    pub(crate) target_count: usize,
}

impl Router {
    /// The route for a request to `host` (a Host header: case and port do
    /// not matter) and `path` (already normalised, if wanted).
    #[inline]
    pub fn lookup(&self, host: &str, path: &str) -> Option<RouteId> {
        self.table.lookup(host, path).map(|m| *m.target)
    }

    /// The route `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not one of this router's (ids from [`Router::lookup`]
    /// always are).
    pub fn route(&self, id: RouteId) -> &Route {
        &self.routes[id.index()]
    }

    /// Decides where a request on route `id` goes: a canary whose
    /// conditions it meets (or whose weight the dice pick), if that canary
    /// has an endpoint available, else main. `roll` draws a uniformly
    /// random number and is called at most once.
    #[inline]
    pub fn plan(
        &self,
        id: RouteId,
        req: &http::request::Parts,
        roll: impl FnOnce() -> u64,
    ) -> Plan {
        let route = self.route(id);
        let canary = route.canaries.as_ref().and_then(|canaries| {
            let view = RequestView::from_parts(req);
            canaries
                .decide(&view, roll)
                // A canary with no available endpoint falls back to main.
                .filter(|&i| canaries.target(i).has_available())
        });
        Plan { route: id, canary }
    }

    /// The target a plan sends to.
    pub fn target(&self, plan: Plan) -> &Target {
        self.route(plan.route).target(plan.canary)
    }

    /// The endpoint for the next try of `request`, by weighted round
    /// robin: never one an earlier try failed on. `None` when none is left.
    #[inline]
    pub fn next_peer(
        &self,
        plan: Plan,
        attempts: &Attempts,
        request: &http::request::Parts,
        roll: impl FnOnce() -> u64,
    ) -> Option<Attempt<'_>> {
        self.target(plan)
            .pick(&WeightedRoundRobin, attempts.failed(), request, roll)
    }

    /// Like [`Router::next_peer`], choosing with `picker` and avoiding
    /// `excluded` instead (the failed endpoints, and others the caller
    /// found full).
    #[inline]
    pub fn next_peer_with<P: EndpointPicker + ?Sized>(
        &self,
        picker: &P,
        plan: Plan,
        excluded: &[SocketAddr],
        request: &http::request::Parts,
        roll: impl FnOnce() -> u64,
    ) -> Option<Attempt<'_>> {
        self.target(plan).pick(picker, excluded, request, roll)
    }

    /// The try `r` refers to, if `r` is this router's.
    #[inline]
    pub fn attempt(&self, r: EndpointRef) -> Option<Attempt<'_>> {
        let pool = self.pools.get(r.pool().0 as usize)?;
        (r.index() < pool.endpoints().len()).then(|| Attempt::new(pool, r.index()))
    }

    /// A router like this one whose pools `replacements` (each with the
    /// id of the pool it replaces, see [`ServicePool::with_endpoints`])
    /// stand in for the old ones: same routes, targets and ids, the route
    /// table shared. What changed is registered with the health checks as
    /// a build would. `None` when a replaced pool is a subset's tier (only
    /// a rebuild splits tiers) or an id is not this router's.
    pub fn with_pools_replaced(
        &self,
        replacements: Vec<Arc<ServicePool>>,
        checks: &fleetgate_pool::HealthChecks,
    ) -> Option<Router> {
        let mut pools = self.pools.clone();
        let mut replaced = std::collections::HashMap::with_capacity(replacements.len());
        for pool in replacements {
            let slot = pools.get_mut(pool.id().0 as usize)?;
            if slot.name() != pool.name() {
                return None;
            }
            *slot = Arc::clone(&pool);
            replaced.insert(pool.id(), pool);
        }
        let routes = self
            .routes
            .iter()
            .map(|r| r.remapped(&replaced))
            .collect::<Option<Vec<_>>>()?;
        crate::builder::register_health(checks, &pools);
        Some(Router {
            table: Arc::clone(&self.table),
            routes,
            pools,
            target_count: self.target_count,
        })
    }

    /// The pool `id`, if it is this router's.
    pub fn pool(&self, id: PoolId) -> Option<&Arc<ServicePool>> {
        self.pools.get(id.0 as usize)
    }

    /// The route table (for listings: rules, host defaults, the global
    /// default).
    pub fn table(&self) -> &RouteTable<RouteId> {
        &self.table
    }

    /// Every route, by id.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Every pool: one per Service port, and per subset tier.
    pub fn pools(&self) -> &[Arc<ServicePool>] {
        &self.pools
    }

    /// Every target, in [`crate::TargetId`] order.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.routes.iter().flat_map(Route::targets)
    }

    /// How many targets there are (one past the largest id).
    pub fn target_count(&self) -> usize {
        self.target_count
    }
}
