//! Per-cluster state shared by every pool: whether an operator drained the
//! cluster, and how many requests are in flight to its endpoints.
//!
//! A planned drain (maintenance of a zone) is an operator's decision about
//! a whole cluster, not about one address, and it must hold for endpoints
//! that appear after it (a rollout during the maintenance) and across
//! reloads. So it lives here, one [`ClusterState`] per cluster id, kept by
//! the process-wide [`crate::HealthChecks`], and every pool slot points at
//! its cluster's state: a pick reads one more flag, no lookup.
//!
//! A drained cluster's endpoints take no new request, not even in panic
//! mode (an operator who drained a zone means it), and do not count in a
//! pool's totals, so a drain never pushes a tier into panic. Requests
//! already sent there finish; [`ClusterState::in_flight`] counts them, so
//! the operator can tell *draining* (some left) from *drained* (none).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::outlier::{now_ms, HealthEpoch};

/// The live state of one cluster.
#[derive(Debug)]
pub struct ClusterState {
    id: Arc<str>,
    /// Read by every pick.
    drained: AtomicBool,
    /// When the current drain began (`now_ms`), 0 when not drained.
    drained_since_ms: AtomicU64,
    /// Written by every request sent to the cluster: an allocation of its
    /// own, so that those writes do not evict the `drained` flag the picks
    /// read from the other cores' caches.
    in_flight: Arc<InFlight>,
    epoch: HealthEpoch,
}

/// A request counter alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct InFlight(AtomicU64);

/// Where a drain stands, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainPhase {
    /// Takes traffic.
    Serving,
    /// Drained, with requests still in flight to it.
    Draining,
    /// Drained, nothing in flight.
    Drained,
}

impl DrainPhase {
    /// `serving`, `draining` or `drained`.
    pub fn as_str(self) -> &'static str {
        match self {
            DrainPhase::Serving => "serving",
            DrainPhase::Draining => "draining",
            DrainPhase::Drained => "drained",
        }
    }
}

impl ClusterState {
    fn new(id: &str, epoch: HealthEpoch) -> Self {
        ClusterState {
            id: id.into(),
            drained: AtomicBool::new(false),
            drained_since_ms: AtomicU64::new(0),
            in_flight: Arc::default(),
            epoch,
        }
    }

    /// The cluster id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether an operator drained it: its endpoints take no new request.
    #[inline]
    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Relaxed)
    }

    /// Requests in flight to its endpoints now (counted by
    /// [`ClusterState::enter`]).
    pub fn in_flight(&self) -> u64 {
        self.in_flight.0.load(Ordering::Relaxed)
    }

    /// Serving, draining or drained.
    pub fn phase(&self) -> DrainPhase {
        match (self.is_drained(), self.in_flight()) {
            (false, _) => DrainPhase::Serving,
            (true, 0) => DrainPhase::Drained,
            (true, _) => DrainPhase::Draining,
        }
    }

    /// Milliseconds since the current drain began, if drained.
    pub fn drained_for_ms(&self) -> Option<u64> {
        let since = self.drained_since_ms.load(Ordering::Relaxed);
        self.is_drained()
            .then(|| now_ms().saturating_sub(since.saturating_sub(1)))
    }

    /// Counts a request sent to one of its endpoints until the returned
    /// guard is dropped.
    #[inline]
    pub fn enter(&self) -> ClusterFlight {
        self.in_flight.0.fetch_add(1, Ordering::Relaxed);
        ClusterFlight(Arc::clone(&self.in_flight))
    }

    /// Drains it (`true`) or lets it serve again (`false`); whether that
    /// changed anything. Moves the health epoch, so cached tier loads see
    /// it at once.
    fn set_drained(&self, drained: bool) -> bool {
        if self.drained.swap(drained, Ordering::Relaxed) == drained {
            return false;
        }
        // Stored +1 so that a drain in the first millisecond is not 0.
        let since = if drained { now_ms() + 1 } else { 0 };
        self.drained_since_ms.store(since, Ordering::Relaxed);
        self.epoch.bump();
        true
    }
}

/// A request in flight to a cluster; counted until dropped.
#[derive(Debug)]
pub struct ClusterFlight(Arc<InFlight>);

impl Drop for ClusterFlight {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every cluster's state, by id, created on first use and never forgotten
/// (clusters are few; a drain outlives a reload that leaves the cluster
/// out for a while).
#[derive(Debug, Default)]
pub struct Clusters {
    states: Mutex<BTreeMap<Arc<str>, Arc<ClusterState>>>,
    epoch: HealthEpoch,
}

impl Clusters {
    /// An empty set whose drains move `epoch`.
    pub fn new(epoch: HealthEpoch) -> Self {
        Clusters {
            states: Mutex::new(BTreeMap::new()),
            epoch,
        }
    }

    /// The state of cluster `id`.
    pub fn state(&self, id: &str) -> Arc<ClusterState> {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = states.get(id) {
            return Arc::clone(s);
        }
        let state = Arc::new(ClusterState::new(id, self.epoch.clone()));
        states.insert(Arc::clone(&state.id), Arc::clone(&state));
        state
    }

    /// Drains cluster `id` (`true`) or lets it serve again; whether that
    /// changed anything.
    pub fn set_drained(&self, id: &str, drained: bool) -> bool {
        let changed = self.state(id).set_drained(drained);
        if changed {
            if drained {
                log::warn!("drain: cluster {id} drained: its endpoints take no new request");
            } else {
                log::warn!("drain: cluster {id} undrained: its endpoints take traffic again");
            }
        }
        changed
    }

    /// The ids of the drained clusters, sorted.
    pub fn drained(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|s| s.is_drained())
            .map(|s| s.id().to_string())
            .collect()
    }

    /// Every cluster's state, by id.
    pub fn all(&self) -> Vec<Arc<ClusterState>> {
        let states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_moves_the_epoch_once_and_phases_follow_in_flight() {
        let epoch = HealthEpoch::new();
        let clusters = Clusters::new(epoch.clone());
        let a = clusters.state("a");
        assert_eq!(a.phase(), DrainPhase::Serving);
        let flight = a.enter();
        assert!(clusters.set_drained("a", true));
        assert!(!clusters.set_drained("a", true), "already drained");
        assert_eq!(epoch.get(), 1);
        assert_eq!(a.phase(), DrainPhase::Draining);
        assert!(a.drained_for_ms().is_some());
        drop(flight);
        assert_eq!(a.phase(), DrainPhase::Drained);
        assert_eq!(clusters.drained(), vec!["a".to_string()]);
        assert!(Arc::ptr_eq(&a, &clusters.state("a")), "one state per id");
        assert!(clusters.set_drained("a", false));
        assert_eq!(a.phase(), DrainPhase::Serving);
        assert_eq!(a.drained_for_ms(), None);
        assert_eq!(epoch.get(), 2);
    }
}
