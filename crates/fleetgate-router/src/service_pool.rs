//! A pool of one Service port together with what a request sent to it must
//! obey: how often to retry, how long an upgraded connection may idle, how
//! many requests one endpoint takes.
//!
//! Routes hold these handles (`Arc`s) directly, so that a route, an admin
//! listing and a metrics observer all read the same object instead of
//! indexing parallel vectors.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use fleetgate_pool::{EndpointPool, HealthCheckConfig};

/// What a request needs to know about the pool it is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPolicy {
    /// Extra tries on another endpoint after a failure.
    pub retries: u32,
    /// Whether requests with non-idempotent methods are retried after a
    /// failure before any response byte.
    pub retry_non_idempotent: bool,
    /// Idle limit of an upgraded (WebSocket) connection, each direction.
    pub websocket_idle_timeout: Duration,
    /// Most requests in flight to one endpoint (0: no limit).
    pub max_requests_per_endpoint: u32,
    /// How long a request waits for room under that limit before a 503.
    pub queue_timeout: Duration,
    /// Pick by least request ([`crate::LeastRequest`]) rather than the
    /// proxy's default picker, unless the route asks for another way.
    pub least_request: bool,
}

impl Default for RequestPolicy {
    /// Two retries, idempotent methods only, WebSockets idle up to an hour,
    /// no per-endpoint limit.
    fn default() -> Self {
        RequestPolicy {
            retries: 2,
            retry_non_idempotent: false,
            websocket_idle_timeout: Duration::from_secs(3600),
            max_requests_per_endpoint: 0,
            queue_timeout: Duration::from_secs(1),
            least_request: false,
        }
    }
}

/// A pool's position in its router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PoolId(pub u32);

/// One endpoint pool with its active health-check settings and request
/// policy. Dereferences to the [`EndpointPool`].
#[derive(Debug)]
pub struct ServicePool {
    id: PoolId,
    pool: Arc<EndpointPool>,
    health_check: Option<HealthCheckConfig>,
    policy: RequestPolicy,
}

impl ServicePool {
    /// Wraps `pool`, probed with `health_check` (if any), for requests
    /// that obey `policy`. Only a [`crate::RouterBuilder`] makes them, so
    /// that every pool a route reaches is one its router knows.
    pub(crate) fn new(
        pool: Arc<EndpointPool>,
        health_check: Option<HealthCheckConfig>,
        policy: RequestPolicy,
    ) -> Self {
        ServicePool {
            id: PoolId::default(),
            pool,
            health_check,
            policy,
        }
    }

    /// Its position in its router (set when the router's builder adds it).
    pub fn id(&self) -> PoolId {
        self.id
    }

    /// A pool like this one (name, options, health checks, policy, id)
    /// over `endpoints`: endpoint state is shared through `checks`, so an
    /// address it had before keeps its health, ejections and connections.
    pub fn with_endpoints(
        &self,
        endpoints: Vec<Arc<fleetgate_pool::Endpoint>>,
        checks: &fleetgate_pool::HealthChecks,
    ) -> ServicePool {
        let pool = EndpointPool::with_shared_state(
            self.pool.name().to_string(),
            endpoints,
            self.pool.options().clone(),
            self.health_check.as_ref().map(|h| checks.health_view(h)),
            checks,
        );
        ServicePool::new(
            Arc::new(pool),
            self.health_check.clone(),
            self.policy.clone(),
        )
        .with_id(self.id)
    }

    pub(crate) fn with_id(mut self, id: PoolId) -> Self {
        self.id = id;
        self
    }

    /// The endpoint pool, shareable (a rebuilt router keeps an unchanged
    /// pool, with its connections and health).
    pub fn endpoint_pool(&self) -> &Arc<EndpointPool> {
        &self.pool
    }

    /// The active health-check settings, if the pool is probed.
    pub fn health_check(&self) -> Option<&HealthCheckConfig> {
        self.health_check.as_ref()
    }

    /// What requests sent to this pool obey.
    pub fn policy(&self) -> &RequestPolicy {
        &self.policy
    }
}

impl Deref for ServicePool {
    type Target = EndpointPool;

    fn deref(&self) -> &EndpointPool {
        &self.pool
    }
}
