//! Markov removal effect against hand-worked fractions and against an independent algorithm.

use std::collections::BTreeMap;

use cdphub_attribution::{AttributionConfig, MarkovConfig, MarkovSolver};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::{RawPath, assert_close, channel_name, fit, raw, raw_paths};

/// Checks a fitted model against exact removal effects and conversion probability.
#[track_caller]
fn assert_markov(
    model: &str,
    paths: &[RawPath],
    conversion_probability: f64,
    effects: &[(&str, f64)],
) {
    let fitted = fit(model, AttributionConfig::default(), paths);
    let summary = fitted.markov().unwrap();
    assert_close(
        summary.conversion_probability,
        conversion_probability,
        1e-12,
        "P(conversion)",
    );
    let total_effect: f64 = effects.iter().map(|(_, effect)| effect).sum();
    let total_conversions: f64 = paths.iter().map(|path| path.conversions).sum();
    for &(channel, effect) in effects {
        let credit = fitted.get(channel).unwrap();
        assert_close(credit.removal_effect.unwrap(), effect, 1e-12, channel);
        assert_close(
            credit.conversions,
            total_conversions * effect / total_effect,
            1e-12,
            channel,
        );
    }
}

/// Order 1, no cycle. Transitions (counts → probabilities):
///   start → A 2/4 (paths 1, 2), start → B 1/4, start → C 1/4;
///   A → B 1/2, A → null 1/2;  B → conv 1/2, B → C 1/2;  C → conv 1/2, C → null 1/2.
/// Absorption: h(C) = 1/2, h(B) = 1/2 + 1/2·h(C) = 3/4, h(A) = 1/2·h(B) = 3/8,
///   P = 1/2·3/8 + 1/4·3/4 + 1/4·1/2 = 1/2.
/// Without A: P = 1/4·3/4 + 1/4·1/2 = 5/16, RE = 1 − (5/16)/(1/2) = 3/8.
/// Without B: h(A) = 0, P = 1/4·1/2 = 1/8, RE = 3/4.
/// Without C: h(B) = 1/2, h(A) = 1/4, P = 1/2·1/4 + 1/4·1/2 = 1/4, RE = 1/2.
/// ΣRE = 13/8, so over 2 conversions: A 6/13, B 12/13, C 8/13.
#[test]
fn hand_worked_order_1() {
    let paths = [
        raw("A>B", 1.0, 0.0),
        raw("A", 0.0, 1.0),
        raw("B>C", 1.0, 0.0),
        raw("C", 0.0, 1.0),
    ];
    assert_markov(
        "markov",
        &paths,
        1.0 / 2.0,
        &[("A", 3.0 / 8.0), ("B", 3.0 / 4.0), ("C", 1.0 / 2.0)],
    );
    let fitted = fit("markov", AttributionConfig::default(), &paths);
    assert_close(fitted.get("A").unwrap().conversions, 6.0 / 13.0, 1e-12, "A");
    assert_close(
        fitted.get("B").unwrap().conversions,
        12.0 / 13.0,
        1e-12,
        "B",
    );
}

/// Order 1 with a repeated channel, i.e. a cycle:
///   start → A 1/2, start → B 1/2;  A → B 1/2, A → conv 1/2;  B → A 1/2, B → null 1/2.
/// h(A) = 1/2 + 1/2·h(B), h(B) = 1/2·h(A), so h(A) = 2/3, h(B) = 1/3, P = 1/2.
/// Without A: nothing converts, RE = 1. Without B: h(A) = 1/2, P = 1/4, RE = 1/2.
/// One conversion: A 2/3, B 1/3.
#[test]
fn hand_worked_cycle() {
    let paths = [raw("A>B>A", 1.0, 0.0), raw("B", 0.0, 1.0)];
    assert_markov("markov", &paths, 0.5, &[("A", 1.0), ("B", 0.5)]);
}

/// Order 2. States are the last two channels; a shorter path is one state:
///   A>B>C: start → (A,B) → (B,C) → conv ×2;  A>B: start → (A,B) → null;
///   B>C: start → (B,C) → null;  C: start → (C) → conv.
/// start → (A,B) 3/5, → (B,C) 1/5, → (C) 1/5;  (A,B) → (B,C) 2/3, → null 1/3;
/// (B,C) → conv 2/3, → null 1/3;  (C) → conv 1.
/// h(C) = 1, h(B,C) = 2/3, h(A,B) = 4/9, P = 3/5·4/9 + 1/5·2/3 + 1/5 = 3/5.
/// Without A, (A,B) goes: P = 1/5·2/3 + 1/5 = 1/3, RE = 1 − 5/9 = 4/9.
/// Without B, (A,B) and (B,C) go: P = 1/5, RE = 2/3. Without C: P = 0, RE = 1.
/// ΣRE = 19/9 over 3 conversions: A 12/19, B 18/19, C 27/19.
#[test]
fn hand_worked_order_2() {
    let paths = [
        raw("A>B>C", 2.0, 0.0),
        raw("A>B", 0.0, 1.0),
        raw("B>C", 0.0, 1.0),
        raw("C", 1.0, 0.0),
    ];
    assert_markov(
        "markov_2",
        &paths,
        3.0 / 5.0,
        &[("A", 4.0 / 9.0), ("B", 2.0 / 3.0), ("C", 1.0)],
    );
    let fitted = fit("markov_2", AttributionConfig::default(), &paths);
    assert_close(
        fitted.get("C").unwrap().conversions,
        27.0 / 19.0,
        1e-12,
        "C",
    );
    assert_eq!(fitted.markov().unwrap().states, 3);
}

/// The chain of order `k` rebuilt from scratch with named states, solved by summing
/// `start · Qⁿ · r` (probability mass flowing step by step) instead of a linear solve.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Start,
    State(Vec<String>),
    Conversion,
    Null,
}

struct ReferenceChain {
    rows: BTreeMap<Node, Vec<(Node, f64)>>,
}

impl ReferenceChain {
    fn new(paths: &[RawPath], order: usize) -> Self {
        let mut counts: BTreeMap<Node, BTreeMap<Node, f64>> = BTreeMap::new();
        for path in paths {
            let journeys = path.conversions + path.non_conversions;
            if journeys == 0.0 {
                continue;
            }
            let width = order.min(path.channels.len());
            let mut visits: Vec<Node> = vec![Node::Start];
            for start in 0..=path.channels.len() - width {
                let node = Node::State(path.channels[start..start + width].to_vec());
                if visits.last() != Some(&node) {
                    visits.push(node);
                }
            }
            for pair in visits.windows(2) {
                *counts
                    .entry(pair[0].clone())
                    .or_default()
                    .entry(pair[1].clone())
                    .or_default() += journeys;
            }
            let last = visits.last().unwrap().clone();
            let outcomes = counts.entry(last).or_default();
            *outcomes.entry(Node::Conversion).or_default() += path.conversions;
            *outcomes.entry(Node::Null).or_default() += path.non_conversions;
        }
        let rows = counts
            .into_iter()
            .map(|(from, targets)| {
                let total: f64 = targets.values().sum();
                let row = targets
                    .into_iter()
                    .map(|(to, count)| (to, count / total))
                    .collect();
                (from, row)
            })
            .collect();
        Self { rows }
    }

    /// P(conversion), with transitions into states holding `removed` sent to null.
    fn conversion_probability(&self, removed: Option<&str>) -> f64 {
        let mut mass = BTreeMap::from([(Node::Start, 1.0)]);
        let mut converted = 0.0;
        for _ in 0..1_000_000 {
            let mut next: BTreeMap<Node, f64> = BTreeMap::new();
            for (node, weight) in &mass {
                for (to, probability) in self.rows.get(node).into_iter().flatten() {
                    match to {
                        Node::Conversion => converted += weight * probability,
                        Node::State(history)
                            if removed.is_none_or(|c| !history.iter().any(|h| h == c)) =>
                        {
                            *next.entry(to.clone()).or_default() += weight * probability;
                        }
                        _ => {} // null, or a removed state
                    }
                }
            }
            mass = next;
            if mass.values().sum::<f64>() < 1e-16 {
                return converted;
            }
        }
        panic!("reference chain did not drain");
    }
}

/// Largest differences between the crate and the reference over the given cases.
#[derive(Debug, Default)]
struct Differences {
    probability: f64,
    removal_effect: f64,
    sweeps_vs_dense: f64,
}

fn compare_with_reference(paths: &[RawPath], order: usize, worst: &mut Differences) {
    let model = ["markov", "markov_2", "markov_3"][order - 1];
    let reference = ReferenceChain::new(paths, order);
    let dense = fit(model, AttributionConfig::default(), paths);
    let sweeping = fit(
        model,
        AttributionConfig {
            markov: MarkovConfig {
                dense_max_states: 0,
                ..MarkovConfig::default()
            },
            ..AttributionConfig::default()
        },
        paths,
    );
    assert_eq!(dense.markov().unwrap().solver, MarkovSolver::Dense);
    if dense.markov().unwrap().states > 0 {
        assert!(matches!(
            sweeping.markov().unwrap().solver,
            MarkovSolver::GaussSeidel { .. }
        ));
    }
    let base = reference.conversion_probability(None);
    let probability = dense.markov().unwrap().conversion_probability;
    worst.probability = worst.probability.max((probability - base).abs());
    for credit in dense.channels() {
        let effect = if base > 0.0 {
            1.0 - reference.conversion_probability(Some(&credit.channel)) / base
        } else {
            0.0
        };
        let got = credit.removal_effect.unwrap();
        let swept = sweeping
            .get(&credit.channel)
            .unwrap()
            .removal_effect
            .unwrap();
        worst.removal_effect = worst.removal_effect.max((got - effect).abs());
        worst.sweeps_vs_dense = worst.sweeps_vs_dense.max((got - swept).abs());
        assert!(
            (got - effect).abs() <= 1e-9 && (got - swept).abs() <= 1e-9,
            "order {order}, {}: dense {got}, sweeps {swept}, reference {effect}\n{paths:?}",
            credit.channel
        );
    }
}

/// 3,000 random small path sets per order: the removal effects equal the reference's to
/// 1e-9, by dense elimination and by Gauss-Seidel. Prints the largest differences seen
/// (`cargo test -- --nocapture`).
#[test]
fn removal_effects_match_an_independent_computation() {
    let mut random = Pcg64::seed_from_u64(20_180_415);
    for order in 1..=3 {
        let mut worst = Differences::default();
        for _ in 0..3_000 {
            let paths: Vec<RawPath> = (0..random.random_range(1..=8))
                .map(|_| RawPath {
                    channels: (0..random.random_range(1..=6))
                        .map(|_| channel_name(random.random_range(0..4)))
                        .collect(),
                    conversions: f64::from(random.random_range(0..4u32)),
                    non_conversions: f64::from(random.random_range(0..4u32)),
                    revenue: 0.0,
                })
                .collect();
            compare_with_reference(&paths, order, &mut worst);
        }
        println!("order {order}: largest differences with the reference {worst:?}");
    }
}

proptest! {
    #[test]
    fn removal_effects_match_the_reference_on_any_input(
        paths in raw_paths(5, 7, 10),
        order in 1usize..=3,
    ) {
        compare_with_reference(&paths, order, &mut Differences::default());
    }

    #[test]
    fn channel_totals_sum_to_the_totals(paths in raw_paths(6, 8, 12), order in 1usize..=3) {
        let model = ["markov", "markov_2", "markov_3"][order - 1];
        let fitted = fit(model, AttributionConfig::default(), &paths);
        let conversions: f64 = paths.iter().map(|p| p.conversions).sum();
        let revenue: f64 = paths.iter().map(|p| p.revenue).sum();
        let credited: f64 = fitted.channels().iter().map(|c| c.conversions).sum();
        let credited_revenue: f64 = fitted.channels().iter().map(|c| c.revenue).sum();
        assert_close(credited, conversions, 1e-12, "conversions");
        assert_close(credited_revenue, revenue, 1e-12, "revenue");
        for credit in fitted.channels() {
            prop_assert!(credit.conversions >= 0.0);
            let effect = credit.removal_effect.unwrap();
            prop_assert!((0.0..=1.0).contains(&effect));
        }
    }

    #[test]
    fn results_do_not_depend_on_path_order(paths in raw_paths(5, 6, 10), order in 1usize..=3) {
        let model = ["markov", "markov_2", "markov_3"][order - 1];
        let forward = fit(model, AttributionConfig::default(), &paths);
        let reversed: Vec<RawPath> = paths.iter().rev().cloned().collect();
        let backward = fit(model, AttributionConfig::default(), &reversed);
        for (a, b) in forward.channels().iter().zip(backward.channels()) {
            prop_assert_eq!(&a.channel, &b.channel);
            assert_close(a.conversions, b.conversions, 1e-12, &a.channel);
        }
    }
}

#[test]
fn consecutive_repeats_do_not_change_order_1() {
    let plain = [
        raw("A>B", 3.0, 1.0),
        raw("B>C", 1.0, 4.0),
        raw("A>C", 2.0, 2.0),
    ];
    let repeated = [
        raw("A>A>B", 3.0, 1.0),
        raw("B>C>C>C", 1.0, 4.0),
        raw("A>C", 2.0, 2.0),
    ];
    let plain = fit("markov", AttributionConfig::default(), &plain);
    let repeated = fit("markov", AttributionConfig::default(), &repeated);
    assert_eq!(plain, repeated);
}

#[test]
fn nothing_converted_credits_nothing() {
    let fitted = fit(
        "markov_2",
        AttributionConfig::default(),
        &[raw("A>B", 0.0, 3.0), raw("C", 0.0, 1.0)],
    );
    assert_eq!(fitted.markov().unwrap().conversion_probability, 0.0);
    for credit in fitted.channels() {
        assert_eq!(
            (credit.conversions, credit.removal_effect),
            (0.0, Some(0.0))
        );
    }
}

#[test]
fn spreads_one_conversion_over_its_path() {
    let paths = [
        raw("A>B", 1.0, 0.0),
        raw("A", 0.0, 1.0),
        raw("B>C", 1.0, 0.0),
        raw("C", 0.0, 1.0),
    ];
    let fitted = fit("markov", AttributionConfig::default(), &paths);
    let mut credits = cdphub_attribution::Credits::default();
    // Channel values 6/13, 12/13, 8/13: on A>B>A, A's 6 is split over its two touchpoints.
    fitted
        .credit_path(&["A", "B", "A"], 18.0, &mut credits)
        .unwrap();
    let want = [3.0 / 18.0, 12.0 / 18.0, 3.0 / 18.0];
    for (got, want) in credits.shares.iter().zip(want) {
        assert_close(*got, want, 1e-12, "share");
    }
    assert_close(credits.revenue[1], 12.0, 1e-12, "revenue");
    // A channel the model never saw counts 0; a path of only unseen channels is linear.
    fitted.credit_path(&["A", "Z"], 1.0, &mut credits).unwrap();
    assert_eq!(credits.shares, [1.0, 0.0]);
    fitted.credit_path(&["Y", "Z"], 1.0, &mut credits).unwrap();
    assert_eq!(credits.shares, [0.5, 0.5]);
}
