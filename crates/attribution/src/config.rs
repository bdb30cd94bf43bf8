//! Model parameters: the `[attribution]` section of `cdphub.toml` (kebab-case keys).

use serde::{Deserialize, Serialize};

use crate::error::{AttributionError, Result};

/// Tolerance on the sum of the position-based weights, so that `0.1 + 0.2 + 0.7` passes.
const WEIGHT_SUM_TOLERANCE: f64 = 1e-9;

/// Parameters of every model. [`AttributionConfig::validate`] checks them; the constructors
/// of [`crate::Attributor`] call it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AttributionConfig {
    /// The channel `last_non_direct` skips, compared exactly (channel grouping lowercases).
    pub direct_channel: String,
    /// Time after which a touchpoint counts half as much in `time_decay`, in days.
    pub half_life_days: f64,
    /// Shares of the first, middle and last touchpoints in `position_based`.
    pub position_weights: PositionWeights,
    /// How the Markov models solve their chain.
    pub markov: MarkovConfig,
    /// What the Shapley model counts as a coalition's worth.
    pub shapley: ShapleyConfig,
}

impl Default for AttributionConfig {
    fn default() -> Self {
        Self {
            direct_channel: "direct".to_string(),
            half_life_days: 7.0,
            position_weights: PositionWeights::default(),
            markov: MarkovConfig::default(),
            shapley: ShapleyConfig::default(),
        }
    }
}

/// Weights of `position_based`: non-negative, summing to 1.
///
/// One touchpoint takes all the credit. Two touchpoints have no middle, so they share in
/// proportion `first : last` (equally when both are 0). From three touchpoints on, the first
/// and the last take their weights and the middle ones split `middle` equally.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionWeights {
    /// Share of the first touchpoint.
    pub first: f64,
    /// Share of all the middle touchpoints together.
    pub middle: f64,
    /// Share of the last touchpoint.
    pub last: f64,
}

impl Default for PositionWeights {
    fn default() -> Self {
        Self {
            first: 0.4,
            middle: 0.2,
            last: 0.4,
        }
    }
}

/// Solver settings of the Markov models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MarkovConfig {
    /// Chains with at most this many states are solved by Gaussian elimination (exact up to
    /// rounding, cubic time); larger ones by Gauss-Seidel sweeps over the sparse transitions,
    /// from below and from above until the two bounds meet within 1e-13, linear per sweep.
    /// At 250 states (the default) one elimination takes about 5 ms.
    pub dense_max_states: usize,
    /// Most Gauss-Seidel sweeps before giving up with an error.
    pub max_sweeps: usize,
}

impl Default for MarkovConfig {
    fn default() -> Self {
        Self {
            dense_max_states: 250,
            max_sweeps: 100_000,
        }
    }
}

/// What the Shapley model counts as the worth of a coalition of channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ShapleyConfig {
    /// The worth `R(T)` of a coalition observed in the paths.
    pub worth: CoalitionWorth,
}

/// The worth `R(T)` of the journeys whose set of channels is exactly `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoalitionWorth {
    /// Conversions over journeys (conversions plus non-conversions): favours channel sets that
    /// convert well, whatever their volume. Needs non-conversion counts to mean anything.
    #[default]
    ConversionRate,
    /// Number of conversions: favours channel sets by volume.
    Conversions,
}

impl AttributionConfig {
    /// Checks every parameter, so that a bad config fails before any data is read.
    pub fn validate(&self) -> Result<()> {
        if self.direct_channel.is_empty() {
            return Err(AttributionError::EmptyDirectChannel);
        }
        if !(self.half_life_days.is_finite() && self.half_life_days > 0.0) {
            return Err(AttributionError::InvalidHalfLife {
                days: self.half_life_days,
            });
        }
        if self.markov.max_sweeps == 0 {
            return Err(AttributionError::ZeroMaxSweeps);
        }
        self.position_weights.validate()
    }
}

impl PositionWeights {
    /// Checks that the weights are finite, non-negative and sum to 1.
    pub fn validate(&self) -> Result<()> {
        let Self {
            first,
            middle,
            last,
        } = *self;
        let problem = if ![first, middle, last].iter().all(|w| w.is_finite()) {
            Some("a weight is not a finite number")
        } else if first < 0.0 || middle < 0.0 || last < 0.0 {
            Some("a weight is negative")
        } else if ((first + middle + last) - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            Some("the weights do not sum to 1")
        } else {
            None
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(AttributionError::InvalidPositionWeights {
                first,
                middle,
                last,
                problem,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        AttributionConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_weights_say_what_is_wrong() {
        let cases = [
            ((0.5, 0.2, 0.4), "do not sum to 1"),
            ((0.6, -0.2, 0.6), "negative"),
            ((f64::NAN, 0.5, 0.5), "not a finite number"),
        ];
        for ((first, middle, last), expected) in cases {
            let weights = PositionWeights {
                first,
                middle,
                last,
            };
            let message = weights.validate().unwrap_err().to_string();
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("0.4, 0.2, 0.4"), "{message}");
        }
        let rounding = PositionWeights {
            first: 0.1,
            middle: 0.2,
            last: 0.7,
        };
        rounding.validate().unwrap();
    }

    #[test]
    fn half_life_must_be_positive() {
        for days in [0.0, -7.0, f64::INFINITY, f64::NAN] {
            let config = AttributionConfig {
                half_life_days: days,
                ..AttributionConfig::default()
            };
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains("positive"), "{message}");
        }
    }

    #[test]
    fn markov_needs_a_sweep() {
        let mut config = AttributionConfig::default();
        config.markov.max_sweeps = 0;
        assert_eq!(
            config.validate().unwrap_err(),
            AttributionError::ZeroMaxSweeps
        );
    }

    #[test]
    fn direct_channel_must_be_named() {
        let config = AttributionConfig {
            direct_channel: String::new(),
            ..AttributionConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err(),
            AttributionError::EmptyDirectChannel
        );
    }
}
