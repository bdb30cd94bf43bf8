//! Rule models on journeys and paths, and the per-conversion invariants of every model.

use cdphub_attribution::{
    AttributionConfig, AttributionError, Attributor, Credits, Journey, Model, PathSet,
};
use proptest::prelude::*;

use super::{RawPath, assert_close, fit, path_set, raw, raw_paths};

const DAY: i64 = 86_400_000_000;
const RULES: [&str; 6] = [
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "time_decay",
    "position_based",
];
const CHANNELS: [&str; 9] = [
    "paid_search",
    "paid_social",
    "display",
    "email",
    "affiliate",
    "organic_search",
    "organic_social",
    "referral",
    "direct",
];

/// A random journey: channels from the default grouping, touchpoints up to 60 days before
/// the conversion (a few after it, as clock skew), any revenue including refunds.
fn journeys() -> impl Strategy<Value = (Vec<&'static str>, Vec<i64>, f64)> {
    (1usize..=30).prop_flat_map(|len| {
        (
            prop::collection::vec(prop::sample::select(CHANNELS.to_vec()), len),
            prop::collection::vec(-DAY / 24..60 * DAY, len),
            prop_oneof![Just(0.0), -500.0..1e7f64],
        )
    })
}

#[track_caller]
fn assert_credits_sum(credits: &Credits, len: usize, revenue: f64) {
    assert_eq!((credits.shares.len(), credits.revenue.len()), (len, len));
    assert!(
        credits.shares.iter().all(|&share| share >= 0.0),
        "{credits:?}"
    );
    let shares: f64 = credits.shares.iter().sum();
    let money: f64 = credits.revenue.iter().sum();
    assert_close(shares, 1.0, 1e-12, "Σ shares");
    assert!(
        (money - revenue).abs() <= 1e-12 * revenue.abs().max(1e-300),
        "Σ revenue {money} vs {revenue}"
    );
}

proptest! {
    #[test]
    fn every_rule_credits_each_conversion_once((channels, mut times, revenue) in journeys()) {
        times.sort_unstable();
        let mut credits = Credits::default();
        for name in RULES {
            let model = Attributor::from_name(name, AttributionConfig::default()).unwrap();
            let journey = Journey {
                channels: &channels,
                touch_times: &times,
                conversion_time: 60 * DAY,
                revenue,
            };
            model.credit_journey(&journey, &mut credits).unwrap();
            assert_credits_sum(&credits, channels.len(), revenue);
        }
    }

    #[test]
    fn fitted_models_credit_each_conversion_once(
        paths in raw_paths(6, 6, 10),
        (channels, _, revenue) in journeys(),
    ) {
        let channels: Vec<String> = channels
            .iter()
            .enumerate()
            .map(|(i, c)| if i % 2 == 0 { super::channel_name(c.len() % 6) } else { c.to_string() })
            .collect();
        let mut credits = Credits::default();
        for name in ["markov", "markov_2", "markov_3", "shapley"] {
            let fitted = fit(name, AttributionConfig::default(), &paths);
            fitted.credit_path(&channels, revenue, &mut credits).unwrap();
            assert_credits_sum(&credits, channels.len(), revenue);
        }
    }

    /// On paths, each rule gives every channel what it would give on each journey, and the
    /// channel totals sum to the total conversions and revenue.
    #[test]
    fn rules_on_paths_sum_to_the_totals(paths in raw_paths(6, 8, 12)) {
        let conversions: f64 = paths.iter().map(|p| p.conversions).sum();
        let revenue: f64 = paths.iter().map(|p| p.revenue).sum();
        for name in RULES.iter().filter(|&&name| name != "time_decay") {
            let fitted = fit(name, AttributionConfig::default(), &paths);
            let credited: f64 = fitted.channels().iter().map(|c| c.conversions).sum();
            let money: f64 = fitted.channels().iter().map(|c| c.revenue).sum();
            assert_close(credited, conversions, 1e-12, name);
            assert_close(money, revenue, 1e-12, name);
        }
    }
}

#[test]
fn rules_on_paths_match_hand_counts() {
    let paths = [
        RawPath {
            revenue: 300.0,
            ..raw("email>direct>display>direct", 3.0, 5.0)
        },
        RawPath {
            revenue: 100.0,
            ..raw("direct", 1.0, 0.0)
        },
    ];
    let credit = |model: &str, channel: &str| {
        let fitted = fit(model, AttributionConfig::default(), &paths);
        let credit = fitted.get(channel).unwrap();
        (credit.conversions, credit.revenue)
    };
    assert_eq!(credit("first_touch", "email"), (3.0, 300.0));
    assert_eq!(credit("last_touch", "direct"), (4.0, 400.0));
    // The all-direct path falls back to its last touchpoint.
    assert_eq!(credit("last_non_direct", "display"), (3.0, 300.0));
    assert_eq!(credit("last_non_direct", "direct"), (1.0, 100.0));
    assert_eq!(credit("linear", "direct"), (1.5 + 1.0, 150.0 + 100.0));
    // 0.4 + 0.2/2 + 0 on the first path.
    let (conversions, revenue) = credit("position_based", "email");
    assert_close(conversions, 1.2, 1e-12, "email");
    assert_close(revenue, 120.0, 1e-12, "email");
}

#[test]
fn last_non_direct_uses_the_configured_channel() {
    let config = AttributionConfig {
        direct_channel: "(none)".into(),
        ..AttributionConfig::default()
    };
    let model = Attributor::from_name("last_non_direct", config).unwrap();
    let mut credits = Credits::default();
    let journey = Journey {
        channels: &["email", "(none)"],
        touch_times: &[0, 0],
        conversion_time: 0,
        revenue: 10.0,
    };
    model.credit_journey(&journey, &mut credits).unwrap();
    assert_eq!(credits.revenue, [10.0, 0.0]);
}

#[test]
fn time_decay_uses_the_configured_half_life() {
    let config = AttributionConfig {
        half_life_days: 1.0,
        ..AttributionConfig::default()
    };
    let model = Attributor::from_name("time_decay", config).unwrap();
    let mut credits = Credits::default();
    let journey = Journey {
        channels: &["a", "b", "c"],
        touch_times: &[DAY, 2 * DAY, 3 * DAY],
        conversion_time: 3 * DAY,
        revenue: 70.0,
    };
    model.credit_journey(&journey, &mut credits).unwrap();
    for (got, want) in credits.revenue.iter().zip([10.0, 20.0, 40.0]) {
        assert_close(*got, want, 1e-12, "revenue");
    }
}

#[test]
fn journeys_that_cannot_be_credited_say_why() {
    let mut credits = Credits::default();
    let linear = Attributor::new(Model::Linear, AttributionConfig::default()).unwrap();
    let none: [&str; 0] = [];
    let empty = Journey {
        channels: &none,
        touch_times: &[],
        conversion_time: 0,
        revenue: 1.0,
    };
    let message = linear
        .credit_journey(&empty, &mut credits)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("linear journey has no touchpoint"),
        "{message}"
    );

    let mismatched = Journey {
        channels: &["a", "b"],
        touch_times: &[0],
        conversion_time: 0,
        revenue: 1.0,
    };
    let error = linear
        .credit_journey(&mismatched, &mut credits)
        .unwrap_err();
    assert!(
        error.to_string().contains("one timestamp per touchpoint"),
        "{error}"
    );

    let nan = Journey {
        revenue: f64::NAN,
        ..mismatched
    };
    let nan = Journey {
        touch_times: &[0, 0],
        ..nan
    };
    let error = linear.credit_journey(&nan, &mut credits).unwrap_err();
    assert!(error.to_string().contains("revenue is NaN"), "{error}");

    let markov = Attributor::from_name("markov_2", AttributionConfig::default()).unwrap();
    let journey = Journey {
        channels: &["a"],
        touch_times: &[0],
        conversion_time: 0,
        revenue: 1.0,
    };
    let error = markov.credit_journey(&journey, &mut credits).unwrap_err();
    assert_eq!(
        error,
        AttributionError::NeedsPaths {
            model: "markov_2".parse().unwrap()
        }
    );
    assert!(error.to_string().contains("credit_path"), "{error}");

    let decay = Attributor::from_name("time_decay", AttributionConfig::default()).unwrap();
    let error = decay
        .attribute_paths(&path_set(&[raw("a", 1.0, 0.0)]))
        .unwrap_err();
    assert!(error.to_string().contains("timestamps"), "{error}");
}

#[test]
fn an_empty_path_set_credits_nothing() {
    for name in cdphub_attribution::Model::NAMES {
        if name == "time_decay" {
            continue;
        }
        let model = Attributor::from_name(name, AttributionConfig::default()).unwrap();
        let fitted = model.attribute_paths(&PathSet::new()).unwrap();
        assert!(fitted.channels().is_empty(), "{name}");
        assert_eq!(fitted.total_conversions(), 0.0);
    }
}
