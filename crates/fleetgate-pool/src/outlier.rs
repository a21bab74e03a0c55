//! Passive outlier detection: endpoints that keep failing leave the rotation.
//!
//! Active health checks find a dead endpoint within a few intervals; real
//! requests find it at once. Each endpoint address has one shared
//! [`EndpointState`] that counts consecutive failures (connect errors,
//! resets, timeouts, 5xx). At the threshold the endpoint is ejected for
//! `base_ejection_time` multiplied by how many times it has been ejected, as
//! Envoy does, unless the pool already has `max_ejection_percent` of its
//! endpoints out. A success resets the count. Everything is atomics: the
//! request path takes no lock.
//!
//! Consecutive failures miss an erratic endpoint: one that fails a third
//! of its requests rarely fails five in a row. So the state also counts
//! requests and failures over a window (`interval`, Envoy's
//! failure-percentage detection): once the window holds
//! `failure_percentage_min_requests` requests of which at least
//! `failure_percentage` percent failed, the endpoint is ejected the same
//! way. The window starts afresh every `interval` and after an ejection.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Outlier detection settings of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutlierConfig {
    /// Consecutive failures that eject an endpoint (0 disables detection).
    pub consecutive_failures: u32,
    /// Ejection time for the first ejection; the n-th lasts n times as long.
    pub base_ejection_time: Duration,
    /// Most of a pool that may be ejected at once, in percent.
    pub max_ejection_percent: u32,
    /// Longest single ejection.
    pub max_ejection_time: Duration,
    /// Failure share, in percent, over a window that ejects an endpoint
    /// (0 disables failure-percentage detection).
    pub failure_percentage: u32,
    /// Requests a window must hold before its failure share counts.
    pub failure_percentage_min_requests: u32,
    /// Length of the failure-percentage window.
    pub interval: Duration,
}

impl Default for OutlierConfig {
    /// 5 consecutive failures, or half of at least 20 requests within 10 s;
    /// 30 s base ejection (at most 300 s), at most 50% of a pool ejected.
    fn default() -> Self {
        OutlierConfig {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 50,
            max_ejection_time: Duration::from_secs(300),
            failure_percentage: 50,
            failure_percentage_min_requests: 20,
            interval: Duration::from_secs(10),
        }
    }
}

/// A counter moved whenever the availability of one of the endpoints it
/// covers changes (health flip, ejection, return), so that caches derived
/// from availability (tier loads) know when to look again.
///
/// One epoch covers the endpoints of one [`crate::HealthChecks`] (or of one
/// pool built without shared state); clones share the counter. There is no
/// process-wide state: two gateways in one process do not disturb each
/// other's caches.
#[derive(Debug, Clone, Default)]
pub struct HealthEpoch(Arc<AtomicU64>);

impl HealthEpoch {
    /// A new counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current value. An ejection that simply runs out moves it on the
    /// first look after it ended; caches should still expire with time.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Records that some endpoint's availability changed.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Milliseconds since the first call, from a monotonic clock. Cheap enough
/// for the request path; used for ejections and other coarse timers.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A failure-percentage window: on a cache line of its own, since every
/// request writes it and every pick reads the ejection state beside it.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Window {
    /// When the window began (`now_ms`).
    start_ms: AtomicU64,
    /// Requests and failures in it.
    requests: AtomicU32,
    failures: AtomicU32,
}

/// What made an endpoint cross an outlier threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// This many failures in a row.
    Consecutive(u32),
    /// `failures` of `requests` in the current window.
    FailureShare {
        /// Failed requests.
        failures: u32,
        /// Requests.
        requests: u32,
    },
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Consecutive(n) => write!(f, "{n} consecutive failures"),
            Trigger::FailureShare { failures, requests } => {
                write!(f, "{failures} failures in its last {requests} requests")
            }
        }
    }
}

/// The live state of one endpoint address, shared by every pool using it.
#[derive(Debug, Default)]
pub struct EndpointState {
    consecutive_failures: AtomicU32,
    /// Ejected while `now_ms() < ejected_until_ms`.
    ejected_until_ms: AtomicU64,
    ejections: AtomicU32,
    /// Requests that failed and counted toward ejection, ever.
    failures_total: AtomicU64,
    /// The failure-percentage window, written by every request.
    window: Window,
    /// Requests holding an [`EndpointPermit`] now (counted only for pools
    /// with `max_requests_per_endpoint`).
    in_flight: AtomicU32,
    /// Wakes a request waiting for a permit when one is given back.
    released: tokio::sync::Notify,
    /// Moved when this endpoint is ejected or returns.
    epoch: HealthEpoch,
}

/// A request's place among the `max_requests_per_endpoint` of an endpoint,
/// given back when dropped.
#[derive(Debug)]
pub struct EndpointPermit(Arc<EndpointState>);

impl Drop for EndpointPermit {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.released.notify_one();
    }
}

/// What happened to one request sent to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response that is not a 5xx.
    Success,
    /// Connect error, reset, timeout or a 5xx response.
    Failure,
}

impl EndpointState {
    /// The state of an endpoint whose availability changes move `epoch`.
    pub fn with_epoch(epoch: HealthEpoch) -> Self {
        EndpointState {
            epoch,
            ..Self::default()
        }
    }

    /// The epoch this endpoint's ejections and returns move.
    pub fn epoch(&self) -> &HealthEpoch {
        &self.epoch
    }

    /// Whether the endpoint is ejected now. Reads no clock unless it was
    /// ejected; the first call after an ejection expires clears it (and
    /// moves the health epoch, so cached tier loads see it back at once).
    #[inline]
    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        until != 0 && self.is_ejected_until(until)
    }

    #[cold]
    fn is_ejected_until(&self, until: u64) -> bool {
        if now_ms() < until {
            return true;
        }
        if self
            .ejected_until_ms
            .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.epoch.bump();
        }
        false
    }

    /// Takes a place among `cap` requests in flight to this endpoint, if
    /// one is free.
    pub fn try_acquire(self: &Arc<Self>, cap: u32) -> Option<EndpointPermit> {
        let mut n = self.in_flight.load(Ordering::Relaxed);
        loop {
            if n >= cap {
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                n,
                n + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(EndpointPermit(Arc::clone(self))),
                Err(now) => n = now,
            }
        }
    }

    /// Requests holding a permit now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Resolves when a permit is given back (or at once if one was given
    /// back since the last wait): the moment to try again.
    pub async fn released(&self) {
        self.released.notified().await;
    }

    /// How many times it has been ejected.
    pub fn ejections(&self) -> u32 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// Consecutive failures so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    /// Failures recorded, ever.
    pub fn failures_total(&self) -> u64 {
        self.failures_total.load(Ordering::Relaxed)
    }

    /// Records an outcome. Returns what crossed a threshold (consecutive
    /// failures, or the failure share of its window) when the caller
    /// should try to eject the endpoint (see [`EndpointState::eject`]).
    pub(crate) fn record(&self, outcome: Outcome, config: &OutlierConfig) -> Option<Trigger> {
        let erratic = if config.failure_percentage > 0 {
            self.count_in_window(outcome, config)
        } else {
            None
        };
        match outcome {
            Outcome::Success => {
                if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
                    self.consecutive_failures.store(0, Ordering::Relaxed);
                }
                None
            }
            Outcome::Failure => {
                self.failures_total.fetch_add(1, Ordering::Relaxed);
                let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
                let consecutive = (config.consecutive_failures > 0
                    && n >= config.consecutive_failures)
                    .then_some(Trigger::Consecutive(n));
                consecutive.or(erratic).filter(|_| !self.is_ejected())
            }
        }
    }

    /// Counts `outcome` in the failure-percentage window, starting a new
    /// window when the last one is `interval` old; whether the window's
    /// failure share now crosses the threshold (only a failure can).
    fn count_in_window(&self, outcome: Outcome, config: &OutlierConfig) -> Option<Trigger> {
        let w = &self.window;
        let now = now_ms();
        let start = w.start_ms.load(Ordering::Relaxed);
        let length = u64::try_from(config.interval.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(start) >= length
            && w.start_ms
                .compare_exchange(start, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            w.requests.store(0, Ordering::Relaxed);
            w.failures.store(0, Ordering::Relaxed);
        }
        let requests = w.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if outcome == Outcome::Success {
            return None;
        }
        let failures = w.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let crossed = requests >= config.failure_percentage_min_requests.max(1)
            && u64::from(failures) * 100
                >= u64::from(config.failure_percentage) * u64::from(requests);
        crossed.then_some(Trigger::FailureShare { failures, requests })
    }

    /// Requests and failures in the current failure-percentage window.
    pub fn window(&self) -> (u32, u32) {
        (
            self.window.requests.load(Ordering::Relaxed),
            self.window.failures.load(Ordering::Relaxed),
        )
    }

    /// Returns the endpoint to rotation now (active checks found it healthy).
    pub fn uneject(&self) {
        self.ejected_until_ms.store(0, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.epoch.bump();
    }

    /// Ejects the endpoint; returns how long for.
    pub(crate) fn eject(&self, config: &OutlierConfig) -> Duration {
        let n = self.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let time = config
            .base_ejection_time
            .saturating_mul(n)
            .min(config.max_ejection_time.max(config.base_ejection_time));
        let until = now_ms().saturating_add(u64::try_from(time.as_millis()).unwrap_or(u64::MAX));
        self.ejected_until_ms.store(until, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        // Back from the ejection, it is judged on new requests only.
        self.window.start_ms.store(now_ms(), Ordering::Relaxed);
        self.window.requests.store(0, Ordering::Relaxed);
        self.window.failures.store(0, Ordering::Relaxed);
        self.epoch.bump();
        time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n: u32) -> OutlierConfig {
        OutlierConfig {
            consecutive_failures: n,
            base_ejection_time: Duration::from_millis(200),
            max_ejection_percent: 100,
            max_ejection_time: Duration::from_millis(500),
            failure_percentage: 0,
            ..OutlierConfig::default()
        }
    }

    #[test]
    fn an_erratic_endpoint_is_caught_by_its_failure_share() {
        let s = EndpointState::default();
        let c = OutlierConfig {
            consecutive_failures: 5,
            failure_percentage: 30,
            failure_percentage_min_requests: 10,
            ..OutlierConfig::default()
        };
        // One failure in three, never two in a row: consecutive failures
        // never see it.
        let mut ejected_at = None;
        for i in 0..30 {
            let outcome = if i % 3 == 2 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            if s.record(outcome, &c).is_some() {
                ejected_at = Some(i);
                break;
            }
        }
        // The 12th request (index 11) is the 4th failure of 12: 33 %.
        assert_eq!(ejected_at, Some(11));
        s.eject(&c);
        assert_eq!(s.window(), (0, 0), "a new window after the ejection");
        // A healthy endpoint with the odd failure stays.
        let ok = EndpointState::default();
        for i in 0..100 {
            let outcome = if i % 10 == 9 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            assert!(
                ok.record(outcome, &c).is_none(),
                "10 % is under the threshold"
            );
        }
    }

    #[test]
    fn threshold_then_ejection_that_grows_and_caps() {
        let s = EndpointState::default();
        let c = config(3);
        assert!(s.record(Outcome::Failure, &c).is_none());
        assert!(s.record(Outcome::Failure, &c).is_none());
        assert!(s.record(Outcome::Failure, &c).is_some());
        assert_eq!(s.eject(&c), Duration::from_millis(200));
        assert!(s.is_ejected());
        assert_eq!(s.eject(&c), Duration::from_millis(400));
        assert_eq!(s.eject(&c), Duration::from_millis(500), "capped");
        assert_eq!(s.ejections(), 3);
        assert_eq!(s.failures_total(), 3);
    }

    #[test]
    fn success_resets_the_count() {
        let s = EndpointState::default();
        let c = config(2);
        assert!(s.record(Outcome::Failure, &c).is_none());
        assert!(s.record(Outcome::Success, &c).is_none());
        assert!(s.record(Outcome::Failure, &c).is_none());
        assert_eq!(s.consecutive_failures(), 1);
    }

    #[test]
    fn zero_threshold_disables() {
        let s = EndpointState::default();
        for _ in 0..100 {
            assert!(s.record(Outcome::Failure, &config(0)).is_none());
        }
    }

    #[test]
    fn permits_are_capped_and_given_back() {
        let s = Arc::new(EndpointState::default());
        let a = s.try_acquire(2).unwrap();
        let _b = s.try_acquire(2).unwrap();
        assert!(s.try_acquire(2).is_none());
        assert_eq!(s.in_flight(), 2);
        drop(a);
        assert_eq!(s.in_flight(), 1);
        assert!(s.try_acquire(2).is_some());
    }

    #[test]
    fn ejection_expires() {
        let s = EndpointState::default();
        let c = OutlierConfig {
            base_ejection_time: Duration::from_millis(30),
            ..config(1)
        };
        s.eject(&c);
        assert!(s.is_ejected());
        let epoch = s.epoch().get();
        let deadline = Instant::now() + Duration::from_secs(5);
        while s.is_ejected() {
            assert!(Instant::now() < deadline, "ejection never expired");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(s.epoch().get() > epoch, "the expiry moved the health epoch");
        assert_eq!(s.ejected_until_ms.load(Ordering::Relaxed), 0, "cleared");
    }
}
