//! The `[attribution]` config section and the errors of bad settings.

use cdphub_attribution::{
    AttributionConfig, AttributionError, Attributor, CoalitionWorth, Model, PositionWeights,
};

#[test]
fn reads_the_kebab_case_section() {
    let config: AttributionConfig = toml::from_str(
        r#"
        direct-channel = "(direct)"
        half-life-days = 3.5
        position-weights = { first = 0.3, middle = 0.4, last = 0.3 }
        markov = { dense-max-states = 200 }
        shapley = { worth = "conversions" }
        "#,
    )
    .unwrap();
    assert_eq!(config.direct_channel, "(direct)");
    assert_eq!(config.half_life_days, 3.5);
    assert_eq!(
        config.position_weights,
        PositionWeights {
            first: 0.3,
            middle: 0.4,
            last: 0.3
        }
    );
    assert_eq!(config.markov.dense_max_states, 200);
    assert_eq!(config.markov.max_sweeps, 100_000);
    assert_eq!(config.shapley.worth, CoalitionWorth::Conversions);
    config.validate().unwrap();

    let defaults: AttributionConfig = toml::from_str("").unwrap();
    assert_eq!(defaults, AttributionConfig::default());
    assert!(toml::from_str::<AttributionConfig>("half-life = 3").is_err());
}

#[test]
fn bad_settings_are_refused_up_front() {
    let cases: [(AttributionConfig, &str); 4] = [
        (
            AttributionConfig {
                half_life_days: 0.0,
                ..AttributionConfig::default()
            },
            "half-life of 0 days",
        ),
        (
            AttributionConfig {
                half_life_days: -2.0,
                ..AttributionConfig::default()
            },
            "half-life of -2 days",
        ),
        (
            AttributionConfig {
                position_weights: PositionWeights {
                    first: 0.5,
                    middle: 0.5,
                    last: 0.5,
                },
                ..AttributionConfig::default()
            },
            "do not sum to 1",
        ),
        (
            AttributionConfig {
                position_weights: PositionWeights {
                    first: 1.2,
                    middle: -0.4,
                    last: 0.2,
                },
                ..AttributionConfig::default()
            },
            "negative",
        ),
    ];
    for (config, expected) in cases {
        // Every model refuses a bad config, even one that would not use the bad setting.
        for model in [Model::Linear, Model::Shapley] {
            let message = Attributor::new(model, config.clone())
                .unwrap_err()
                .to_string();
            assert!(message.contains(expected), "{message}");
        }
    }
}

#[test]
fn model_names_are_checked() {
    let error = Attributor::from_name("data_driven", AttributionConfig::default()).unwrap_err();
    assert_eq!(
        error,
        AttributionError::UnknownModel {
            name: "data_driven".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "unknown attribution model `data_driven`: use one of first_touch, last_touch, \
         last_non_direct, linear, time_decay, position_based, markov, markov_2, markov_3, shapley"
    );
    let error = Attributor::from_name("markov_4", AttributionConfig::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Markov order 4 is not supported: use `markov` (order 1), `markov_2` or `markov_3` \
         (orders 1 to 3)"
    );
}
