//! Least request by the power of two choices: of two eligible endpoints
//! drawn at random, the one with fewer requests in flight (for its
//! weight) wins. It steers traffic away from an endpoint that has become
//! slow, as its requests pile up, without any timing: what
//! ingress-nginx's `load-balance: ewma` is for. The counts are this
//! gateway's requests in flight to each address (the gateway counts them
//! for routes that balance this way, and for Services with
//! `max_requests_per_endpoint`).

use fleetgate_pool::EndpointPool;

use crate::picker::{Eligible, EndpointPicker};

/// The power-of-two-choices least-request picker; `roll` is a random
/// number for this pick.
#[derive(Debug, Clone, Copy)]
pub struct LeastRequest {
    /// Random bits choosing the two candidates.
    pub roll: u64,
}

impl EndpointPicker for LeastRequest {
    fn pick(
        &self,
        pool: &EndpointPool,
        eligible: &Eligible<'_>,
        _request: &http::request::Parts,
    ) -> Option<usize> {
        let n = pool.endpoints().len();
        let count = (0..n).filter(|&i| eligible.allows(pool, i)).count();
        if count == 0 {
            return None;
        }
        let first = (self.roll % count as u64) as usize;
        let second = if count > 1 {
            (first + 1 + ((self.roll >> 32) % (count as u64 - 1)) as usize) % count
        } else {
            first
        };
        let nth = |k: usize| (0..n).filter(|&i| eligible.allows(pool, i)).nth(k);
        let (a, b) = (nth(first)?, nth(second)?);
        // Fewer in flight per unit of weight: a/wa <= b/wb.
        let load = |i: usize| u64::from(pool.state(i).in_flight());
        let weight = |i: usize| u64::from(pool.endpoint(i).weight.max(1));
        if load(a) * weight(b) <= load(b) * weight(a) {
            Some(a)
        } else {
            Some(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use fleetgate_pool::{Endpoint, PoolOptions};

    use super::*;

    #[test]
    fn the_less_loaded_of_two_wins() {
        let endpoints = (1..=2)
            .map(|i| {
                let addr: SocketAddr = format!("10.2.0.{i}:80").parse().unwrap();
                Arc::new(Endpoint::new(addr, "c1"))
            })
            .collect();
        let pool = EndpointPool::new("test", endpoints, PoolOptions::default());
        let parts = http::Request::new(()).into_parts().0;
        // Endpoint 0 has three requests in flight.
        let held: Vec<_> = (0..3)
            .map(|_| pool.try_acquire(0, u32::MAX).unwrap())
            .collect();
        for roll in 0..50u64 {
            let picked = LeastRequest {
                roll: roll.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            }
            .pick(&pool, &Eligible::ANY, &parts);
            assert_eq!(picked, Some(1), "roll {roll}");
        }
        drop(held);
        // Even again: both get picked.
        let picks: std::collections::HashSet<_> = (0..50u64)
            .filter_map(|roll| {
                LeastRequest {
                    roll: roll.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                }
                .pick(&pool, &Eligible::ANY, &parts)
            })
            .collect();
        assert_eq!(picks.len(), 2);
        // An excluded endpoint is never chosen.
        let failed = [pool.endpoint(1).address];
        let eligible = Eligible {
            excluded: &failed,
            ..Eligible::ANY
        };
        assert_eq!(
            LeastRequest { roll: 7 }.pick(&pool, &eligible, &parts),
            Some(0)
        );
    }
}
