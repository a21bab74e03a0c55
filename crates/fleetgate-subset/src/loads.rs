//! The outcome of the spill-over computation, and the per-request pick.
//!
//! [`tier_loads`](crate::tier_loads) runs when health changes;
//! [`pick_tier`] runs on every request, so [`TierLoads`] keeps cumulative
//! thresholds ready and the pick is a short integer scan: no float, no
//! allocation.

use std::fmt;

/// Per-tier share of the traffic, in percent, and per-tier panic flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierLoads {
    loads: Vec<u32>,
    /// `cumulative[i]` = sum of `loads[..=i]`.
    cumulative: Vec<u32>,
    panic: Vec<bool>,
    normalized_total_health: u32,
    total_panic: bool,
}

impl TierLoads {
    pub(crate) fn new(
        loads: Vec<u32>,
        panic: Vec<bool>,
        normalized_total_health: u32,
        total_panic: bool,
    ) -> Self {
        let cumulative = loads
            .iter()
            .scan(0u32, |sum, &load| {
                *sum += load;
                Some(*sum)
            })
            .collect();
        Self {
            loads,
            cumulative,
            panic,
            normalized_total_health,
            total_panic,
        }
    }

    /// Percent of the traffic for each tier, in tier order; they sum to 100,
    /// or are all 0 when no tier has an endpoint.
    pub fn loads(&self) -> &[u32] {
        &self.loads
    }

    /// Percent of the traffic for `tier` (0 for a tier that does not exist).
    pub fn load(&self, tier: usize) -> u32 {
        self.loads.get(tier).copied().unwrap_or(0)
    }

    /// Whether `tier` is in panic: its balancer should ignore health and
    /// spread its traffic over all of its endpoints, healthy or not. Never
    /// true for an empty or non-existent tier.
    pub fn in_panic(&self, tier: usize) -> bool {
        self.panic.get(tier).copied().unwrap_or(false)
    }

    /// [`in_panic`](Self::in_panic) for every tier, in tier order.
    pub fn panic_flags(&self) -> &[bool] {
        &self.panic
    }

    /// Envoy's normalized total health: the tiers' health scores summed and
    /// capped at 100. Below 100 the tiers together lack healthy capacity.
    pub fn normalized_total_health(&self) -> u32 {
        self.normalized_total_health
    }

    /// Whether every non-empty tier is in panic, so that the loads follow
    /// tier sizes instead of health.
    pub fn total_panic(&self) -> bool {
        self.total_panic
    }

    /// Number of tiers.
    pub fn len(&self) -> usize {
        self.loads.len()
    }

    /// Whether there are no tiers at all.
    pub fn is_empty(&self) -> bool {
        self.loads.is_empty()
    }
}

impl fmt::Display for TierLoads {
    /// E.g. `70% / 30%`, `50% (panic) / 50% (panic)`, or `no endpoints`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cumulative.last().copied().unwrap_or(0) == 0 {
            return f.write_str("no endpoints");
        }
        for (i, (load, panic)) in self.loads.iter().zip(&self.panic).enumerate() {
            if i > 0 {
                f.write_str(" / ")?;
            }
            write!(f, "{load}%")?;
            if *panic {
                f.write_str(" (panic)")?;
            }
        }
        Ok(())
    }
}

/// Picks the tier for one request from a uniformly random `roll`, each tier
/// with probability equal to its load. `None` when no tier has load (the
/// Service has no endpoints).
///
/// The roll is mapped onto 100 slots by its high bits, so a tier with `n`%
/// load owns `n` consecutive slots and increasing rolls walk the tiers in
/// order. A hash may be passed instead of a random number for sticky picks.
pub fn pick_tier(loads: &TierLoads, roll: u64) -> Option<usize> {
    // ⌊roll × 100 / 2⁶⁴⌋, in 0..100.
    let slot = ((u128::from(roll) * 100) >> 64) as u32;
    loads.cumulative.iter().position(|&upto| slot < upto)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest roll that lands in `slot` (0..100).
    fn roll_for(slot: u32) -> u64 {
        (u128::from(slot) << 64).div_ceil(100) as u64
    }

    fn loads(values: &[u32]) -> TierLoads {
        TierLoads::new(values.to_vec(), vec![false; values.len()], 100, false)
    }

    #[test]
    fn roll_slots_are_exact() {
        for slot in 0..100 {
            let roll = roll_for(slot);
            assert_eq!(((u128::from(roll) * 100) >> 64) as u32, slot);
            if roll > 0 {
                assert_eq!(((u128::from(roll - 1) * 100) >> 64) as u32, slot - 1);
            }
        }
    }

    #[test]
    fn each_tier_owns_its_share_of_slots() {
        for values in [
            &[100, 0][..],
            &[0, 100],
            &[70, 30],
            &[99, 1],
            &[1, 99],
            &[0, 34, 0, 33, 33],
        ] {
            let l = loads(values);
            let mut counts = vec![0u32; values.len()];
            for slot in 0..100 {
                let tier = pick_tier(&l, roll_for(slot)).expect("has load");
                counts[tier] += 1;
            }
            assert_eq!(counts, values);
        }
    }

    #[test]
    fn extremes_of_the_roll() {
        let l = loads(&[0, 70, 30, 0]);
        assert_eq!(pick_tier(&l, 0), Some(1));
        assert_eq!(pick_tier(&l, u64::MAX), Some(2));
        assert_eq!(pick_tier(&l, roll_for(70) - 1), Some(1));
        assert_eq!(pick_tier(&l, roll_for(70)), Some(2));
    }

    #[test]
    fn nothing_to_pick() {
        assert_eq!(pick_tier(&loads(&[]), 0), None);
        assert_eq!(pick_tier(&loads(&[0, 0]), u64::MAX), None);
    }

    #[test]
    fn accessors_and_display() {
        let l = TierLoads::new(vec![50, 50], vec![true, false], 70, false);
        assert_eq!(l.len(), 2);
        assert!(!l.is_empty());
        assert_eq!(l.load(1), 50);
        assert_eq!(l.load(2), 0);
        assert!(l.in_panic(0));
        assert!(!l.in_panic(1));
        assert!(!l.in_panic(9));
        assert_eq!(l.normalized_total_health(), 70);
        assert!(!l.total_panic());
        assert_eq!(l.to_string(), "50% (panic) / 50%");
        assert_eq!(loads(&[0, 0]).to_string(), "no endpoints");
        assert!(loads(&[]).is_empty());
    }
}
