//! How a try picks an endpoint after earlier tries failed: never the same
//! endpoint again, and out of a cluster that looks down.
//!
//! A zone that dies takes all its endpoints at once, but health checks
//! and outlier detection need a few failures to notice. A retry that only
//! avoided the endpoint that just failed would likely land on its
//! neighbour in the same dying zone; so when the failed endpoint's cluster
//! shows other signs of trouble (a second failure there, or another of its
//! endpoints unavailable or failing), the retry leaves the cluster.
//!
//! This module decides which endpoints are eligible; the
//! [`EndpointPicker`] chooses among them.

use std::net::SocketAddr;
use std::sync::Arc;

use fleetgate_pool::EndpointPool;

use crate::attempts::Attempt;
use crate::picker::{Eligible, EndpointPicker};
use crate::service_pool::ServicePool;

/// Picks from `pool` with `picker`, skipping `failed` endpoints, and
/// leaving the last failed endpoint's cluster when it looks down. In
/// `panic` (a tier with too few healthy endpoints), health is ignored as
/// Envoy does.
#[inline]
pub(crate) fn pick_from<'r, P: EndpointPicker + ?Sized>(
    picker: &P,
    pool: &'r Arc<ServicePool>,
    failed: &[SocketAddr],
    panic: bool,
    request: &http::request::Parts,
) -> Option<Attempt<'r>> {
    let index = if failed.is_empty() {
        let eligible = Eligible {
            ignore_health: panic,
            ..Eligible::ANY
        };
        picker.pick(pool, &eligible, request)
    } else {
        pick_avoiding(picker, pool, failed, panic, request)
    };
    // A picker's index out of range is its bug; it must not become a
    // panic on the request path.
    index
        .filter(|&i| i < pool.endpoints().len())
        .map(|i| Attempt::new(pool, i))
}

fn pick_avoiding<P: EndpointPicker + ?Sized>(
    picker: &P,
    pool: &EndpointPool,
    failed: &[SocketAddr],
    panic: bool,
    request: &http::request::Parts,
) -> Option<usize> {
    let avoid = Eligible {
        excluded: failed,
        ..Eligible::ANY
    };
    let last_cluster = failed.last().and_then(|addr| {
        pool.endpoints()
            .find(|e| e.address == *addr)
            .map(|e| e.cluster.as_str())
    });
    if let Some(cluster) = last_cluster {
        if cluster_looks_down(pool, cluster, failed) {
            let elsewhere = Eligible {
                leave_cluster: Some(cluster),
                ..avoid
            };
            if let Some(i) = picker.pick(pool, &elsewhere, request) {
                return Some(i);
            }
        }
    }
    picker.pick(pool, &avoid, request).or_else(|| {
        let any_health = Eligible {
            ignore_health: true,
            ..avoid
        };
        panic
            .then(|| picker.pick(pool, &any_health, request))
            .flatten()
    })
}

/// Whether endpoints of `cluster` other than the ones this request already
/// tried are failing too: then a retry should leave the cluster.
fn cluster_looks_down(pool: &EndpointPool, cluster: &str, failed: &[SocketAddr]) -> bool {
    let failed_here = pool
        .endpoints()
        .filter(|e| e.cluster == cluster && failed.contains(&e.address))
        .count();
    if failed_here > 1 {
        return true;
    }
    pool.endpoints().enumerate().any(|(i, e)| {
        e.cluster == cluster
            && !failed.contains(&e.address)
            && (!pool.is_available(i) || pool.state(i).consecutive_failures() > 0)
    })
}
