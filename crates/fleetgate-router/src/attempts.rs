//! The tries of one request: which endpoint each went to, which failed,
//! and how much of the retry budget is spent.
//!
//! A request carries one [`Attempts`] from its first try to its last.
//! [`crate::Router::next_peer`] reads it to choose the next endpoint;
//! [`Attempts::report`] feeds each try's outcome back to the endpoint's
//! outlier detection and remembers failures, so that a retry goes
//! elsewhere; [`Attempts::take_retry`] spends the retry budget of the pool
//! the last try went to.

use std::net::SocketAddr;
use std::sync::Arc;

use fleetgate_pool::{Endpoint, Outcome, Picked};
use pingora_core::upstreams::peer::HttpPeer;

use crate::router::Router;
use crate::service_pool::{PoolId, ServicePool};

/// Where a try went, by position in its router: small and `Copy`, to keep
/// in a request's state; [`Router::attempt`] turns it back into an
/// [`Attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointRef {
    pool: PoolId,
    index: u32,
}

impl EndpointRef {
    /// The pool.
    pub fn pool(self) -> PoolId {
        self.pool
    }

    /// The endpoint's position in its pool.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// One try: an endpoint of a pool, borrowed from the router (no reference
/// count is touched on the request path).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'r> {
    pool: &'r Arc<ServicePool>,
    index: usize,
}

impl<'r> Attempt<'r> {
    pub(crate) fn new(pool: &'r Arc<ServicePool>, index: usize) -> Self {
        Attempt { pool, index }
    }

    /// The pool the endpoint was picked from.
    pub fn pool(&self) -> &'r Arc<ServicePool> {
        self.pool
    }

    /// The endpoint's position in its pool.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &'r Arc<Endpoint> {
        self.pool.endpoint(self.index)
    }

    /// A peer for this endpoint, with its pool's timeouts and protocol.
    pub fn peer(&self) -> Box<HttpPeer> {
        self.pool.peer(Picked {
            endpoint: self.endpoint(),
            index: self.index,
        })
    }

    /// Where it is, to keep beyond the borrow.
    pub fn endpoint_ref(&self) -> EndpointRef {
        EndpointRef {
            pool: self.pool.id(),
            index: u32::try_from(self.index).unwrap_or(u32::MAX),
        }
    }
}

/// How a try ended, as far as its endpoint is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryResult {
    /// The endpoint answered with this status (a 5xx counts against it).
    Answered(u16),
    /// The endpoint failed before answering: refused, reset, timed out.
    Failed {
        /// It did not answer in time (504 rather than 502 when nothing is
        /// left to try).
        timed_out: bool,
    },
}

/// The tries of one request.
#[derive(Debug, Default)]
pub struct Attempts {
    last: Option<EndpointRef>,
    failed: Vec<SocketAddr>,
    retries: u32,
    last_failure_timed_out: bool,
}

impl Attempts {
    /// No try yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the endpoint chosen for the next try.
    pub fn start(&mut self, attempt: &Attempt<'_>) {
        self.last = Some(attempt.endpoint_ref());
    }

    /// Where the latest try went ([`Router::attempt`] resolves it).
    pub fn last(&self) -> Option<EndpointRef> {
        self.last
    }

    /// Endpoints tries failed on, in order (empty, and unallocated, unless
    /// something failed).
    pub fn failed(&self) -> &[SocketAddr] {
        &self.failed
    }

    /// Retries taken so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Whether the latest failure was a timeout.
    pub fn last_failure_timed_out(&self) -> bool {
        self.last_failure_timed_out
    }

    /// Reports how the latest try ended: to its endpoint's outlier
    /// detection (a 5xx or a failure counts against it, anything else
    /// clears its failure count), and, for a failure, so that no later try
    /// of this request goes there. `router` is the one the try came from.
    pub fn report(&mut self, router: &Router, result: TryResult) {
        let Some(attempt) = self.last.and_then(|r| router.attempt(r)) else {
            return;
        };
        match result {
            TryResult::Answered(status) => {
                let outcome = if (500..600).contains(&status) {
                    Outcome::Failure
                } else {
                    Outcome::Success
                };
                attempt.pool.report(attempt.index, outcome);
            }
            TryResult::Failed { timed_out } => {
                attempt.pool.report(attempt.index, Outcome::Failure);
                self.failed.push(attempt.endpoint().address);
                self.last_failure_timed_out = timed_out;
            }
        }
    }

    /// Keeps later tries of this request away from the latest try's
    /// endpoint, which answered with a status the route retries on
    /// (already reported: nothing more counts against it). Whether the
    /// endpoint's pool has one left that no try of this request went to.
    pub fn avoid_last(&mut self, router: &Router) -> bool {
        let Some(attempt) = self.last.and_then(|r| router.attempt(r)) else {
            return false;
        };
        let address = attempt.endpoint().address;
        if !self.failed.contains(&address) {
            self.failed.push(address);
        }
        attempt
            .pool
            .endpoints()
            .any(|e| !self.failed.contains(&e.address))
    }

    /// Takes a retry if fewer than `max` were taken: a route's own budget
    /// (`proxy-next-upstream-tries`), in place of its pools'.
    pub fn take_retry_up_to(&mut self, max: u32) -> bool {
        let allowed = self.retries < max;
        if allowed {
            self.retries += 1;
        }
        allowed
    }

    /// Takes a retry from the budget of the latest try's pool, if one is
    /// left.
    pub fn take_retry(&mut self, router: &Router) -> bool {
        let Some(attempt) = self.last.and_then(|r| router.attempt(r)) else {
            return false;
        };
        let allowed = self.retries < attempt.pool.policy().retries;
        if allowed {
            self.retries += 1;
        }
        allowed
    }
}
