//! Gateway-wide request counters, updated with relaxed atomics.
//!
//! The admin API and metrics read them; the shutdown path logs them, so an
//! operator sees what a run served and how often failover had to retry.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::client_guard::ConnectionCounts;

/// Counters shared by every request.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Requests being served now.
    pub in_flight: AtomicUsize,
    /// Requests received.
    pub requests: AtomicU64,
    /// Tries repeated on another endpoint after a failure.
    pub retries: AtomicU64,
    /// Requests answered with a 404 from the gateway.
    pub not_found: AtomicU64,
    /// Requests that failed with a gateway-generated 5xx.
    pub failed: AtomicU64,
    /// Responses cut short after they had started (the upstream failed
    /// mid-body): the client saw a truncation, not a complete response.
    pub truncated: AtomicU64,
    /// Requests answered 503 because every endpoint had
    /// `max_requests_per_endpoint` in flight for `queue_timeout`.
    pub overflowed: AtomicU64,
    /// Client connections and what their limits refused.
    pub connections: Arc<ConnectionCounts>,
    /// Set when a graceful shutdown begins: responses then carry
    /// `Connection: close`, so that clients and balancers move their next
    /// requests to another replica before the listeners close.
    pub draining: std::sync::atomic::AtomicBool,
    /// Set on SIGTERM only (not on a binary upgrade's hand-over, where the
    /// new process shares the listeners, the admin one included): the
    /// readiness probe answers 503 from then on.
    pub shutting_down: std::sync::atomic::AtomicBool,
}

impl GatewayStats {
    /// A one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} retries, {} answered 404, {} failed with a gateway 5xx",
            self.requests.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.not_found.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
