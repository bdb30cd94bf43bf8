//! Shapley value: the model's closed form against enumeration and sampling, and the axioms.

use std::collections::BTreeMap;

use cdphub_attribution::{
    AttributionConfig, CoalitionWorth, ShapleyConfig, ShapleyOptions, shapley_values,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::{RawPath, assert_close, channel_name, fit, raw, raw_paths};

fn config(worth: CoalitionWorth) -> AttributionConfig {
    AttributionConfig {
        shapley: ShapleyConfig { worth },
        ..AttributionConfig::default()
    }
}

/// The model's characteristic function computed directly from its definition:
/// `v(S) = Σ R(T)` over the observed channel sets `T ⊆ S`, channel `names[i]` being bit `i`.
fn model_game(paths: &[RawPath], names: &[String], worth: CoalitionWorth) -> impl Fn(u64) -> f64 {
    let mut sets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for path in paths {
        let mask = path.channels.iter().fold(0u64, |mask, channel| {
            mask | 1 << names.iter().position(|name| name == channel).unwrap()
        });
        let counts = sets.entry(mask).or_default();
        counts.0 += path.conversions;
        counts.1 += path.non_conversions;
    }
    let worths: Vec<(u64, f64)> = sets
        .into_iter()
        .map(|(mask, (conversions, non_conversions))| {
            let r = match worth {
                CoalitionWorth::Conversions => conversions,
                CoalitionWorth::ConversionRate if conversions + non_conversions > 0.0 => {
                    conversions / (conversions + non_conversions)
                }
                CoalitionWorth::ConversionRate => 0.0,
            };
            (mask, r)
        })
        .collect();
    move |coalition| {
        worths
            .iter()
            .filter(|(members, _)| members & !coalition == 0)
            .map(|(_, r)| r)
            .sum()
    }
}

/// The model's credits equal the enumerated Shapley values of its game, scaled to the total
/// conversions.
fn check_against_enumeration(paths: &[RawPath], worth: CoalitionWorth) {
    let fitted = fit("shapley", config(worth), paths);
    let names: Vec<String> = fitted
        .channels()
        .iter()
        .map(|c| c.channel.clone())
        .collect();
    let exact = shapley_values(
        names.len(),
        model_game(paths, &names, worth),
        &ShapleyOptions::default(),
    )
    .unwrap();
    assert!(exact.is_exact());
    let sum: f64 = exact.values.iter().sum();
    let total: f64 = paths.iter().map(|p| p.conversions).sum();
    for (name, value) in names.iter().zip(&exact.values) {
        let want = if sum > 0.0 { total * value / sum } else { 0.0 };
        assert_close(fitted.get(name).unwrap().conversions, want, 1e-9, name);
    }
}

proptest! {
    #[test]
    fn closed_form_equals_enumeration(paths in raw_paths(8, 6, 15)) {
        check_against_enumeration(&paths, CoalitionWorth::ConversionRate);
        check_against_enumeration(&paths, CoalitionWorth::Conversions);
    }

    #[test]
    fn model_totals_sum_to_the_totals(paths in raw_paths(10, 8, 20)) {
        let fitted = fit("shapley", AttributionConfig::default(), &paths);
        let conversions: f64 = paths.iter().map(|p| p.conversions).sum();
        let revenue: f64 = paths.iter().map(|p| p.revenue).sum();
        let credited: f64 = fitted.channels().iter().map(|c| c.conversions).sum();
        let credited_revenue: f64 = fitted.channels().iter().map(|c| c.revenue).sum();
        assert_close(credited, conversions, 1e-12, "conversions");
        assert_close(credited_revenue, revenue, 1e-12, "revenue");
    }

    /// `x` and `y` are on exactly the same journeys, so they are interchangeable.
    #[test]
    fn model_symmetry(paths in raw_paths(5, 5, 12), together in prop::collection::vec(any::<bool>(), 12)) {
        let paths: Vec<RawPath> = paths
            .into_iter()
            .zip(together)
            .map(|(mut path, both)| {
                if both {
                    path.channels.insert(0, "x".into());
                    path.channels.push("y".into());
                }
                path
            })
            .collect();
        let fitted = fit("shapley", AttributionConfig::default(), &paths);
        if let (Some(x), Some(y)) = (fitted.get("x"), fitted.get("y")) {
            assert_close(x.conversions, y.conversions, 1e-12, "x vs y");
        }
    }

    /// `z` is only on journeys that did not convert, so it never adds worth.
    #[test]
    fn model_null_player(paths in raw_paths(5, 5, 12)) {
        let mut paths: Vec<RawPath> = paths
            .into_iter()
            .map(|mut path| {
                if path.conversions == 0.0 {
                    path.channels.push("z".into());
                }
                path
            })
            .collect();
        paths.push(raw("z", 0.0, 3.0));
        let fitted = fit("shapley", AttributionConfig::default(), &paths);
        prop_assert_eq!(fitted.get("z").unwrap().conversions, 0.0);
    }
}

/// A random game on `players` players: one worth per coalition.
fn random_game() -> impl Strategy<Value = (usize, Vec<f64>)> {
    (1usize..=7).prop_flat_map(|players| {
        (
            Just(players),
            prop::collection::vec(-10.0f64..10.0, 1 << players),
        )
    })
}

fn sampled(permutations: usize) -> ShapleyOptions {
    ShapleyOptions {
        max_exact_players: 0,
        permutations,
        seed: 42,
    }
}

proptest! {
    #[test]
    fn efficiency((players, worth) in random_game()) {
        let game = |s: u64| worth[s as usize];
        let gain = worth[(1 << players) - 1] - worth[0];
        for options in [ShapleyOptions::default(), sampled(50)] {
            let estimate = shapley_values(players, game, &options).unwrap();
            assert_close(estimate.values.iter().sum(), gain, 1e-9, "Σφ");
        }
    }

    /// Players 0 and 1 are interchangeable when `v` is symmetric in them.
    #[test]
    fn symmetry((players, worth) in random_game()) {
        prop_assume!(players >= 2);
        let swap = |s: u64| (s & !0b11) | ((s & 1) << 1) | ((s >> 1) & 1);
        let game = |s: u64| (worth[s as usize] + worth[swap(s) as usize]) / 2.0;
        let exact = shapley_values(players, game, &ShapleyOptions::default()).unwrap();
        assert_close(exact.values[0], exact.values[1], 1e-9, "φ0 vs φ1");
    }

    /// The last player never changes `v`, so it gets exactly 0, sampled or not.
    #[test]
    fn null_player((players, worth) in random_game()) {
        let null = 1u64 << (players - 1);
        let game = |s: u64| worth[(s & !null) as usize];
        for options in [ShapleyOptions::default(), sampled(50)] {
            let estimate = shapley_values(players, game, &options).unwrap();
            prop_assert_eq!(estimate.values[players - 1], 0.0);
            prop_assert_eq!(estimate.std_errors[players - 1], 0.0);
        }
    }
}

/// 18 channels is beyond exact enumeration: the sampled estimate of the model's game agrees
/// with the model's exact values within 5 standard errors, and one seed gives one answer.
#[test]
fn sampling_agrees_with_the_closed_form() {
    let mut random = Pcg64::seed_from_u64(2018);
    let paths: Vec<RawPath> = (0..300)
        .map(|_| RawPath {
            channels: (0..random.random_range(1..=5))
                .map(|_| channel_name(random.random_range(0..18)))
                .collect(),
            conversions: f64::from(random.random_range(0..5u32)),
            non_conversions: f64::from(random.random_range(0..20u32)),
            revenue: 0.0,
        })
        .collect();
    let fitted = fit("shapley", AttributionConfig::default(), &paths);
    let names: Vec<String> = fitted
        .channels()
        .iter()
        .map(|c| c.channel.clone())
        .collect();
    assert_eq!(names.len(), 18);
    let game = model_game(&paths, &names, CoalitionWorth::ConversionRate);
    let gain = game(u64::MAX);
    let total: f64 = paths.iter().map(|p| p.conversions).sum();
    let options = ShapleyOptions::default();
    let estimate = shapley_values(names.len(), &game, &options).unwrap();
    assert_eq!(estimate.permutations, options.permutations);
    let mut worst: f64 = 0.0;
    for ((name, value), error) in names.iter().zip(&estimate.values).zip(&estimate.std_errors) {
        let exact = fitted.get(name).unwrap().conversions / total * gain;
        worst = worst.max((value - exact).abs() / error);
        assert!(
            (value - exact).abs() <= 5.0 * error,
            "{name}: sampled {value} ± {error}, exact {exact}"
        );
    }
    println!("sampled Shapley: largest error {worst:.2} standard errors");
    assert_eq!(
        shapley_values(names.len(), &game, &options).unwrap(),
        estimate
    );
}

/// Beyond 64 channels coalitions are no longer bitmasks; the closed form still holds.
#[test]
fn many_channels() {
    let paths: Vec<RawPath> = (0..80)
        .map(|i| RawPath {
            channels: vec![format!("c{i}"), format!("c{}", (i + 1) % 80)],
            conversions: f64::from(i % 3),
            non_conversions: 1.0,
            revenue: 0.0,
        })
        .collect();
    let fitted = fit("shapley", AttributionConfig::default(), &paths);
    assert_eq!(fitted.channels().len(), 80);
    // Channel i is on paths i - 1 and i, each of rate (i mod 3) / (i mod 3 + 1) split
    // between its two channels.
    let rate = |i: usize| {
        let conversions = (i % 3) as f64;
        conversions / (conversions + 1.0)
    };
    let sum: f64 = (0..80).map(rate).sum();
    let total: f64 = paths.iter().map(|p| p.conversions).sum();
    for i in 0..80 {
        let value = (rate(i) + rate((i + 79) % 80)) / 2.0;
        let credit = fitted.get(&format!("c{i}")).unwrap();
        assert_close(
            credit.conversions,
            total * value / sum,
            1e-12,
            &credit.channel,
        );
    }
}
