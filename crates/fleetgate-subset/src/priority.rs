//! Envoy's priority-level spill-over, applied to subset tiers.
//!
//! A route with a subset prefers the subset (tier 0) and falls back to the
//! rest of the Service (tier 1), possibly through more tiers. Rather than a
//! hard switch when the subset loses its last endpoint, traffic spills over
//! gradually as the subset's health drops, exactly as Envoy does between
//! priority levels, so that operators coming from Envoy / Istio / MSE see the
//! numbers they expect. The rule itself is documented on [`tier_loads`].
//!
//! This is computed when endpoint health changes, not per request; the
//! per-request part is [`pick_tier`](crate::pick_tier).

use crate::loads::TierLoads;

/// Tunables of the spill-over, with Envoy's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriorityConfig {
    /// How much headroom each tier is assumed to have: a tier is considered
    /// fully healthy while `healthy / total × factor ≥ 1`. At least 1.0;
    /// default 1.4 (tier 0 keeps all traffic until under ~71.4% of it is
    /// healthy). Used as a whole percent (1.4 → 140), as Envoy stores it.
    pub overprovisioning_factor: f64,
    /// Percentage of healthy endpoints (0 to 100) under which a tier stops
    /// honouring health, when the tiers together are short of capacity.
    /// Default 50; 0 disables panic mode.
    pub panic_threshold: f64,
}

impl PriorityConfig {
    /// Envoy's default overprovisioning factor.
    pub const DEFAULT_OVERPROVISIONING_FACTOR: f64 = 1.4;
    /// Envoy's default panic threshold, in percent.
    pub const DEFAULT_PANIC_THRESHOLD: f64 = 50.0;

    /// Checks the values, returning a message fit for an operator if they
    /// are out of range. [`tier_loads`] does not check them: call this when
    /// the configuration is loaded.
    pub fn validate(&self) -> Result<(), String> {
        let factor = self.overprovisioning_factor;
        if !(factor.is_finite() && factor >= 1.0) {
            return Err(format!(
                "overprovisioning factor must be a finite number of at least 1.0, got {factor}"
            ));
        }
        let threshold = self.panic_threshold;
        if !(0.0..=100.0).contains(&threshold) {
            return Err(format!(
                "panic threshold must be a percentage between 0 and 100, got {threshold}"
            ));
        }
        Ok(())
    }

    /// The factor as a whole percent; NaN and negatives give 0, huge values
    /// saturate.
    fn factor_percent(&self) -> u64 {
        // A float-to-int `as` cast saturates and maps NaN to 0.
        (self.overprovisioning_factor * 100.0).round() as u64
    }

    /// Whether a non-empty tier has too few healthy endpoints to trust its
    /// health checks.
    fn below_panic_threshold(&self, tier: &TierHealth) -> bool {
        f64::from(tier.healthy_clamped()) * 100.0 < self.panic_threshold * f64::from(tier.total)
    }
}

impl Default for PriorityConfig {
    fn default() -> Self {
        Self {
            overprovisioning_factor: Self::DEFAULT_OVERPROVISIONING_FACTOR,
            panic_threshold: Self::DEFAULT_PANIC_THRESHOLD,
        }
    }
}

/// How healthy one tier is: endpoint counts, or summed endpoint weights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierHealth {
    /// Healthy endpoints (or their summed weight). Values above `total` are
    /// treated as `total`.
    pub healthy: u32,
    /// All endpoints of the tier, healthy or not (or their summed weight).
    pub total: u32,
}

impl TierHealth {
    /// A tier with `healthy` of `total` endpoints healthy.
    pub const fn new(healthy: u32, total: u32) -> Self {
        Self { healthy, total }
    }

    fn healthy_clamped(&self) -> u32 {
        self.healthy.min(self.total)
    }

    /// Envoy's health score, 0 to 100.
    fn health(&self, factor_percent: u64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let scaled = u128::from(factor_percent) * u128::from(self.healthy_clamped())
            / u128::from(self.total);
        // Capped at 100, so the narrowing cannot truncate.
        scaled.min(100) as u64
    }
}

/// Splits traffic between tiers, tier 0 preferred, by Envoy's priority rule.
///
/// * `health(tier) = min(100, ⌊factor% × healthy / total⌋)`, 0 for an empty
///   tier (`factor%` is the overprovisioning factor as a whole percent, 140);
/// * the *normalized total health* is `min(100, Σ health)`;
/// * each tier in order takes `min(left, ⌊health × 100 / normalized total⌋)`
///   percent; the rounding leftover goes to the first tier with non-zero
///   health (Envoy's rule);
/// * when the normalized total health is below 100, each non-empty tier whose
///   share of healthy endpoints is below the panic threshold is *in panic*
///   (see [`TierLoads::in_panic`]); when every non-empty tier is in panic
///   ("total panic"), the loads are re-spread in proportion to tier sizes,
///   the leftover going to the first non-empty tier.
///
/// The loads sum to exactly 100 when any tier has an endpoint and are all 0
/// otherwise; a tier without endpoints never gets load.
///
/// When nothing is healthy and panic mode is disabled (threshold 0), all load
/// goes to the first tier with a healthy endpoint (possible when the factor
/// rounds its health down to 0), else to the first non-empty tier, none in
/// panic: the caller then finds no healthy endpoint and fails the request, as
/// Envoy does.
pub fn tier_loads(tiers: &[TierHealth], cfg: &PriorityConfig) -> TierLoads {
    let mut loads = vec![0u32; tiers.len()];
    let mut panic = vec![false; tiers.len()];

    let total_size: u64 = tiers.iter().map(|t| u64::from(t.total)).sum();
    if total_size == 0 {
        return TierLoads::new(loads, panic, 0, false);
    }

    let factor_percent = cfg.factor_percent();
    let health_sum: u64 = tiers.iter().map(|t| t.health(factor_percent)).sum();
    let normalized_total_health = health_sum.min(100);

    if normalized_total_health < 100 {
        for (flag, tier) in panic.iter_mut().zip(tiers) {
            *flag = tier.total > 0 && cfg.below_panic_threshold(tier);
        }
    }
    let total_panic = tiers
        .iter()
        .zip(&panic)
        .all(|(tier, &flag)| tier.total == 0 || flag);

    if total_panic {
        apportion(
            tiers.iter().map(|t| u64::from(t.total)),
            total_size,
            &mut loads,
        );
    } else if normalized_total_health == 0 {
        let target = tiers
            .iter()
            .position(|t| t.healthy_clamped() > 0)
            .or_else(|| tiers.iter().position(|t| t.total > 0));
        if let Some(slot) = target.and_then(|i| loads.get_mut(i)) {
            *slot = 100;
        }
    } else {
        apportion(
            tiers.iter().map(|t| t.health(factor_percent)),
            normalized_total_health,
            &mut loads,
        );
    }

    // Both are at most 100.
    TierLoads::new(loads, panic, normalized_total_health as u32, total_panic)
}

/// Gives each tier `min(left, ⌊weight × 100 / denominator⌋)` percent, in
/// order, then the rounding leftover to the first tier with non-zero weight.
/// `denominator` must be non-zero and at least the sum of the weights, or at
/// least 100 when weights are health scores capped by it.
fn apportion(weights: impl Iterator<Item = u64>, denominator: u64, loads: &mut [u32]) {
    let mut left: u64 = 100;
    let mut first_weighted = None;
    for (i, (weight, load)) in weights.zip(loads.iter_mut()).enumerate() {
        if first_weighted.is_none() && weight > 0 {
            first_weighted = Some(i);
        }
        let share = (weight.saturating_mul(100) / denominator).min(left);
        // `share` is at most 100.
        *load = share as u32;
        left -= share;
    }
    if let Some(slot) = first_weighted.and_then(|i| loads.get_mut(i)) {
        *slot += left as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(factor: f64, threshold: f64) -> PriorityConfig {
        PriorityConfig {
            overprovisioning_factor: factor,
            panic_threshold: threshold,
        }
    }

    fn loads_of(tiers: &[(u32, u32)], cfg: &PriorityConfig) -> TierLoads {
        let tiers: Vec<TierHealth> = tiers.iter().map(|&(h, t)| TierHealth::new(h, t)).collect();
        tier_loads(&tiers, cfg)
    }

    #[test]
    fn default_config_is_envoys() {
        let d = PriorityConfig::default();
        assert_eq!(d.overprovisioning_factor, 1.4);
        assert_eq!(d.panic_threshold, 50.0);
        assert_eq!(d.validate(), Ok(()));
        assert_eq!(d.factor_percent(), 140);
    }

    #[test]
    fn validate_rejects_out_of_range() {
        assert!(cfg(1.0, 0.0).validate().is_ok());
        assert!(cfg(3.0, 100.0).validate().is_ok());
        for bad in [
            cfg(0.99, 50.0),
            cfg(f64::NAN, 50.0),
            cfg(f64::INFINITY, 50.0),
            cfg(1.4, -0.1),
            cfg(1.4, 100.1),
            cfg(1.4, f64::NAN),
        ] {
            let msg = bad.validate().expect_err("out of range");
            assert!(!msg.is_empty());
        }
        assert!(cfg(0.5, 50.0)
            .validate()
            .is_err_and(|m| m.contains("overprovisioning factor")));
        assert!(cfg(1.4, 101.0)
            .validate()
            .is_err_and(|m| m.contains("panic threshold")));
    }

    #[test]
    fn factor_is_used_as_a_whole_percent() {
        // 1.15 × 100 is 114.999… in floating point; Envoy would be given 115.
        assert_eq!(cfg(1.15, 50.0).factor_percent(), 115);
        assert_eq!(TierHealth::new(20, 23).health(115), 100);
        assert_eq!(cfg(f64::NAN, 50.0).factor_percent(), 0);
        assert_eq!(cfg(-1.0, 50.0).factor_percent(), 0);
        assert_eq!(cfg(f64::INFINITY, 50.0).factor_percent(), u64::MAX);
        assert_eq!(TierHealth::new(1, u32::MAX).health(u64::MAX), 100);
    }

    #[test]
    fn health_scores() {
        assert_eq!(TierHealth::new(0, 0).health(140), 0);
        assert_eq!(TierHealth::new(5, 0).health(140), 0);
        assert_eq!(TierHealth::new(71, 100).health(140), 99);
        assert_eq!(TierHealth::new(72, 100).health(140), 100);
        assert_eq!(TierHealth::new(1, 2).health(140), 70);
        assert_eq!(TierHealth::new(1, 3).health(140), 46);
        assert_eq!(TierHealth::new(9, 4).health(100), 100);
    }

    #[test]
    fn healthy_above_total_counts_as_total() {
        let l = loads_of(&[(7, 4), (0, 4)], &PriorityConfig::default());
        assert_eq!(l.loads(), &[100, 0]);
        assert_eq!(l.panic_flags(), &[false, false]);
    }

    #[test]
    fn insane_config_does_not_panic() {
        for c in [
            cfg(f64::NAN, f64::NAN),
            cfg(0.0, 50.0),
            cfg(-3.0, -3.0),
            cfg(f64::INFINITY, f64::INFINITY),
            cfg(1e300, 1e300),
        ] {
            let l = loads_of(&[(1, 3), (2, 2)], &c);
            assert_eq!(l.loads().iter().sum::<u32>(), 100, "{c:?}");
        }
        // A zero factor makes every tier look dead: total panic by size.
        let l = loads_of(&[(1, 3), (0, 1)], &cfg(0.0, 50.0));
        assert_eq!(l.loads(), &[75, 25]);
    }

    #[test]
    fn apportion_gives_leftover_to_first_weighted_tier() {
        let mut loads = [0; 4];
        apportion([0, 1, 1, 1].into_iter(), 3, &mut loads);
        assert_eq!(loads, [0, 34, 33, 33]);
        let mut loads = [0; 2];
        apportion([100, 100].into_iter(), 100, &mut loads);
        assert_eq!(loads, [100, 0]);
    }
}
