//! The published Envoy examples ("Priority levels" and "Panic threshold"
//! pages), plus the properties the gateway relies on. Percentages of healthy
//! endpoints are expressed as `healthy` out of 100 endpoints per tier.

use fleetgate_subset::{pick_tier, tier_loads, PriorityConfig, TierHealth, TierLoads};

fn cfg(factor: f64, threshold: f64) -> PriorityConfig {
    PriorityConfig {
        overprovisioning_factor: factor,
        panic_threshold: threshold,
    }
}

fn percent(healthy: &[u32]) -> Vec<TierHealth> {
    healthy.iter().map(|&h| TierHealth::new(h, 100)).collect()
}

fn run(tiers: &[TierHealth], cfg: &PriorityConfig) -> TierLoads {
    let loads = tier_loads(tiers, cfg);
    check_invariants(tiers, &loads);
    loads
}

fn check_invariants(tiers: &[TierHealth], loads: &TierLoads) {
    assert_eq!(loads.len(), tiers.len());
    let sum: u32 = loads.loads().iter().sum();
    let any_endpoint = tiers.iter().any(|t| t.total > 0);
    assert_eq!(
        sum,
        if any_endpoint { 100 } else { 0 },
        "{tiers:?} -> {loads:?}"
    );
    for (i, tier) in tiers.iter().enumerate() {
        if tier.total == 0 {
            assert_eq!(loads.load(i), 0, "empty tier {i} got load: {tiers:?}");
            assert!(!loads.in_panic(i), "empty tier {i} in panic: {tiers:?}");
        }
    }
    assert!(loads.normalized_total_health() <= 100);
    if loads.normalized_total_health() == 100 {
        assert!(loads.panic_flags().iter().all(|p| !p));
    }
}

#[test]
fn priority_levels_two_tiers_tier1_healthy() {
    let d = PriorityConfig::default();
    for (p0, expect) in [
        (100, [100, 0]),
        (72, [100, 0]),
        (71, [99, 1]),
        (50, [70, 30]),
        (25, [35, 65]),
        (0, [0, 100]),
    ] {
        let l = run(&percent(&[p0, 100]), &d);
        assert_eq!(l.loads(), &expect, "P0 {p0}% healthy");
        assert_eq!(l.panic_flags(), &[false, false], "P0 {p0}% healthy");
        assert_eq!(l.normalized_total_health(), 100);
    }
}

#[test]
fn priority_levels_both_tiers_degrading() {
    let d = PriorityConfig::default();
    for ((p0, p1), expect) in [
        ((100, 100), [100, 0]),
        ((72, 72), [100, 0]),
        ((71, 71), [99, 1]),
        ((50, 50), [70, 30]),
        ((25, 100), [35, 65]),
        ((25, 25), [50, 50]),
    ] {
        let l = run(&percent(&[p0, p1]), &d);
        assert_eq!(l.loads(), &expect, "P0 {p0}%, P1 {p1}%");
    }
}

#[test]
fn both_tiers_half_healthy() {
    let l = run(
        &[TierHealth::new(2, 4), TierHealth::new(3, 6)],
        &PriorityConfig::default(),
    );
    assert_eq!(l.loads(), &[70, 30]);
    assert_eq!(l.normalized_total_health(), 100);
    assert!(!l.total_panic());
}

#[test]
fn empty_subset_sends_everything_to_the_rest() {
    let d = PriorityConfig::default();
    for rest in [
        TierHealth::new(10, 10),
        TierHealth::new(5, 10),
        TierHealth::new(1, 10),
        TierHealth::new(0, 10),
    ] {
        let l = run(&[TierHealth::new(0, 0), rest], &d);
        assert_eq!(l.loads(), &[0, 100], "{rest:?}");
    }
    // The rest is 10% healthy: short of capacity and under the threshold.
    let l = run(&[TierHealth::new(0, 0), TierHealth::new(1, 10)], &d);
    assert_eq!(l.panic_flags(), &[false, true]);
    assert!(l.total_panic());
}

#[test]
fn panic_threshold_page_examples() {
    let d = PriorityConfig::default();
    // Enough health overall: no panic even for a sick tier.
    let l = run(&percent(&[5, 100]), &d);
    assert_eq!(
        (l.loads(), l.panic_flags()),
        (&[7, 93][..], &[false, false][..])
    );
    let l = run(&percent(&[72, 72]), &d);
    assert_eq!(
        (l.loads(), l.panic_flags()),
        (&[100, 0][..], &[false, false][..])
    );
    let l = run(&percent(&[71, 71]), &d);
    assert_eq!(
        (l.loads(), l.panic_flags()),
        (&[99, 1][..], &[false, false][..])
    );

    // 25% / 25%: normalized total health 70, both in panic.
    let l = run(&percent(&[25, 25]), &d);
    assert_eq!(l.normalized_total_health(), 70);
    assert_eq!(l.panic_flags(), &[true, true]);
    assert!(l.total_panic());
    assert_eq!(l.loads(), &[50, 50]);

    // 5% / 65%: normalized total health 98, only P=0 in panic. Envoy gives the
    // rounding leftover to the first healthy priority: 8/92 (the page's
    // table shows 7/93, computed without that rule).
    let l = run(&percent(&[5, 65]), &d);
    assert_eq!(l.normalized_total_health(), 98);
    assert_eq!(l.panic_flags(), &[true, false]);
    assert!(!l.total_panic());
    assert_eq!(l.loads(), &[8, 92]);
}

#[test]
fn total_panic_spreads_by_tier_size() {
    let d = PriorityConfig::default();
    // 2/10 and 3/30 healthy: health 28 + 14 = 42, both under 50%.
    let l = run(&[TierHealth::new(2, 10), TierHealth::new(3, 30)], &d);
    assert_eq!(l.normalized_total_health(), 42);
    assert!(l.total_panic());
    assert_eq!(l.loads(), &[25, 75]);
    assert_eq!(l.to_string(), "25% (panic) / 75% (panic)");

    // Everything down: total panic, by size, rounding leftover to tier 0.
    let l = run(&[TierHealth::new(0, 1), TierHealth::new(0, 2)], &d);
    assert_eq!(l.normalized_total_health(), 0);
    assert!(l.total_panic());
    assert_eq!(l.loads(), &[34, 66]);
}

#[test]
fn partial_panic_keeps_health_based_loads() {
    // 1/4 healthy (25% < 50%: panic) and 3/5 healthy (60%: no panic);
    // health 35 + 84 = 119, capped at 100: no panic at all.
    let d = PriorityConfig::default();
    let l = run(&[TierHealth::new(1, 4), TierHealth::new(3, 5)], &d);
    assert_eq!(l.panic_flags(), &[false, false]);
    assert_eq!(l.loads(), &[35, 65]);

    // 1/4 and 1/2 healthy: health 35 + 70 = 105: still no panic.
    let l = run(&[TierHealth::new(1, 4), TierHealth::new(1, 2)], &d);
    assert_eq!(l.panic_flags(), &[false, false]);
    assert_eq!(l.loads(), &[35, 65]);

    // 1/4 and 3/10: health 35 + 42 = 77 < 100; 25% panics, 30% panics too.
    let l = run(&[TierHealth::new(1, 4), TierHealth::new(3, 10)], &d);
    assert!(l.total_panic());
    assert_eq!(l.loads(), &[29, 71]);

    // Threshold 25: 25% is not below it, 1/10 is.
    let l = run(
        &[TierHealth::new(1, 4), TierHealth::new(1, 10)],
        &cfg(1.4, 25.0),
    );
    assert_eq!(l.normalized_total_health(), 49);
    assert_eq!(l.panic_flags(), &[false, true]);
    assert_eq!(l.loads(), &[72, 28]);
}

#[test]
fn panic_disabled() {
    let off = cfg(1.4, 0.0);
    let l = run(&percent(&[25, 25]), &off);
    assert_eq!(l.panic_flags(), &[false, false]);
    assert_eq!(l.loads(), &[50, 50]);

    // Nothing healthy: all load to the first non-empty tier, no panic.
    let l = run(
        &[
            TierHealth::new(0, 0),
            TierHealth::new(0, 3),
            TierHealth::new(0, 3),
        ],
        &off,
    );
    assert_eq!(l.loads(), &[0, 100, 0]);
    assert!(!l.total_panic());
    // ...unless a tier has a healthy endpoint its rounded health hides.
    let l = run(&[TierHealth::new(0, 3), TierHealth::new(1, 1000)], &off);
    assert_eq!(l.normalized_total_health(), 0);
    assert_eq!(l.loads(), &[0, 100]);
}

#[test]
fn overprovisioning_factor_one() {
    let exact = cfg(1.0, 50.0);
    for (p0, expect) in [
        (100, [100, 0]),
        (99, [99, 1]),
        (72, [72, 28]),
        (50, [50, 50]),
        (0, [0, 100]),
    ] {
        let l = run(&percent(&[p0, 100]), &exact);
        assert_eq!(l.loads(), &expect, "P0 {p0}% healthy");
    }
}

#[test]
fn three_tiers() {
    let d = PriorityConfig::default();
    for (healthy, expect) in [
        ([100, 100, 100], [100, 0, 0]),
        ([72, 72, 100], [100, 0, 0]),
        ([71, 71, 100], [99, 1, 0]),
        ([50, 50, 100], [70, 30, 0]),
        ([25, 100, 100], [35, 65, 0]),
        ([25, 25, 100], [35, 35, 30]),
    ] {
        let l = run(&percent(&healthy), &d);
        assert_eq!(l.loads(), &expect, "{healthy:?}");
    }
    // 25/25/20: normalized total health 98 and every tier under 50%: total
    // panic, spread by size (the Priority levels page, which ignores panic,
    // shows 36/36/28).
    let l = run(&percent(&[25, 25, 20]), &d);
    assert!(l.total_panic());
    assert_eq!(l.loads(), &[34, 33, 33]);
    // Without panic, Envoy's rounding: the leftover 2 goes to tier 0.
    let l = run(&percent(&[25, 25, 20]), &cfg(1.4, 0.0));
    assert_eq!(l.loads(), &[37, 35, 28]);
    // An empty middle tier is skipped.
    let l = run(
        &[
            TierHealth::new(1, 2),
            TierHealth::new(0, 0),
            TierHealth::new(4, 4),
        ],
        &d,
    );
    assert_eq!(l.loads(), &[70, 0, 30]);
}

#[test]
fn weights_work_like_counts() {
    // Healthy weight 150 of 300 is 50%.
    let l = run(
        &[TierHealth::new(150, 300), TierHealth::new(10, 10)],
        &PriorityConfig::default(),
    );
    assert_eq!(l.loads(), &[70, 30]);
    let l = run(
        &[
            TierHealth::new(u32::MAX / 2, u32::MAX),
            TierHealth::new(u32::MAX, u32::MAX),
        ],
        &PriorityConfig::default(),
    );
    assert_eq!(l.loads(), &[69, 31]);
}

#[test]
fn no_endpoints_anywhere() {
    let d = PriorityConfig::default();
    let l = run(&[], &d);
    assert!(l.is_empty());
    assert_eq!(pick_tier(&l, 0), None);
    let l = run(&[TierHealth::new(0, 0), TierHealth::new(0, 0)], &d);
    assert_eq!(l.loads(), &[0, 0]);
    assert_eq!(l.panic_flags(), &[false, false]);
    assert_eq!(l.to_string(), "no endpoints");
    assert_eq!(pick_tier(&l, 12345), None);
    assert_eq!(pick_tier(&l, u64::MAX), None);
}

#[test]
fn loads_always_sum_to_100() {
    let configs = [
        cfg(1.0, 0.0),
        cfg(1.0, 50.0),
        cfg(1.4, 0.0),
        cfg(1.4, 50.0),
        cfg(1.4, 100.0),
        cfg(2.0, 33.3),
    ];
    let mut cases = 0;
    for c in &configs {
        for t0 in 0..=6 {
            for h0 in 0..=t0 {
                for t1 in 0..=6 {
                    for h1 in 0..=t1 {
                        for t2 in [0, 1, 7] {
                            for h2 in 0..=t2 {
                                let tiers = [
                                    TierHealth::new(h0, t0),
                                    TierHealth::new(h1, t1),
                                    TierHealth::new(h2, t2),
                                ];
                                let loads = run(&tiers, c);
                                check_pick(&loads);
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(cases > 10_000);
}

/// `pick_tier` agrees with the loads: rolls spread over 100 slots hit each
/// tier as often as its load says.
fn check_pick(loads: &TierLoads) {
    let mut counts = vec![0u32; loads.len()];
    for slot in 0..100u32 {
        let roll = (u128::from(slot) << 64).div_ceil(100) as u64;
        match pick_tier(loads, roll) {
            Some(tier) => counts[tier] += 1,
            None => assert!(loads.loads().iter().all(|&l| l == 0)),
        }
    }
    if loads.loads().iter().any(|&l| l > 0) {
        assert_eq!(counts, loads.loads());
    }
}
