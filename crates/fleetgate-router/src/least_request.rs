//! Least request: of the eligible endpoints, the one with fewest requests
//! in flight for its weight. A pool of up to [`FULL_SCAN_UP_TO`] endpoints
//! is looked at whole (from a random start, so that ties spread); a larger
//! one by the power of two choices: of two endpoints drawn at random, the
//! less loaded wins. Two choices cost the same whatever the pool's size
//! but leave a floor: with half the endpoints slow, both draws are slow
//! one time in six or so, which a small pool would notice. It steers traffic away from an endpoint that has become
//! slow, as its requests pile up, without any timing: what
//! ingress-nginx's `load-balance: ewma` is for. The counts are this
//! gateway's requests in flight to each address (the gateway counts them
//! for routes that balance this way, and for Services with
//! `max_requests_per_endpoint`).

use fleetgate_pool::EndpointPool;

use crate::picker::{Eligible, EndpointPicker};

/// Pools of at most this many eligible endpoints are scanned whole.
pub const FULL_SCAN_UP_TO: usize = 8;

/// The least-request picker; `roll` is a random number for this pick.
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
        let load = |i: usize| u64::from(pool.state(i).in_flight());
        let weight = |i: usize| u64::from(pool.endpoint(i).weight.max(1));
        // Fewer in flight per unit of weight, counting the request about
        // to be sent: (a+1)/wa <= (b+1)/wb. The +1 lets weights decide
        // between idle endpoints.
        let lighter = |a: usize, b: usize| (load(a) + 1) * weight(b) <= (load(b) + 1) * weight(a);
        if count <= FULL_SCAN_UP_TO {
            let start = (self.roll % n as u64) as usize;
            return (0..n)
                .map(|k| (start + k) % n)
                .filter(|&i| eligible.allows(pool, i))
                .reduce(|best, i| if lighter(best, i) { best } else { i });
        }
        let first = (self.roll % count as u64) as usize;
        let second = if count > 1 {
            (first + 1 + ((self.roll >> 32) % (count as u64 - 1)) as usize) % count
        } else {
            first
        };
        let nth = |k: usize| (0..n).filter(|&i| eligible.allows(pool, i)).nth(k);
        let (a, b) = (nth(first)?, nth(second)?);
        Some(if lighter(a, b) { a } else { b })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use fleetgate_pool::{Endpoint, PoolOptions};

    use super::*;

    /// A pool of `n` endpoints of cluster `c1` in `10.<net>.0.0/24`.
    fn pool_of(n: u8, net: u8) -> EndpointPool {
        let endpoints = (1..=n)
            .map(|i| {
                let addr: SocketAddr = format!("10.{net}.0.{i}:80").parse().unwrap();
                Arc::new(Endpoint::new(addr, "c1"))
            })
            .collect();
        EndpointPool::new("test", endpoints, PoolOptions::default())
    }

    #[test]
    fn a_small_pool_is_scanned_whole() {
        let pool = pool_of(4, 3);
        let parts = http::Request::new(()).into_parts().0;
        // Three of four are busy: two draws would often miss the idle one.
        let _held: Vec<_> = (0..3)
            .map(|i| pool.try_acquire(i, u32::MAX).unwrap())
            .collect();
        for roll in 0..50u64 {
            let picked = LeastRequest {
                roll: roll.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            }
            .pick(&pool, &Eligible::ANY, &parts);
            assert_eq!(picked, Some(3), "roll {roll}");
        }
    }

    #[test]
    fn a_large_pool_draws_two() {
        let pool = pool_of(10, 4);
        let parts = http::Request::new(()).into_parts().0;
        // Every endpoint but the last is busy.
        let _held: Vec<_> = (0..9)
            .map(|i| pool.try_acquire(i, u32::MAX).unwrap())
            .collect();
        let idle = (0..200u64)
            .filter(|roll| {
                LeastRequest {
                    roll: roll.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                }
                .pick(&pool, &Eligible::ANY, &parts)
                    == Some(9)
            })
            .count();
        // Chosen whenever drawn (2 draws of 10: about a fifth), not always.
        assert!((25..100).contains(&idle), "{idle} of 200");
    }

    #[test]
    fn the_less_loaded_of_two_wins() {
        let pool = pool_of(2, 2);
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
