//! Choosing one endpoint of a pool: the stage a different load-balancing
//! algorithm replaces.
//!
//! The router decides *which* endpoints a try may use (not those that
//! failed the request, perhaps not the cluster that looks down, health
//! ignored in panic mode) and hands that to an [`EndpointPicker`], which
//! chooses *one*. fleetgate's own picker is [`WeightedRoundRobin`];
//! consistent hashing, least-request or power-of-two-choices pickers plug
//! in by implementing the trait (and the gateway takes one as a type
//! parameter, so the default costs no dynamic call).

use std::net::SocketAddr;

use fleetgate_pool::{Endpoint, EndpointPool};

/// Which endpoints of a pool a try may use.
#[derive(Debug, Clone, Copy)]
pub struct Eligible<'a> {
    /// Endpoints this request already failed on.
    pub excluded: &'a [SocketAddr],
    /// A cluster to leave (the failing one), if any.
    pub leave_cluster: Option<&'a str>,
    /// Ignore health checks and ejections (a tier in panic mode).
    pub ignore_health: bool,
}

impl Eligible<'_> {
    /// Every available endpoint.
    pub const ANY: Eligible<'static> = Eligible {
        excluded: &[],
        leave_cluster: None,
        ignore_health: false,
    };

    /// Whether `endpoint` passes the request's exclusions (health is the
    /// pool's to say: [`EndpointPool::is_available`]).
    #[inline]
    pub fn accepts(&self, endpoint: &Endpoint) -> bool {
        self.leave_cluster.is_none_or(|c| endpoint.cluster != c)
            && !self.excluded.contains(&endpoint.address)
    }

    /// Whether nothing is excluded but unavailable endpoints.
    #[inline]
    pub fn is_any_available(&self) -> bool {
        self.excluded.is_empty() && self.leave_cluster.is_none() && !self.ignore_health
    }

    /// Whether endpoint `i` of `pool` may be used: accepted, and
    /// available unless health is ignored. A drained cluster's endpoints
    /// are never allowed, not even when health is ignored.
    pub fn allows(&self, pool: &EndpointPool, i: usize) -> bool {
        let usable = if self.ignore_health {
            !pool.is_drained(i)
        } else {
            pool.is_available(i)
        };
        usable && self.accepts(pool.endpoint(i))
    }
}

/// Chooses one endpoint for a try.
pub trait EndpointPicker: Send + Sync + 'static {
    /// The index in `pool` of an endpoint `eligible` allows (see
    /// [`Eligible::allows`]), for a try of the request whose head is
    /// `request`; `None` if there is none. The router trusts the answer to
    /// be eligible (it checks only that the index exists): a picker that
    /// ignores `eligible` sends retries back to failed endpoints. Called on
    /// the request path: no blocking, no locks held long.
    fn pick(
        &self,
        pool: &EndpointPool,
        eligible: &Eligible<'_>,
        request: &http::request::Parts,
    ) -> Option<usize>;
}

/// fleetgate's picker: weighted round robin over the eligible endpoints
/// (weights are pod counts or configured weights), with a scan from a
/// rotating start when the scheduled endpoint is not eligible.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeightedRoundRobin;

impl EndpointPicker for WeightedRoundRobin {
    #[inline]
    fn pick(
        &self,
        pool: &EndpointPool,
        eligible: &Eligible<'_>,
        _request: &http::request::Parts,
    ) -> Option<usize> {
        let picked = if eligible.is_any_available() {
            pool.select()
        } else if eligible.ignore_health {
            pool.select_any(|e| eligible.accepts(e))
        } else {
            pool.select_with(|e| eligible.accepts(e))
        };
        picked.map(|p| p.index)
    }
}
