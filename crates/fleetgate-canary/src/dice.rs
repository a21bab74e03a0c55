//! The random numbers behind weight decisions, reproducible from a seed.
//!
//! [`crate::CanaryRoute::decide`] takes its randomness as a closure so
//! callers choose the source. [`Dice`] is the source the gateway uses: a
//! shared atomic counter fed through SplitMix64. It is lock-free, cheap, good
//! enough for traffic splitting (not for secrets), and deterministic: from a
//! given seed, N rolls yield the same multiset of values however many threads
//! share the dice, which lets tests assert exact counts without flaking.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// The SplitMix64 increment (2^64 divided by the golden ratio).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A thread-safe source of uniformly distributed `u64`s.
///
/// ```
/// use fleetgate_canary::Dice;
///
/// let a = Dice::new(7);
/// let b = Dice::new(7);
/// assert_eq!(a.roll(), b.roll());
/// assert_ne!(a.roll(), a.roll());
/// ```
#[derive(Debug)]
pub struct Dice {
    state: AtomicU64,
}

impl Dice {
    /// Dice whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Dice {
            state: AtomicU64::new(seed),
        }
    }

    /// The next value: uniform over all `u64`s.
    #[inline]
    pub fn roll(&self) -> u64 {
        let state = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        splitmix64(state)
    }
}

impl Default for Dice {
    /// Dice with a seed drawn from the process's random hash keys, so two
    /// gateway processes do not roll in step.
    fn default() -> Self {
        Dice::new(RandomState::new().hash_one(0x5eed_u64))
    }
}

/// The SplitMix64 output function (Steele, Lea and Flood, 2014).
#[inline]
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn matches_reference_splitmix64() {
        // First outputs of the reference SplitMix64 seeded with 0.
        let dice = Dice::new(0);
        assert_eq!(dice.roll(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(dice.roll(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(dice.roll(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn same_multiset_from_any_number_of_threads() {
        let single = Dice::new(42);
        let mut expected: Vec<u64> = (0..4000).map(|_| single.roll()).collect();
        expected.sort_unstable();

        let shared = Arc::new(Dice::new(42));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let dice = Arc::clone(&shared);
                std::thread::spawn(move || (0..1000).map(|_| dice.roll()).collect::<Vec<_>>())
            })
            .collect();
        let mut got: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("roller thread"))
            .collect();
        got.sort_unstable();
        assert_eq!(got, expected);
    }

    #[test]
    fn default_dice_roll() {
        let dice = Dice::default();
        assert_ne!(dice.roll(), dice.roll());
    }
}
