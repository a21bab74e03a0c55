//! Weighted round robin without a per-pool schedule to fetch.
//!
//! A request's pick is one atomic increment, two integer operations and a
//! search of the cumulative weights that sit in the pool's endpoint slots,
//! which the pick reads anyway: no iterator, no reference count, no second
//! array. That matters at scale: with thousands of pools most picks are
//! cache-cold, and every pointer followed is a miss (see
//! docs/benchmarks.md).
//!
//! The cursor walks the points `0..total` of the weight line in a stride
//! coprime with `total` (near the golden ratio of it), so one period visits
//! every point once: each endpoint is picked exactly as often as its weight
//! says, and the picks of a light endpoint are spread over the period
//! instead of coming in a block.

use std::sync::atomic::{AtomicU64, Ordering};

/// Largest weight sum kept exact. Larger sums (after dividing the weights by
/// their greatest common divisor) are scaled down to about this, each
/// non-zero weight keeping at least 1, so that point arithmetic fits in 64
/// bits.
pub const MAX_TOTAL: u64 = u32::MAX as u64;

/// The round-robin cursor over a pool's weight line.
#[derive(Debug)]
pub struct WeightedOrder {
    total: u64,
    stride: u64,
    cursor: AtomicU64,
}

impl WeightedOrder {
    /// Reduces `weights` (see [`MAX_TOTAL`]) and returns the order and the
    /// cumulative reduced weights: endpoint `i` owns the points
    /// `cumulative[i - 1]..cumulative[i]` (none when its weight is 0).
    pub fn build(weights: &[u32]) -> (Self, Vec<u64>) {
        let mut total = 0;
        let cumulative = reduce(weights)
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        let order = WeightedOrder {
            total,
            stride: coprime_stride(total),
            cursor: AtomicU64::new(0),
        };
        (order, cumulative)
    }

    /// The next point of the weight line, or `None` when every weight is 0.
    #[inline]
    pub fn next_point(&self) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let k = self.cursor.fetch_add(1, Ordering::Relaxed) % self.total;
        // k, stride < total <= MAX_TOTAL: the product fits in 64 bits.
        Some(k * self.stride % self.total)
    }

    /// Points in one period (the reduced weight sum).
    #[cfg(test)]
    pub fn period(&self) -> u64 {
        self.total
    }
}

/// The endpoint owning `point`, given cumulative weights.
#[inline]
pub fn owner(cumulative: impl Fn(usize) -> u64, len: usize, point: u64) -> usize {
    // First index whose cumulative weight exceeds the point: a binary search
    // that, for the usual handful of endpoints, is one or two compares.
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if cumulative(mid) > point {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// Divides the weights by their greatest common divisor, then scales them
/// down if their sum still exceeds [`MAX_TOTAL`].
fn reduce(weights: &[u32]) -> Vec<u64> {
    let divisor = weights.iter().map(|&w| u64::from(w)).fold(0, gcd).max(1);
    let reduced: Vec<u64> = weights.iter().map(|&w| u64::from(w) / divisor).collect();
    let sum: u64 = reduced.iter().sum();
    if sum <= MAX_TOTAL {
        return reduced;
    }
    let n = reduced.len() as u64;
    reduced
        .iter()
        .map(|&w| match w {
            0 => 0,
            // Leave room for the minimum of 1 given to tiny weights.
            w => (u128::from(w) * u128::from(MAX_TOTAL - n) / u128::from(sum)).max(1) as u64,
        })
        .collect()
}

/// A stride near `total` / golden ratio sharing no factor with `total`.
fn coprime_stride(total: u64) -> u64 {
    if total <= 2 {
        return 1;
    }
    let mut stride = ((total as f64) * 0.618_033_988_75).round() as u64;
    stride = stride.clamp(1, total - 1);
    while gcd(stride, total) != 1 {
        stride += 1;
    }
    stride
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(weights: &[u32], n: usize) -> Vec<usize> {
        let (order, cumulative) = WeightedOrder::build(weights);
        (0..n)
            .map(|_| {
                let point = order.next_point().unwrap();
                owner(|i| cumulative[i], cumulative.len(), point)
            })
            .collect()
    }

    fn count(p: &[usize], i: usize) -> usize {
        p.iter().filter(|&&x| x == i).count()
    }

    #[test]
    fn one_period_follows_weights_exactly() {
        let p = picks(&[9, 1], 1000);
        assert_eq!((count(&p, 0), count(&p, 1)), (900, 100));
        let p = picks(&[3, 0, 1, 6], 10);
        assert_eq!(
            (count(&p, 0), count(&p, 1), count(&p, 2), count(&p, 3)),
            (3, 0, 1, 6)
        );
    }

    #[test]
    fn light_endpoints_are_spread_not_blocked() {
        // Equal weights alternate.
        assert_eq!(picks(&[1, 1], 6), [0, 1, 0, 1, 0, 1]);
        // 2:1:1 never sends two requests in a row to the heavy endpoint
        // within a period.
        let p = picks(&[2, 1, 1], 4);
        assert_eq!((count(&p, 0), count(&p, 1), count(&p, 2)), (2, 1, 1));
        assert!(p.windows(2).all(|w| w[0] != w[1]), "{p:?}");
        // 1:1:1:1:1 visits all five in each period.
        let p = picks(&[1; 5], 5);
        assert!((0..5).all(|i| count(&p, i) == 1), "{p:?}");
    }

    #[test]
    fn common_divisor_shortens_the_period() {
        assert_eq!(WeightedOrder::build(&[300, 100]).0.period(), 4);
        assert_eq!(WeightedOrder::build(&[5, 5, 5]).0.period(), 3);
    }

    #[test]
    fn zero_weights_never_appear() {
        assert!(picks(&[0, 3, 0], 10).iter().all(|&i| i == 1));
        assert!(WeightedOrder::build(&[0, 0]).0.next_point().is_none());
        assert!(WeightedOrder::build(&[]).0.next_point().is_none());
    }

    #[test]
    fn huge_weights_are_scaled_and_keep_every_endpoint() {
        let weights = [u32::MAX, 1, u32::MAX - 1, u32::MAX];
        let (order, cumulative) = WeightedOrder::build(&weights);
        assert!(order.period() <= MAX_TOTAL);
        let width = |i: usize| cumulative[i] - if i == 0 { 0 } else { cumulative[i - 1] };
        assert!(width(1) >= 1, "a tiny weight keeps a point");
        let share = |i| width(i) as f64 / order.period() as f64;
        assert!((share(0) - 1.0 / 3.0).abs() < 1e-6);
        assert!((share(2) - 1.0 / 3.0).abs() < 1e-6);
        // Points stay in range far into the cursor's life.
        order.cursor.store(u64::MAX - 10, Ordering::Relaxed);
        for _ in 0..20 {
            assert!(order.next_point().unwrap() < order.period());
        }
    }
}
