//! Request rate and concurrency limits per client address for a route
//! (`limit-rps`, `limit-rpm`, `limit-connections`), local to this gateway
//! process.
//!
//! Rates follow nginx's `limit_req ... burst=B nodelay`, which
//! ingress-nginx configures: a client may send up to `rate × multiplier + 1`
//! requests at once, then `rate` per second (or minute); the rest are
//! refused at once, not queued. This is a token bucket (GCRA), kept per
//! client by the `governor` crate. Concurrency counts requests in
//! progress per client, as nginx's `limit_conn` counts connections with a
//! request in progress (each HTTP/2 stream is one).
//!
//! The client is the one [`crate::edge::client_address`] tells; one that
//! cannot be told is refused. Clients that have been quiet long enough to
//! be as new are forgotten now and then, so the state stays bounded by the
//! clients actually sending.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::HeaderValue;
use ipnet::IpNet;
use pingora_core::Result;
use pingora_proxy::Session;

use super::{Answer, Flow, GatewayModule, Steps};
use crate::edge;
use crate::gateway::RequestCtx;

type PerClient = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// How often (in checks) forgotten clients are swept out.
const SWEEP_EVERY: u64 = 4096;

/// What a [`RateLimit`] enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Requests per second per client.
    pub rps: Option<u32>,
    /// Requests per minute per client.
    pub rpm: Option<u32>,
    /// Requests at once beyond the rate, as a multiple of it (at least 1).
    pub burst_multiplier: u32,
    /// Requests in progress at once per client.
    pub connections: Option<u32>,
    /// Clients the limits do not apply to.
    pub exempt: Vec<IpNet>,
    /// The status of a refusal: 503 (ingress-nginx's) or 429.
    pub status: u16,
}

/// Refuses requests beyond a client's rate or concurrency (see the module
/// docs), with `Retry-After`.
pub struct RateLimit {
    per_second: Option<PerClient>,
    per_minute: Option<PerClient>,
    connections: Option<(u32, Arc<InFlight>)>,
    exempt: Vec<IpNet>,
    status: u16,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("per_second", &self.per_second.is_some())
            .field("per_minute", &self.per_minute.is_some())
            .field("connections", &self.connections.as_ref().map(|c| c.0))
            .field("status", &self.status)
            .finish()
    }
}

/// Requests in progress per client.
#[derive(Debug, Default)]
struct InFlight(Mutex<HashMap<IpAddr, u32>>);

/// A request's place in its client's count, given back when the request
/// ends (the request's extensions are dropped).
#[derive(Debug)]
struct InFlightPlace {
    counts: Arc<InFlight>,
    client: IpAddr,
}

impl Drop for InFlightPlace {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

fn limiter(quota: Option<Quota>) -> Option<PerClient> {
    quota.map(RateLimiter::keyed)
}

impl RateLimit {
    /// A limit enforcing `settings`.
    pub fn new(settings: &RateLimitSettings) -> Self {
        // nginx's `burst=B` admits B requests beyond the one the rate
        // allows at once: B + 1 in a row.
        let burst = |rate: u32| {
            NonZeroU32::new(
                rate.saturating_mul(settings.burst_multiplier.max(1))
                    .saturating_add(1),
            )
            .unwrap_or(NonZeroU32::MIN)
        };
        let quota = |rate: Option<u32>, per: fn(NonZeroU32) -> Quota| {
            let rate = NonZeroU32::new(rate?)?;
            Some(per(rate).allow_burst(burst(rate.get())))
        };
        RateLimit {
            per_second: limiter(quota(settings.rps, Quota::per_second)),
            per_minute: limiter(quota(settings.rpm, Quota::per_minute)),
            connections: settings
                .connections
                .map(|n| (n, Arc::new(InFlight::default()))),
            exempt: settings.exempt.clone(),
            status: settings.status,
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    fn refuse(&self, retry_after_secs: u64) -> Flow {
        let body: &'static [u8] = if self.status == 429 {
            b"429 Too Many Requests: this client sends more than the route allows; retry later\n"
        } else {
            b"503 Service Unavailable: this client sends more than the route allows; retry later\n"
        };
        Flow::Answer(
            Answer::new(self.status)
                .with_header(
                    http::header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs.max(1)),
                )
                .with_body(Bytes::from_static(body)),
        )
    }

    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY != SWEEP_EVERY - 1 {
            return;
        }
        for l in [&self.per_second, &self.per_minute].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

impl GatewayModule for RateLimit {
    fn name(&self) -> &str {
        "rate-limit"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        let edge_policy = ctx.snapshot.as_ref().map(|s| &s.edge);
        let Some(client) = edge::client_address(session, ctx.origin.peer_trusted, edge_policy)
        else {
            return Ok(self.refuse(1));
        };
        if self.exempt.iter().any(|n| n.contains(&client)) {
            return Ok(Flow::Continue);
        }
        self.sweep();
        // The concurrency limit first, under its lock until the rates
        // have passed too: a request refused by one limit spends nothing
        // of another's (as nginx checks every zone before charging).
        let mut in_flight = match &self.connections {
            Some((max, counts)) => {
                let map = counts.0.lock().unwrap_or_else(PoisonError::into_inner);
                if map.get(&client).is_some_and(|n| n >= max) {
                    return Ok(self.refuse(1));
                }
                Some((map, counts))
            }
            None => None,
        };
        // With both rates, the per-minute bucket is only charged once
        // the per-second one has passed; a per-second token spent on a
        // request the per-minute limit refuses is the one imprecision.
        for l in [&self.per_second, &self.per_minute].into_iter().flatten() {
            if let Err(not_until) = l.check_key(&client) {
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Ok(self.refuse(secs));
            }
        }
        if let Some((map, counts)) = in_flight.as_mut() {
            *map.entry(client).or_insert(0) += 1;
            ctx.extensions.insert(Arc::new(InFlightPlace {
                counts: Arc::clone(counts),
                client,
            }));
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rps: u32, multiplier: u32) -> RateLimitSettings {
        RateLimitSettings {
            rps: Some(rps),
            rpm: None,
            burst_multiplier: multiplier,
            connections: None,
            exempt: Vec::new(),
            status: 503,
        }
    }

    #[test]
    fn a_burst_then_the_rate_per_client() {
        let limit = RateLimit::new(&settings(2, 3));
        let Some(l) = &limit.per_second else {
            panic!("a per-second limiter")
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        // 2 per second, burst 2 x 3: seven at once, the eighth waits.
        for _ in 0..7 {
            assert!(l.check_key(&a).is_ok());
        }
        assert!(l.check_key(&a).is_err());
        // Another client has its own bucket.
        assert!(l.check_key(&b).is_ok());
    }

    #[test]
    fn in_flight_places_are_given_back() {
        let counts = Arc::new(InFlight::default());
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        counts.0.lock().unwrap().insert(client, 1);
        drop(InFlightPlace {
            counts: Arc::clone(&counts),
            client,
        });
        assert!(counts.0.lock().unwrap().is_empty());
    }
}
